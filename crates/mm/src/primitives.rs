//! The kernel's ordering vocabulary, in one place: every access the model makes to shared
//! state goes through a function named after the kernel primitive it models.
//!
//! The kernel keeps this vocabulary in a few headers: `include/asm-generic/rwonce.h`
//! (`READ_ONCE`, `WRITE_ONCE`), `include/linux/atomic/atomic-instrumented.h` (every atomic
//! and its `_relaxed` / `_acquire` / `_release` forms), `include/asm-generic/bitops/`
//! (`set_bit`, `test_and_set_bit_lock`, ...), `include/asm-generic/barrier.h` (`smp_mb`,
//! `smp_rmb`, `smp_wmb`, `smp_load_acquire`, ...). Its meaning is the Linux kernel memory
//! model (`tools/memory-model`, LKMM). A reviewer compares a model function with its kernel
//! function line by line: the same primitives in the same order.
//!
//! # Mapping to C11, as loom explores it
//!
//! loom models C11 atomics. It models `fence(SeqCst)` correctly but treats SeqCst *loads
//! and stores* as AcqRel (loom #180, #108), so no primitive here is a SeqCst access: a
//! full barrier is always a SeqCst fence. Under [`MemoryModel::Lkmm`] (the kernel memory
//! model as a weakly ordered machine such as arm64 implements it):
//!
//! | kernel primitive | C11 |
//! |---|---|
//! | `READ_ONCE`, `atomic_read`, `test_bit` | relaxed load |
//! | `WRITE_ONCE`, `atomic_set` | relaxed store |
//! | `READ_ONCE` of a page-table entry that the walker then dereferences (`ptep_get_lockless`, the hardware walk) | acquire load: LKMM orders the accesses through the address it holds (an address dependency); C11 can only express that as `consume`, which is implemented as acquire |
//! | non-value-returning RMWs: `atomic_inc`, `atomic_add`, `atomic_sub`, `set_bit`, `clear_bit`, and every `_relaxed` form | relaxed RMW |
//! | value-returning and conditional RMWs: `atomic_add_return`, `atomic_dec_and_test`, `atomic_sub_and_test`, `atomic_add_negative`, `atomic_add_unless` (on success), `xchg`, `cmpxchg` (on success), `test_and_set_bit`, `test_and_clear_bit` | `fence(SeqCst)`; relaxed RMW; `fence(SeqCst)` (LKMM: "as if `smp_mb()` before and after") |
//! | `_acquire` / `_release` forms, `test_and_set_bit_lock`, `clear_bit_unlock` | acquire / release RMW |
//! | `smp_load_acquire`, `smp_store_release` | acquire load, release store |
//! | `smp_mb`, `smp_mb__before_atomic`, `smp_mb__after_atomic` | `fence(SeqCst)` |
//! | `smp_rmb` | `fence(Acquire)` (orders earlier loads before later ones when paired with a release) |
//! | `smp_wmb` | `fence(Release)` |
//! | `spin_lock` / `spin_unlock`, `down_read` / `down_write` / `up_*` | the backend's lock: acquire / release |
//!
//! Under [`MemoryModel::Tso`] (x86, approximated as TSO): plain loads are acquire, plain
//! stores release, and every locked RMW (every atomic RMW, lock acquisition included) is
//! fully ordered; `smp_rmb`, `smp_wmb` and `smp_mb__before/after_atomic` are compiler
//! barriers only, and `smp_mb` is `mfence`. Stores may still pass later loads (store
//! buffering), which is what TSO allows.
//!
//! shuttle and the stress backend run the same code: shuttle is sequentially consistent
//! whatever the ordering says (it only explores interleavings), and real threads get what
//! the hardware gives.
//!
//! # What this does not capture
//!
//! - C11 has no address dependencies: a `READ_ONCE` whose value is only used to *compute*
//!   the next address is modeled as acquire, which also orders it before later accesses
//!   that do not depend on it. The model reads through such entries only in walks, where
//!   every later access does depend on them.
//! - LKMM's full barriers are stronger than C11 SeqCst fences in cumulativity corner cases
//!   with three or more threads; none of the modeled protocols rely on them.

use cowbreak_sync::atomic::{fence, AtomicI64, AtomicU64, Ordering, Ordering::*};

