//! The model under loom: exhaustive within a preemption bound (2 unless a scenario asks
//! for more), C11 weak memory included, each access ordered as the kernel primitive it
//! models on the architecture (x86 TSO, arm64 LKMM). Fixed eras pass, the eras with the
//! bug fail, on both architectures; 088b8aa537c2's race shows only on arm64 and only
//! under weak memory; and a violation only weak memory shows replays exactly from its
//! loom path. Run with `cargo xtask test` (it builds with `--cfg loom` in target/loom).
#![cfg(loom)]

mod common;

use cowbreak::explore::{explore_loom, loom_path, replay_loom, trace_build, LoomConfig};
use cowbreak::mm::{Arch, Era, ViolationKind};
use cowbreak::scenario::{library, Scenario};

const PREEMPTION_BOUND: LoomConfig = LoomConfig {
    preemption_bound: 2,
    max_branches: 100_000,
    max_executions: None,
};

/// loom on a built-in scenario on `era` and `arch`, with switches flipped on top.
fn loom(sc: &Scenario, era: Era, arch: Arch, flips: &[(&str, bool)]) -> cowbreak::explore::Outcome {
    let mut policy = sc.policy(era, arch);
    for &(n, on) in flips {
        policy.set(n, on).unwrap();
    }
    let cfg = LoomConfig::new(sc.preemption_bound.unwrap_or(2));
    explore_loom(cfg, sc.execution(sc.kernel_config(policy, arch)))
}

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

/// Sharing state through `cowbreak::sync::Arc` adds no branch points: two threads that
/// read one shared atomic explore as many executions as when they borrow it with no
/// handle at all (a leaked `&'static`). loom's own `Arc`, whose clones and drops are
/// dependent branch points, took 16 executions where the borrow takes 6.
#[test]
fn a_shared_handle_adds_no_branch_points() {
    use cowbreak::sync::{atomic::AtomicU64, atomic::Ordering, thread, Arc};
    fn two_readers(x: impl Fn() -> Box<dyn FnOnce() -> u64 + Send>) {
        let handles: Vec<_> = (0..2).map(|_| thread::spawn(x())).collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), 7);
        }
    }
    let shared = explore_loom(LoomConfig::new(3), || {
        let x = Arc::new(AtomicU64::new(7));
        two_readers(|| {
            let x = Arc::clone(&x);
            Box::new(move || x.load(Ordering::Relaxed))
        });
        Vec::new()
    });
    let borrowed = explore_loom(LoomConfig::new(3), || {
        let x: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(7)));
        two_readers(|| Box::new(move || x.load(Ordering::Relaxed)));
        Vec::new()
    });
    assert!(borrowed.executions >= 1);
    assert_eq!(shared.executions, borrowed.executions);
}

