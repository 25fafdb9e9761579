//! `cargo xtask bench`: a benchmark, not a test. For every built-in scenario:
//! - executions per second and nanoseconds per scheduling point (random schedules), side by side
//!   in the same run with bare shuttle doing as many scheduling points on plain atomics;
//! - executions to the first violation over many seeds (median, p90) for PCT, random
//!   and URW, on the scenario's newest buggy era;
//! - the stress backend on real threads: executions (and time) to the first violation,
//!   or "not found in N s";
//! - loom's exhaustive executions and time on a fixed era, per architecture and preemption
//!   bound, under the architecture's memory model and, side by side, sequentially
//!   consistent (`sequential_consistency=on`).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use cowbreak_explore::{explore_shuttle, ShuttleConfig, Strategy};
use cowbreak_mm::{Arch, Era, ViolationKind};
use cowbreak_scenario::Scenario;
use cowbreak_sync::atomic::{AtomicU64, Ordering::SeqCst};
use cowbreak_sync::{thread, Arc};
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
    /// Skip the stress and loom parts (they need their own builds).
    #[arg(long)]
    shuttle_only: bool,
}

/// The throughput campaign: uniformly random schedules, which (unlike PCT) also run
/// single-threaded scenarios many times, so fixed costs do not dominate.
fn throughput(iterations: usize) -> ShuttleConfig {
    ShuttleConfig {
        strategy: Strategy::Random,
        iterations,
        seed: 0,
        steps_max: 20_000,
        stop_after_first: false,
    }
}

/// Bare shuttle: `threads` threads doing `ops` SeqCst fetch_adds each on one atomic.
fn baseline(
    threads: usize,
    ops: u64,
) -> impl Fn() -> Vec<cowbreak_mm::Violation> + Send + Sync + 'static {
    move || {
        let counter = Arc::new(AtomicU64::new(0));
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                let c = Arc::clone(&counter);
                thread::spawn(move || {
                    for _ in 0..ops {
                        c.fetch_add(1, SeqCst);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().expect("baseline thread");
        }
        Vec::new()
    }
}

fn last_buggy_era(sc: &Scenario, arch: Arch) -> Option<(Era, ViolationKind)> {
    Era::ALL
        .into_iter()
        .rev()
        .find_map(|e| sc.expected_on_sc(e, arch).first().map(|&k| (e, k)))
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
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
        "{:<40} {:>9} {:>9} {:>9} {:>6}   {:<28} {:<28} {:<28}",
        "scenario (era)",
        "exec/s",
        "ns/step",
        "bare ns",
        "ratio",
        "PCT first (med/p90)",
        "random first",
        "URW first"
    );
    for &sc in &shuttle_scenarios {
        let (era, kind) = last_buggy_era(sc, arch).map_or((Era::V6_2, None), |(e, k)| (e, Some(k)));
        let config = sc.kernel_config(sc.policy(era, arch), arch);
        let exec = sc.execution(config.clone());
        let t = Instant::now();
        let out = explore_shuttle(&throughput(args.budget), exec);
        let model_ns = t.elapsed().as_nanos() as f64;
        let steps = out.steps.max(1);
        let threads = sc.threads.len().max(1);
        let ops = (steps / out.executions.max(1) / threads as u64).max(1);
        let t = Instant::now();
        let base = explore_shuttle(&throughput(args.budget), baseline(threads, ops));
        let base_ns = t.elapsed().as_nanos() as f64;
        let (model_step, base_step) = (model_ns / steps as f64, base_ns / base.steps.max(1) as f64);
        let mut firsts = serde_json::Map::new();
        let mut cols = Vec::new();
        for (name, strategy) in [
            ("pct", Strategy::Pct { depth: 3 }),
            ("random", Strategy::Random),
            ("urw", Strategy::Urw),
        ] {
            let Some(kind) = kind else {
                cols.push("-".to_string());
                continue;
            };
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
            let text = if found.len() * 2 > args.seeds as usize {
                format!(
                    "{} / {}{}",
                    percentile(&found, 0.5),
                    if missed > 0 {
                        "-".into()
                    } else {
                        percentile(&found, 0.9).to_string()
                    },
                    if missed > 0 {
                        format!(" ({missed} missed)")
                    } else {
                        String::new()
                    }
                )
            } else {
                format!(
                    "not found in {} ({}/{} seeds)",
                    args.cap,
                    found.len(),
                    args.seeds
                )
            };
            firsts.insert(
                name.into(),
                json!({"found": found, "seeds": args.seeds, "cap": args.cap,
                "median": (found.len() * 2 > args.seeds as usize).then(|| percentile(&found, 0.5)),
                "p90": (missed == 0).then(|| percentile(&found, 0.9))}),
            );
            cols.push(text);
        }
        println!(
            "{:<40} {:>9.0} {:>9.0} {:>9.0} {:>5.2}x   {:<28} {:<28} {:<28}",
            format!("{} ({era})", sc.name),
            out.executions as f64 / (model_ns / 1e9),
            model_step,
            base_step,
            model_step / base_step,
            cols[0],
            cols[1],
            cols[2]
        );
        rows.push(json!({"scenario": sc.name, "era": era.name(), "arch": arch.name(), "kind": kind.map(|k| k.name()),
            "executions": out.executions, "steps": out.steps, "exec_per_s": out.executions as f64 / (model_ns / 1e9),
            "ns_per_step": model_step, "baseline_ns_per_step": base_step, "ratio": model_step / base_step,
            "first_violation": firsts}));
    }
    let mut report = json!({"shuttle": rows});
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
    let mut child = Command::new(bin)
        .arg("check")
        .arg(file.path())
        .args(["--era", era.name(), "--arch", arch.name(), "--no-traces"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Fail::bad(format!("{}: {e}", bin.display())))?;
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    loop {
        if child
            .try_wait()
            .map_err(|e| Fail::bad(e.to_string()))?
            .is_some()
        {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Fail::bad(e.to_string()))?;
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
