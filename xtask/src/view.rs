//! `cargo xtask view`: show a trace as recorded, without replaying it (for traces from
//! another model version, or to read one quickly).

use std::path::PathBuf;
use std::process::ExitCode;

use cowbreak_trace::TraceFile;

use crate::cli::Fail;

#[derive(clap::Args)]
pub struct Args {
    /// The trace file.
    trace: PathBuf,
    /// Width of the column view; default: the terminal's, else 160.
    #[arg(long)]
    width: Option<usize>,
    /// Write a self-contained HTML page to FILE instead of printing columns.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode, Fail> {
    let trace = TraceFile::read(&args.trace).map_err(|e| Fail::bad(e.to_string()))?;
    match &args.html {
        Some(html) => {
            cowbreak_trace::write_atomic(
                html,
                crate::cli::html_page(&trace, &args.trace).as_bytes(),
            )
            .map_err(|e| Fail::bad(format!("{}: cannot write: {e}", html.display())))?;
            println!("{}", html.display());
        }
        None => print!(
            "{}",
            cowbreak_trace::render_text(&trace, crate::cli::width(args.width))
        ),
    }
    Ok(ExitCode::SUCCESS)
}
