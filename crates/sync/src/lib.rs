//! The one backend switch of cowbreak.
//!
//! Every piece of model state in the workspace (page refcounts, page-table entries,
//! locks, per-CPU epochs) is built from the types in this crate, so one model source
//! runs unchanged under three backends:
//!
//! | build | backend | what it is for |
//! |---|---|---|
//! | `--cfg loom` | [loom](https://docs.rs/loom) | exhaustive exploration within a preemption bound, C11 weak memory |
//! | default | [shuttle](https://docs.rs/shuttle) | randomized campaigns (random, PCT, URW, POS, SURW, DFS) and exact replay |
//! | `--cfg cowbreak_stress` | `std` | real OS threads: the stress baseline a kernel developer would otherwise use |
//!
//! Architecture invariant: nothing else in the workspace names loom, shuttle or
//! `std::sync` for model state. The only `std::sync` types handed out here are
//! [`Ghost`], for the oracle's bookkeeping, [`GhostBits`], for notes such as the
//! switches a run read, and [`Arc`], the handle model threads share state through: none
//! ever adds a scheduling point.

#![warn(missing_docs)]

#[cfg(loom)]
use loom as backend;
#[cfg(all(not(loom), not(cowbreak_stress)))]
use shuttle as backend;
#[cfg(all(not(loom), cowbreak_stress))]
use std as backend;

/// Which backend this build of the model runs on.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// loom, built with `--cfg loom`.
    Loom,
    /// shuttle, the default build.
    Shuttle,
    /// real threads, built with `--cfg cowbreak_stress`.
    Stress,
}

/// The backend this crate was compiled for.
pub const BACKEND: Backend = if cfg!(loom) {
    Backend::Loom
} else if cfg!(cowbreak_stress) {
    Backend::Stress
} else {
    Backend::Shuttle
};

#[cfg(all(not(loom), not(cowbreak_stress)))]
mod shuttle_atomic;

#[cfg(loom)]
mod loom_setup;

/// Atomics and fences of the selected backend. Under shuttle they are this crate's own
/// (`shuttle_atomic`): shuttle's scheduling point without its causality bookkeeping.
pub mod atomic {
    #[cfg(any(loom, cowbreak_stress))]
    pub use super::backend::sync::atomic::{
        AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering,
    };
    #[cfg(loom)]
    pub use super::loom_setup::fence;
    #[cfg(all(not(loom), not(cowbreak_stress)))]
    pub use super::shuttle_atomic::fence;
    #[cfg(all(not(loom), not(cowbreak_stress)))]
    pub use super::shuttle_atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize};
    #[cfg(all(not(loom), cowbreak_stress))]
    pub use std::sync::atomic::fence;
    #[cfg(all(not(loom), not(cowbreak_stress)))]
    pub use std::sync::atomic::Ordering;
}

#[cfg(all(not(loom), not(cowbreak_stress)))]
pub use shuttle_atomic::{next_access, object_key, Access};

/// Name the memory the running execution's objects live in (shuttle only, for the
/// schedulers that learn which objects race across executions; elsewhere nothing).
pub fn set_regions(regions: impl IntoIterator<Item = (usize, usize)>) {
    #[cfg(all(not(loom), not(cowbreak_stress)))]
    shuttle_atomic::set_regions(regions);
    #[cfg(any(loom, cowbreak_stress))]
    let _ = regions;
}

/// The memory `items` occupy, as a region for [`set_regions`]: (address, length).
pub fn region_of<T>(items: &[T]) -> (usize, usize) {
    (items.as_ptr() as usize, std::mem::size_of_val(items))
}

/// Run `f`, which takes or waits on the object at `object`, so that a scheduler asked
/// inside it knows what the step is about ([`next_access`], shuttle only).
#[inline]
fn announce<T: ?Sized, R>(object: &T, write: bool, f: impl FnOnce() -> R) -> R {
    #[cfg(all(not(loom), not(cowbreak_stress)))]
    return shuttle_atomic::announce(object as *const T as *const () as usize, write, f);
    #[allow(unreachable_code)]
    {
        let _ = (object as *const T, write);
        f()
    }
}

/// Run `f` with atomic accesses that are not scheduling points: for a scenario's setup,
/// which runs before any model thread exists (or after all have been joined), so that
/// nothing could be interleaved with it and leaving the points out changes no outcome.
/// Under shuttle the accesses in `f` cost no scheduling steps. Under loom, which has
/// nothing to branch on while one thread runs, the fences in `f` are skipped: they
/// order nothing that the spawn (or join) does not already order, and each costs loom
/// a walk over every atomic's stores. On real threads this is just `f()`.
pub fn without_scheduling<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(all(not(loom), not(cowbreak_stress)))]
    return shuttle_atomic::without_scheduling(f);
    #[cfg(loom)]
    return loom_setup::without_fences(f);
    #[allow(unreachable_code)]
    f()
}

