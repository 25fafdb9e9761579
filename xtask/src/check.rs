//! `cargo xtask check`: one scenario on one era under one backend; a trace per
//! violation.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use cowbreak_explore::campaign::{self, CheckReport, CheckRequest, Reported};
use cowbreak_explore::{ShuttleConfig, Strategy};
use cowbreak_mm::{Arch, Era, ViolationKind};
use cowbreak_scenario::Scenario;
use serde_json::json;

use crate::cli::{self, exit, Fail};
use crate::project_root;
use crate::run;
use cowbreak_explore::Control;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: cli::Target,
    /// How to explore: pct, random, urw, pos (partial order sampling over the objects
    /// each step touches), surw (a uniform random walk over the steps on objects two
    /// tasks touch), dfs (shuttle) or loom (exhaustive within a preemption bound, weak
    /// memory); default: the scenario's `backend` line, else pct.
    #[arg(long, value_parser = ["pct", "random", "urw", "pos", "surw", "dfs", "loom"])]
    backend: Option<String>,
    /// Executions to run (shuttle backends): the campaign's budget [default: 10000].
    #[arg(long, alias = "iterations")]
    budget: Option<usize>,
    /// Seed of the scheduler's randomness (random, pct, urw, pos, surw) [default: 0].
    #[arg(long)]
    seed: Option<u64>,
    /// PCT bug depth (pct only) [default: 3].
    #[arg(long)]
    depth: Option<usize>,
    /// loom's preemption bound; default: the scenario's `backend loom preemption-bound=N`,
    /// else 2.
    #[arg(long)]
    preemption_bound: Option<usize>,
    /// Threads to run the campaign on. The executions run, and so the result and the
    /// traces, do not depend on it: a campaign is chunks of 1000 executions, each seeded
    /// from the seed and its index, handed out to the threads.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Scheduling steps after which an execution counts as a livelock.
    #[arg(long, default_value_t = 20_000)]
    steps_max: usize,
    #[command(flatten)]
    run: run::RunArgs,
    /// Shrink every violation's trace to its fewest preemptions, then steps
    /// (`cargo xtask minimize`), written beside it as `<trace>.min.json`.
    #[arg(long)]
    minimize: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn strategy(backend: &str, depth: usize) -> Strategy {
    match backend {
        "random" => Strategy::Random,
        "urw" => Strategy::Urw,
        "pos" => Strategy::Pos,
        "surw" => Strategy::Surw,
        "dfs" => Strategy::Dfs,
        _ => Strategy::Pct { depth },
    }
}

