//! Litmus tests of the kernel primitives (`cowbreak::mm::primitives`) under loom: each
//! classic shape, with and without the kernel's barriers, allows exactly the outcomes the
//! Linux kernel memory model allows (tools/memory-model/litmus-tests: SB+..., MP+...).
//! Loom is exhaustive here (preemption bound 3 covers every interleaving of two threads
//! of two accesses each), so "never observed" is a proof and "observed" a witness.
//! Run with `cargo xtask test` (it builds with `--cfg loom` in target/loom).
#![cfg(loom)]

use std::collections::BTreeSet;
use std::sync::Mutex;

use cowbreak::explore::{explore_loom, LoomConfig};
use cowbreak::mm::primitives::MemoryModel;
use cowbreak::sync::atomic::AtomicU64;
use cowbreak::sync::{thread, Arc, Mutex as ModelMutex};

type Outcomes = BTreeSet<(u64, u64)>;

/// Every `(r1, r2)` a two-thread litmus test can end with, exhaustively.
fn outcomes(
    t1: fn(MemoryModel, &AtomicU64, &AtomicU64, &ModelMutex<()>) -> u64,
    t2: fn(MemoryModel, &AtomicU64, &AtomicU64, &ModelMutex<()>) -> u64,
    mo: MemoryModel,
) -> Outcomes {
    // Results, not model state: a std Arc, which may live outside the execution.
    let seen = std::sync::Arc::new(Mutex::new(BTreeSet::new()));
    let s = std::sync::Arc::clone(&seen);
    let out = explore_loom(LoomConfig::new(3), move || {
        let x = Arc::new(AtomicU64::new(0));
        let y = Arc::new(AtomicU64::new(0));
        let lock = Arc::new(ModelMutex::new(()));
        let (x2, y2, lock2) = (Arc::clone(&x), Arc::clone(&y), Arc::clone(&lock));
        let h = thread::spawn(move || t2(mo, &x2, &y2, &lock2));
        let r1 = t1(mo, &x, &y, &lock);
        let r2 = h.join().unwrap();
        s.lock().unwrap().insert((r1, r2));
        Vec::new()
    });
    assert!(out.executions > 1, "loom explored {}", out.executions);
    let v = seen.lock().unwrap().clone();
    v
}

// ---- store buffering: each thread writes its variable, then reads the other's ------------
// Both reading 0 is the store-buffering outcome: allowed unless both sides have a full
// barrier between the store and the load.

fn sb_plain_x(mo: MemoryModel, x: &AtomicU64, y: &AtomicU64, _: &ModelMutex<()>) -> u64 {
    mo.write_once(x, 1);
    mo.read_once(y)
}
fn sb_plain_y(mo: MemoryModel, x: &AtomicU64, y: &AtomicU64, _: &ModelMutex<()>) -> u64 {
    mo.write_once(y, 1);
    mo.read_once(x)
}
fn sb_mb_x(mo: MemoryModel, x: &AtomicU64, y: &AtomicU64, _: &ModelMutex<()>) -> u64 {
    mo.write_once(x, 1);
    mo.smp_mb();
    mo.read_once(y)
}
fn sb_mb_y(mo: MemoryModel, x: &AtomicU64, y: &AtomicU64, _: &ModelMutex<()>) -> u64 {
    mo.write_once(y, 1);
    mo.smp_mb();
    mo.read_once(x)
}
/// A value-returning RMW is a full barrier: `atomic_add_return` stands for the pin.
fn sb_rmw_x(mo: MemoryModel, x: &AtomicU64, y: &AtomicU64, _: &ModelMutex<()>) -> u64 {
    mo.atomic_fetch_add(1, x);
    mo.read_once(y)
}
/// A non-value-returning RMW is not (`atomic_add`: the second step of a v5.14+ pin).
fn sb_add_x(mo: MemoryModel, x: &AtomicU64, y: &AtomicU64, _: &ModelMutex<()>) -> u64 {
    mo.atomic_add(1, x);
    mo.read_once(y)
}
/// ... unless `smp_mb__after_atomic()` follows it (v6.1's `try_grab_folio`).
fn sb_add_mb_x(mo: MemoryModel, x: &AtomicU64, y: &AtomicU64, _: &ModelMutex<()>) -> u64 {
    mo.atomic_add(1, x);
    mo.smp_mb__after_atomic();
    mo.read_once(y)
}
/// A store, then a lock acquisition, then a load (fork's write_protect_seq, then the
/// page-table lock, then the refcount): acquire only on arm64, a locked instruction on
/// x86.
fn sb_lock_y(mo: MemoryModel, x: &AtomicU64, y: &AtomicU64, lock: &ModelMutex<()>) -> u64 {
    mo.write_once(y, 1);
    let _g = mo.spin_lock(lock);
    mo.read_once(x)
}

const SB: (u64, u64) = (0, 0);

#[test]
fn sb_without_barriers_allows_both_stale_on_every_memory_model_but_sc() {
    assert!(outcomes(sb_plain_x, sb_plain_y, MemoryModel::Lkmm).contains(&SB));
    // TSO lets a store wait in the store buffer past a later load: the one reordering
    // x86 has.
    assert!(outcomes(sb_plain_x, sb_plain_y, MemoryModel::Tso).contains(&SB));
    assert!(!outcomes(sb_plain_x, sb_plain_y, MemoryModel::Sc).contains(&SB));
}

#[test]
fn sb_with_smp_mb_on_both_sides_forbids_it() {
    let o = outcomes(sb_mb_x, sb_mb_y, MemoryModel::Lkmm);
    assert!(!o.contains(&SB), "{o:?}");
    assert_eq!(o.len(), 3, "the other three outcomes stay possible: {o:?}");
    assert!(!outcomes(sb_mb_x, sb_mb_y, MemoryModel::Tso).contains(&SB));
}