use crate::record;
use cowbreak_sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// How accesses are ordered under loom: the architecture's memory model (the `tso`
/// switch of [`Policy`](crate::Policy) picks it).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Default)]
pub enum MemoryModel {
    /// The Linux kernel memory model on a weakly ordered machine (arm64): only what the
    /// primitives promise.
    #[default]
    Lkmm,
    /// x86: total store order. Loads are acquire, stores release, locked RMWs full
    /// barriers.
    Tso,
    /// Sequential consistency: a full barrier before and after every access (the
    /// `sequential_consistency` test switch), to tell a weak-memory bug from an
    /// interleaving one.
    Sc,
}

/// A word of model state that the primitives operate on: the backend's `AtomicU64` and
/// `AtomicI64`.
pub trait Word {
    /// The value type.
    type V: Copy + PartialEq + std::fmt::Debug;
    #[doc(hidden)]
    fn load(&self, o: Ordering) -> Self::V;
    #[doc(hidden)]
    fn store(&self, v: Self::V, o: Ordering);
    #[doc(hidden)]
    fn swap(&self, v: Self::V, o: Ordering) -> Self::V;
    #[doc(hidden)]
    fn fetch_add(&self, v: Self::V, o: Ordering) -> Self::V;
    #[doc(hidden)]
    fn fetch_sub(&self, v: Self::V, o: Ordering) -> Self::V;
    #[doc(hidden)]
    fn fetch_or(&self, v: Self::V, o: Ordering) -> Self::V;
    #[doc(hidden)]
    fn fetch_and(&self, v: Self::V, o: Ordering) -> Self::V;
    #[doc(hidden)]
    fn cas(&self, old: Self::V, new: Self::V, o: Ordering) -> Result<Self::V, Self::V>;
    #[doc(hidden)]
    fn wrapping_add(a: Self::V, b: Self::V) -> Self::V;
    #[doc(hidden)]
    fn wrapping_sub(a: Self::V, b: Self::V) -> Self::V;
    /// The value's bits, for the record of accesses.
    #[doc(hidden)]
    fn bits(v: Self::V) -> u64;
}

macro_rules! word {
    ($atomic:ty, $v:ty) => {
        impl Word for $atomic {
            type V = $v;
            fn load(&self, o: Ordering) -> $v {
                <$atomic>::load(self, o)
            }
            fn store(&self, v: $v, o: Ordering) {
                <$atomic>::store(self, v, o)
            }
            fn swap(&self, v: $v, o: Ordering) -> $v {
                <$atomic>::swap(self, v, o)
            }
            fn fetch_add(&self, v: $v, o: Ordering) -> $v {
                <$atomic>::fetch_add(self, v, o)
            }
            fn fetch_sub(&self, v: $v, o: Ordering) -> $v {
                <$atomic>::fetch_sub(self, v, o)
            }
            fn fetch_or(&self, v: $v, o: Ordering) -> $v {
                <$atomic>::fetch_or(self, v, o)
            }
            fn fetch_and(&self, v: $v, o: Ordering) -> $v {
                <$atomic>::fetch_and(self, v, o)
            }
            fn cas(&self, old: $v, new: $v, o: Ordering) -> Result<$v, $v> {
                <$atomic>::compare_exchange(self, old, new, o, Relaxed)
            }
            fn wrapping_add(a: $v, b: $v) -> $v {
                a.wrapping_add(b)
            }
            fn wrapping_sub(a: $v, b: $v) -> $v {
                a.wrapping_sub(b)
            }
            fn bits(v: $v) -> u64 {
                v as u64
            }
        }
    };
}

/// The address of a location: its identity in the record of accesses.
fn addr<W>(x: &W) -> usize {
    x as *const W as usize
}

word!(AtomicU64, u64);
word!(AtomicI64, i64);

impl MemoryModel {
    /// A load with the ordering its kernel form has (`Relaxed` for a plain load,
    /// `Acquire` for `smp_load_acquire` and dependency-heading reads).
    fn load<W: Word>(self, prim: &'static str, x: &W, order: Ordering) -> W::V {
        let v = match self {
            MemoryModel::Lkmm => x.load(order),
            MemoryModel::Tso => x.load(Acquire),
            MemoryModel::Sc => {
                fence(SeqCst);
                let v = x.load(Relaxed);
                fence(SeqCst);
                v
            }
        };
        if record::on() {
            record::load(prim, addr(x), W::bits(v));
        }
        v
    }