pub fn run(args: Args) -> Result<ExitCode, Fail> {
    let (scenario, era, arch, switches) = args.target.resolve()?;
    let backend = args
        .backend
        .clone()
        .or_else(|| scenario.backend.clone())
        .unwrap_or_else(|| "pct".into());
    flags_fit_backend(&args, &backend)?;
    let (budget, seed, depth) = (
        args.budget.unwrap_or(10_000),
        args.seed.unwrap_or(0),
        args.depth.unwrap_or(3),
    );
    if depth == 0 || args.jobs == 0 || budget == 0 {
        return Err(Fail::bad("--depth, --jobs and --budget must be at least 1"));
    }
    let shard = run::shard(args.run.shard.as_deref())?;
    let dir = run::out_dir(args.run.out.as_deref())?;
    let verbosity = run::Verbosity::from_flags(args.run.quiet || args.json, args.run.verbose);
    let req = CheckRequest {
        scenario,
        era,
        arch,
        switches,
        shuttle: ShuttleConfig {
            strategy: strategy(&backend, depth),
            iterations: budget,
            seed,
            steps_max: args.steps_max,
            stop_after_first: false,
        },
    };
    if backend == "loom" {
        if args.run.resume || shard != campaign::Shard::ALL {
            return Err(Fail::bad(
                "--resume and --shard are for shuttle campaigns; a loom check is one exhaustive run",
            ));
        }
        let report = loom(&req, &args)?;
        run::remove_stale_traces(&dir, &run::run_name(&req))?;
        let paths = write_traces(&req, &report.violations, &dir)?;
        print_report(&report, &paths, args.json, true, &req, shard);
        return Ok(verdict(&report));
    }
    let stem = run::run_name(&req);
    let state = run::state_path(&dir, &stem, shard);
    let resumed = if args.run.resume {
        let v = run::read_state(&state, "campaign")?;
        if v["request"]["identity"] != req.identity()
            || v["shard"] != json!({"index": shard.index, "count": shard.count})
        {
            return Err(Fail::bad(format!(
                "{}: the state file is of another campaign (seed, budget, strategy, shard or scenario differ): {}",
                state.display(),
                v["request"]["identity"]
            )));
        }
        Some(
            campaign::Campaign::from_json(&v["campaign"])
                .map_err(|e| Fail::bad(format!("{}: {e}", state.display())))?,
        )
    } else {
        None
    };
    let control = Arc::new(Control::new(run::stop_flag()));
    let mut r = run::Run::new(&req, &dir, Some(state.clone()), shard, resumed)?;
    let total = (0..req.chunks())
        .filter(|c| shard.owns(*c))
        .map(|c| req.chunk_config(c).iterations as u64)
        .sum();
    let mut progress = run::Progress::new(total, "executions", verbosity);
    let started = std::time::Instant::now();
    let finished = r.go(args.jobs, &control, |done, found, line| {
        progress.update(done, found, "");
        if let Some(line) = line {
            progress.line(&format!("  {line}"));
        }
    })?;
    progress.finish();
    let (report, paths) = r.report(started.elapsed().as_millis())?;
    print_report(&report, &paths, args.json, finished, &req, shard);
    if args.minimize {
        for (v, path) in report.violations.iter().zip(&paths) {
            let m = campaign::minimize_trace(&v.trace, &path.display().to_string(), 20_000, false)
                .map_err(|e| Fail::bad(e.to_string()))?;
            let out = path.with_extension("min.json");
            m.trace
                .write(&out)
                .map_err(|e| Fail::bad(format!("cannot write trace: {e}")))?;
            eprintln!(
                "minimized {} in {}: {} -> {} preemption(s), {} -> {} steps{}: {}",
                v.found.violation.kind,
                v.found.violation.at,
                m.search.before.preemptions,
                m.search.after.preemptions,
                m.search.before.tasks.len(),
                m.search.after.tasks.len(),
                if m.proven == Some(true) {
                    ", proven minimal"
                } else {
                    ""
                },
                out.display()
            );
        }
    }
    if let Some(e) = r.write_error.take() {
        // The result is printed above; the files it names may be missing.
        return Err(e);
    }
    if !finished {
        eprintln!(
            "interrupted after {} of {total} executions; what was found is written, and the state is in {}: resume with the same command and --resume",
            report.executions,
            state.display()
        );
        return Ok(ExitCode::from(run::INTERRUPTED));
    }
    Ok(verdict(&report))
}

/// A flag that the chosen backend would ignore is a mistake the user should hear about.
fn flags_fit_backend(args: &Args, backend: &str) -> Result<(), Fail> {
    let wrong = |flag: &str, for_what: &str| {
        Err(Fail::bad(format!(
            "{flag} is for {for_what}, not the {backend} backend"
        )))
    };
    if args.depth.is_some() && backend != "pct" {
        return wrong("--depth", "pct");
    }
    if args.seed.is_some() && matches!(backend, "dfs" | "loom") {
        return wrong("--seed", "the seeded backends (pct, random, urw)");
    }
    if args.preemption_bound.is_some() && backend != "loom" {
        return wrong("--preemption-bound", "loom");
    }
    if backend == "loom" {
        if args.budget.is_some() {
            return wrong("--budget", "the shuttle backends (loom runs until it has explored every interleaving within its bound)");
        }
        if args.jobs != 1 {
            return wrong("--jobs", "the shuttle backends");
        }
    }
    Ok(())
}

