//! `cargo xtask replay`: play a trace's schedule again, deterministically, and show the
//! interleaving in columns, one per thread.

use std::path::PathBuf;
use std::process::ExitCode;

use cowbreak_explore::campaign;
use cowbreak_trace::TraceFile;

use crate::cli::{exit, Fail};

/// A loom trace replays under loom itself: the runner built with `--cfg loom` loads the
/// recorded path, runs that one execution with the events captured and says what the
/// oracle saw.
fn replay_loom(trace: &TraceFile, path: &std::path::Path) -> Result<campaign::ReplayReport, Fail> {
    let bin = crate::cli::build_runner("loom", "target/loom")?;
    let out = std::process::Command::new(bin)
        .arg("replay")
        .arg(path)
        .output()
        .map_err(|e| Fail::bad(format!("cannot run the loom runner: {e}")))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(Fail::bad(
            stderr
                .trim()
                .strip_prefix("error: ")
                .unwrap_or(stderr.trim())
                .to_string(),
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| Fail::bad(format!("the loom runner printed no JSON: {e}")))?;
    let events: Vec<cowbreak_trace::Event> = serde_json::from_value(v["events"].clone())
        .map_err(|e| Fail::bad(format!("the loom runner's events: {e}")))?;
    let reproduced = v["violations"].as_array().into_iter().flatten().any(|f| {
        f["kind"] == trace.violation.kind.as_str() && f["at"] == trace.violation.at.as_str()
    });
    Ok(campaign::ReplayReport {
        divergence: cowbreak_trace::first_divergence(&trace.events, &events),
        events,
        reproduced,
        schedule_error: v["schedule_error"].as_str().map(str::to_string),
        steps: None,
        violations: Vec::new(),
        flipped: Vec::new(),
    })
}

#[derive(clap::Args)]
pub struct Args {
    /// The trace file (written by `check` or `matrix`).
    trace: PathBuf,
    /// Width of the column view; default: the terminal's, else 160.
    #[arg(long)]
    width: Option<usize>,
    /// Also write the interleaving as a self-contained HTML page.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Replay on another era's preset instead of the recorded switches: does the same
    /// schedule break there too?
    #[arg(long)]
    era: Option<String>,
    /// Replay on another architecture's preset.
    #[arg(long)]
    arch: Option<String>,
    /// Flip a switch on top of the (recorded or `--era`) policy. Repeatable.
    #[arg(long = "switch", value_name = "NAME=on|off")]
    switches: Vec<String>,
}

pub fn run(args: Args) -> Result<ExitCode, Fail> {
    let origin = args.trace.display().to_string();
    let trace = TraceFile::read(&args.trace).map_err(|e| Fail::bad(e.to_string()))?;
    let elsewhere = campaign::Elsewhere {
        era: args.era.as_deref().map(crate::cli::era).transpose()?,
        arch: args.arch.as_deref().map(crate::cli::arch).transpose()?,
        switches: crate::cli::switches(&args.switches)?,
    };
    let moved =
        elsewhere.era.is_some() || elsewhere.arch.is_some() || !elsewhere.switches.is_empty();
    let report = if trace.schedule.encoding == "loom" {
        if moved {
            return Err(Fail::bad(
                "--era, --arch and --switch replay shuttle traces; a loom trace's path belongs to its own era and arch (run `check --backend loom` there)",
            ));
        }
        replay_loom(&trace, &args.trace)?
    } else {
        campaign::replay_elsewhere(&trace, &origin, &elsewhere)
            .map_err(|e| Fail::bad(e.to_string()))?
    };
    if !report.flipped.is_empty() {
        let f: Vec<String> = report
            .flipped
            .iter()
            .map(|(n, on)| format!("{n}={}", if *on { "on" } else { "off" }))
            .collect();
        println!(
            "note: recorded with switches that differ from the {} {} preset: {}",
            trace.era,
            trace.arch,
            f.join(", ")
        );
    }
    if moved {
        return Ok(elsewhere_verdict(&trace, &report, &elsewhere, &args));
    }
    let replayed = TraceFile {
        events: report.events.clone(),
        ..trace.clone()
    };
    print!(
        "{}",
        cowbreak_trace::render_text(&replayed, crate::cli::width(args.width))
    );
    if let Some(html) = &args.html {
        cowbreak_trace::write_atomic(
            html,
            crate::cli::html_page(&replayed, &args.trace).as_bytes(),
        )
        .map_err(|e| Fail::bad(format!("{}: cannot write: {e}", html.display())))?;
        println!("HTML: {}", html.display());
    }
    if report.exact() {
        let what = if trace.violation.kind == campaign::NO_VIOLATION {
            "no violation, as recorded,".to_string()
        } else {
            format!("{} in {}", trace.violation.kind, trace.violation.at)
        };
        println!(
            "reproduced: {what} with identical events ({} events, {} scheduling steps)",
            report.events.len(),
            report.steps.unwrap_or(trace.schedule.steps)
        );
        return Ok(ExitCode::SUCCESS);
    }
    let why = if let Some(e) = &report.schedule_error {
        format!("the recorded schedule does not fit this scenario and model: {e}")
    } else if let Some(d) = &report.divergence {
        format!("the run diverged from the trace: {d}")
    } else {
        format!(
            "the events match but the recorded violation ({} in {}) did not happen",
            trace.violation.kind, trace.violation.at
        )
    };
    Err(Fail {
        code: exit::DIVERGED,
        message: format!(
            "{origin}: {why} (recorded by {}, this is {})",
            trace.model_version,
            campaign::MODEL_VERSION
        ),
    })
}

/// `replay --era/--arch/--switch`: say whether the trace's schedule breaks the same way
/// under the other policy. Exit 0 if it does, 3 if not.
fn elsewhere_verdict(
    trace: &TraceFile,
    report: &campaign::ReplayReport,
    elsewhere: &campaign::Elsewhere,
    args: &Args,
) -> ExitCode {
    let mut place = vec![
        elsewhere
            .era
            .map_or(trace.era.clone(), |e| e.name().to_string()),
        elsewhere
            .arch
            .map_or(trace.arch.clone(), |a| a.name().to_string()),
    ];
    place.extend(args.switches.iter().cloned());
    let place = place.join(" ");
    if report.reproduced {
        println!(
            "reproduces on {place}: {} in {} ({} scheduling steps{})",
            trace.violation.kind,
            trace.violation.at,
            report.steps.unwrap_or(0),
            if report.divergence.is_some() {
                ", other events on the way"
            } else {
                ", identical events"
            }
        );
        return ExitCode::SUCCESS;
    }
    let why = match (&report.schedule_error, report.violations.is_empty()) {
        (Some(e), _) => format!("the schedule no longer fits: {e}"),
        (None, true) => "the schedule runs to the end and nothing breaks".to_string(),
        (None, false) => format!(
            "it breaks otherwise: {}",
            report
                .violations
                .iter()
                .map(|(k, at)| format!("{k} in {at}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    println!(
        "does not reproduce on {place}: {} in {} did not happen; {why}",
        trace.violation.kind, trace.violation.at
    );
    ExitCode::from(exit::DIVERGED)
}