/// Threads of the selected backend.
pub mod thread {
    pub use super::backend::thread::{spawn, yield_now, JoinHandle};
}

/// The handle that shares model state between model threads: `std`'s `Arc` on every
/// backend. Sharing is not itself model state. shuttle's `Arc` is `std`'s already; loom's
/// makes every clone and drop a branch point and orders the drops of different threads as
/// dependent accesses, so loom explored each order in which the threads dropped their
/// handles at their ends (and main cloned them between spawns): 2 to 3 times the
/// executions for the same interleavings of the model's own accesses (dirty-cow v6.2
/// x86 at bound 2: 177 executions with loom's, 77 with this). Leaving those points out
/// loses no interleaving of the model's accesses within a bound: each schedule with them
/// is one without them, less the handle steps, with no more preemptions.
pub use std::sync::Arc;

/// A mutual-exclusion lock of the selected backend (a scheduling point on lock and unlock).
///
/// The wrapper exists so that model code has one signature on every backend: poisoning
/// is not part of the model, a poisoned lock means a model thread already panicked.
#[derive(Debug, Default)]
pub struct Mutex<T>(backend::sync::Mutex<T>);

/// Guard returned by [`Mutex::lock`].
pub type MutexGuard<'a, T> = backend::sync::MutexGuard<'a, T>;

impl<T> Mutex<T> {
    /// A new unlocked mutex holding `value`.
    pub fn new(value: T) -> Self {
        Mutex(backend::sync::Mutex::new(value))
    }

    /// Lock, blocking (in the model's sense) until the lock is free.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        announce(self, true, || {
            self.0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        })
    }
}

/// A reader-writer lock of the selected backend, used for `mmap_lock`.
///
/// Under loom the trylocks do not use loom's own: loom 0.7.3 lets a thread that is in
/// the middle of `try_read` / `try_write` (at the scheduling point before it looks at the
/// lock) be marked blocked by another thread's acquisition, as if it waited for the lock
/// (tokio-rs/loom#376, fix proposed in #383). A trylock that never waits then never runs
/// again, and a thread spinning on something it would release spins until loom gives up.
/// So the wrapper keeps its own count of holders (bookkeeping, not model state: no
/// scheduling point): a trylock decides on the count, and a `try_write` that succeeds
/// reserves the lock there before it takes loom's; an acquisition that finds the lock
/// reserved by such a `try_write` lets go and waits. Under shuttle and on real threads
/// the backend's trylocks are used as they are.
#[derive(Debug, Default)]
pub struct RwLock<T> {
    inner: backend::sync::RwLock<T>,
    /// Readers holding it, or -1 for a writer (a `try_write` counts from the moment it
    /// succeeds).
    held: std::sync::atomic::AtomicIsize,
}

/// Shared guard returned by [`RwLock::read`].
pub struct RwLockReadGuard<'a, T> {
    guard: backend::sync::RwLockReadGuard<'a, T>,
    held: &'a std::sync::atomic::AtomicIsize,
}

/// Exclusive guard returned by [`RwLock::write`].
pub struct RwLockWriteGuard<'a, T> {
    guard: backend::sync::RwLockWriteGuard<'a, T>,
    held: &'a std::sync::atomic::AtomicIsize,
}

impl<T> std::ops::Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> std::ops::Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> std::ops::DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        // Before the backend's guard (a field) releases the lock.
        self.held.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl<T> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.held.store(0, std::sync::atomic::Ordering::SeqCst);
    }
}

impl<T> RwLock<T> {
    /// A new unlocked rwlock holding `value`.
    pub fn new(value: T) -> Self {
        RwLock {
            inner: backend::sync::RwLock::new(value),
            held: std::sync::atomic::AtomicIsize::new(0),
        }
    }

    fn count(&self) -> isize {
        self.held.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn set(&self, v: isize) {
        self.held.store(v, std::sync::atomic::Ordering::SeqCst);
    }

    fn backend_read(&self) -> backend::sync::RwLockReadGuard<'_, T> {
        announce(self, false, || {
            self.inner
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        })
    }

