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

#[derive(clap::Args)]
pub struct Args {
    /// A built-in scenario name (see `cargo xtask list`) or a scenario file.
    scenario: String,
    /// The kernel era (v4.8, v4.9, v4.15, v4.4.289, v5.8, v5.9, v5.11, v5.18, v5.19, v6.0, v6.1, v6.2).
    #[arg(long)]
    era: String,
    /// The architecture (x86, arm64); default: the scenario's `arch` line, else x86.
    #[arg(long)]
    arch: Option<String>,
    /// How to explore: pct, random, urw, dfs (shuttle) or loom (exhaustive within a
    /// preemption bound, weak memory); default: the scenario's `backend` line, else pct.
    #[arg(long, value_parser = ["pct", "random", "urw", "dfs", "loom"])]
    backend: Option<String>,
    /// Executions to run (shuttle backends).
    #[arg(long, default_value_t = 10_000)]
    iterations: usize,
    /// Seed of the scheduler's randomness (shuttle backends).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// PCT bug depth.
    #[arg(long, default_value_t = 3)]
    depth: usize,
    /// loom's preemption bound; default: the scenario's `backend loom preemption-bound=N`,
    /// else 2.
    #[arg(long)]
    preemption_bound: Option<usize>,
    /// Shuttle campaigns: split the executions over this many threads (seeds S, S+1, ...).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Scheduling steps after which an execution counts as a livelock.
    #[arg(long, default_value_t = 20_000)]
    steps_max: usize,
    /// Flip a policy switch on top of the era's preset, e.g. `write_protect_seq=on`. Repeatable.
    #[arg(long = "switch", value_name = "NAME=on|off")]
    switches: Vec<String>,
    /// Where to write traces.
    #[arg(long, default_value = "traces")]
    traces: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// When the campaign started, for the heartbeat.
static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// A long campaign's heartbeat on stderr.
fn heartbeat(executions: u64) {
    let secs = STARTED.get().map_or(0.0, |t| t.elapsed().as_secs_f64());
    eprintln!("  ... {executions} executions, {secs:.1} s");
}

pub fn strategy(backend: &str, depth: usize) -> Strategy {
    match backend {
        "random" => Strategy::Random,
        "urw" => Strategy::Urw,
        "dfs" => Strategy::Dfs,
        _ => Strategy::Pct { depth },
    }
}

pub fn run(args: Args) -> Result<ExitCode, Fail> {
    let scenario = cli::scenario(&args.scenario)?;
    let era = cli::era(&args.era)?;
    let arch = cli::arch_for(&scenario, args.arch.as_deref())?;
    let switches = cli::switches(&args.switches)?;
    let backend = args
        .backend
        .clone()
        .or_else(|| scenario.backend.clone())
        .unwrap_or_else(|| "pct".into());
    if args.depth == 0 || args.jobs == 0 {
        return Err(Fail::bad("--depth and --jobs must be at least 1"));
    }
    let shuttle = ShuttleConfig {
        strategy: strategy(&backend, args.depth),
        iterations: args.iterations,
        seed: args.seed,
        steps_max: args.steps_max,
        stop_after_first: false,
        // Campaigns of a few PROGRESS_EVERY executions finish in seconds: no heartbeat.
        progress: (args.iterations as u64 >= 5 * cowbreak_explore::PROGRESS_EVERY)
            .then_some(heartbeat as fn(u64)),
    };
    STARTED.get_or_init(std::time::Instant::now);
    let req = CheckRequest {
        scenario,
        era,
        arch,
        switches,
        shuttle,
    };
    let report = if backend == "loom" {
        loom(&req, &args)?
    } else {
        campaign::check_sharded(&req, args.jobs).map_err(|e| Fail::bad(e.to_string()))?
    };
    let paths = write_traces(&report.violations, &args.traces)?;
    print_report(&report, &paths, args.json);
    Ok(if report.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::VIOLATION)
    })
}

/// Write each violation's trace; return the paths, in order.
pub fn write_traces(violations: &[Reported], dir: &Path) -> Result<Vec<PathBuf>, Fail> {
    let mut paths: Vec<PathBuf> = Vec::new();
    for r in violations {
        let kind = r.found.violation.kind;
        let index = paths
            .iter()
            .filter(|p| p.to_string_lossy().contains(&format!("--{}", kind.name())))
            .count();
        let path = dir.join(campaign::trace_file_name(
            &r.trace.scenario.name,
            &r.trace.era,
            &r.trace.arch,
            kind,
            index,
        ));
        r.trace.write(&path).map_err(|e| Fail {
            code: 2,
            message: format!("cannot write trace: {e}"),
        })?;
        paths.push(path);
    }
    Ok(paths)
}

fn print_report(report: &CheckReport, paths: &[PathBuf], json: bool) {
    if json {
        let v = json!({
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
        println!("  trace:  {}", p.display());
        println!("  replay: cargo xtask replay {}", p.display());
    }
}

/// `check --backend loom`.
fn loom(req: &CheckRequest, args: &Args) -> Result<CheckReport, Fail> {
    let bound = args
        .preemption_bound
        .or(req.scenario.preemption_bound)
        .unwrap_or(2);
    loom_report(req, bound)
}

/// Run the loom runner (built with `--cfg loom` in target/loom) on `req` and read its
/// JSON: every violation comes with a trace of the failing loom iteration, replayable
/// under loom.
pub fn loom_report(req: &CheckRequest, preemption_bound: usize) -> Result<CheckReport, Fail> {
    req.scenario.check_loom_limits().map_err(Fail::bad)?;
    let v = run_loom_runner(
        &req.scenario,
        req.era,
        req.arch,
        &req.switches,
        preemption_bound,
    )?;
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
                let trace: cowbreak_trace::TraceFile = serde_json::from_value(t.clone())
                    .map_err(|e| Fail::bad(format!("loom runner: bad trace: {e}")))?;
                let violation = cowbreak_mm::Violation {
                    kind,
                    at: leak(&at),
                    message: message.to_string(),
                };
                Reported {
                    found: cowbreak_explore::Found {
                        violation,
                        first_at_execution: first,
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
    Ok(CheckReport {
        scenario: req.scenario.name.clone(),
        era: req.era.name().to_string(),
        arch: req.arch.name().to_string(),
        backend: "loom".into(),
        params,
        executions: v["executions"].as_u64().unwrap_or(0),
        elapsed_ms: v["elapsed_ms"].as_u64().unwrap_or(0) as u128,
        violations,
    })
}

/// A violation's place names a model function: a `&'static str` in the model, read back
/// from the runner as text. The handful of places a run reports are kept for the run.
fn leak(at: &str) -> &'static str {
    Box::leak(at.to_string().into_boxed_str())
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
    let out = cmd
        .output()
        .map_err(|e| Fail::bad(format!("cannot run the loom runner: {e}")))?;
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
                progress: None,
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
