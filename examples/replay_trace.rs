//! Load a trace and walk its events: what each thread did, in order, and whether
//! replaying its schedule gives the same events again.
//!
//! Run: `cargo run --release --example replay_trace -- TRACE.json`
//! Without an argument it first finds Dirty COW on v4.8 (2,000 PCT executions, seed 0)
//! and writes that trace to a temporary directory.

use cowbreak::explore::campaign::{self, CheckRequest};
use cowbreak::mm::{Arch, Era};
use cowbreak::trace::TraceFile;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _dir = tempfile::tempdir()?;
    let path = match std::env::args_os().nth(1) {
        Some(p) => std::path::PathBuf::from(p),
        None => {
            let req = CheckRequest::new(
                cowbreak::scenario::library::find("dirty-cow").ok_or("no dirty-cow")?,
                Era::V4_8,
                Arch::X86,
                2_000,
            );
            let report = campaign::check(&req)?;
            let found = report
                .violations
                .first()
                .ok_or("Dirty COW not found on v4.8")?;
            let path = _dir.path().join("dirty-cow.json");
            found.trace.write(&path)?;
            path
        }
    };
    let trace = TraceFile::read(&path)?;
    println!(
        "{}: scenario {} on {} {}, {} events, violation {} in {}",
        path.display(),
        trace.scenario.name,
        trace.era,
        trace.arch,
        trace.events.len(),
        trace.violation.kind,
        trace.violation.at
    );
    // Walk the events thread by thread.
    for t in &trace.threads {
        let mine: Vec<_> = trace
            .events
            .iter()
            .filter(|e| e.thread == Some(t.id))
            .collect();
        println!(
            "\nthread {} (process {}): {} events",
            t.name,
            t.process,
            mine.len()
        );
        for e in mine.iter().filter(|e| e.target != "cowbreak::mem") {
            println!("  {:>4}  {}", e.step, cowbreak::trace::render_event_line(e));
        }
    }
    // Play the schedule again: the same events, the same violation.
    let again = campaign::replay(&trace, &path.display().to_string())?;
    println!(
        "\nreplay: {}",
        if again.exact() {
            "identical events, same violation"
        } else {
            "DIVERGED"
        }
    );
    if !again.exact() {
        std::process::exit(3);
    }
    Ok(())
}
