//! Every built-in scenario parses, runs, and finds on every era and architecture exactly
//! what its `expect` lines (KERNEL.md's history) say. Budget per cell: 2,000 PCT (depth
//! 3) executions from seed 1; the racy scenarios are found within a few hundred (see
//! `cargo xtask bench`), the sequential ones on the first execution. Cells only weak
//! memory shows (`:weak`) must stay clean here: shuttle is sequentially consistent.
#![cfg(all(not(loom), not(cowbreak_stress)))]

use cowbreak::explore::{explore_shuttle, ShuttleConfig, Strategy};
use cowbreak::mm::{Arch, Era};
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
    let all = library::all().unwrap();
    for (sc, arch) in all.iter().flat_map(|sc| {
        Arch::ALL
            .into_iter()
            .filter(|&a| sc.runs_on(a))
            .map(move |a| (sc, a))
    }) {
        for era in Era::ALL {
            let cfg = ShuttleConfig {
                strategy: Strategy::Pct { depth: 3 },
                iterations: 2000,
                seed: 1,
                steps_max: 20_000,
                stop_after_first: false,
            };
            let out = explore_shuttle(
                &cfg,
                sc.execution(sc.kernel_config(sc.policy(era, arch), arch)),
            );
            let want = sc.expected_on_sc(era, arch);
            if out.kinds() != want {
                wrong.push(format!(
                    "{} on {era} {arch}: expected {want:?}, found {:?}",
                    sc.name, out.violations
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