    fn backend_write(&self) -> backend::sync::RwLockWriteGuard<'_, T> {
        announce(self, true, || {
            self.inner
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        })
    }

    fn read_guard<'a>(
        &'a self,
        guard: backend::sync::RwLockReadGuard<'a, T>,
    ) -> RwLockReadGuard<'a, T> {
        self.held.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        RwLockReadGuard {
            guard,
            held: &self.held,
        }
    }

    fn write_guard<'a>(
        &'a self,
        guard: backend::sync::RwLockWriteGuard<'a, T>,
    ) -> RwLockWriteGuard<'a, T> {
        self.set(-1);
        RwLockWriteGuard {
            guard,
            held: &self.held,
        }
    }

    /// Take the lock shared if nobody holds it exclusive (`down_read_trylock`).
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        if cfg!(loom) {
            if self.count() < 0 {
                return None;
            }
            let guard = self.backend_read();
            // A try_write reserved it meanwhile: the trylock came second.
            return (self.count() >= 0).then(|| self.read_guard(guard));
        }
        match announce(self, false, || self.inner.try_read()) {
            Ok(g) => Some(self.read_guard(g)),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(self.read_guard(p.into_inner())),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// Take the lock exclusive if nobody holds it (`down_write_trylock`).
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        if cfg!(loom) {
            if self.count() != 0 {
                return None;
            }
            // Reserved: whoever takes loom's lock before us lets go again.
            self.set(-1);
            let guard = self.backend_write();
            return Some(self.write_guard(guard));
        }
        match announce(self, true, || self.inner.try_write()) {
            Ok(g) => Some(self.write_guard(g)),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(self.write_guard(p.into_inner())),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// Take the lock shared (`down_read`).
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        loop {
            let guard = self.backend_read();
            if self.count() >= 0 {
                return self.read_guard(guard);
            }
            // Reserved by a try_write (only under loom): let go, wait.
            drop(guard);
            spin_wait();
        }
    }

    /// Take the lock exclusive (`down_write`).
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        loop {
            let guard = self.backend_write();
            if self.count() == 0 {
                return self.write_guard(guard);
            }
            drop(guard);
            spin_wait();
        }
    }
}

/// A one-shot event for ordering points between model threads (scenario `signal` /
/// `wait`). Blocking, not spinning, so that it adds no steps to an exploration.
#[derive(Debug, Default)]
pub struct Event {
    set: backend::sync::Mutex<bool>,
    cond: backend::sync::Condvar,
}

impl Event {
    /// A new, unsignalled event.
    pub fn new() -> Self {
        Event {
            set: backend::sync::Mutex::new(false),
            cond: backend::sync::Condvar::new(),
        }
    }

    /// Signal the event, waking every waiter.
    pub fn signal(&self) {
        let mut set = announce(self, true, || {
            self.set.lock().unwrap_or_else(|p| p.into_inner())
        });
        *set = true;
        self.cond.notify_all();
    }

    /// Block until the event has been signalled.
    pub fn wait(&self) {
        self.wait_unless(|| false);
    }

    /// Block until the event has been signalled or, after a [`Event::kick`], `stop()`
    /// holds (a killable wait: `stop` asks whether a fatal signal is pending). Returns
    /// whether the event was signalled.
    pub fn wait_unless(&self, stop: impl Fn() -> bool) -> bool {
        let mut set = announce(self, false, || {
            self.set.lock().unwrap_or_else(|p| p.into_inner())
        });
        while !*set {
            if stop() {
                return false;
            }
            set = self.cond.wait(set).unwrap_or_else(|p| p.into_inner());
        }
        true
    }

    /// Wake every waiter without signalling, so that each asks its `stop` again.
    pub fn kick(&self) {
        let _set = self.set.lock().unwrap_or_else(|p| p.into_inner());
        self.cond.notify_all();
    }
}

/// The index of the running model thread as the backend numbers them (the thread that
/// started the execution is 0, spawned threads count up from 1), where the backend can
/// tell without a scheduling point: shuttle and loom. For attributing trace events.
pub fn current_task() -> Option<usize> {
    #[cfg(all(not(loom), not(cowbreak_stress)))]
    return shuttle::current::try_get_current_task().map(usize::from);
    #[cfg(loom)]
    {
        // loom numbers its threads in spawn order and shows the number only through
        // `Debug` ("ThreadId(N)"); asking is not a branch point.
        let id = format!("{:?}", loom::thread::current().id());
        return id
            .strip_prefix("ThreadId(")
            .and_then(|s| s.strip_suffix(')'))
            .and_then(|n| n.parse().ok());
    }
    #[allow(unreachable_code)]
    None
}

