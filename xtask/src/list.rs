//! `cargo xtask list`: the built-in scenarios, the eras and the switches.

use std::process::ExitCode;

use cowbreak_mm::{Era, SWITCHES};
use serde_json::json;

use crate::cli::{builtins, Fail};

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<ExitCode, Fail> {
    let scenarios = builtins()?;
    if args.json {
        let v = json!({
            "scenarios": scenarios.iter().map(|s| json!({"name": s.name, "summary": s.summary, "source": s.source,
                "threads": s.threads.len(), "checks": s.check.iter().map(|k| k.name()).collect::<Vec<_>>(),
                "expect": s.expect.iter().map(|(k, eras)| json!({"kind": k.name(), "eras": eras.iter().map(|e| e.name()).collect::<Vec<_>>()})).collect::<Vec<_>>()})).collect::<Vec<_>>(),
            "eras": Era::ALL.iter().map(|e| json!({"name": e.name(), "kernels": e.kernels(),
                "switches": e.policy().iter().filter(|&(_, on)| on).map(|(n, _)| n).collect::<Vec<_>>(),
                "unmodeled": e.unmodeled()})).collect::<Vec<_>>(),
            "switches": SWITCHES.iter().map(|s| json!({"name": s.name, "commit": s.commit, "kernel": s.kernel, "doc": s.doc.trim()})).collect::<Vec<_>>(),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("JSON of plain values")
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("Scenarios ({}):", scenarios.len());
    let w = scenarios.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for s in &scenarios {
        println!("  {:w$}  {}", s.name, s.summary);
        println!("  {:w$}  source: {}", "", s.source);
    }
    println!("\nEras ({}):", Era::ALL.len());
    for e in Era::ALL {
        let on: Vec<_> = e
            .policy()
            .iter()
            .filter(|&(n, on)| on && n != "ipi_waits_for_irq_off")
            .map(|(n, _)| n)
            .collect();
        let on = if on.is_empty() {
            "(none)".to_string()
        } else {
            on.join(", ")
        };
        println!("  {:9} {:17} {}", e.name(), e.kernels(), on);
        if let Some(u) = e.unmodeled() {
            println!("  {:9} {:17} not modeled: {u}", "", "");
        }
    }
    println!("\nSwitches ({}):", SWITCHES.len());
    for s in SWITCHES {
        println!("  {:26} {:6} {}", s.name, s.kernel, s.commit);
    }
    Ok(ExitCode::SUCCESS)
}
