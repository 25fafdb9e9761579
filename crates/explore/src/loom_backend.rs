//! loom: every interleaving within a preemption bound, under C11 weak memory.
//!
//! loom aborts the process when a check fails while other model threads are alive, so
//! the execution never panics on a violation: the oracle records it, the closure
//! returns it, and this collector keeps it. A loom deadlock still aborts (run loom
//! suites in their own process; `cargo xtask` does).

use std::sync::{Arc, Mutex};

use cowbreak_mm::Violation;

use crate::{Collector, Outcome};

/// Explore `execution` exhaustively with `preemption_bound` (loom's
/// `Builder::preemption_bound`; bound 2 or 3 finds most bugs, each step up costs an order
/// of magnitude).
pub fn explore_loom<F>(preemption_bound: usize, execution: F) -> Outcome
where
    F: Fn() -> Vec<Violation> + Send + Sync + 'static,
{
    let collector = Arc::new(Mutex::new(Collector::default()));
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemption_bound);
    // Spin-waits (the IPI waiting for an interrupts-off CPU) take a branch per yield.
    builder.max_branches = 100_000;
    let c = Arc::clone(&collector);
    builder.check(move || {
        c.lock().unwrap().begin_execution();
        let v = execution();
        c.lock().unwrap().record(v, None, 0);
    });
    let collector = Arc::try_unwrap(collector)
        .ok()
        .expect("loom finished")
        .into_inner()
        .unwrap();
    collector.into_outcome()
}
