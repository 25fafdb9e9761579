//! stress: the same execution on real OS threads, again and again. This is what a
//! kernel developer would do without a model checker: loop until the race hits.

use cowbreak_mm::Violation;

use crate::{Collector, Outcome};

/// Run `execution` on real threads up to `iterations` times, stopping early after
/// `stop_after_first` once something broke.
pub fn explore_stress<F>(iterations: u64, stop_after_first: bool, execution: F) -> Outcome
where
    F: Fn() -> Vec<Violation>,
{
    let mut collector = Collector::default();
    for _ in 0..iterations {
        collector.begin_execution();
        let v = execution();
        let broke = !v.is_empty();
        collector.record(v, None, 0);
        if broke && stop_after_first {
            break;
        }
    }
    collector.into_outcome()
}