/// Spin once in a busy-wait loop: a yield, so that loom and shuttle schedule someone
/// else (shuttle's PCT deprioritizes a yielding thread) and real threads make progress.
pub fn spin_wait() {
    #[cfg(all(not(loom), cowbreak_stress))]
    std::hint::spin_loop();
    thread::yield_now();
}

/// Up to 64 flags shared by every clone, for bookkeeping that is not model state (like
/// [`Ghost`]): setting one is a plain std atomic on every backend, never a scheduling
/// point and never part of what loom explores. Setting a flag already set only reads.
#[derive(Clone, Debug, Default)]
pub struct GhostBits(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl GhostBits {
    /// Set flag `bit` (below 64).
    #[inline]
    pub fn set(&self, bit: u32) {
        use std::sync::atomic::Ordering::Relaxed;
        // A load first: once a flag is set, the line stays shared between threads.
        if self.0.load(Relaxed) & (1 << bit) == 0 {
            self.0.fetch_or(1 << bit, Relaxed);
        }
    }

    /// The flags set so far.
    pub fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Bookkeeping that is not model state: the oracle's ghost state and the collectors that
/// carry results out of an execution.
///
/// It is a plain `std::sync::Mutex` on every backend, so touching it is never a
/// scheduling point: observing an execution must not change which executions exist.
/// Under loom and shuttle only one model thread runs at a time, so the lock is
/// uncontended; on real threads it serializes the oracle, which is what we want.
#[derive(Debug, Default)]
pub struct Ghost<T>(std::sync::Mutex<T>);

impl<T> Ghost<T> {
    /// New ghost state.
    pub const fn new(value: T) -> Self {
        Ghost(std::sync::Mutex::new(value))
    }

    /// Run `f` with exclusive access to the ghost state.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Take the value out, leaving the default.
    pub fn take(&self) -> T
    where
        T: Default,
    {
        self.with(std::mem::take)
    }
}

/// A fresh copy of model state, taken with exclusive access (`&mut self`) while no model
/// thread can touch it: no scheduling point, no lock taken, no access recorded. Locks
/// are copied unlocked with their values; atomics with their values.
///
/// What it is for: a campaign builds its kernel and runs the scenario's setup once, keeps
/// a snapshot, and starts every later execution from a snapshot of that (see
/// [`SNAPSHOTS`]). Setup is a fixed function of the scenario and the switches, so every
/// execution starts from the same state either way; the copy only costs less (measured
/// with callgrind on `cve-2020-29374-thp`: building the kernel and running setup were
/// 16% of a PCT campaign's instructions).
pub trait Snapshot {
    /// The copy.
    fn snapshot(&mut self) -> Self;
}

/// Whether [`Snapshot`] may carry state from one execution to the next on this backend.
/// Not under loom: a loom object belongs to the execution that made it, so every
/// execution builds its own.
pub const SNAPSHOTS: bool = !cfg!(loom);

macro_rules! snapshot_atomic {
    ($($t:ident),*) => {$(
        impl Snapshot for atomic::$t {
            fn snapshot(&mut self) -> Self {
                #[cfg(not(loom))]
                return atomic::$t::new(*self.get_mut());
                // SAFETY: `&mut self`: no other thread can access the atomic.
                #[cfg(loom)]
                return atomic::$t::new(unsafe { self.unsync_load() });
            }
        }
    )*};
}

snapshot_atomic!(AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize);

impl<T: Clone> Snapshot for Mutex<T> {
    fn snapshot(&mut self) -> Self {
        Mutex::new(
            self.0
                .get_mut()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone(),
        )
    }
}

impl<T: Clone> Snapshot for RwLock<T> {
    fn snapshot(&mut self) -> Self {
        debug_assert_eq!(*self.held.get_mut(), 0, "a snapshot of a held rwlock");
        RwLock::new(
            self.inner
                .get_mut()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone(),
        )
    }
}

impl<T: Clone> Snapshot for Ghost<T> {
    fn snapshot(&mut self) -> Self {
        Ghost::new(
            self.0
                .get_mut()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone(),
        )
    }
}

impl<T: Snapshot> Snapshot for Vec<T> {
    fn snapshot(&mut self) -> Self {
        self.iter_mut().map(Snapshot::snapshot).collect()
    }
}

impl<T: Snapshot, const N: usize> Snapshot for [T; N] {
    fn snapshot(&mut self) -> Self {
        let mut items = self.iter_mut();
        std::array::from_fn(|_| items.next().expect("N items").snapshot())
    }
}
