//! Every built-in scenario parses, runs, and finds on every era exactly what its
//! `expect` lines (KERNEL.md's history) say. Budget per cell: 2,000 PCT (depth 3)
//! executions from seed 1; the racy scenarios are found within a few hundred (see
//! `cargo xtask bench`), the sequential ones on the first execution.
#![cfg(all(not(loom), not(cowbreak_stress)))]

use cowbreak::explore::{explore_shuttle, ShuttleConfig, Strategy};
use cowbreak::mm::Era;
use cowbreak::scenario::library;

#[test]
fn every_builtin_parses_and_names_its_source() {
    let all = library::all().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.len(), library::FILES.len());
    for (sc, (file, text)) in all.iter().zip(library::FILES) {
        assert!(
            !sc.summary.is_empty() && !sc.source.is_empty(),
            "{file}: summary and source"
        );
        assert!(
            text.starts_with('#'),
            "{file} must open with a comment citing its source"
        );
        assert_eq!(
            format!("{}.scn", sc.name),
            *file,
            "file named after the scenario"
        );
    }
}

#[test]
fn every_builtin_matches_the_kernel_history_on_every_era() {
    let mut wrong = Vec::new();
    for sc in library::all().unwrap() {
        for era in Era::ALL {
            let cfg = ShuttleConfig {
                strategy: Strategy::Pct { depth: 3 },
                iterations: 2000,
                seed: 1,
                steps_max: 20_000,
                stop_after_first: false,
                progress: None,
            };
            let out = explore_shuttle(&cfg, sc.execution(sc.kernel_config(sc.policy(era))));
            let want = sc.expected_on(era);
            if out.kinds() != want {
                wrong.push(format!(
                    "{} on {era}: expected {want:?}, found {:?}",
                    sc.name, out.violations
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