    /// A store with the ordering its kernel form has.
    fn store<W: Word>(self, prim: &'static str, x: &W, v: W::V, order: Ordering) {
        match self {
            MemoryModel::Lkmm => x.store(v, order),
            MemoryModel::Tso => x.store(v, Release),
            MemoryModel::Sc => {
                fence(SeqCst);
                x.store(v, Relaxed);
                fence(SeqCst);
            }
        }
        if record::on() {
            record::store(prim, addr(x), W::bits(v));
        }
    }

    /// An RMW with the ordering its kernel form names (`order`: `Relaxed` for the
    /// unordered forms, `Acquire` / `Release` for `_acquire` / `_release`, `SeqCst` for the
    /// fully ordered ones). Under TSO every RMW is a locked instruction: fully ordered.
    /// `op` returns the old value and, if it stored, the new one.
    fn rmw<W: Word>(
        self,
        prim: &'static str,
        x: &W,
        order: Ordering,
        op: impl FnOnce(Ordering) -> (W::V, Option<W::V>),
    ) -> W::V {
        let full = order == SeqCst || self != MemoryModel::Lkmm;
        let (old, new) = if full {
            fence(SeqCst);
            let r = op(Relaxed);
            fence(SeqCst);
            r
        } else {
            op(order)
        };
        if record::on() {
            record::load(prim, addr(x), W::bits(old));
            if let Some(new) = new {
                record::store(prim, addr(x), W::bits(new));
            }
        }
        old
    }

    // ---- rwonce.h ----------------------------------------------------------------

    /// `READ_ONCE(*x)`.
    pub fn read_once<W: Word>(self, x: &W) -> W::V {
        self.load("READ_ONCE", x, Relaxed)
    }

    /// `WRITE_ONCE(*x, v)`.
    pub fn write_once<W: Word>(self, x: &W, v: W::V) {
        self.store("WRITE_ONCE", x, v, Relaxed)
    }

    /// `READ_ONCE(*x)` of an entry the caller dereferences next (a page-table entry read
    /// by a lockless walker: `pmdp_get_lockless`, `ptep_get_lockless`, the hardware
    /// walk). LKMM orders the accesses through it by their address dependency; C11 only
    /// by `consume`, which is acquire.
    pub fn read_once_dep<W: Word>(self, x: &W) -> W::V {
        self.load("READ_ONCE (dependency)", x, Acquire)
    }

    // ---- barrier.h ---------------------------------------------------------------

    /// `smp_mb()`.
    pub fn smp_mb(self) {
        fence(SeqCst)
    }

    /// `smp_rmb()`: a compiler barrier on x86.
    pub fn smp_rmb(self) {
        match self {
            MemoryModel::Lkmm => fence(Acquire),
            MemoryModel::Tso => {}
            MemoryModel::Sc => fence(SeqCst),
        }
    }

    /// `smp_wmb()`: a compiler barrier on x86.
    pub fn smp_wmb(self) {
        match self {
            MemoryModel::Lkmm => fence(Release),
            MemoryModel::Tso => {}
            MemoryModel::Sc => fence(SeqCst),
        }
    }

    /// `smp_mb__before_atomic()`: a full barrier before a non-value-returning RMW; a
    /// compiler barrier on x86, whose atomics are full barriers already.
    #[allow(non_snake_case)]
    pub fn smp_mb__before_atomic(self) {
        if self != MemoryModel::Tso {
            fence(SeqCst)
        }
    }

    /// `smp_mb__after_atomic()`: see [`smp_mb__before_atomic`](Self::smp_mb__before_atomic).
    #[allow(non_snake_case)]
    pub fn smp_mb__after_atomic(self) {
        if self != MemoryModel::Tso {
            fence(SeqCst)
        }
    }

    /// `smp_load_acquire(x)`.
    pub fn smp_load_acquire<W: Word>(self, x: &W) -> W::V {
        self.load("smp_load_acquire", x, Acquire)
    }

