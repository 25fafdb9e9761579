//! Atomics for the shuttle backend: one scheduling point per access, nothing else.
//!
//! shuttle's own atomics (`shuttle_std::sync::atomic`) do three things per access: a
//! scheduling point (`shuttle_engine::runtime::thread::switch`), the access, and a vector
//! clock update for shuttle's causality tracking; and each one hashes its source location
//! into a `ResourceSignature` when it is created. The model never asks shuttle about
//! causality, and `Kernel::new` creates hundreds of atomics per execution: measured on
//! the matrix (perf, call graphs), the signatures alone were 8.9% of all CPU. These
//! types keep the scheduling point, at the same place (before the access, as shuttle's
//! do), so every schedule is the one shuttle's atomics would have given, and drop the
//! rest.
//!
//! Under [`without_scheduling`] an access is not a scheduling point at all: that is how a
//! scenario's setup (its `map` lines, run before any model thread exists) costs no steps.
//!
//! Every access is `SeqCst` on the host: shuttle runs one task at a time on one OS
//! thread, so the ordering argument only matters for the host's compiler, and shuttle is
//! sequentially consistent whatever the model asked for (loom explores the orderings).

use std::cell::Cell;
use std::sync::atomic::Ordering;

thread_local! {
    /// Set while the running shuttle execution is in a [`without_scheduling`] section.
    static UNSCHEDULED: Cell<bool> = const { Cell::new(false) };
    /// The access the running task is about to make, while it is at the scheduling point
    /// before it: what a scheduler asked at that point may read with [`next_access`].
    static NEXT: Cell<Access> = const { Cell::new(Access::UNKNOWN) };
    /// The running execution's regions ([`set_regions`]).
    static REGIONS: std::cell::RefCell<Vec<(usize, usize)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Name the memory the running execution's objects live in, as (address, length)
/// ranges in an order that is the same in every execution (the kernel, its frame pool,
/// its table pool, ...). Objects are fresh in every execution, so their addresses
/// change; their place in a region does not: [`object_key`] gives it. Reuses the
/// previous execution's list: nothing is allocated once it has grown.
pub fn set_regions(regions: impl IntoIterator<Item = (usize, usize)>) {
    REGIONS.with(|r| {
        let mut r = r.borrow_mut();
        r.clear();
        r.extend(regions);
    });
}

/// The object at `address` as (its region's index << 40 | its offset in the region),
/// the same in every execution; `None` outside every region.
pub fn object_key(address: usize) -> Option<u64> {
    REGIONS.with(|r| {
        let r = r.borrow();
        let i = r
            .iter()
            .position(|&(base, len)| address >= base && address - base < len)?;
        Some(((i as u64) << 40) | (address - r[i].0) as u64)
    })
}

/// What a task is about to do at a scheduling point: the object (its address, stable for
/// the execution) and whether it writes. Schedulers that reason about conflicting
/// accesses (POS, SURW) read it; the model never does.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// The object's address; 0 when the step is not one of ours (shuttle's own points:
    /// spawn, join, yield, the inside of a lock).
    pub object: usize,
    /// Whether the access may change the object (a store, an RMW, taking or releasing a
    /// lock exclusively).
    pub write: bool,
}

impl Access {
    /// A step whose access is not known.
    pub const UNKNOWN: Access = Access {
        object: 0,
        write: false,
    };

    /// Whether two accesses race: the same object, one of them a write. An unknown
    /// access conflicts with nothing.
    pub fn conflicts(self, other: Access) -> bool {
        self.object != 0 && self.object == other.object && (self.write || other.write)
    }
}

/// The access the running task is about to make, read by a scheduler inside the
/// scheduling point before it ([`Access::UNKNOWN`] elsewhere).
pub fn next_access() -> Access {
    NEXT.with(Cell::get)
}

/// Run `f`, a step of shuttle's own (taking a lock, waiting), as an access to `object`:
/// what [`next_access`] says at the scheduling points inside it.
#[inline]
pub fn announce<R>(object: usize, write: bool, f: impl FnOnce() -> R) -> R {
    NEXT.with(|n| n.set(Access { object, write }));
    let r = f();
    NEXT.with(|n| n.set(Access::UNKNOWN));
    r
}

/// The scheduling point before an access (shuttle's `thread::switch`), unless the
/// execution is in a [`without_scheduling`] section.
#[inline]
fn point(object: usize, write: bool) {
    if !UNSCHEDULED.with(Cell::get) {
        announce(object, write, shuttle_engine::runtime::thread::switch);
    }
}

/// Run `f` with atomic accesses that are not scheduling points. Only for code that runs
/// while no other model thread exists (a scenario's setup before it spawns its threads):
/// there nothing could be interleaved, so leaving the points out changes no outcome,
/// only the cost. Locks taken in `f` are still the backend's (one forced step each),
/// but they do not count toward the execution's step bound (`steps_max`): whether a
/// setup ran or its result was copied (`Snapshot`), an execution that does not finish
/// is cut after the same steps of its threads.
pub fn without_scheduling<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            UNSCHEDULED.with(|u| u.set(self.0));
        }
    }
    let reset = Reset(UNSCHEDULED.with(|u| u.replace(true)));
    let r = f();
    let outermost = !reset.0;
    drop(reset);
    if outermost && shuttle_engine::current::try_get_current_task().is_some() {
        shuttle_engine::current::reset_step_count();
    }
    r
}

