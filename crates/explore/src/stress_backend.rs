//! stress: the same execution on real OS threads, again and again. This is what a
//! kernel developer would do without a model checker: loop until the race hits.

use std::time::Instant;

use cowbreak_mm::Violation;

use crate::{Collector, Outcome};

/// Run `execution` on real threads up to `iterations` times or until `deadline`,
/// stopping early after the first violation if `stop_after_first`.
pub fn explore_stress<F>(
    iterations: u64,
    stop_after_first: bool,
    execution: F,
    deadline: Instant,
) -> Outcome
where
    F: Fn() -> Vec<Violation>,
{
    let mut collector = Collector::default();
    for _ in 0..iterations {
        if Instant::now() >= deadline {
            break;
        }
        collector.begin_execution();
        let v = execution();
        let broke = !v.is_empty();
        collector.record(v);
        if broke && stop_after_first {
            break;
        }
    }
    collector.into_outcome()
}