    /// `smp_store_release(x, v)`.
    pub fn smp_store_release<W: Word>(self, x: &W, v: W::V) {
        self.store("smp_store_release", x, v, Release)
    }

    // ---- atomic.h ----------------------------------------------------------------

    /// `atomic_read(x)`.
    pub fn atomic_read<W: Word>(self, x: &W) -> W::V {
        self.load("atomic_read", x, Relaxed)
    }

    /// `atomic_set(x, v)`.
    pub fn atomic_set<W: Word>(self, x: &W, v: W::V) {
        self.store("atomic_set", x, v, Relaxed)
    }

    /// `atomic_add(v, x)` (also `atomic_inc`, `page_ref_add`, `page_ref_inc`): unordered.
    pub fn atomic_add<W: Word>(self, v: W::V, x: &W) {
        self.rmw("atomic_add", x, Relaxed, |o| {
            let old = x.fetch_add(v, o);
            (old, Some(W::wrapping_add(old, v)))
        });
    }

    /// `atomic_sub(v, x)` (also `atomic_dec`, `page_ref_sub`): unordered.
    pub fn atomic_sub<W: Word>(self, v: W::V, x: &W) {
        self.rmw("atomic_sub", x, Relaxed, |o| {
            let old = x.fetch_sub(v, o);
            (old, Some(W::wrapping_sub(old, v)))
        });
    }

    /// `atomic_fetch_add(v, x)` (`atomic_add_return` returns the new value): fully
    /// ordered; returns the old value.
    pub fn atomic_fetch_add<W: Word>(self, v: W::V, x: &W) -> W::V {
        self.rmw("atomic_add_return", x, SeqCst, |o| {
            let old = x.fetch_add(v, o);
            (old, Some(W::wrapping_add(old, v)))
        })
    }

    /// `atomic_fetch_sub(v, x)` (`atomic_sub_and_test`, `atomic_dec_and_test`,
    /// `atomic_add_negative` are this and a test of the result): fully ordered; returns
    /// the old value.
    pub fn atomic_fetch_sub<W: Word>(self, v: W::V, x: &W) -> W::V {
        self.rmw("atomic_sub_return", x, SeqCst, |o| {
            let old = x.fetch_sub(v, o);
            (old, Some(W::wrapping_sub(old, v)))
        })
    }

    /// `atomic_fetch_add_unless(x, v, u)` (`atomic_add_unless`, `page_ref_add_unless`):
    /// add `v` unless the value is `u`; fully ordered when it adds, unordered when it does
    /// not. Returns the old value.
    pub fn atomic_fetch_add_unless<W: Word>(self, x: &W, v: W::V, u: W::V) -> W::V {
        // The kernel's generic form: a try_cmpxchg loop.
        let mut cur = self.load("atomic_add_unless", x, Relaxed);
        loop {
            if cur == u {
                return cur;
            }
            let new = W::wrapping_add(cur, v);
            let mut won = false;
            let seen = self.rmw("atomic_add_unless", x, SeqCst, |o| {
                match x.cas(cur, new, o) {
                    Ok(old) => {
                        won = true;
                        (old, Some(new))
                    }
                    Err(now) => (now, None),
                }
            });
            if won {
                return cur;
            }
            cur = seen;
        }
    }

    /// `xchg(x, v)`: fully ordered.
    pub fn xchg<W: Word>(self, x: &W, v: W::V) -> W::V {
        self.rmw("xchg", x, SeqCst, |o| (x.swap(v, o), Some(v)))
    }

    /// `xchg_relaxed(x, v)`.
    pub fn xchg_relaxed<W: Word>(self, x: &W, v: W::V) -> W::V {
        self.rmw("xchg_relaxed", x, Relaxed, |o| (x.swap(v, o), Some(v)))
    }

    /// `cmpxchg(x, old, new)`: fully ordered (on success; a failed cmpxchg is modeled as
    /// ordered too, which is stronger than LKMM promises). Returns the value it found.
    pub fn cmpxchg<W: Word>(self, x: &W, old: W::V, new: W::V) -> W::V {
        self.rmw("cmpxchg", x, SeqCst, |o| match x.cas(old, new, o) {
            Ok(v) => (v, Some(new)),
            Err(v) => (v, None),
        })
    }

