//! Every built-in scenario parses, runs, and finds on every era and architecture exactly
//! what its `expect` lines (KERNEL.md's history) say. Budget per cell: 2,000 PCT (depth
//! 3) executions from seed 1; the racy scenarios are found within a few hundred (see
//! `cargo xtask bench`), the sequential ones on the first execution. Cells only weak
//! memory shows (`:weak`) must stay clean here: shuttle is sequentially consistent.
#![cfg(all(not(loom), not(cowbreak_stress)))]

use cowbreak::explore::Outcome;
use cowbreak::explore::{explore_shuttle, ShuttleConfig, Strategy};
use cowbreak::mm::{Arch, Era};
use cowbreak::scenario::{library, Scenario};

/// The budget of every cell here: 2,000 PCT (depth 3) executions from seed 1.
fn pct(sc: &Scenario, era: Era, arch: Arch) -> Outcome {
    let cfg = ShuttleConfig {
        strategy: Strategy::Pct { depth: 3 },
        iterations: 2000,
        seed: 1,
        steps_max: 20_000,
        stop_after_first: false,
    };
    explore_shuttle(
        &cfg,
        sc.execution(sc.kernel_config(sc.policy(era, arch), arch)),
    )
}

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
            let out = pct(sc, era, arch);
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

/// The scale built-ins (`scenarios/scale/`): four and eight threads on 48 and 56
/// pages. They parse, are found by name, are left out of the history set, do not all
/// fit loom, and find what their `expect` lines say on x86: the fork race on v5.9 and
/// before, nothing from v5.11 (write_protect_seq). Budget: 2,000 PCT (depth 3)
/// executions from seed 1 per cell, on v4.4.289, v5.9, v5.11 and v6.12 (the full
/// era sweep is `cargo xtask matrix --scenarios scale-fork-pins-4,scale-fork-pins-8`).
#[test]
fn scale_builtins_find_their_history() {
    let scale = library::scale().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(scale.len(), library::SCALE_FILES.len());
    assert_eq!(
        scale.iter().map(|s| s.threads.len()).collect::<Vec<_>>(),
        [4, 8]
    );
    assert!(scale[1].check_loom_limits().is_err(), "8 threads fit loom?");
    let history = library::names();
    for sc in &scale {
        assert!(
            !history.contains(&sc.name),
            "{} in the history set",
            sc.name
        );
        assert_eq!(
            library::find(&sc.name).map(|s| s.text),
            Some(sc.text.clone())
        );
        let pages = sc.pages();
        assert!(pages >= 48, "{}: {pages} pages", sc.name);
        for era in [Era::V4_4_289, Era::V5_9, Era::V5_11, Era::V6_12] {
            let out = pct(sc, era, Arch::X86);
            assert_eq!(
                out.kinds(),
                sc.expected_on_sc(era, Arch::X86),
                "{} on {era}: {:#?}",
                sc.name,
                out.violations
            );
        }
    }
}