/// loom reads `LOOM_*` variables on its own; cowbreak sets what they would set. The
/// preemption bound is honoured as a default for `--preemption-bound`, the logging ones
/// pass through, the rest are refused rather than silently changing a run.
pub fn loom_env_bound() -> Result<Option<usize>, Fail> {
    let mut bound = None;
    for (k, v) in std::env::vars() {
        match k.as_str() {
            "LOOM_MAX_PREEMPTIONS" => {
                bound = Some(v.trim().parse::<usize>().map_err(|_| {
                    Fail::bad(format!("LOOM_MAX_PREEMPTIONS=`{v}`: expected a number"))
                })?);
            }
            "LOOM_LOG" | "LOOM_LOCATION" => {}
            k if k.starts_with("LOOM_") => {
                return Err(Fail::bad(format!(
                    "{k} is set, but cowbreak drives loom itself (bounds, checkpoints and limits come from its flags): unset it; LOOM_MAX_PREEMPTIONS, LOOM_LOG and LOOM_LOCATION are the ones it honours"
                )));
            }
            _ => {}
        }
    }
    Ok(bound)
}

fn verdict(report: &CheckReport) -> ExitCode {
    if report.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::VIOLATION)
    }
}

/// Write each violation's trace under its run's name; return the paths, in order.
pub fn write_traces(
    req: &CheckRequest,
    violations: &[Reported],
    dir: &Path,
) -> Result<Vec<PathBuf>, Fail> {
    let run = run::run_name(req);
    violations
        .iter()
        .map(|r| {
            let v = &r.found.violation;
            let path = dir.join(run::trace_name(&run, v.kind, v.at));
            r.trace
                .write(&path)
                .map_err(|e| Fail::bad(format!("cannot write trace: {e}")))?;
            Ok(path)
        })
        .collect()
}

fn print_report(
    report: &CheckReport,
    paths: &[PathBuf],
    json: bool,
    complete: bool,
    req: &CheckRequest,
    shard: campaign::Shard,
) {
    let expected = req.scenario.expected_on_sc(req.era, req.arch);
    if json {
        let v = json!({
            "complete": complete,
            "campaign": req.identity(),
            "shard": {"index": shard.index, "count": shard.count},
            "scenario": report.scenario,
            "era": report.era,
            "arch": report.arch,
            "backend": report.backend,
            "params": report.params,
            "executions": report.executions,
            "elapsed_ms": report.elapsed_ms,
            "violations": report.violations.iter().zip(paths).map(|(r, p)| json!({
                "kind": r.found.violation.kind.name(),
                "at": r.found.violation.at,
                "message": r.found.violation.message,
                "first_at_execution": r.found.first_at_execution,
                "schedule_steps": r.found.schedule_len,
                "expected": expected.contains(&r.found.violation.kind),
                "trace": p.display().to_string(),
            })).collect::<Vec<_>>(),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("JSON of plain values")
        );
        return;
    }
    let params: Vec<String> = report
        .params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    println!(
        "{} on {} {} ({} {}): {} executions in {} ms",
        report.scenario,
        report.era,
        report.arch,
        report.backend,
        params.join(" "),
        report.executions,
        report.elapsed_ms
    );
    let asked = report
        .params
        .get("iterations")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    let stopped_by_failure = report
        .violations
        .iter()
        .any(|r| r.found.violation.at == "scheduler" || r.found.violation.at == "model panic");
    if report.backend == "pct" && report.executions < asked && !stopped_by_failure {
        println!(
            "(PCT stopped after {} execution(s): no two threads were ever runnable at once, so this is the only schedule)",
            report.executions
        );
    }
    if report.violations.is_empty() {
        println!("ok: no violation");
    }
    for (r, p) in report.violations.iter().zip(paths) {
        let v = &r.found.violation;
        println!(
            "VIOLATION {} in {} (first at execution {}, {} steps)",
            v.kind, v.at, r.found.first_at_execution, r.found.schedule_len
        );
        println!("  {}", v.message);
        if expected.contains(&v.kind) {
            println!(
                "  history: expected — the scenario's `expect` line says {} has this bug",
                report.era
            );
        }
        println!("  trace:  {}", p.display());
        println!("  replay: cargo xtask replay {}", p.display());
    }
}

/// `check --backend loom`.
fn loom(req: &CheckRequest, args: &Args) -> Result<CheckReport, Fail> {
    let bound = args
        .preemption_bound
        .or(loom_env_bound()?)
        .or(req.scenario.preemption_bound)
        .unwrap_or(2);
    loom_report(req, bound)
}

/// Run the loom runner (built with `--cfg loom` in target/loom) on `req` and read its
/// JSON: every violation comes with a trace of the failing loom iteration, replayable
/// under loom.
pub fn loom_report(req: &CheckRequest, preemption_bound: usize) -> Result<CheckReport, Fail> {
    loom_report_within(req, preemption_bound, &LoomBudget::default()).map(|(r, ..)| r)
}

/// What a loom run may take: executions (deterministic) and seconds (a single
/// execution of a big scenario can take minutes). `None`: no limit.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoomBudget {
    pub executions: Option<u64>,
    pub seconds: Option<f64>,
}

