//! `cargo xtask list`: the built-in scenarios, the eras and the switches.

use std::process::ExitCode;

use cowbreak_mm::{Arch, Era, Policy, SWITCHES};
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
    let scale = crate::cli::scale()?;
    if args.json {
        let v = json!({
            "scenarios": scenarios.iter().map(|s| json!({"name": s.name, "summary": s.summary, "source": s.source,
                "threads": s.threads.len(), "checks": s.check.iter().map(|k| k.name()).collect::<Vec<_>>(),
                "arches": if s.arches.is_empty() { Arch::ALL.iter().map(|a| a.name()).collect::<Vec<_>>() } else { s.arches.iter().map(|a| a.name()).collect() },
                "backend": s.backend,
                "expect": s.expect.iter().map(|(k, cells)| json!({"kind": k.name(), "eras": cells.iter().map(|c| c.to_string()).collect::<Vec<_>>()})).collect::<Vec<_>>()})).collect::<Vec<_>>(),
            "scale_scenarios": scale.iter().map(|s| json!({"name": s.name, "summary": s.summary, "source": s.source,
                "threads": s.threads.len(), "pages": s.pages()})).collect::<Vec<_>>(),
            "eras": Era::ALL.iter().map(|e| json!({"name": e.name(), "kernels": e.kernels(),
                "switches": e.policy().iter().zip(Policy::default().iter()).filter(|&((n, on), _)| on && SWITCHES.iter().any(|s| s.name == n && s.axis == cowbreak_mm::Axis::Era)).map(|((n, _), _)| n).collect::<Vec<_>>(),
                "unmodeled": e.unmodeled()})).collect::<Vec<_>>(),
            "arches": Arch::ALL.iter().map(|a| json!({"name": a.name(), "summary": a.summary(),
                "switches": era_arch_switches(*a)})).collect::<Vec<_>>(),
            "switches": SWITCHES.iter().map(|s| json!({"name": s.name, "commit": s.commit, "kernel": s.kernel, "axis": s.axis.name(), "doc": s.doc.trim()})).collect::<Vec<_>>(),
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
        if !s.arches.is_empty() || s.backend.is_some() || s.needs_weak_memory() {
            let arches: Vec<&str> = s.arches.iter().map(|a| a.name()).collect();
            let mut notes = Vec::new();
            if !arches.is_empty() {
                notes.push(format!("arch {}", arches.join(", ")));
            }
            if let Some(b) = &s.backend {
                notes.push(format!("backend {b}"));
            }
            if s.needs_weak_memory() {
                notes.push("part of its history needs weak memory (loom)".to_string());
            }
            println!("  {:w$}  {}", "", notes.join("; "));
        }
    }
    println!(
        "\nScale scenarios ({}), for the bench and campaigns (not in the default matrix):",
        scale.len()
    );
    for s in &scale {
        println!("  {:w$}  {}", s.name, s.summary);
        println!(
            "  {:w$}  {} threads, {} pages; source: {}",
            "",
            s.threads.len(),
            s.pages(),
            s.source
        );
    }
    println!(
        "\nEras ({}), with the switches each turns on:",
        Era::ALL.len()
    );
    for e in Era::ALL {
        let on: Vec<_> = e
            .policy()
            .iter()
            .filter(|&(n, on)| on && axis(n) == cowbreak_mm::Axis::Era)
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
    println!("\nArchitectures (--arch; x86 the default), with the switches each turns on:");
    for a in Arch::ALL {
        println!("  {:9} {}", a.name(), a.summary());
        println!("  {:9} {}", "", era_arch_switches(a).join("; "));
    }
    println!("\nSwitches ({}):", SWITCHES.len());
    for s in SWITCHES {
        println!(
            "  {:30} {:5} {:10} {}",
            s.name,
            s.axis.name(),
            s.kernel,
            s.commit
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn axis(name: &str) -> cowbreak_mm::Axis {
    SWITCHES
        .iter()
        .find(|s| s.name == name)
        .map_or(cowbreak_mm::Axis::Mechanism, |s| s.axis)
}

/// The architecture switches `arch` turns on, per era where they depend on it.
fn era_arch_switches(arch: Arch) -> Vec<String> {
    let on = |e: Era| -> Vec<&'static str> {
        Policy::preset(e, arch)
            .iter()
            .filter(|&(n, on)| on && axis(n) == cowbreak_mm::Axis::Arch)
            .map(|(n, _)| n)
            .collect()
    };
    let mut out: Vec<String> = Vec::new();
    let mut last: Option<Vec<&str>> = None;
    for e in Era::ALL {
        let now = on(e);
        if last.as_ref() != Some(&now) {
            out.push(format!(
                "{e}: {}",
                if now.is_empty() {
                    "(none)".to_string()
                } else {
                    now.join(", ")
                }
            ));
            last = Some(now);
        }
    }
    out
}
