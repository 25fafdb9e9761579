//! `cargo xtask bench`: a benchmark, not a test. For every built-in scenario:
//! - executions per second and nanoseconds per scheduling point (random schedules), side by side
//!   in the same run with bare shuttle doing as many scheduling points on plain atomics;
//! - executions to the first violation over many seeds (median, p90; a seed that found
//!   nothing counts as the cap) for PCT, random
//!   and URW, on the scenario's newest buggy era;
//! - the stress backend on real threads: executions (and time) to the first violation,
//!   or "not found in N s";
//! - loom's exhaustive executions and time on a fixed era, per architecture and preemption
//!   bound, under the architecture's memory model and, side by side, sequentially
//!   consistent (`sequential_consistency=on`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use cowbreak_explore::{explore_shuttle, ShuttleConfig, Strategy};
use cowbreak_mm::{Arch, Era, ViolationKind};
use cowbreak_scenario::Scenario;
use cowbreak_sync::Arc;
use serde_json::{json, Value};

use crate::cli::{build_runner, builtins, Fail};

#[derive(clap::Args)]
pub struct Args {
    /// Also write the figures as JSON to FILE.
    /// (`--json` alone, or `--json -`: print the JSON on stdout instead of text.)
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    json: Option<PathBuf>,
    /// Only these scenarios (comma-separated).
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Executions for the throughput figures: the budget, as `check` and `matrix` call it.
    #[arg(long, alias = "executions", default_value_t = 2000)]
    budget: usize,
    /// Runs of each throughput figure (model and bare shuttle alternated): the table shows
    /// the median, the JSON min / median / max.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Seeds for executions-to-first-violation.
    #[arg(long, default_value_t = 20)]
    seeds: u64,
    /// Executions per seed before a search counts as "not found".
    #[arg(long, default_value_t = 20_000)]
    cap: usize,
    /// Seconds the stress backend gets per scenario.
    #[arg(long, default_value_t = 10.0)]
    stress_seconds: f64,
    /// Seconds loom gets per scenario before it is stopped.
    #[arg(long, default_value_t = 60.0)]
    loom_seconds: f64,
    /// The era for loom's exhaustive times.
    #[arg(long, default_value = "v5.9")]
    loom_era: String,
    /// Preemption bounds for loom (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "2,3")]
    loom_bounds: Vec<usize>,
    /// Architectures for loom (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "x86,arm64")]
    loom_arches: Vec<String>,
    /// The architecture of the shuttle and stress figures.
    #[arg(long, default_value = "x86")]
    arch: String,
    /// PCT executions of the campaign figures (threads, state files, merge).
    #[arg(long, default_value_t = 20_000)]
    campaign_budget: usize,
    /// Skip the stress and loom parts (they need their own builds).
    #[arg(long)]
    shuttle_only: bool,
}

/// A throughput campaign: `iterations` executions of `strategy`, seed 0, no early stop.
fn throughput(strategy: Strategy, iterations: usize) -> ShuttleConfig {
    ShuttleConfig {
        strategy,
        iterations,
        seed: 0,
        steps_max: 20_000,
        stop_after_first: false,
    }
}