/// [`loom_report`] within `budget`, whether loom finished (explored every execution
/// within the bound), and the switches its executions read (all of them where the runner
/// does not say). A run stopped by the clock has explored nothing that counts: its
/// report is empty.
pub fn loom_report_within(
    req: &CheckRequest,
    preemption_bound: usize,
    budget: &LoomBudget,
) -> Result<(CheckReport, bool, u64), Fail> {
    req.scenario.check_loom_limits().map_err(Fail::bad)?;
    loom_env_bound()?;
    let v = run_loom_runner(
        &req.scenario,
        req.era,
        req.arch,
        &req.switches,
        preemption_bound,
        budget,
    )?;
    let exhaustive = v["exhaustive"].as_bool().unwrap_or(true);
    let mut params = std::collections::BTreeMap::new();
    params.insert("preemption_bound".to_string(), json!(preemption_bound));
    let mut violations = Vec::new();
    for f in v["violations"].as_array().into_iter().flatten() {
        let kind = f["kind"]
            .as_str()
            .and_then(ViolationKind::from_name)
            .ok_or_else(|| Fail::bad("loom runner: bad kind"))?;
        let at = f["at"].as_str().unwrap_or("").to_string();
        let message = f["message"].as_str().unwrap_or("");
        let first = f["first_at_execution"].as_u64().unwrap_or(0);
        let mut r = match f.get("trace").filter(|t| !t.is_null()) {
            Some(t) => {
                let mut trace: cowbreak_trace::TraceFile = serde_json::from_value(t.clone())
                    .map_err(|e| Fail::bad(format!("loom runner: bad trace: {e}")))?;
                // The runner read a temporary copy: record where the scenario came from.
                trace.scenario.path = Some(req.scenario.origin.clone());
                let violation = cowbreak_mm::Violation {
                    kind,
                    at: campaign::place(&at),
                    message: message.to_string(),
                };
                Reported {
                    found: cowbreak_explore::Found {
                        violation,
                        first_at_execution: first,
                        shortest_at_execution: first,
                        schedule: None,
                        schedule_len: trace.schedule.steps,
                    },
                    trace,
                }
            }
            None => loom_trace(&req.scenario, req.era, req, kind, &at, message, &params)?,
        };
        r.found.first_at_execution = first;
        violations.push(r);
    }
    let report = CheckReport {
        scenario: req.scenario.name.clone(),
        era: req.era.name().to_string(),
        arch: req.arch.name().to_string(),
        backend: "loom".into(),
        params,
        executions: v["executions"].as_u64().unwrap_or(0),
        elapsed_ms: v["elapsed_ms"].as_u64().unwrap_or(0) as u128,
        violations,
    };
    // A report that names a switch this build does not know read something unknown:
    // count every switch as read.
    let reads = campaign::switches_read_from_json(&v).unwrap_or(u64::MAX);
    Ok((report, exhaustive, reads))
}

