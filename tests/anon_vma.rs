//! Where the model tracks `anon_vma` (per-VMA locks, v6.4 on), the end-of-execution
//! check finds an anonymous page mapped in a vma that has none, and is quiet when every
//! such vma has one. One execution each (the bodies are sequential), under shuttle.
#![cfg(all(not(loom), not(cowbreak_stress)))]

mod common;

use common::{Points, Spec, A};
use cowbreak::explore::{explore_shuttle, ShuttleConfig, Strategy};
use cowbreak::mm::{Era, MapKind, Prot, Task, ViolationKind};

fn setup(t: &Task) {
    t.mmap(A, 1, MapKind::PrivateAnon, Prot::RW).unwrap();
    t.write(A, 1).unwrap();
}

/// What a lost `anon_vma` would leave: the vma's pointer cleared behind the page.
fn lose_anon_vma(t: &Task, _: &Points) {
    let slot = &t.k.mm(0).vma_locks[0];
    t.k.mo.write_once(&slot.anon_vma, 0);
}

fn touch(t: &Task, _: &Points) {
    t.read(A).unwrap();
}

fn run(era: Era, body: fn(&Task, &Points)) -> Vec<ViolationKind> {
    let cfg = ShuttleConfig {
        strategy: Strategy::Pct { depth: 3 },
        iterations: 1,
        seed: 0,
        steps_max: 20_000,
        stop_after_first: false,
    };
    let out = explore_shuttle(&cfg, Spec::new(era, setup, vec![(0, body)]).execution());
    out.violations.iter().map(|f| f.violation.kind).collect()
}

#[test]
fn an_anonymous_page_in_a_vma_without_an_anon_vma_is_reported() {
    assert_eq!(run(Era::V6_4, lose_anon_vma), [ViolationKind::Accounting]);
    assert_eq!(run(Era::V6_4, touch), []);
    assert_eq!(run(Era::V6_12, touch), []);
}