#[test]
fn sb_with_smp_mb_on_one_side_only_allows_it() {
    assert!(outcomes(sb_mb_x, sb_plain_y, MemoryModel::Lkmm).contains(&SB));
}

#[test]
fn sb_value_returning_rmw_is_a_full_barrier_and_a_plain_add_is_not() {
    assert!(!outcomes(sb_rmw_x, sb_mb_y, MemoryModel::Lkmm).contains(&SB));
    assert!(outcomes(sb_add_x, sb_mb_y, MemoryModel::Lkmm).contains(&SB));
    assert!(!outcomes(sb_add_mb_x, sb_mb_y, MemoryModel::Lkmm).contains(&SB));
    // On x86 every locked RMW is a full barrier.
    assert!(!outcomes(sb_add_x, sb_mb_y, MemoryModel::Tso).contains(&SB));
}

#[test]
fn sb_spin_lock_is_acquire_on_arm64_and_a_full_barrier_on_x86() {
    assert!(outcomes(sb_mb_x, sb_lock_y, MemoryModel::Lkmm).contains(&SB));
    assert!(!outcomes(sb_mb_x, sb_lock_y, MemoryModel::Tso).contains(&SB));
}

// ---- message passing: data, then flag / flag, then data -------------------------------
// Seeing the flag (r1 = 1) but stale data (r2 = 0) is allowed unless the writer orders
// its stores and the reader its loads.

fn mp_plain_w(mo: MemoryModel, x: &AtomicU64, y: &AtomicU64, _: &ModelMutex<()>) -> u64 {
    mo.write_once(x, 1); // data
    mo.write_once(y, 1); // flag
    0
}
fn mp_wmb_w(mo: MemoryModel, x: &AtomicU64, y: &AtomicU64, _: &ModelMutex<()>) -> u64 {
    mo.write_once(x, 1);
    mo.smp_wmb();
    mo.write_once(y, 1);
    0
}
/// `clear_bit` + `smp_mb__after_atomic()` then the store: page_try_share_anon_rmap then
/// KSM restoring the PTE (v6.1).
fn mp_bit_after_atomic_w(mo: MemoryModel, x: &AtomicU64, y: &AtomicU64, _: &ModelMutex<()>) -> u64 {
    mo.set_bit(1, x);
    mo.smp_mb__after_atomic();
    mo.write_once(y, 1);
    0
}
fn mp_release_w(mo: MemoryModel, x: &AtomicU64, y: &AtomicU64, _: &ModelMutex<()>) -> u64 {
    mo.write_once(x, 1);
    mo.smp_store_release(y, 1);
    0
}
/// The reader returns `r1 * 10 + r2`.
fn mp_plain_r(mo: MemoryModel, x: &AtomicU64, y: &AtomicU64, _: &ModelMutex<()>) -> u64 {
    let flag = mo.read_once(y);
    let data = mo.read_once(x);
    flag * 10 + data
}
fn mp_rmb_r(mo: MemoryModel, x: &AtomicU64, y: &AtomicU64, _: &ModelMutex<()>) -> u64 {
    let flag = mo.read_once(y);
    mo.smp_rmb();
    let data = mo.read_once(x);
    flag * 10 + data
}
fn mp_acquire_r(mo: MemoryModel, x: &AtomicU64, y: &AtomicU64, _: &ModelMutex<()>) -> u64 {
    let flag = mo.smp_load_acquire(y);
    let data = mo.read_once(x);
    flag * 10 + data
}

/// The message-passing failure: the reader saw the flag (1) and stale data (0).
const MP: (u64, u64) = (0, 10);

#[test]
fn mp_without_barriers_allows_stale_data_except_on_x86() {
    assert!(outcomes(mp_plain_w, mp_plain_r, MemoryModel::Lkmm).contains(&MP));
    // TSO keeps stores in order and loads in order.
    assert!(!outcomes(mp_plain_w, mp_plain_r, MemoryModel::Tso).contains(&MP));
}

#[test]
fn mp_with_wmb_and_rmb_forbids_it_and_either_alone_does_not() {
    let o = outcomes(mp_wmb_w, mp_rmb_r, MemoryModel::Lkmm);
    assert!(!o.contains(&MP), "{o:?}");
    assert!(o.contains(&(0, 11)) && o.contains(&(0, 0)), "{o:?}");
    assert!(outcomes(mp_wmb_w, mp_plain_r, MemoryModel::Lkmm).contains(&MP));
    assert!(outcomes(mp_plain_w, mp_rmb_r, MemoryModel::Lkmm).contains(&MP));
}

#[test]
fn mp_release_acquire_forbids_it() {
    assert!(!outcomes(mp_release_w, mp_acquire_r, MemoryModel::Lkmm).contains(&MP));
}

#[test]
fn mp_after_atomic_pairs_with_rmb_as_088b8aa537c2_uses_them() {
    // x holds the flag word: bit 1 set means "cleared exclusive" here; the reader sees
    // the restored PTE (y = 1) and must then see the bit.
    fn reader(mo: MemoryModel, x: &AtomicU64, y: &AtomicU64, _: &ModelMutex<()>) -> u64 {
        let pte = mo.read_once(y);
        mo.smp_rmb();
        let bit = u64::from(mo.test_bit(1, x));
        pte * 10 + bit
    }
    let o = outcomes(mp_bit_after_atomic_w, reader, MemoryModel::Lkmm);
    assert!(!o.contains(&MP), "{o:?}");
}