/// Run the loom runner's `check` on `scenario` and return its JSON. A loom deadlock
/// aborts the runner (model threads are still alive, so it cannot unwind): that is
/// reported as a deadlock without a trace, for the shuttle re-find to give one.
pub fn run_loom_runner(
    scenario: &Scenario,
    era: Era,
    arch: Arch,
    switches: &[(String, bool)],
    preemption_bound: usize,
    budget: &LoomBudget,
) -> Result<serde_json::Value, Fail> {
    let root = project_root();
    // The runner reads the scenario from a file: built-ins are written out first, each
    // call to a temporary file of its own (matrix cells run side by side), removed on drop.
    let file = scenario_file(&root.join("target/loom"), scenario)?;
    let bin = crate::cli::build_runner("loom", "target/loom")?;
    let mut cmd = Command::new(bin);
    cmd.arg("check").arg(file.path()).args([
        "--era",
        era.name(),
        "--arch",
        arch.name(),
        "--preemption-bound",
        &preemption_bound.to_string(),
    ]);
    for (name, on) in switches {
        cmd.arg("--switch")
            .arg(format!("{name}={}", if *on { "on" } else { "off" }));
    }
    if let Some(n) = budget.executions {
        cmd.args(["--iterations", &n.to_string()]);
    }
    let started = std::time::Instant::now();
    let Some(out) = crate::cli::output_within(&mut cmd, budget.seconds)? else {
        // Out of time: nothing explored counts.
        return Ok(json!({"executions": 0, "exhaustive": false,
            "elapsed_ms": started.elapsed().as_millis() as u64, "violations": []}));
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        serde_json::from_slice(&out.stdout).map_err(|e| {
            Fail::bad(format!(
                "the loom runner printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            ))
        })
    } else if let Some(line) = stderr.lines().find(|l| l.starts_with("deadlock")) {
        Ok(json!({"executions": 0, "elapsed_ms": 0, "violations": [
            {"kind": "deadlock", "at": "scheduler", "message": line, "first_at_execution": 0}]}))
    } else {
        Err(Fail::bad(format!("the loom runner failed:\n{stderr}")))
    }
}

/// A violation loom found but could not give a trace of (a deadlock aborts loom): look for
/// the same violation with shuttle (PCT, then DFS) to get one. If only weak memory shows
/// it, the trace says so and has no events.
fn loom_trace(
    scenario: &Scenario,
    era: Era,
    req: &CheckRequest,
    kind: ViolationKind,
    at: &str,
    message: &str,
    params: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Result<Reported, Fail> {
    let mut params = params.clone();
    for (i, strategy) in [Strategy::Pct { depth: 3 }, Strategy::Dfs]
        .into_iter()
        .enumerate()
    {
        let refind = CheckRequest {
            shuttle: ShuttleConfig {
                strategy,
                iterations: 20_000,
                seed: i as u64,
                steps_max: 20_000,
                stop_after_first: false,
            },
            ..req.clone()
        };
        let report = campaign::check(&refind).map_err(|e| Fail::bad(e.to_string()))?;
        if let Some(mut r) = report
            .violations
            .into_iter()
            .find(|r| r.found.violation.kind == kind && r.found.violation.at == at)
        {
            params.insert(
                "schedule".into(),
                json!(format!(
                    "re-found by shuttle {} for replay",
                    campaign::strategy_name(strategy)
                )),
            );
            r.trace.backend = cowbreak_trace::BackendInfo {
                name: "loom".into(),
                params,
            };
            return Ok(r);
        }
    }
    params.insert(
        "schedule".into(),
        json!("none: loom gave no path and no sequentially consistent schedule shows it"),
    );
    let found = cowbreak_explore::Found {
        violation: cowbreak_mm::Violation {
            kind,
            at: "loom",
            message: format!("{at}: {message}"),
        },
        first_at_execution: 0,
        shortest_at_execution: 0,
        schedule: None,
        schedule_len: 0,
    };
    let policy = req.policy().map_err(|e| Fail::bad(e.to_string()))?;
    let backend = cowbreak_trace::BackendInfo {
        name: "loom".into(),
        params,
    };
    let trace = campaign::trace_of(scenario, era, req.arch, &policy, &backend, &found);
    Ok(Reported { found, trace })
}

/// `scenario`'s text in a new temporary file under `dir` (created if missing), for a
/// runner process to read; the file goes when the handle is dropped.
pub fn scenario_file(
    dir: &std::path::Path,
    scenario: &cowbreak_scenario::Scenario,
) -> Result<tempfile::NamedTempFile, Fail> {
    use std::io::Write;
    let fail = |e: std::io::Error| Fail::bad(format!("{}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(fail)?;
    let mut file = tempfile::Builder::new()
        .prefix(&format!("{}-", scenario.name))
        .suffix(".scn")
        .tempfile_in(dir)
        .map_err(fail)?;
    file.write_all(scenario.text.as_bytes()).map_err(fail)?;
    Ok(file)
}