    /// `cmpxchg_acquire(x, old, new)` (`atomic_long_try_cmpxchg_acquire`): acquire when it
    /// succeeds. Returns the value it found.
    pub fn cmpxchg_acquire<W: Word>(self, x: &W, old: W::V, new: W::V) -> W::V {
        self.rmw("cmpxchg_acquire", x, Acquire, |o| {
            match x.cas(old, new, o) {
                Ok(v) => (v, Some(new)),
                Err(v) => (v, None),
            }
        })
    }

    /// `atomic_long_fetch_sub_release(v, x)` (`up_read` / `up_write` dropping their
    /// bias). Returns the old value.
    pub fn atomic_fetch_sub_release<W: Word>(self, v: W::V, x: &W) -> W::V {
        self.rmw("atomic_fetch_sub_release", x, Release, |o| {
            let old = x.fetch_sub(v, o);
            (old, Some(W::wrapping_sub(old, v)))
        })
    }

    /// `cmpxchg_relaxed(x, old, new)`. Returns the value it found.
    pub fn cmpxchg_relaxed<W: Word>(self, x: &W, old: W::V, new: W::V) -> W::V {
        self.rmw("cmpxchg_relaxed", x, Relaxed, |o| {
            match x.cas(old, new, o) {
                Ok(v) => (v, Some(new)),
                Err(v) => (v, None),
            }
        })
    }

    // ---- bitops ------------------------------------------------------------------

    /// `test_bit(mask, x)` (bits are masks here).
    pub fn test_bit(self, mask: u64, x: &AtomicU64) -> bool {
        self.load("test_bit", x, Relaxed) & mask != 0
    }

    /// `set_bit(mask, x)`: unordered.
    pub fn set_bit(self, mask: u64, x: &AtomicU64) {
        self.rmw("set_bit", x, Relaxed, |o| {
            let old = x.fetch_or(mask, o);
            (old, Some(old | mask))
        });
    }

    /// `clear_bit(mask, x)`: unordered.
    pub fn clear_bit(self, mask: u64, x: &AtomicU64) {
        self.rmw("clear_bit", x, Relaxed, |o| {
            let old = x.fetch_and(!mask, o);
            (old, Some(old & !mask))
        });
    }

    /// `__set_bit(mask, x)`: the non-atomic form, for words nobody else writes
    /// concurrently (a new page's flags).
    pub fn __set_bit(self, mask: u64, x: &AtomicU64) {
        let v = self.load("__set_bit", x, Relaxed);
        self.store("__set_bit", x, v | mask, Relaxed);
    }

    /// `test_and_set_bit(mask, x)`: fully ordered.
    pub fn test_and_set_bit(self, mask: u64, x: &AtomicU64) -> bool {
        let old = self.rmw("test_and_set_bit", x, SeqCst, |o| {
            let old = x.fetch_or(mask, o);
            (old, Some(old | mask))
        });
        old & mask != 0
    }

    /// `test_and_set_bit_lock(mask, x)`: acquire (`trylock_page`).
    pub fn test_and_set_bit_lock(self, mask: u64, x: &AtomicU64) -> bool {
        let old = self.rmw("test_and_set_bit_lock", x, Acquire, |o| {
            let old = x.fetch_or(mask, o);
            (old, Some(old | mask))
        });
        old & mask != 0
    }

    /// `clear_bit_unlock(mask, x)`: release (`unlock_page`).
    pub fn clear_bit_unlock(self, mask: u64, x: &AtomicU64) {
        self.rmw("clear_bit_unlock", x, Release, |o| {
            let old = x.fetch_and(!mask, o);
            (old, Some(old & !mask))
        });
    }

    // ---- locks -------------------------------------------------------------------