/// A budget of n executions stops loom after n: loom reads its `max_permutations` only at
/// the iterations where it would store a checkpoint, so without an interval of 1 it ran
/// the whole space whatever the budget.
#[test]
fn a_budget_stops_loom_after_that_many_executions() {
    let explore = |budget: Option<usize>| {
        let cfg = LoomConfig {
            max_executions: budget,
            ..PREEMPTION_BOUND
        };
        explore_loom(cfg, common::cve_2020_29374(Era::V5_9).small().execution()).executions
    };
    let whole = explore(None);
    assert!(whole > 8, "loom explored {whole} executions");
    for n in [1, 7] {
        assert_eq!(explore(Some(n)), n as u64, "budget {n}");
    }
    assert_eq!(explore(Some(whole as usize)), whole);
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

/// The whole built-in library on every era and both architectures, exhaustively at
/// preemption bound 2 (or the scenario's own) under each architecture's memory model:
/// loom finds exactly what each scenario's history expects, no more (no weak-memory
/// breakage where the kernel had none) and no less.
#[test]
fn the_library_matches_the_kernel_history_under_loom() {
    let mut wrong = Vec::new();
    for sc in library::all().unwrap() {
        if sc.check_loom_limits().is_err() {
            continue;
        }
        for arch in Arch::ALL.into_iter().filter(|&a| sc.runs_on(a)) {
            for era in Era::ALL {
                let out = loom(&sc, era, arch, &[]);
                if out.kinds() != sc.expected_on(era, arch) {
                    wrong.push(format!(
                        "{} on {era} {arch}: expected {:?}, found {:?}",
                        sc.name,
                        sc.expected_on(era, arch),
                        out.violations
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// 088b8aa537c2: KSM's write_protect_page against a R/O GUP-fast pin. On arm64 v5.19 and
/// v6.0 loom finds the pin outliving the page it pinned; v6.1's barriers close it; x86
/// never had it; and with every access sequentially consistent it is gone: only weak
/// memory shows it, which is why shuttle never finds it.
#[test]
fn ksm_vs_ro_pin_fast_is_the_088b8aa537c2_race() {
    let sc = library::find("ksm-vs-ro-pin-fast").unwrap();
    for era in [Era::V5_19, Era::V6_0] {
        let out = loom(&sc, era, Arch::Arm64, &[]);
        assert_eq!(
            out.kinds(),
            [ViolationKind::PinCoherence],
            "{era}: {out:#?}"
        );
        let sc_only = loom(&sc, era, Arch::Arm64, &[("sequential_consistency", true)]);
        assert!(sc_only.violations.is_empty(), "{era} SC: {sc_only:#?}");
        let fixed = loom(&sc, era, Arch::Arm64, &[("anon_exclusive_barriers", true)]);
        assert!(
            fixed.violations.is_empty(),
            "{era} + 088b8aa537c2: {fixed:#?}"
        );
        let x86 = loom(&sc, era, Arch::X86, &[]);
        assert!(x86.violations.is_empty(), "{era} x86: {x86:#?}");
    }
    for arch in Arch::ALL {
        let out = loom(&sc, Era::V6_1, arch, &[]);
        assert!(out.violations.is_empty(), "v6.1 {arch}: {out:#?}");
    }
}

/// b1f02b95758d: mprotect(PROT_READ) against a write fault under the per-VMA lock. On
/// arm64 v6.4 loom finds the fault acting on the vma's old VM_WRITE after seeing it
/// unlocked; the release / acquire of v6.5 closes it (flipped alone on v6.4), and so
/// does sequential consistency: only weak memory shows it. x86 (TSO) never had it.
#[test]
fn vma_seq_ordering_is_the_b1f02b95758d_race() {
    let sc = library::find("vma-seq-ordering").unwrap();
    let out = loom(&sc, Era::V6_4, Arch::Arm64, &[]);
    assert_eq!(out.kinds(), [ViolationKind::VmaCoherence], "{out:#?}");
    let sc_only = loom(
        &sc,
        Era::V6_4,
        Arch::Arm64,
        &[("sequential_consistency", true)],
    );
    assert!(sc_only.violations.is_empty(), "SC: {sc_only:#?}");
    let fixed = loom(
        &sc,
        Era::V6_4,
        Arch::Arm64,
        &[("vma_lock_seq_ordering", true)],
    );
    assert!(fixed.violations.is_empty(), "+ b1f02b95758d: {fixed:#?}");
    let x86 = loom(&sc, Era::V6_4, Arch::X86, &[]);
    assert!(x86.violations.is_empty(), "x86: {x86:#?}");
}

/// 0d940a9b270b / 1d65b771bc08: the lockless retract of v6.6 is safe only because every
/// walker rechecks the PMD under the PTE lock. Without the recheck loom finds, at the
/// scenario's bound (1), a walker that used the freed table, on both architectures; and
/// it names more than one walker (zap, fault, slow GUP), each of which needs the rule.
#[test]
fn the_lockless_retract_needs_every_walkers_pmd_recheck() {
    let sc = library::find("retract-vs-fault").unwrap();
    for arch in Arch::ALL {
        let out = loom(&sc, Era::V6_6, arch, &[("pte_offset_map_recheck", false)]);
        assert_eq!(
            out.kinds(),
            [ViolationKind::PgtableLifetime],
            "{arch}: {out:#?}"
        );
        let walkers: std::collections::BTreeSet<_> = out
            .violations
            .iter()
            .map(|f| f.violation.at.to_string())
            .collect();
        assert!(walkers.len() >= 2, "{arch}: {walkers:?}");
        let fixed = loom(&sc, Era::V6_6, arch, &[]);
        assert!(fixed.violations.is_empty(), "{arch}: {fixed:#?}");
    }
}

/// A violation only weak memory shows (088b8aa537c2 on arm64 v5.19) round-trips: the
/// failing loom iteration's path replays it, twice, with identical events.
#[test]
fn a_weak_memory_violation_replays_exactly_from_its_loom_path() {
    let sc = library::find("ksm-vs-ro-pin-fast").unwrap();
    let (era, arch) = (Era::V5_19, Arch::Arm64);
    let config = sc.kernel_config(sc.policy(era, arch), arch);
    let cfg = LoomConfig::new(2);
    let out = explore_loom(cfg, sc.execution(config.clone()));
    let found = out
        .violations
        .iter()
        .find(|f| f.violation.kind == ViolationKind::PinCoherence)
        .expect("loom finds it");
    let path = loom_path(cfg, found.first_at_execution, sc.execution(config.clone())).unwrap();
    let replay = || {
        trace_build::capture(&sc, || {
            cowbreak::mm::record::recording(|| {
                replay_loom(cfg, &path, sc.execution(config.clone()))
            })
        })
    };
    let (first, events) = replay();
    let first = first.unwrap();
    assert!(
        first
            .iter()
            .any(|v| v.kind == found.violation.kind && v.at == found.violation.at),
        "{first:#?}"
    );
    assert!(events
        .iter()
        .any(|e| e.func.as_deref() == Some("replace_page")));
    // Every load says which store it read; the race needs one that was not the latest:
    // GUP-fast's test of PG_anon_exclusive reading the flag from before KSM cleared it.
    let loads: Vec<_> = events
        .iter()
        .filter(|e| e.target == "cowbreak::mem" && e.message == "load")
        .collect();
    assert!(!loads.is_empty());
    assert!(loads.iter().all(|e| e.fields.contains_key("read_from")));
    assert!(
        loads.iter().any(|e| e.fields["stale"] == "true"
            && e.func.as_deref() == Some("test_bit")
            && e.fields["obj"].ends_with(".flags")),
        "no stale read of a page's flags: {loads:#?}"
    );
    let (second, again) = replay();
    assert_eq!(second.unwrap(), first);
    assert_eq!(cowbreak::trace::first_divergence(&events, &again), None);
    // A path that is not loom's is an error, not a panic.
    let bad = replay_loom(cfg, "{\"format\": 1}", sc.execution(config));
    assert!(bad.unwrap_err().contains("not a loom checkpoint"));
}
