//! Scenarios written outside the built-in library (tests/data/*.scn) find on every era
//! exactly what their `expect` lines say. Budget per cell: 500 PCT (depth 3) executions
//! from seed 3.
#![cfg(all(not(loom), not(cowbreak_stress)))]

use std::path::Path;

use cowbreak::explore::{explore_shuttle, ShuttleConfig, Strategy};
use cowbreak::mm::{Arch, Era};

#[test]
fn external_scenarios_match_their_expect_lines_on_every_era() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "scn"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .scn files in {}", dir.display());

    let mut wrong = Vec::new();
    for path in &files {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let origin = format!("tests/data/{}", path.file_name().unwrap().to_string_lossy());
        let sc = match cowbreak::scenario::parse(&origin, &text) {
            Ok(sc) => sc,
            Err(e) => {
                wrong.push(format!("{origin}: does not parse: {e}"));
                continue;
            }
        };
        for era in Era::ALL {
            let cfg = ShuttleConfig {
                strategy: Strategy::Pct { depth: 3 },
                iterations: 500,
                seed: 3,
                steps_max: 20_000,
                stop_after_first: false,
            };
            let outcome = explore_shuttle(
                &cfg,
                sc.execution(sc.kernel_config(sc.policy(era, Arch::X86), Arch::X86)),
            );
            let want = sc.expected_on_sc(era, Arch::X86);
            eprintln!(
                "{} on {era}: expected {want:?}, found {:?}",
                sc.name,
                outcome.kinds()
            );
            if outcome.kinds() != want {
                wrong.push(format!(
                    "{} ({origin}) on {era}: expected {want:?}, found {:?}",
                    sc.name, outcome.violations
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
