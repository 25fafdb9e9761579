//! File collapse (`collapse_file` + `retract_page_tables`) and the walkers' PMD recheck
//! (`pte_offset_map_recheck`, 0d940a9b270b): what a collapse does to the page cache and
//! to every mm's page tables, sequentially (one execution each), and that the lockless
//! retract of v6.6 is safe only with the recheck. Randomized runs are PCT (depth 3),
//! seed 0, with the budget each test states.
#![cfg(all(not(loom), not(cowbreak_stress)))]

mod common;

use common::{Points, Spec, A};
use cowbreak::explore::{explore_shuttle, ShuttleConfig, Strategy};
use cowbreak::mm::{Arch, Era, Errno, MapKind, PinMode, Prot, Task, ViolationKind, PAGE_SIZE};

/// An 8-page file, mapped shared at `A` (PMD-aligned) by mm 0.
fn map_file(t: &Task) {
    t.mmap(A, 8, MapKind::SharedFile(0), Prot::RW).unwrap();
}

fn spec(era: Era, body: fn(&Task, &Points)) -> Spec {
    let mut s = Spec::new(era, map_file, vec![(0, body)]);
    s.config.files = vec![8];
    s.config.page_cache_mutable = true;
    s.config.nr_frames = 40;
    s.config.nr_tables = 6;
    s
}

fn once(spec: Spec) -> Vec<ViolationKind> {
    let cfg = ShuttleConfig {
        strategy: Strategy::Pct { depth: 3 },
        iterations: 1,
        seed: 0,
        steps_max: 50_000,
        stop_after_first: false,
    };
    let out = explore_shuttle(&cfg, spec.execution());
    out.violations.iter().map(|f| f.violation.kind).collect()
}

/// mm 0 writes page 1, forks, the child reads page 1 (its own PTE table), then mm 0
/// collapses: every file page has a new frame holding the old data, both mms lost their
/// table (the next access faults the new page in through a new table) and the data
/// reads back the same in both.
fn collapse_two_mms(t: &Task, _: &Points) {
    t.write(A + PAGE_SIZE, 5).unwrap();
    t.read(A + 2 * PAGE_SIZE).unwrap();
    t.fork(1).unwrap();
    let child = Task::new(t.k, t.cpu, 1);
    assert_eq!(child.read(A + PAGE_SIZE).unwrap().value(), 5);
    let before = t.k.file_pages(0);
    let free_before = t.k.tables.free_count();
    t.collapse(A).unwrap();
    let after = t.k.file_pages(0);
    assert!(
        before.iter().zip(&after).all(|(a, b)| a != b),
        "{before:?} -> {after:?}"
    );
    // Both mms' tables went back to the pool.
    assert_eq!(t.k.tables.free_count(), free_before + 2);
    for task in [t, &child] {
        assert_eq!(task.read(A + PAGE_SIZE).unwrap().value(), 5);
    }
    t.write(A + 3 * PAGE_SIZE, 6).unwrap();
    assert_eq!(child.read(A + 3 * PAGE_SIZE).unwrap().value(), 6);
}

/// A pinned page refuses the collapse (EAGAIN) and the page cache stays.
fn collapse_pinned(t: &Task, _: &Points) {
    let mode = PinMode {
        write: false,
        longterm: false,
        fast: false,
    };
    let pin = t.pin(A + 4 * PAGE_SIZE, mode).unwrap();
    let before = t.k.file_pages(0);
    assert_eq!(t.collapse(A), Err(Errno::EAGAIN));
    assert_eq!(t.k.file_pages(0), before);
    t.unpin(pin);
    t.collapse(A).unwrap();
    assert_ne!(t.k.file_pages(0), before);
}

#[test]
fn a_file_collapse_replaces_the_page_cache_and_retracts_every_table() {
    // v6.2: retract under mmap_write_trylock; v6.6: without the mmap lock.
    for era in [Era::V4_8, Era::V6_2, Era::V6_6, Era::V6_12] {
        for arch in [Arch::X86, Arch::Arm64] {
            assert_eq!(
                once(spec(era, collapse_two_mms).on(arch)),
                [],
                "{era} {arch}"
            );
            assert_eq!(
                once(spec(era, collapse_pinned).on(arch)),
                [],
                "{era} {arch}"
            );
        }
    }
}

fn collapse_refused(t: &Task, _: &Points) {
    let before = t.k.file_pages(0);
    assert_eq!(t.collapse(A), Err(Errno::EINVAL));
    assert_eq!(t.k.file_pages(0), before);
}

/// v4.4 has no file collapse (f3f0e1d2150b came in v4.8).
#[test]
fn before_v4_8_a_file_range_is_not_collapsed() {
    assert_eq!(once(spec(Era::V4_4_289, collapse_refused)), []);
}

/// Budget: 3000 PCT executions, seed 0, per run of the built-in `retract-vs-fault`.
fn retract_vs_fault(era: Era, arch: Arch, recheck: bool) -> Vec<ViolationKind> {
    let sc = cowbreak::scenario::library::find("retract-vs-fault").unwrap();
    let mut policy = sc.policy(era, arch);
    policy.set("pte_offset_map_recheck", recheck).unwrap();
    let config = sc.kernel_config(policy, arch);
    let cfg = ShuttleConfig {
        strategy: Strategy::Pct { depth: 3 },
        iterations: 3000,
        seed: 0,
        steps_max: 20_000,
        stop_after_first: true,
    };
    let out = explore_shuttle(&cfg, sc.execution(config));
    out.violations.iter().map(|f| f.violation.kind).collect()
}

/// The lockless retract (v6.6) with walkers that take their table as they found it
/// (no PMD recheck) uses a freed table; with the recheck, nothing.
#[test]
fn the_lockless_retract_needs_the_walkers_pmd_recheck() {
    for arch in [Arch::X86, Arch::Arm64] {
        assert_eq!(
            retract_vs_fault(Era::V6_6, arch, false),
            [ViolationKind::PgtableLifetime],
            "{arch}"
        );
        assert_eq!(retract_vs_fault(Era::V6_6, arch, true), [], "{arch}");
    }
}

/// Both new built-ins' violations replay exactly from their trace files: 2ba99c5e0881's
/// on arm64 v6.0, and the lockless retract without the recheck on v6.6 (a switch
/// flipped, which the trace records). Budget: 2000 PCT executions, seed 0, each.
#[test]
fn the_retract_violations_replay_from_their_traces() {
    use cowbreak::explore::campaign::{self, CheckRequest};
    for (name, era, arch, switches) in [
        ("retract-table-vs-gup-fast", Era::V6_0, Arch::Arm64, vec![]),
        (
            "retract-vs-fault",
            Era::V6_6,
            Arch::X86,
            vec![("pte_offset_map_recheck".to_string(), false)],
        ),
    ] {
        let req = CheckRequest {
            scenario: cowbreak::scenario::library::find(name).unwrap(),
            era,
            arch,
            switches,
            shuttle: ShuttleConfig {
                strategy: Strategy::Pct { depth: 3 },
                iterations: 2000,
                seed: 0,
                steps_max: 20_000,
                stop_after_first: true,
            },
        };
        let report = campaign::check(&req).unwrap();
        let found = report.violations.first().expect("found");
        assert_eq!(found.found.violation.kind, ViolationKind::PgtableLifetime);
        let replay = campaign::replay(&found.trace, name).unwrap();
        assert!(replay.exact(), "{name}: {:?}", replay.divergence);
        assert_eq!(replay.events, found.trace.events, "{name}");
    }
}
