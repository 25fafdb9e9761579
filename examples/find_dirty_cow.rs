//! Dirty COW (CVE-2016-5195) from Rust: run the built-in scenario on v4.8, which has the
//! bug, and on v4.9, which has the fix (19be0eaffa3a), and print the steps that matter
//! in the trace of what v4.8 got wrong.
//!
//! Run: `cargo run --release --example find_dirty_cow`
//! Budget: 10,000 PCT (depth 3) executions per era, seed 0.

use cowbreak::explore::campaign::{self, CheckRequest};
use cowbreak::mm::{Arch, Era};
use cowbreak::scenario::library;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let scenario = library::find("dirty-cow").ok_or("the dirty-cow built-in is missing")?;
    println!("{}: {}", scenario.name, scenario.summary);
    for era in [Era::V4_8, Era::V4_9] {
        let req = CheckRequest::new(scenario.clone(), era, Arch::X86, 10_000);
        let report = campaign::check(&req)?;
        let Some(found) = report.violations.first() else {
            println!("\n{era}: no violation in {} executions", report.executions);
            continue;
        };
        let v = &found.found.violation;
        println!(
            "\n{era}: {} in {} at execution {}: {}",
            v.kind, v.at, found.found.first_at_execution, v.message
        );
        // The key steps: every page-table change, every GUP and fault decision, and the
        // oracle's verdict, each with the thread that did it.
        let trace = &found.trace;
        let thread = |id: Option<u32>| {
            id.and_then(|id| trace.threads.iter().find(|t| t.id == id))
                .map_or("main".to_string(), |t| t.name.clone())
        };
        for e in &trace.events {
            let func = e.func.as_deref().unwrap_or("");
            let key = !e.message.is_empty()
                || e.target == "cowbreak::oracle"
                || ["follow_page_pte", "faultin_page", "zap_pte_range"].contains(&func);
            if key && e.target != "cowbreak::mem" {
                println!(
                    "  {:>4}  {:<10} {}",
                    e.step,
                    thread(e.thread),
                    cowbreak::trace::render_event_line(e)
                );
            }
        }
    }
    Ok(())
}
