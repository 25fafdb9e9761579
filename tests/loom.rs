//! The sequential scenarios checked exhaustively under loom (preemption bound 2), C11
//! weak memory included: fixed eras pass, the era with the bug fails.
//! Run with `cargo xtask test` (it builds with `--cfg loom` in target/loom).
#![cfg(loom)]

mod common;

use cowbreak::explore::explore_loom;
use cowbreak::mm::{Era, ViolationKind};

const PREEMPTION_BOUND: usize = 2;

#[test]
fn cve_2020_29374_v5_9_passes_exhaustively() {
    let out = explore_loom(
        PREEMPTION_BOUND,
        common::cve_2020_29374(Era::V5_9).small().execution(),
    );
    assert!(out.violations.is_empty(), "{out:#?}");
    assert!(
        out.executions > 1,
        "loom explored {} executions",
        out.executions
    );
}

#[test]
fn cve_2020_29374_v4_9_fails() {
    let out = explore_loom(
        PREEMPTION_BOUND,
        common::cve_2020_29374(Era::V4_9).small().execution(),
    );
    assert_eq!(out.kinds(), vec![ViolationKind::PinIsolation], "{out:#?}");
}

#[test]
fn rw_pin_then_fork_v5_9_passes_exhaustively() {
    let out = explore_loom(
        PREEMPTION_BOUND,
        common::rw_pin_then_fork(Era::V5_9).small().execution(),
    );
    assert!(out.violations.is_empty(), "{out:#?}");
}

#[test]
fn rw_pin_then_fork_v4_9_fails() {
    let out = explore_loom(
        PREEMPTION_BOUND,
        common::rw_pin_then_fork(Era::V4_9).small().execution(),
    );
    assert_eq!(out.kinds(), vec![ViolationKind::PinCoherence], "{out:#?}");
}

/// The whole built-in library on every era, exhaustively at preemption bound 2 under
/// weak memory: loom finds exactly what each scenario's history expects, no more (no
/// weak-memory-only breakage in the fixed eras) and no less.
#[test]
fn the_library_matches_the_kernel_history_under_loom() {
    let mut wrong = Vec::new();
    for sc in cowbreak::scenario::library::all().unwrap() {
        if sc.check_loom_limits().is_err() {
            continue;
        }
        for era in Era::ALL {
            let out = explore_loom(
                PREEMPTION_BOUND,
                sc.execution(sc.kernel_config(sc.policy(era))),
            );
            if out.kinds() != sc.expected_on(era) {
                wrong.push(format!(
                    "{} on {era}: expected {:?}, found {:?}",
                    sc.name,
                    sc.expected_on(era),
                    out.violations
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