/// Bare shuttle, nothing of ours: `threads` threads doing `ops` `fetch_add`s each on one
/// of shuttle's own atomics, under shuttle's own scheduler (no recording, no forced-step
/// skipping), `iterations` executions. `count` wraps the scheduler in a counter of
/// scheduling points and decisions (for a separate, untimed run with the same seed,
/// hence the same schedules); the timed run passes `false`. Returns (points, decisions).
fn bare(
    strategy: Strategy,
    iterations: usize,
    threads: usize,
    ops: u64,
    count: bool,
) -> (u64, u64) {
    use shuttle::scheduler::{PctScheduler, RandomScheduler, Scheduler};
    let body = move || {
        let counter = std::sync::Arc::new(shuttle::sync::atomic::AtomicU64::new(0));
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                let c = std::sync::Arc::clone(&counter);
                shuttle::thread::spawn(move || {
                    for _ in 0..ops {
                        c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().expect("baseline thread");
        }
    };
    let sched: Box<dyn Scheduler + Send> = match strategy {
        Strategy::Pct { depth } => Box::new(PctScheduler::new_from_seed(0, depth, iterations)),
        _ => Box::new(RandomScheduler::new_from_seed(0, iterations)),
    };
    let mut config = shuttle::Config::new();
    config.silence_warnings = true;
    if !count {
        shuttle::Runner::new(sched, config).run(body);
        return (0, 0);
    }
    let tally = std::rc::Rc::new(std::cell::Cell::new((0u64, 0u64)));
    let counting = Counted {
        inner: sched,
        tally: std::rc::Rc::clone(&tally),
    };
    shuttle::Runner::new(counting, config).run(body);
    tally.get()
}

/// Counts scheduling points and decisions (two or more runnable) of the scheduler it
/// wraps, for the untimed counting run of [`bare`].
struct Counted<S> {
    inner: S,
    tally: std::rc::Rc<std::cell::Cell<(u64, u64)>>,
}

impl<S: shuttle::scheduler::Scheduler> shuttle::scheduler::Scheduler for Counted<S> {
    fn new_execution(&mut self) -> Option<shuttle::scheduler::Schedule> {
        self.inner.new_execution()
    }
    fn next_task(
        &mut self,
        runnable: &[&shuttle::scheduler::Task],
        current: Option<shuttle::scheduler::TaskId>,
        is_yielding: bool,
    ) -> Option<shuttle::scheduler::TaskId> {
        let (p, d) = self.tally.get();
        self.tally.set((p + 1, d + u64::from(runnable.len() > 1)));
        self.inner.next_task(runnable, current, is_yielding)
    }
    fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }
}

/// min / median / max of `v`.
fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

/// One scheduler's throughput on one scenario, the model and bare shuttle side by side:
/// `reps` runs each, alternated so that both see the same machine. A third run in each
/// repetition is the model booting and setting up the kernel in every execution
/// (`Scenario::execution_from(config, false)`), the baseline of the setup copy.
fn cost(
    sc: &Scenario,
    config: &cowbreak_mm::KernelConfig,
    strategy: Strategy,
    budget: usize,
    reps: usize,
) -> Value {
    if matches!(strategy, Strategy::Pct { .. }) && sc.threads.len() < 2 {
        // PCT runs a single-threaded scenario once (shuttle's PCT refuses more): no
        // throughput to measure.
        return Value::Null;
    }
    let (mut model_t, mut bare_t, mut booted_t) = (Vec::new(), Vec::new(), Vec::new());
    let mut out = None;
    let mut shape = None;
    for _ in 0..reps {
        let t = Instant::now();
        let o = explore_shuttle(&throughput(strategy, budget), sc.execution(config.clone()));
        model_t.push(t.elapsed().as_secs_f64());
        let execs = o.executions.max(1);
        // The same threads, and as many scheduling points per execution as the model's.
        let (threads, ops) = *shape.get_or_insert_with(|| {
            let threads = sc.threads.len().max(1);
            (threads, (o.steps / execs / threads as u64).max(1))
        });
        out = Some(o);
        let t = Instant::now();
        bare(strategy, budget, threads, ops, false);
        bare_t.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        explore_shuttle(
            &throughput(strategy, budget),
            sc.execution_from(config.clone(), false),
        );
        booted_t.push(t.elapsed().as_secs_f64());
    }
    let out = out.expect("at least one repetition");
    let (threads, ops) = shape.expect("at least one repetition");
    let (bare_points, bare_decisions) = bare(strategy, budget, threads, ops, true);
    let execs = out.executions.max(1) as f64;
    let per = |t: (f64, f64, f64), n: u64| {
        let n = n.max(1) as f64 / 1e9;
        (t.0 / n, t.1 / n, t.2 / n)
    };
    let (m, b, booted) = (spread(model_t), spread(bare_t), spread(booted_t));
    let (m_step, b_step) = (per(m, out.steps), per(b, bare_points));
    // A scenario whose threads never run side by side makes no decisions: no figure.
    let nan = (f64::NAN, f64::NAN, f64::NAN);
    let (m_dec, b_dec) = if out.decisions == 0 {
        (nan, nan)
    } else {
        (per(m, out.decisions), per(b, bare_decisions))
    };
    let trip = |t: (f64, f64, f64)| {
        if t.1.is_nan() {
            Value::Null
        } else {
            json!({"min": t.0, "median": t.1, "max": t.2})
        }
    };
    json!({
        "executions": out.executions,
        "steps_per_execution": out.steps as f64 / execs,
        "decisions_per_execution": out.decisions as f64 / execs,
        "exec_per_s": {"min": execs / m.2, "median": execs / m.1, "max": execs / m.0},
        "setup_copy": {
            "exec_per_s_booting_every_execution":
                {"min": execs / booted.2, "median": execs / booted.1, "max": execs / booted.0},
            "speedup": booted.1 / m.1,
        },
        "model_ns_per_step": trip(m_step),
        "bare_ns_per_step": trip(b_step),
        "ratio_per_step": m_step.1 / b_step.1,
        "model_ns_per_decision": trip(m_dec),
        "bare_ns_per_decision": trip(b_dec),
        "ratio_per_decision": if out.decisions == 0 { Value::Null } else { json!(m_dec.1 / b_dec.1) },
        "bare": {"threads": threads, "ops_per_thread": ops,
            "steps_per_execution": bare_points as f64 / execs,
            "decisions_per_execution": bare_decisions as f64 / execs},
    })
}

/// The newest kernel era with the scenario's bug (the hypothetical `aa-cor` only when no
/// kernel era has it).
fn last_buggy_era(sc: &Scenario, arch: Arch) -> Option<(Era, ViolationKind)> {
    let buggy = |e: Era| sc.expected_on_sc(e, arch).first().map(|&k| (e, k));
    let kernels = Era::ALL.into_iter().rev().filter(|e| !e.hypothetical());
    kernels
        .chain(Era::ALL.into_iter().filter(|e| e.hypothetical()))
        .find_map(buggy)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Executions to the first violation over every seed, a seed that found nothing
/// counted as the cap (so that a median is never taken over the lucky seeds only).
struct FirstStats {
    median: u64,
    p90: u64,
    missed: usize,
    cap: u64,
}

impl FirstStats {
    fn new(found: &[u64], missed: usize, cap: u64) -> FirstStats {
        let mut all: Vec<u64> = found.to_vec();
        all.extend(std::iter::repeat_n(cap, missed));
        all.sort_unstable();
        let (median, p90) = if all.is_empty() {
            (cap, cap)
        } else {
            (percentile(&all, 0.5), percentile(&all, 0.9))
        };
        FirstStats {
            median,
            p90,
            missed,
            cap,
        }
    }

    /// `median / p90`, a value that is a miss shown as `>=cap`, and the misses.
    fn text(&self) -> String {
        let show = |v: u64| {
            if self.missed > 0 && v >= self.cap {
                format!(">={}", self.cap)
            } else {
                v.to_string()
            }
        };
        let missed = if self.missed > 0 {
            format!(" ({} missed)", self.missed)
        } else {
            String::new()
        };
        format!("{} / {}{missed}", show(self.median), show(self.p90))
    }
}

pub fn run(args: Args) -> Result<ExitCode, Fail> {
    let mut scenarios = builtins()?;
    if !args.scenarios.is_empty() {
        scenarios.retain(|s| args.scenarios.contains(&s.name));
    }
    let loom_era = crate::cli::era(&args.loom_era)?;
    let arch = crate::cli::arch(&args.arch)?;
    let loom_arches = args
        .loom_arches
        .iter()
        .map(|a| crate::cli::arch(a))
        .collect::<Result<Vec<_>, _>>()?;
    // Scenarios for another architecture, or whose history needs loom, have no shuttle
    // figures on this one.
    let shuttle_scenarios: Vec<&Scenario> = scenarios.iter().filter(|s| s.runs_on(arch)).collect();
    let mut rows = Vec::new();
    println!(
        "throughput: {} executions a run, {} runs each, alternated with bare shuttle (its own \
         atomics and scheduler, the same threads and scheduling points) and with the model \
         booting and setting up in every execution (`copy`: random's exec/s with the setup \
         copied, against that); medians\n",
        args.budget, args.reps
    );
    println!(
        "{:<40} {:>7} {:>7} {:>8} {:>6}   {:>7} {:>7} {:>6}   {:>7} {:>7} {:>6}   {:>8} {:>8} {:>6}",
        "scenario (era)",
        "steps",
        "decis.",
        "exec/s",
        "copy",
        "rnd ns",
        "bare",
        "ratio",
        "PCT ns",
        "bare",
        "ratio",
        "ns/dec",
        "bare",
        "ratio"
    );
    let mut table = Vec::new();
    for &sc in &shuttle_scenarios {
        let (era, kind) = last_buggy_era(sc, arch).map_or((Era::V6_2, None), |(e, k)| (e, Some(k)));
        let config = sc.kernel_config(sc.policy(era, arch), arch);
        let random = cost(sc, &config, Strategy::Random, args.budget, args.reps);
        let pct = cost(
            sc,
            &config,
            Strategy::Pct { depth: 3 },
            args.budget,
            args.reps,
        );
        let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        let med = |v: &Value, k: &str| v[k]["median"].as_f64().unwrap_or(f64::NAN);
        println!(
            "{:<40} {:>7.0} {:>7.0} {:>8.0} {:>5.2}x   {:>7.0} {:>7.0} {:>5.2}x   {:>7.0} {:>7.0} {:>5.2}x   {:>8.0} {:>8.0} {:>5.2}x",
            format!("{} ({era})", sc.name),
            f(&random, "steps_per_execution"),
            f(&random, "decisions_per_execution"),
            med(&random, "exec_per_s"),
            random["setup_copy"]["speedup"].as_f64().unwrap_or(f64::NAN),
            med(&random, "model_ns_per_step"),
            med(&random, "bare_ns_per_step"),
            f(&random, "ratio_per_step"),
            med(&pct, "model_ns_per_step"),
            med(&pct, "bare_ns_per_step"),
            f(&pct, "ratio_per_step"),
            med(&random, "model_ns_per_decision"),
            med(&random, "bare_ns_per_decision"),
            f(&random, "ratio_per_decision"),
        );
        table.push((sc, era, kind, config, random, pct));
    }
    println!(
        "\nexecutions to the first violation over {} seeds (median / p90; a seed that found nothing counts as the cap, {}):\n",
        args.seeds, args.cap
    );
    let strategies = [
        ("pct2", Strategy::Pct { depth: 2 }),
        ("pct3", Strategy::Pct { depth: 3 }),
        ("random", Strategy::Random),
        ("urw", Strategy::Urw),
        ("pos", Strategy::Pos),
        ("surw", Strategy::Surw),
    ];
    print!("{:<40}", "scenario (era)");
    for (name, _) in &strategies {
        print!(" {:<26}", name);
    }
    print!(" {:<9} {:<9}", "best/pos", "best/surw");
    println!();
    for (sc, era, kind, config, random, pct) in table {
        let mut firsts = serde_json::Map::new();
        if let Some(kind) = kind {
            print!("{:<40}", format!("{} ({era})", sc.name));
            firsts = first_violations(sc, &config, kind, &strategies, &args);
            println!();
        }
        rows.push(json!({"scenario": sc.name, "era": era.name(), "arch": arch.name(), "kind": kind.map(|k| k.name()),
            "threads": sc.threads.len(),
            "throughput": {"random": random, "pct3": pct},
            "first_violation": firsts}));
    }
    let mut report =
        json!({"shuttle": rows, "scale": scale(arch, &args)?, "campaigns": campaigns(&args)?});
    if !args.shuttle_only {
        report["stress"] = stress(&shuttle_scenarios, arch, &args)?;
        report["loom"] = loom(&scenarios, loom_era, &loom_arches, &args)?;
    }
    if let Some(path) = &args.json {
        crate::run::write_output(
            path,
            &(serde_json::to_string_pretty(&report).expect("JSON") + "\n"),
        )?;
        if !crate::run::is_stdout(path) {
            println!("figures written to {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Executions to the first `kind` for each of `strategies`, over `args.seeds` seeds
/// with `args.cap` executions each, printed as table cells.
fn first_violations(
    sc: &Scenario,
    config: &cowbreak_mm::KernelConfig,
    kind: ViolationKind,
    strategies: &[(&str, Strategy)],
    args: &Args,
) -> serde_json::Map<String, Value> {
    let mut firsts = serde_json::Map::new();
    for &(name, strategy) in strategies {
        let mut found = Vec::new();
        for seed in 0..args.seeds {
            let cfg = ShuttleConfig {
                strategy,
                iterations: args.cap,
                seed,
                steps_max: 20_000,
                stop_after_first: true,
            };
            let o = explore_shuttle(&cfg, sc.execution(config.clone()));
            if let Some(f) = o.violations.iter().find(|f| f.violation.kind == kind) {
                found.push(f.first_at_execution);
            }
        }
        found.sort_unstable();
        let missed = args.seeds as usize - found.len();
        let first = FirstStats::new(&found, missed, args.cap as u64);
        print!(" {:<26}", first.text());
        firsts.insert(
            name.into(),
            json!({"found": found, "seeds": args.seeds, "cap": args.cap,
            "misses_counted_as_cap": missed,
            "median": first.median, "p90": first.p90}),
        );
    }
    // The yardstick: the best median of PCT (d=2, d=3) and URW, over each of our
    // own schedulers' (above 1: ours needs fewer executions).
    let median = |name: &str| firsts.get(name).and_then(|f| f["median"].as_f64());
    let best = ["pct2", "pct3", "urw"]
        .into_iter()
        .filter_map(median)
        .fold(f64::INFINITY, f64::min);
    if best.is_finite() {
        let mut against = serde_json::Map::new();
        against.insert("best_median".into(), json!(best));
        for ours in ["pos", "surw"] {
            if let Some(m) = median(ours) {
                let ratio = best / m.max(1.0);
                print!(" {:<9}", format!("{ratio:.2}x"));
                against.insert(ours.into(), json!(ratio));
            }
        }
        firsts.insert("best_of_pct_and_urw_over".into(), Value::Object(against));
    }
    firsts
}

/// Scale: the same race with 2, 4 and 8 threads and 1, 48 and 56 pages
/// (`fast-gup-vs-fork` and the scale built-ins): throughput and cost per step on the
/// clean era v5.11 (no execution ends early), side by side with bare shuttle at the
/// same thread count, and executions to the first violation on v5.9.
fn scale(arch: Arch, args: &Args) -> Result<Value, Fail> {
    let mut scenarios = vec![crate::cli::scenario("fast-gup-vs-fork")?];
    scenarios.extend(crate::cli::scale()?);
    if !args.scenarios.is_empty() {
        scenarios.retain(|s| args.scenarios.contains(&s.name));
    }
    if scenarios.is_empty() {
        return Ok(Value::Array(Vec::new()));
    }
    println!(
        "\nscale: throughput on v5.11 (clean), random, medians of {} runs; executions to the first pin-coherence on v5.9 over {} seeds:\n",
        args.reps, args.seeds
    );
    let strategies = [
        ("pct3", Strategy::Pct { depth: 3 }),
        ("urw", Strategy::Urw),
        ("pos", Strategy::Pos),
        ("surw", Strategy::Surw),
    ];
    println!(
        "{:<22} {:>7} {:>5} {:>7} {:>7} {:>8} {:>7} {:>7} {:>6}   {:<26} {:<26} {:<26} {:<26} {:<9} {:<9}",
        "scenario",
        "threads",
        "pages",
        "steps",
        "decis.",
        "exec/s",
        "ns/step",
        "bare",
        "ratio",
        "PCT d=3 first",
        "URW first",
        "POS first",
        "SURW first",
        "best/pos",
        "best/surw"
    );
    let mut rows = Vec::new();
    for sc in &scenarios {
        let pages = sc.pages();
        let clean = sc.kernel_config(sc.policy(Era::V5_11, arch), arch);
        let random = cost(sc, &clean, Strategy::Random, args.budget, args.reps);
        let med = |k: &str| random[k]["median"].as_f64().unwrap_or(f64::NAN);
        let f = |k: &str| random[k].as_f64().unwrap_or(f64::NAN);
        print!(
            "{:<22} {:>7} {:>5} {:>7.0} {:>7.0} {:>8.0} {:>7.0} {:>7.0} {:>5.2}x  ",
            sc.name,
            sc.threads.len(),
            pages,
            f("steps_per_execution"),
            f("decisions_per_execution"),
            med("exec_per_s"),
            med("model_ns_per_step"),
            med("bare_ns_per_step"),
            f("ratio_per_step"),
        );
        let buggy = sc.kernel_config(sc.policy(Era::V5_9, arch), arch);
        let firsts = first_violations(sc, &buggy, ViolationKind::PinCoherence, &strategies, args);
        println!();
        rows.push(
            json!({"scenario": sc.name, "threads": sc.threads.len(), "pages": pages,
            "arch": arch.name(), "throughput_era": "v5.11", "throughput": random,
            "first_violation_era": "v5.9", "first_violation": firsts}),
        );
    }
    Ok(Value::Array(rows))
}

/// Time `f` `n` times; (min, median, max) seconds.
fn timed(n: usize, mut f: impl FnMut() -> Result<(), Fail>) -> Result<(f64, f64, f64), Fail> {
    let mut t = Vec::new();
    for _ in 0..n {
        let start = Instant::now();
        f()?;
        t.push(start.elapsed().as_secs_f64());
    }
    Ok(spread(t))
}

/// What campaigns cost around the exploration, side by side in one run: `--jobs 1`
/// against `--jobs 2` on a clean campaign; a campaign that keeps its state file and
/// writes traces as it finds them against the same campaign kept in memory; and the
/// merge of a two-shard matrix.
fn campaigns(args: &Args) -> Result<Value, Fail> {
    use cowbreak_explore::campaign::{self, CheckRequest, Shard};
    use cowbreak_explore::Control;
    let req = |name: &str, era: Era| -> Result<CheckRequest, Fail> {
        Ok(CheckRequest {
            scenario: crate::cli::scenario(name)?,
            era,
            arch: Arch::X86,
            switches: Vec::new(),
            shuttle: ShuttleConfig {
                strategy: Strategy::Pct { depth: 3 },
                iterations: args.campaign_budget,
                seed: 0,
                steps_max: 20_000,
                stop_after_first: false,
            },
        })
    };
    let bad = |e: cowbreak_mm::UnknownSwitch| Fail::bad(e.to_string());
    let reps = 5;
    println!(
        "\ncampaigns ({} PCT executions, min / median / max of {reps} runs):",
        args.campaign_budget
    );
    // Threads, on a clean cell (no early stop, no traces).
    let clean = req("fast-gup-vs-fork", Era::V5_11)?;
    let mut jobs = serde_json::Map::new();
    for j in [1usize, 2] {
        let t = timed(reps, || {
            campaign::check_with(&clean, j, &Arc::new(Control::default()))
                .map(|_| ())
                .map_err(bad)
        })?;
        println!(
            "  fast-gup-vs-fork v5.11, --jobs {j}: {:.3} / {:.3} / {:.3} s, {:.0} exec/s (median)",
            t.0,
            t.1,
            t.2,
            args.campaign_budget as f64 / t.1
        );
        jobs.insert(
            format!("jobs_{j}"),
            json!({"min_s": t.0, "median_s": t.1, "max_s": t.2,
            "exec_per_s": args.campaign_budget as f64 / t.1}),
        );
    }
    let speedup = jobs["jobs_1"]["median_s"].as_f64().unwrap_or(0.0)
        / jobs["jobs_2"]["median_s"].as_f64().unwrap_or(1.0);
    println!("  speedup of --jobs 2: {speedup:.2}x");
    // State file and traces as found, on a cell with violations.
    let buggy = req("dirty-cow", Era::V4_8)?;
    // Alternated, so that both sides see the same machine.
    let dir = tempfile::tempdir().map_err(|e| Fail::bad(e.to_string()))?;
    let (mut mem, mut disk) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        mem.push(timed(1, || {
            campaign::check_with(&buggy, 1, &Arc::new(Control::default()))
                .map(|_| ())
                .map_err(bad)
        })?);
        disk.push(timed(1, || {
            let state = crate::run::state_path(dir.path(), "bench", Shard::ALL);
            let mut r = crate::run::Run::new(&buggy, dir.path(), Some(state), Shard::ALL, None)?;
            r.go(1, &Arc::new(Control::default()), |_, _, _| {})?;
            r.report(0).map(|_| ())
        })?);
    }
    let firsts = |v: &[(f64, f64, f64)]| spread(v.iter().map(|t| t.0).collect());
    let (in_memory, on_disk) = (firsts(&mem), firsts(&disk));
    println!(
        "  dirty-cow v4.8, in memory: {:.3} / {:.3} / {:.3} s; with a state file after every chunk and traces as found: {:.3} / {:.3} / {:.3} s ({:+.1}%)",
        in_memory.0, in_memory.1, in_memory.2, on_disk.0, on_disk.1, on_disk.2,
        (on_disk.1 / in_memory.1 - 1.0) * 100.0
    );
    // A two-shard matrix, merged by the command line.
    let exe = std::env::current_exe().map_err(|e| Fail::bad(e.to_string()))?;
    let mdir = tempfile::tempdir().map_err(|e| Fail::bad(e.to_string()))?;
    let matrix = [
        "matrix",
        "--scenarios",
        "dirty-cow,fast-gup-vs-fork,ro-pin-shared",
        "--budget",
        "1000",
        "--arch",
        "x86",
        "-q",
    ];
    let mut shards = Vec::new();
    for i in 0..2 {
        let out = mdir.path().join(format!("shard-{i}"));
        let st = std::process::Command::new(&exe)
            .args(matrix)
            .args(["--shard", &format!("{i}/2"), "--out"])
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| Fail::bad(e.to_string()))?;
        if st.code() != Some(0) {
            return Err(Fail::bad(format!("bench: matrix shard {i} failed: {st}")));
        }
        shards.push(out);
    }
    let merge = timed(reps, || {
        let st = std::process::Command::new(&exe)
            .arg("merge")
            .args(&shards)
            .arg("--json")
            .arg(mdir.path().join("merged.json"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map_err(|e| Fail::bad(e.to_string()))?;
        if st.code() == Some(0) {
            Ok(())
        } else {
            Err(Fail::bad(format!("bench: merge failed: {st}")))
        }
    })?;
    println!(
        "  merge of a 2-shard matrix (36 cells), the whole command: {:.3} / {:.3} / {:.3} s",
        merge.0, merge.1, merge.2
    );
    Ok(json!({
        "budget": args.campaign_budget,
        "jobs": jobs,
        "jobs_2_speedup": speedup,
        "state_and_traces": {"in_memory_median_s": in_memory.1, "on_disk_median_s": on_disk.1,
            "overhead": on_disk.1 / in_memory.1 - 1.0},
        "merge_2_shards_median_s": merge.1,
    }))
}

/// Run the runner on `sc`, killing it after `seconds`; `None` on timeout.
fn run_runner(
    bin: &Path,
    sc: &Scenario,
    era: Era,
    arch: Arch,
    extra: &[String],
    seconds: f64,
) -> Result<Option<Value>, Fail> {
    let file = crate::check::scenario_file(&std::env::temp_dir(), sc)?;
    let mut cmd = Command::new(bin);
    cmd.arg("check")
        .arg(file.path())
        .args(["--era", era.name(), "--arch", arch.name(), "--no-traces"])
        .args(extra);
    let Some(out) = crate::cli::output_within(&mut cmd, Some(seconds))? else {
        return Ok(None);
    };
    serde_json::from_slice(&out.stdout).map(Some).map_err(|_| {
        Fail::bad(format!(
            "runner on {}: {}",
            sc.name,
            String::from_utf8_lossy(&out.stderr)
        ))
    })
}

fn stress(scenarios: &[&Scenario], arch: Arch, args: &Args) -> Result<Value, Fail> {
    let bin = build_runner("cowbreak_stress", "target/stress")?;
    println!(
        "\nstress backend (real threads), newest buggy era, up to {} s each:",
        args.stress_seconds
    );
    let mut rows = Vec::new();
    for &sc in scenarios {
        let Some((era, kind)) = last_buggy_era(sc, arch) else {
            continue;
        };
        let extra = vec!["--seconds".to_string(), args.stress_seconds.to_string()];
        let v = run_runner(&bin, sc, era, arch, &extra, args.stress_seconds + 30.0)?
            .unwrap_or(Value::Null);
        let hit = v["violations"]
            .as_array()
            .and_then(|a| a.iter().find(|f| f["kind"] == kind.name()).cloned());
        let text = match &hit {
            Some(f) => format!(
                "found at execution {} ({} ms)",
                f["first_at_execution"], v["elapsed_ms"]
            ),
            None => format!(
                "not found in {} s ({} executions)",
                args.stress_seconds, v["executions"]
            ),
        };
        println!("  {:<40} {text}", format!("{} ({era})", sc.name));
        rows.push(json!({"scenario": sc.name, "era": era.name(), "kind": kind.name(), "result": v, "found": hit.is_some()}));
    }
    Ok(Value::Array(rows))
}

fn loom(scenarios: &[Scenario], era: Era, arches: &[Arch], args: &Args) -> Result<Value, Fail> {
    let bin = build_runner("loom", "target/loom")?;
    println!(
        "\nloom, exhaustive on {era}, up to {} s each; `sc`: the same with sequential_consistency=on:",
        args.loom_seconds
    );
    let mut rows = Vec::new();
    for sc in scenarios {
        if sc.check_loom_limits().is_err() {
            continue;
        }
        for &arch in arches.iter().filter(|&&a| sc.runs_on(a)) {
            for &bound in &args.loom_bounds {
                let mut cols = Vec::new();
                let mut row = json!({"scenario": sc.name, "era": era.name(), "arch": arch.name(), "preemption_bound": bound});
                for (key, sc_mode) in [("kernel", false), ("sc", true)] {
                    let mut extra = vec!["--preemption-bound".to_string(), bound.to_string()];
                    if sc_mode {
                        extra.extend([
                            "--switch".to_string(),
                            "sequential_consistency=on".to_string(),
                        ]);
                    }
                    let v = run_runner(&bin, sc, era, arch, &extra, args.loom_seconds)?;
                    cols.push(match &v {
                        Some(v) => {
                            let kinds: Vec<&str> = v["violations"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .filter_map(|f| f["kind"].as_str())
                                .collect();
                            format!(
                                "{} executions {} ms{}",
                                v["executions"],
                                v["elapsed_ms"],
                                if kinds.is_empty() {
                                    String::new()
                                } else {
                                    format!(" [{}]", kinds.join(","))
                                }
                            )
                        }
                        None => format!("not exhaustive in {:.0} s", args.loom_seconds),
                    });
                    row[key] = json!({"result": v, "timed_out": v.is_none()});
                }
                println!(
                    "  {:<36} {:<6} pb={bound}  {:<40} sc: {}",
                    sc.name,
                    arch.name(),
                    cols[0],
                    cols[1]
                );
                rows.push(row);
            }
        }
    }
    Ok(Value::Array(rows))
}

#[cfg(test)]
mod tests {
    use super::FirstStats;

    #[test]
    fn misses_count_as_the_cap() {
        // 15 seeds found it at 100..=240, 5 missed a cap of 1,000: the median is over 20.
        let found: Vec<u64> = (0..15).map(|i| 100 + 10 * i).collect();
        let s = FirstStats::new(&found, 5, 1000);
        assert_eq!(s.median, 200);
        assert_eq!(s.p90, 1000);
        assert_eq!(s.text(), "200 / >=1000 (5 missed)");
        // Most seeds missed: the median is the cap itself.
        let s = FirstStats::new(&[7, 9], 5, 1000);
        assert_eq!(s.median, 1000);
        assert_eq!(s.text(), ">=1000 / >=1000 (5 missed)");
        let s = FirstStats::new(&[3, 5, 9], 0, 1000);
        assert_eq!((s.median, s.p90), (5, 9));
        assert_eq!(s.text(), "5 / 9");
    }
}
