//! `cargo xtask run`: one execution of a scenario, from a seed or a given schedule, and
//! its trace whether or not it breaks anything, to read a clean interleaving too.

use std::path::PathBuf;
use std::process::ExitCode;

use cowbreak_explore::campaign::{self, CheckRequest, OneRun};
use cowbreak_trace::TraceFile;
use serde_json::json;

use crate::cli::{self, exit, Fail};
use crate::run;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: cli::Target,
    /// Seed of the uniformly random schedule to run [default: 0].
    #[arg(long, conflicts_with = "schedule")]
    seed: Option<u64>,
    /// Run this schedule instead: a trace file (its schedule is taken) or a file holding
    /// an encoded shuttle schedule.
    #[arg(long, value_name = "FILE")]
    schedule: Option<PathBuf>,
    /// Scheduling steps after which the execution counts as a livelock.
    #[arg(long, default_value_t = 20_000)]
    steps_max: usize,
    /// Where the trace goes; default: the workspace's `traces/`.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<ExitCode, Fail> {
    let (scenario, era, arch, switches) = args.target.resolve()?;
    let mut req = CheckRequest::new(scenario, era, arch, 1);
    req.switches = switches;
    req.shuttle.steps_max = args.steps_max;
    let dir = run::out_dir(args.out.as_deref())?;
    let (how, label) = match &args.schedule {
        None => {
            let seed = args.seed.unwrap_or(0);
            (OneRun::Seed(seed), format!("run-seed{seed}"))
        }
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| Fail::bad(format!("{}: cannot read: {e}", file.display())))?;
            let schedule = if text.trim_start().starts_with('{') {
                let t = TraceFile::from_json(&text, &file.display().to_string())
                    .map_err(|e| Fail::bad(e.to_string()))?;
                if t.schedule.encoding != "shuttle" {
                    return Err(Fail::bad(format!(
                        "{}: a {} trace; `run --schedule` takes shuttle schedules",
                        file.display(),
                        t.schedule.encoding
                    )));
                }
                t.schedule.data
            } else {
                text.trim().to_string()
            };
            cowbreak_explore::check_schedule(&schedule)
                .map_err(|e| Fail::bad(format!("{}: {e}", file.display())))?;
            (OneRun::Schedule(schedule), "run-schedule".to_string())
        }
    };
    let (trace, violations) = campaign::run_one(&req, &how).map_err(|e| Fail {
        code: exit::DIVERGED,
        message: format!("the schedule does not fit this scenario and era: {e}"),
    })?;
    let path = dir.join(format!("{}--{label}.json", run::run_name(&req)));
    let written = trace
        .write(&path)
        .map_err(|e| Fail::bad(format!("cannot write trace: {e}")));
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "scenario": req.scenario.name,
                "era": era.name(),
                "arch": arch.name(),
                "backend": trace.backend.name,
                "params": trace.backend.params,
                "steps": trace.schedule.steps,
                "events": trace.events.len(),
                "violations": violations.iter().map(|v| json!({"kind": v.kind.name(), "at": v.at, "message": v.message})).collect::<Vec<_>>(),
                "trace": path.display().to_string(),
            }))
            .expect("JSON of plain values")
        );
    } else {
        println!(
            "{} on {era} {arch}, one execution ({}): {} scheduling steps, {} events",
            req.scenario.name,
            match &how {
                OneRun::Seed(s) => format!("random schedule, seed {s}"),
                OneRun::Schedule(_) => "the given schedule".to_string(),
            },
            trace.schedule.steps,
            trace.events.len()
        );
        match violations.first() {
            None => println!("no violation"),
            Some(v) => println!(
                "VIOLATION {} in {}: {}",
                v.kind, v.at, trace.violation.message
            ),
        }
        println!("  trace: {}", path.display());
        println!("  view:  cargo xtask view {}", path.display());
    }
    written?;
    Ok(if violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::VIOLATION)
    })
}