    /// `spin_lock(lock)`: acquire; on x86 the lock is taken by a locked instruction, a
    /// full barrier. `spin_unlock` is the guard's drop: release.
    pub fn spin_lock<T>(self, lock: &Mutex<T>) -> MutexGuard<'_, T> {
        let guard = lock.lock();
        self.after_locked_acquire();
        guard
    }

    /// `down_read(sem)` (`mmap_read_lock`): acquire; a locked `xadd` on x86.
    pub fn down_read<T>(self, sem: &RwLock<T>) -> RwLockReadGuard<'_, T> {
        let guard = sem.read();
        self.after_locked_acquire();
        guard
    }

    /// `down_read_trylock(sem)`: acquire when it succeeds.
    pub fn down_read_trylock<T>(self, sem: &RwLock<T>) -> Option<RwLockReadGuard<'_, T>> {
        let guard = sem.try_read();
        self.after_locked_acquire();
        guard
    }

    /// `down_write_trylock(sem)`: acquire when it succeeds.
    pub fn down_write_trylock<T>(self, sem: &RwLock<T>) -> Option<RwLockWriteGuard<'_, T>> {
        let guard = sem.try_write();
        self.after_locked_acquire();
        guard
    }

    /// `down_write(sem)` (`mmap_write_lock`): acquire; a locked `cmpxchg` on x86.
    pub fn down_write<T>(self, sem: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
        let guard = sem.write();
        self.after_locked_acquire();
        guard
    }

    fn after_locked_acquire(self) {
        if self != MemoryModel::Lkmm {
            fence(SeqCst)
        }
    }

    // ---- seqcount.h --------------------------------------------------------------

    /// `raw_write_seqcount_begin(s)`: `s->sequence++; smp_wmb();` (the writer is
    /// serialized by a lock of its own, here the mmap_lock held for write).
    pub fn raw_write_seqcount_begin(self, s: &AtomicU64) {
        let seq = self.read_once(s);
        self.write_once(s, seq + 1);
        self.smp_wmb();
    }

    /// `raw_write_seqcount_end(s)`: `smp_wmb(); s->sequence++;`.
    pub fn raw_write_seqcount_end(self, s: &AtomicU64) {
        self.smp_wmb();
        let seq = self.read_once(s);
        self.write_once(s, seq + 1);
    }

    /// `raw_read_seqcount(s)`: `READ_ONCE(s->sequence); smp_rmb();`.
    pub fn raw_read_seqcount(self, s: &AtomicU64) -> u64 {
        let seq = self.read_once(s);
        self.smp_rmb();
        seq
    }

    /// `read_seqcount_retry(s, start)`: `smp_rmb(); READ_ONCE(s->sequence) != start`.
    pub fn read_seqcount_retry(self, s: &AtomicU64, start: u64) -> bool {
        self.smp_rmb();
        self.read_once(s) != start
    }
}

/// The hardware's own synchronization, which no kernel primitive names: an interrupt (an
/// IPI) is taken between instructions, and a broadcast TLB invalidation completes only
/// once the accesses in flight that used the old translation are done. So a CPU that has
/// interrupts off, or is in the middle of one access, is seen by the other side either
/// entirely before or entirely after. The model marks such sections with a per-CPU epoch
/// word ([`crate::irq`]) and gives both sides of the handshake a full barrier: it is the
/// hardware's guarantee, not an `smp_mb()` in the kernel's source.
pub mod hw {
    use super::*;

    /// Enter a section on this CPU: add `add` to its epoch word, then a full barrier
    /// (what the CPU does inside is ordered after the entry).
    pub fn section_enter(epoch: &AtomicU64, add: u64) -> u64 {
        let e = epoch.fetch_add(add, Relaxed);
        fence(SeqCst);
        if record::on() {
            record::store("section enter (hardware)", addr(epoch), e + add);
        }
        e
    }

    /// Leave it (release: everything inside happens before whoever waited for it).
    pub fn section_exit(epoch: &AtomicU64, add: u64) -> u64 {
        let e = epoch.fetch_add(add, Release);
        if record::on() {
            record::store("section exit (hardware)", addr(epoch), e + add);
        }
        e
    }

    /// The waiting side: a full barrier after what it published, before it reads the
    /// epochs of the CPUs it waits for.
    pub fn sender_fence() {
        fence(SeqCst)
    }

    /// Read a CPU's epoch word while waiting for it to leave a section (acquire: what it
    /// did inside happens before the waiter goes on).
    pub fn epoch(epoch: &AtomicU64) -> u64 {
        let e = epoch.load(Acquire);
        if record::on() {
            record::load("IPI / grace-period wait (hardware)", addr(epoch), e);
        }
        e
    }
}