/// A fence: nothing under shuttle, which runs one task at a time and is sequentially
/// consistent (loom explores what fences order). shuttle's own `fence` is a no-op too,
/// but first compare-and-swaps a process-wide warning flag for any ordering weaker than
/// `SeqCst`: a cache line every exploring thread writes, which campaigns on two threads
/// fought over at every `smp_rmb` and `smp_wmb`.
#[inline]
pub fn fence(_order: Ordering) {}

macro_rules! atomic_int {
    ($name:ident, $std:ty, $t:ty) => {
        /// The shuttle backend's atomic: a scheduling point, then the access.
        #[derive(Default)]
        pub struct $name($std);

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                // No scheduling point: formatting is not part of the model.
                self.0.load(Ordering::SeqCst).fmt(f)
            }
        }

        #[allow(missing_docs)]
        impl $name {
            pub const fn new(v: $t) -> Self {
                $name(<$std>::new(v))
            }
            #[inline]
            fn addr(&self) -> usize {
                self as *const Self as usize
            }
            #[inline]
            pub fn load(&self, _o: Ordering) -> $t {
                point(self.addr(), false);
                self.0.load(Ordering::SeqCst)
            }
            #[inline]
            pub fn store(&self, v: $t, _o: Ordering) {
                point(self.addr(), true);
                self.0.store(v, Ordering::SeqCst)
            }
            #[inline]
            pub fn swap(&self, v: $t, _o: Ordering) -> $t {
                point(self.addr(), true);
                self.0.swap(v, Ordering::SeqCst)
            }
            #[inline]
            pub fn compare_exchange(
                &self,
                old: $t,
                new: $t,
                _s: Ordering,
                _f: Ordering,
            ) -> Result<$t, $t> {
                point(self.addr(), true);
                self.0
                    .compare_exchange(old, new, Ordering::SeqCst, Ordering::SeqCst)
            }
            #[inline]
            pub fn fetch_add(&self, v: $t, _o: Ordering) -> $t {
                point(self.addr(), true);
                self.0.fetch_add(v, Ordering::SeqCst)
            }
            #[inline]
            pub fn fetch_sub(&self, v: $t, _o: Ordering) -> $t {
                point(self.addr(), true);
                self.0.fetch_sub(v, Ordering::SeqCst)
            }
            #[inline]
            pub fn fetch_or(&self, v: $t, _o: Ordering) -> $t {
                point(self.addr(), true);
                self.0.fetch_or(v, Ordering::SeqCst)
            }
            #[inline]
            pub fn fetch_and(&self, v: $t, _o: Ordering) -> $t {
                point(self.addr(), true);
                self.0.fetch_and(v, Ordering::SeqCst)
            }
            /// Exclusive access: not a scheduling point (nobody else can see it).
            pub fn get_mut(&mut self) -> &mut $t {
                self.0.get_mut()
            }
            /// The value, consuming the atomic: not a scheduling point.
            pub fn into_inner(self) -> $t {
                self.0.into_inner()
            }
        }
    };
}

atomic_int!(AtomicU64, std::sync::atomic::AtomicU64, u64);
atomic_int!(AtomicI64, std::sync::atomic::AtomicI64, i64);
atomic_int!(AtomicU32, std::sync::atomic::AtomicU32, u32);
atomic_int!(AtomicUsize, std::sync::atomic::AtomicUsize, usize);

/// The shuttle backend's atomic boolean: a scheduling point, then the access.
#[derive(Default)]
pub struct AtomicBool(std::sync::atomic::AtomicBool);

impl std::fmt::Debug for AtomicBool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.load(Ordering::SeqCst).fmt(f)
    }
}

#[allow(missing_docs)]
impl AtomicBool {
    pub const fn new(v: bool) -> Self {
        AtomicBool(std::sync::atomic::AtomicBool::new(v))
    }
    #[inline]
    fn addr(&self) -> usize {
        self as *const Self as usize
    }
    #[inline]
    pub fn load(&self, _o: Ordering) -> bool {
        point(self.addr(), false);
        self.0.load(Ordering::SeqCst)
    }
    #[inline]
    pub fn store(&self, v: bool, _o: Ordering) {
        point(self.addr(), true);
        self.0.store(v, Ordering::SeqCst)
    }
    #[inline]
    pub fn swap(&self, v: bool, _o: Ordering) -> bool {
        point(self.addr(), true);
        self.0.swap(v, Ordering::SeqCst)
    }
    /// Exclusive access: not a scheduling point (nobody else can see it).
    pub fn get_mut(&mut self) -> &mut bool {
        self.0.get_mut()
    }
    /// The value, consuming the atomic: not a scheduling point.
    pub fn into_inner(self) -> bool {
        self.0.into_inner()
    }
}
