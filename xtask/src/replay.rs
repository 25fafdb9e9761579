//! `cargo xtask replay`: play a trace's schedule again, deterministically, and show the
//! interleaving in columns, one per thread.

use std::path::PathBuf;
use std::process::ExitCode;

use cowbreak_explore::campaign;
use cowbreak_trace::TraceFile;

use crate::cli::{exit, Fail};

#[derive(clap::Args)]
pub struct Args {
    /// The trace file (written by `check` or `matrix`).
    trace: PathBuf,
    /// Width of the column view.
    #[arg(long, default_value_t = 160)]
    width: usize,
    /// Also write the interleaving as a self-contained HTML page.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode, Fail> {
    let origin = args.trace.display().to_string();
    let trace = TraceFile::read(&args.trace).map_err(|e| Fail::bad(e.to_string()))?;
    let report = campaign::replay(&trace, &origin).map_err(|e| Fail::bad(e.to_string()))?;
    let replayed = TraceFile {
        events: report.events.clone(),
        ..trace.clone()
    };
    print!("{}", cowbreak_trace::render_text(&replayed, args.width));
    if let Some(html) = &args.html {
        std::fs::write(html, cowbreak_trace::render_html(&replayed))
            .map_err(|e| Fail::bad(format!("{}: cannot write: {e}", html.display())))?;
        println!("HTML: {}", html.display());
    }
    if report.exact() {
        println!(
            "reproduced: {} in {} with identical events ({} events, {} scheduling steps)",
            trace.violation.kind,
            trace.violation.at,
            report.events.len(),
            trace.schedule.steps
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
