//! The runner for the backends that need their own build: loom (`--cfg loom`) and the
//! stress baseline on real threads (`--cfg cowbreak_stress`). It checks one scenario on
//! one era and architecture with whatever backend it was built for, or (loom) replays a
//! trace, and prints the result as JSON. `cargo xtask check --backend loom`, `cargo
//! xtask replay` of a loom trace and `cargo xtask bench` build it in target/loom and
//! target/stress and read its output; nobody needs to run it by hand.
//!
//! Usage: cowbreak-runner check FILE --era ERA [--arch ARCH] [--switch NAME=on|off]...
//!            [--preemption-bound B] [--no-traces]   (loom)
//!            [--iterations N]                       (loom: at most N executions; the JSON's
//!                                                    `exhaustive` says whether it finished)
//!            [--iterations N] [--seconds S]         (stress: stop at the first violation)
//!        cowbreak-runner replay TRACE               (loom)
//!
//! `check` under loom gives every distinct violation its trace: the failing iteration's
//! path, replayed once with the model's events captured.

use std::process::ExitCode;

use cowbreak::mm::{Arch, Era};

struct Args {
    command: String,
    file: String,
    era: Era,
    arch: Option<Arch>,
    switches: Vec<(String, bool)>,
    preemption_bound: usize,
    iterations: u64,
    seconds: f64,
    traces: bool,
}

const USAGE: &str =
    "usage: cowbreak-runner check FILE --era ERA [options] | cowbreak-runner replay TRACE";

fn parse_args() -> Result<Args, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().ok_or(USAGE)?.clone();
    let file = args.get(1).ok_or(USAGE)?.clone();
    let mut out = Args {
        command,
        file,
        era: Era::V5_9,
        arch: None,
        switches: Vec::new(),
        preemption_bound: 2,
        iterations: u64::MAX,
        seconds: 10.0,
        traces: true,
    };
    let mut era = None;
    let mut it = args[2..].iter();
    while let Some(a) = it.next() {
        if a == "--no-traces" {
            out.traces = false;
            continue;
        }
        let v = it.next().ok_or_else(|| format!("`{a}` needs a value"))?;
        let num = |what: &str| {
            v.parse::<f64>()
                .map_err(|_| format!("{what}: not a number: {v}"))
        };
        match a.as_str() {
            "--era" => era = Some(Era::from_name(v).map_err(|e| e.to_string())?),
            "--arch" => out.arch = Some(Arch::from_name(v).map_err(|e| e.to_string())?),
            "--preemption-bound" => out.preemption_bound = num(a)? as usize,
            "--iterations" => out.iterations = num(a)? as u64,
            "--seconds" => out.seconds = num(a)?,
            "--switch" => match v.split_once('=') {
                Some((n, "on")) => out.switches.push((n.to_string(), true)),
                Some((n, "off")) => out.switches.push((n.to_string(), false)),
                _ => return Err(format!("--switch {v}: expected NAME=on|off")),
            },
            _ => return Err(format!("unknown argument `{a}`")),
        }
    }
    match out.command.as_str() {
        "check" => out.era = era.ok_or("--era is required")?,
        "replay" => {}
        c => return Err(format!("unknown command `{c}`; {USAGE}")),
    }
    Ok(out)
}

fn main() -> ExitCode {
    match parse_args().and_then(|args| run(&args)) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> Result<serde_json::Value, String> {
    if args.command == "replay" {
        return replay(args);
    }
    let text = std::fs::read_to_string(&args.file).map_err(|e| format!("{}: {e}", args.file))?;
    let sc = cowbreak::scenario::parse(&args.file, &text).map_err(|e| e.to_string())?;
    let arch = args.arch.unwrap_or_else(|| sc.default_arch());
    let mut policy = sc.policy(args.era, arch);
    for (n, on) in &args.switches {
        policy.set(n, *on).map_err(|e| e.to_string())?;
    }
    let started = std::time::Instant::now();
    let (out, traces, reads) = explore(args, &sc, arch, policy)?;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(serde_json::json!({
        "backend": backend_name(),
        "arch": arch.name(),
        "executions": out.executions,
        // loom stopped at its budget (`--iterations`) rather than running out of schedules.
        "exhaustive": !cfg!(loom) || out.executions < args.iterations,
        "elapsed_ms": elapsed_ms,
        // What the outcome depends on (see `cowbreak::mm::SwitchReads`).
        "switches_read": cowbreak::mm::SwitchReads::names(reads),
        "violations": out.violations.iter().zip(traces).map(|(f, trace)| serde_json::json!({
            "kind": f.violation.kind.name(), "at": f.violation.at, "message": f.violation.message,
            "first_at_execution": f.first_at_execution,
            "trace": trace,
        })).collect::<Vec<_>>(),
    }))
}

fn backend_name() -> &'static str {
    if cfg!(loom) {
        "loom"
    } else if cfg!(cowbreak_stress) {
        "stress"
    } else {
        "none"
    }
}

/// What was explored, a trace per violation, and the switches the executions read.
type Explored = (
    cowbreak::explore::Outcome,
    Vec<Option<serde_json::Value>>,
    u64,
);

