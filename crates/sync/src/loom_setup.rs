//! Fences under loom, skipped while a single thread sets up or checks the model.
//!
//! loom's acquire fence (`fence_acq`, also inside every `SeqCst` fence) walks every
//! stored value of every atomic of the execution. The model creates a few hundred
//! atomics, and the kernel primitives it models put a `SeqCst` fence on each side of a
//! value-returning atomic (`primitives.rs`), so the fences of a scenario's setup were
//! 12% of a loom proof's time (perf on huge-dirty-cow, arm64, bound 2).
//!
//! While only one thread exists, a fence orders nothing the thread's own program order
//! does not: an acquire fence would synchronize with the thread's own stores, and what a
//! release fence publishes reaches every thread through the spawn that starts it (or,
//! after the joins, is already known to the joining thread). So `without_fences`
//! leaves them out and the set of executions loom explores is the same.

use std::cell::Cell;

thread_local! {
    // loom runs every model thread as a coroutine on one OS thread, so this flag is
    // shared by them; `without_fences` is only called while one model thread exists.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Run `f` with fences skipped (see the module docs).
pub fn without_fences<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            QUIET.with(|q| q.set(self.0));
        }
    }
    let _reset = Reset(QUIET.with(|q| q.replace(true)));
    f()
}

/// `loom::sync::atomic::fence`, unless inside [`without_fences`].
#[inline]
pub fn fence(order: loom::sync::atomic::Ordering) {
    if !QUIET.with(Cell::get) {
        loom::sync::atomic::fence(order);
    }
}
