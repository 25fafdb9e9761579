//! `cargo xtask minimize TRACE`: the same violation with the fewest preemptions, then the
//! fewest steps, written beside the original as `<name>.min.json`.

use std::path::PathBuf;
use std::process::ExitCode;

use cowbreak_explore::campaign;
use cowbreak_trace::TraceFile;
use serde_json::json;

use crate::cli::Fail;

#[derive(clap::Args)]
pub struct Args {
    /// The trace to shrink (a shuttle trace written by `check`, `matrix` or `run`).
    trace: PathBuf,
    /// Executions the search may run, and again the proof (every schedule with fewer
    /// preemptions).
    #[arg(long, default_value_t = 20_000)]
    budget: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Let fewer preemptions win even when they take more steps than the original (by
    /// default the result is never longer, and a shorter-in-preemptions but longer
    /// schedule is only reported).
    #[arg(long)]
    may_lengthen: bool,
}

pub fn run(args: Args) -> Result<ExitCode, Fail> {
    let origin = args.trace.display().to_string();
    let trace = TraceFile::read(&args.trace).map_err(|e| Fail::bad(e.to_string()))?;
    if args.budget == 0 {
        return Err(Fail::bad("--budget must be at least 1"));
    }
    let started = std::time::Instant::now();
    let report = campaign::minimize_trace(&trace, &origin, args.budget, args.may_lengthen)
        .map_err(|e| Fail::bad(e.to_string()))?;
    let secs = started.elapsed().as_secs_f64();
    let stem = args
        .trace
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".json").to_string())
        .unwrap_or_else(|| "trace".into());
    let out = args
        .trace
        .with_file_name(format!("{}.min.json", stem.trim_end_matches(".min")));
    report
        .trace
        .write(&out)
        .map_err(|e| Fail::bad(format!("cannot write trace: {e}")))?;
    let (b, a) = (&report.search.before, &report.search.after);
    let below = match report.longer_below {
        Some((p, n)) => format!(
            "; {p} preemption(s) give it too, but only in {n} steps (--may-lengthen writes it)"
        ),
        None => String::new(),
    };
    let proof = match report.proven {
        Some(true) if a.preemptions == 0 => "minimal: no preemption at all".to_string(),
        Some(true) => format!(
            "minimal: every schedule with at most {} preemption(s) was tried and none gives it in at most {} steps{below}",
            a.preemptions - 1,
            b.tasks.len()
        ),
        Some(false) => {
            "not proven: the bounded search found fewer preemptions that shrinking could not keep"
                .to_string()
        }
        None => format!(
            "not proven: the search below {} preemption(s) did not finish in {} executions",
            a.preemptions, args.budget
        ),
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "preemptions_before": b.preemptions,
                "preemptions_after": a.preemptions,
                "steps_before": b.tasks.len(),
                "steps_after": a.tasks.len(),
                "violation": {"kind": trace.violation.kind, "at": trace.violation.at},
                "proven_minimal": report.proven,
                "fewer_preemptions_in_more_steps": report.longer_below.map(|(p, n)| json!({"preemptions": p, "steps": n})),
                "executions": report.search.tries,
                "seconds": secs,
                "trace": out.display().to_string(),
            }))
            .expect("JSON of plain values")
        );
    } else {
        println!(
            "{} in {}: {} -> {} preemption(s), {} -> {} steps ({} executions, {secs:.2} s)",
            trace.violation.kind,
            trace.violation.at,
            b.preemptions,
            a.preemptions,
            b.tasks.len(),
            a.tasks.len(),
            report.search.tries
        );
        println!("  {proof}");
        println!("  trace:  {}", out.display());
        println!("  replay: cargo xtask replay {}", out.display());
    }
    Ok(ExitCode::SUCCESS)
}
