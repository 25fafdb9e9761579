//! The runner for the backends that need their own build: loom (`--cfg loom`) and the
//! stress baseline on real threads (`--cfg cowbreak_stress`). It checks one scenario on
//! one era with whatever backend it was built for and prints the result as JSON.
//! `cargo xtask check --backend loom` and `cargo xtask bench` build it in target/loom and
//! target/stress and read its output; nobody needs to run it by hand.
//!
//! Usage: cowbreak-runner FILE --era ERA [--switch NAME=on|off]...
//!        [--preemption-bound B]            (loom)
//!        [--iterations N] [--seconds S]    (stress: stop at the first violation)

use std::process::ExitCode;

struct Args {
    file: String,
    era: cowbreak::mm::Era,
    switches: Vec<(String, bool)>,
    preemption_bound: usize,
    iterations: u64,
    seconds: f64,
}

fn parse_args() -> Result<Args, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let file = args
        .first()
        .ok_or("usage: cowbreak-runner FILE --era ERA [options]")?
        .clone();
    let mut out = Args {
        file,
        era: cowbreak::mm::Era::V5_9,
        switches: Vec::new(),
        preemption_bound: 2,
        iterations: u64::MAX,
        seconds: 10.0,
    };
    let mut era = None;
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        let v = it.next().ok_or_else(|| format!("`{a}` needs a value"))?;
        let num = |what: &str| {
            v.parse::<f64>()
                .map_err(|_| format!("{what}: not a number: {v}"))
        };
        match a.as_str() {
            "--era" => era = Some(cowbreak::mm::Era::from_name(v).map_err(|e| e.to_string())?),
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
    out.era = era.ok_or("--era is required")?;
    Ok(out)
}

fn main() -> ExitCode {
    match run() {
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

fn run() -> Result<serde_json::Value, String> {
    let args = parse_args()?;
    let text = std::fs::read_to_string(&args.file).map_err(|e| format!("{}: {e}", args.file))?;
    let sc = cowbreak::scenario::parse(&args.file, &text).map_err(|e| e.to_string())?;
    let mut policy = sc.policy(args.era);
    for (n, on) in &args.switches {
        policy.set(n, *on).map_err(|e| e.to_string())?;
    }
    let started = std::time::Instant::now();
    let out = explore(&args, &sc, policy)?;
    Ok(serde_json::json!({
        "backend": backend_name(),
        "executions": out.executions,
        "elapsed_ms": started.elapsed().as_millis() as u64,
        "violations": out.violations.iter().map(|f| serde_json::json!({
            "kind": f.violation.kind.name(), "at": f.violation.at, "message": f.violation.message,
            "first_at_execution": f.first_at_execution,
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

#[cfg(loom)]
fn explore(
    args: &Args,
    sc: &cowbreak::scenario::Scenario,
    policy: cowbreak::mm::Policy,
) -> Result<cowbreak::explore::Outcome, String> {
    sc.check_loom_limits()?;
    Ok(cowbreak::explore::explore_loom(
        args.preemption_bound,
        sc.execution(sc.kernel_config(policy)),
    ))
}

#[cfg(all(not(loom), cowbreak_stress))]
fn explore(
    args: &Args,
    sc: &cowbreak::scenario::Scenario,
    policy: cowbreak::mm::Policy,
) -> Result<cowbreak::explore::Outcome, String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(args.seconds);
    Ok(cowbreak::explore::explore_stress(
        args.iterations,
        true,
        sc.execution(sc.kernel_config(policy)),
        deadline,
    ))
}

#[cfg(all(not(loom), not(cowbreak_stress)))]
fn explore(
    _: &Args,
    _: &cowbreak::scenario::Scenario,
    _: cowbreak::mm::Policy,
) -> Result<cowbreak::explore::Outcome, String> {
    Err("cowbreak-runner must be built with --cfg loom or --cfg cowbreak_stress; use `cargo xtask check --backend loom` or `cargo xtask bench`".into())
}
