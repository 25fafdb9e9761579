//! The historical bugs of KERNEL.md, each found on exactly the eras that had it, under
//! shuttle. Every campaign is seeded; budgets and miss chances are stated per test.
#![cfg(all(not(loom), not(cowbreak_stress)))]

mod common;

use common::Spec;
use cowbreak::explore::{explore_shuttle, Outcome, ShuttleConfig, Strategy};
use cowbreak::mm::{Arch, Era, ViolationKind};

fn pct(spec: Spec, iterations: usize, seed: u64) -> Outcome {
    let cfg = ShuttleConfig {
        strategy: Strategy::Pct { depth: 3 },
        iterations,
        seed,
        steps_max: 20_000,
        stop_after_first: false,
    };
    explore_shuttle(&cfg, spec.execution())
}

/// Run `make` on every era and both architectures and check that `kind` is found
/// exactly on `buggy` (every architecture) and `buggy_x86` (x86 only).
fn check_history(
    name: &str,
    make: impl Fn(Era) -> Spec,
    kind: ViolationKind,
    buggy: &[Era],
    buggy_x86: &[Era],
    iterations: usize,
) {
    for (era, arch) in Era::ALL
        .into_iter()
        .flat_map(|e| Arch::ALL.into_iter().map(move |a| (e, a)))
    {
        let out = pct(make(era).on(arch), iterations, 7);
        let want = buggy.contains(&era) || (arch == Arch::X86 && buggy_x86.contains(&era));
        let unexpected: Vec<_> = out
            .violations
            .iter()
            .filter(|f| f.violation.kind != kind)
            .collect();
        assert!(
            unexpected.is_empty(),
            "{name} on {era} {arch}: unexpected {unexpected:#?}"
        );
        assert_eq!(
            out.found(kind),
            want,
            "{name} on {era} {arch}: {kind} expected {want} after {} executions, saw {:#?}",
            out.executions,
            out.violations
        );
    }
}

/// Sequential by design (ordering points), so one execution decides; a few more check
/// that no interleaving of the non-ordered steps (thread exit, pipe read) matters.
#[test]
fn cve_2020_29374_pin_isolation() {
    check_history(
        "CVE-2020-29374",
        common::cve_2020_29374,
        ViolationKind::PinIsolation,
        &[Era::V4_8, Era::V4_9, Era::V4_15],
        // x86's own fast GUP, which vmsplice uses, was not part of the 4.4.289 backport.
        &[Era::V4_4_289],
        20,
    );
}

#[test]
fn rw_longterm_pin_then_fork_pin_coherence() {
    check_history(
        "R/W longterm pin then fork",
        common::rw_pin_then_fork,
        ViolationKind::PinCoherence,
        &[Era::V4_8, Era::V4_9, Era::V4_15, Era::V4_4_289, Era::V5_8],
        &[],
        4,
    );
}

/// Not monotonic: broken before the forced COW break, fixed by it (4.4.289, v5.8),
/// broken again when v5.9 removed it, fixed for good by unsharing in v5.19.
#[test]
fn ro_pin_of_shared_anon_page_pin_coherence() {
    let buggy = [
        Era::V4_8,
        Era::V4_9,
        Era::V4_15,
        Era::V5_9,
        Era::V5_11,
        Era::V5_18,
    ];
    check_history(
        "R/O pin (slow GUP)",
        |e| common::ro_pin_shared(e, false),
        ViolationKind::PinCoherence,
        &buggy,
        &[],
        4,
    );
    // x86's own fast GUP of 4.4.289 pins the shared page without breaking COW.
    check_history(
        "R/O pin (fast GUP)",
        |e| common::ro_pin_shared(e, true),
        ViolationKind::PinCoherence,
        &buggy,
        &[Era::V4_4_289],
        4,
    );
}

/// Dirty COW needs MADV_DONTNEED to land in a window of a few steps inside the forced
/// write's retry loop. Budget: 2,000 PCT (depth 3) executions from seed 7. PCT finds a
/// depth-d bug with probability at least 1/(n k^(d-1)) per execution (n threads, k
/// steps); measured here it needs far fewer than the budget (see `cargo xtask bench`),
/// so the chance of a miss on v4.8 is negligible; on the fixed eras the same budget
/// finds nothing.
#[test]
fn dirty_cow_ro_page_written() {
    check_history(
        "Dirty COW",
        common::dirty_cow,
        ViolationKind::RoPageWritten,
        &[Era::V4_8],
        &[],
        2000,
    );
}

/// The same race found by uniform random walks (URW) too: budget 2,000, seed 11.
/// Plain uniform random choice at every step practically never finds it (50,000
/// executions did not, seed 11): the madvise thread, a quarter of the writer's length,
/// almost always finishes before the writer reaches its window. URW weighs each
/// thread by its remaining steps and so spreads them evenly.
#[test]
fn dirty_cow_found_by_uniform_random_walks() {
    let cfg = ShuttleConfig {
        strategy: Strategy::Urw,
        iterations: 2000,
        seed: 11,
        steps_max: 20_000,
        stop_after_first: false,
    };
    let out = explore_shuttle(&cfg, common::dirty_cow(Era::V4_8).execution());
    assert!(out.found(ViolationKind::RoPageWritten), "{out:#?}");
}

/// With the flush IPI no longer waiting for CPUs with interrupts off and no RCU grace
/// period before the free, fast GUP can read a PTE table munmap already freed; either
/// mechanism alone (x86's IPI, arm64's RCU table free) keeps it alive. Budget: 2,000 PCT
/// executions, seed 7, each.
#[test]
fn fast_gup_vs_munmap_needs_the_ipi_wait_or_rcu_table_free() {
    let without = pct(
        common::fast_gup_vs_munmap(Era::V5_9).switch("tlb_flush_ipi", false),
        2000,
        7,
    );
    assert!(
        without.found(ViolationKind::PgtableLifetime),
        "{without:#?}"
    );
    let with = pct(common::fast_gup_vs_munmap(Era::V5_9), 2000, 7);
    assert!(with.violations.is_empty(), "{with:#?}");
    let rcu = pct(
        common::fast_gup_vs_munmap(Era::V5_9)
            .switch("tlb_flush_ipi", false)
            .switch("rcu_table_free", true),
        2000,
        7,
    );
    assert!(rcu.violations.is_empty(), "{rcu:#?}");
}

/// The same seed gives the same outcome.
#[test]
fn same_seed_same_outcome() {
    let a = pct(common::dirty_cow(Era::V4_8), 300, 3);
    let b = pct(common::dirty_cow(Era::V4_8), 300, 3);
    assert_eq!(a.executions, b.executions);
    let sig = |o: &Outcome| {
        o.violations
            .iter()
            .map(|f| (f.violation.kind, f.first_at_execution, f.schedule.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(sig(&a), sig(&b));
}