#[cfg(loom)]
fn explore(
    args: &Args,
    sc: &cowbreak::scenario::Scenario,
    arch: Arch,
    policy: cowbreak::mm::Policy,
) -> Result<Explored, String> {
    use cowbreak::explore::{explore_loom, loom_path, replay_loom, trace_build, LoomConfig};
    sc.check_loom_limits()?;
    let mut cfg = LoomConfig::new(args.preemption_bound);
    if args.iterations < u64::MAX {
        cfg.max_executions = Some(args.iterations as usize);
    }
    let config = sc.kernel_config(policy, arch);
    let out = explore_loom(cfg, sc.execution(config.clone()));
    // Before the traces' replays, which read nothing the exploration did not.
    let reads = config.reads.get();
    let mut traces = Vec::new();
    for f in &out.violations {
        if !args.traces {
            traces.push(None);
            continue;
        }
        let path = loom_path(cfg, f.first_at_execution, sc.execution(config.clone()))?;
        // Recorded: every access, and which store each load read.
        let (replayed, events) = trace_build::capture(sc, || {
            cowbreak::mm::record::recording(|| {
                replay_loom(cfg, &path, sc.execution(config.clone()))
            })
        });
        let replayed = replayed?;
        if !replayed
            .iter()
            .any(|v| v.kind == f.violation.kind && v.at == f.violation.at)
        {
            return Err(format!(
                "loom iteration {} did not break {} in {} again when replayed",
                f.first_at_execution, f.violation.kind, f.violation.at
            ));
        }
        let steps = events.len();
        let trace = trace_build::trace_file(
            sc,
            args.era,
            arch,
            &policy,
            cowbreak::trace::BackendInfo {
                name: "loom".into(),
                params: [
                    ("preemption_bound".to_string(), cfg.preemption_bound.into()),
                    ("max_branches".to_string(), cfg.max_branches.into()),
                    ("iteration".to_string(), f.first_at_execution.into()),
                ]
                .into(),
            },
            cowbreak::trace::Schedule {
                encoding: "loom".into(),
                data: path,
                steps,
            },
            events,
            &f.violation,
        );
        traces.push(Some(
            serde_json::to_value(&trace).map_err(|e| e.to_string())?,
        ));
    }
    Ok((out, traces, reads))
}

#[cfg(all(not(loom), cowbreak_stress))]
fn explore(
    args: &Args,
    sc: &cowbreak::scenario::Scenario,
    arch: Arch,
    policy: cowbreak::mm::Policy,
) -> Result<Explored, String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(args.seconds);
    let config = sc.kernel_config(policy, arch);
    let out = cowbreak::explore::explore_stress(
        args.iterations,
        true,
        sc.execution(config.clone()),
        deadline,
    );
    let traces = vec![None; out.violations.len()];
    Ok((out, traces, config.reads.get()))
}

#[cfg(all(not(loom), not(cowbreak_stress)))]
fn explore(
    _: &Args,
    _: &cowbreak::scenario::Scenario,
    _: Arch,
    _: cowbreak::mm::Policy,
) -> Result<Explored, String> {
    Err("cowbreak-runner must be built with --cfg loom or --cfg cowbreak_stress; use `cargo xtask check --backend loom` or `cargo xtask bench`".into())
}

/// Replay a loom trace: rebuild its scenario, era, architecture and switches, play its
/// path once with the events captured, and print them with what the oracle said.
#[cfg(loom)]
fn replay(args: &Args) -> Result<serde_json::Value, String> {
    use cowbreak::explore::{replay_loom, trace_build, LoomConfig};
    let trace = cowbreak::trace::TraceFile::read(std::path::Path::new(&args.file))
        .map_err(|e| e.to_string())?;
    let origin = &args.file;
    if trace.schedule.encoding != "loom" {
        return Err(format!(
            "{origin}: the trace's schedule is `{}`, not loom's",
            trace.schedule.encoding
        ));
    }
    let sc = cowbreak::scenario::parse(
        &format!("{origin} (embedded scenario)"),
        &trace.scenario.source,
    )
    .map_err(|e| format!("{origin}: the trace's scenario does not parse: {e}"))?;
    Era::from_name(&trace.era).map_err(|e| format!("{origin}: {e}"))?;
    let arch = Arch::from_name(&trace.arch).map_err(|e| format!("{origin}: {e}"))?;
    let mut policy = cowbreak::mm::Policy::default();
    for (name, on) in &trace.switches {
        policy
            .set(name, *on)
            .map_err(|e| format!("{origin}: {e}"))?;
    }
    let param = |k: &str| trace.backend.params.get(k).and_then(|v| v.as_u64());
    let cfg = LoomConfig {
        preemption_bound: param("preemption_bound")
            .ok_or_else(|| format!("{origin}: no loom preemption_bound"))?
            as usize,
        max_branches: param("max_branches")
            .ok_or_else(|| format!("{origin}: no loom max_branches"))?
            as usize,
        max_executions: None,
    };
    let config = sc.kernel_config(policy, arch);
    let (result, events) = trace_build::capture(&sc, || {
        cowbreak::mm::record::recording(|| {
            replay_loom(cfg, &trace.schedule.data, sc.execution(config))
        })
    });
    let (violations, schedule_error) = match result {
        Ok(v) => (v, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    Ok(serde_json::json!({
        "events": events,
        "violations": violations.iter().map(|v| serde_json::json!({
            "kind": v.kind.name(), "at": v.at, "message": v.message})).collect::<Vec<_>>(),
        "schedule_error": schedule_error,
    }))
}

#[cfg(not(loom))]
fn replay(_: &Args) -> Result<serde_json::Value, String> {
    Err(
        "replaying a loom trace needs the runner built with --cfg loom; use `cargo xtask replay`"
            .into(),
    )
}
