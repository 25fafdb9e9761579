//! The same scenarios on real OS threads (the stress backend). The sequential ones are
//! ordered by their signal / wait points, so real threads must reproduce them exactly;
//! the fixed eras must stay clean however the OS schedules.
//! Run with `cargo xtask test` (it builds with `--cfg cowbreak_stress` in target/stress).
#![cfg(all(not(loom), cowbreak_stress))]

mod common;

use cowbreak::explore::explore_stress;
use cowbreak::mm::{Arch, Era, ViolationKind};

/// No deadline: the tests bound work by iterations.
fn far() -> std::time::Instant {
    std::time::Instant::now() + std::time::Duration::from_secs(3600)
}

#[test]
fn sequential_bugs_reproduce_on_real_threads() {
    let cases = [
        (
            common::cve_2020_29374(Era::V4_9),
            ViolationKind::PinIsolation,
        ),
        (
            common::rw_pin_then_fork(Era::V5_8),
            ViolationKind::PinCoherence,
        ),
        (
            common::ro_pin_shared(Era::V5_9, true),
            ViolationKind::PinCoherence,
        ),
    ];
    for (spec, kind) in cases {
        let out = explore_stress(50, false, spec.execution(), far());
        assert_eq!(out.executions, 50);
        assert_eq!(out.kinds(), vec![kind], "{out:#?}");
    }
}

#[test]
fn fixed_eras_stay_clean_on_real_threads() {
    for spec in [
        common::cve_2020_29374(Era::V5_9),
        common::rw_pin_then_fork(Era::V5_9),
        common::ro_pin_shared(Era::V5_19, true),
        common::dirty_cow(Era::V4_9),
        common::fast_gup_vs_munmap(Era::V6_0),
    ] {
        let out = explore_stress(200, false, spec.execution(), far());
        assert!(out.violations.is_empty(), "{out:#?}");
    }
}

/// Every built-in scenario on every era, on real threads: whatever the OS interleaving,
/// nothing breaks that the scenario does not expect on that era (the model stays sound
/// under real concurrency and the hardware's memory model), and the scenarios that are
/// sequential by design break exactly as expected. 20 executions per cell.
#[test]
fn the_library_on_real_threads_breaks_only_where_history_says() {
    let mut wrong = Vec::new();
    for sc in cowbreak::scenario::library::all().unwrap() {
        for era in Era::ALL {
            let out = explore_stress(
                20,
                false,
                sc.execution(sc.kernel_config(sc.policy(era, Arch::X86), Arch::X86)),
                far(),
            );
            let want = sc.expected_on_sc(era, Arch::X86);
            if out.kinds().iter().any(|k| !want.contains(k)) {
                wrong.push(format!(
                    "{} on {era}: expected at most {want:?}, found {:?}",
                    sc.name, out.violations
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
