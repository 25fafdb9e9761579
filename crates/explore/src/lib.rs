//! Exploration backends: run one model execution many times under a scheduler and
//! collect the distinct violations the oracle reports.
//!
//! An execution is a closure that builds a fresh [`Kernel`](cowbreak_mm::Kernel), runs
//! model threads on it, joins them and returns what the oracle saw. It must not panic on
//! a violation: the oracle records, the closure returns, and the campaign goes on.
//!
//! | build | function | what it explores |
//! |---|---|---|
//! | default | [`explore_shuttle`] | random, PCT, URW, POS, SURW or DFS schedules, seeded; each violation comes with its replayable schedule |
//! | `--cfg loom` | `explore_loom` | every interleaving within a preemption bound, under C11 weak memory |
//! | `--cfg cowbreak_stress` | `explore_stress` | the same execution on real threads, over and over |

#![warn(missing_docs)]

use std::collections::BTreeMap;

use cowbreak_mm::{Violation, ViolationKind};

#[cfg(all(not(loom), not(cowbreak_stress)))]
pub mod campaign;
#[cfg(loom)]
mod loom_backend;
#[cfg(all(not(loom), not(cowbreak_stress)))]
pub mod minimize;
#[cfg(all(not(loom), not(cowbreak_stress)))]
mod pct;
#[cfg(all(not(loom), not(cowbreak_stress)))]
mod pos;
#[cfg(all(not(loom), not(cowbreak_stress)))]
mod shuttle_backend;
#[cfg(all(not(loom), cowbreak_stress))]
mod stress_backend;
#[cfg(all(not(loom), not(cowbreak_stress)))]
mod surw;

pub mod trace_build;

#[cfg(loom)]
pub use loom_backend::{explore_loom, loom_path, replay_loom, LoomConfig};
#[cfg(all(not(loom), not(cowbreak_stress)))]
pub use shuttle_backend::{
    check_schedule, explore_shuttle, explore_shuttle_with, replay_shuttle, run_once, Control,
    Replayed, ShuttleConfig, Strategy,
};
#[cfg(all(not(loom), cowbreak_stress))]
pub use stress_backend::explore_stress;

/// One distinct violation found by a campaign.
#[derive(Clone, Debug)]
pub struct Found {
    /// The first report (for a kind and place) in the kept execution.
    pub violation: Violation,
    /// The 1-based execution where this kind and place first broke.
    pub first_at_execution: u64,
    /// The 1-based execution whose schedule is kept (the first of the shortest).
    pub shortest_at_execution: u64,
    /// The schedule of the shortest execution that broke it, encoded (shuttle only).
    pub schedule: Option<String>,
    /// Scheduling decisions in that schedule.
    pub schedule_len: usize,
}

/// What a campaign saw.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Executions run.
    pub executions: u64,
    /// Scheduling points over all executions (shuttle only): every step, forced or not.
    pub steps: u64,
    /// The steps among them that were decisions, two or more tasks runnable (shuttle
    /// only): what a schedule records and a scheduler chooses.
    pub decisions: u64,
    /// Distinct violations, by (kind, place), in the order first found.
    pub violations: Vec<Found>,
    /// The exploration was stopped before its budget ran out.
    pub interrupted: bool,
    /// The scheduler found only one schedule to run (PCT on a scenario that never has
    /// two threads runnable at once): more executions would repeat it.
    pub single_schedule: bool,
}

impl Outcome {
    /// Whether any violation of `kind` was found.
    pub fn found(&self, kind: ViolationKind) -> bool {
        self.violations.iter().any(|f| f.violation.kind == kind)
    }

    /// The kinds found, sorted and without repeats.
    pub fn kinds(&self) -> Vec<ViolationKind> {
        let mut k: Vec<_> = self.violations.iter().map(|f| f.violation.kind).collect();
        k.sort();
        k.dedup();
        k
    }
}

/// Collects violations across executions: distinct by (kind, place), keeping the
/// shortest schedule for each.
#[derive(Debug, Default)]
pub(crate) struct Collector {
    executions: u64,
    pub(crate) steps: u64,
    pub(crate) decisions: u64,
    order: Vec<(ViolationKind, &'static str)>,
    found: BTreeMap<(ViolationKind, &'static str), Found>,
    pub(crate) single_schedule: bool,
}

impl Collector {
    /// Record what execution number `self.executions` saw, without a schedule.
    #[cfg_attr(all(not(loom), not(cowbreak_stress)), allow(dead_code))]
    pub(crate) fn record(&mut self, violations: Vec<Violation>) {
        self.record_with(violations, 0, None::<fn() -> String>)
    }

    /// Record what execution number `self.executions` saw, with its schedule of
    /// `schedule_len` decisions. `encode` gives the schedule's text; it is called only
    /// where the schedule is kept (a first violation of its kind, or a shorter schedule
    /// for one), at most once: a campaign on a buggy era sees the same violation in most
    /// of its executions, and encoding each was measured at 2.6% of such a campaign.
    pub(crate) fn record_with(
        &mut self,
        violations: Vec<Violation>,
        schedule_len: usize,
        encode: Option<impl FnOnce() -> String>,
    ) {
        let execution = self.executions;
        let has_schedule = encode.is_some();
        let mut encode = encode;
        let mut encoded: Option<String> = None;
        let mut schedule = || {
            if encoded.is_none() {
                encoded = encode.take().map(|e| e());
            }
            encoded.clone()
        };
        for v in violations {
            let key = (v.kind, v.at);
            match self.found.get_mut(&key) {
                Some(f) => {
                    if has_schedule && schedule_len < f.schedule_len {
                        f.violation = v;
                        f.shortest_at_execution = execution;
                        f.schedule = schedule();
                        f.schedule_len = schedule_len;
                    }
                }
                None => {
                    self.order.push(key);
                    let schedule = schedule();
                    self.found.insert(
                        key,
                        Found {
                            violation: v,
                            first_at_execution: execution,
                            shortest_at_execution: execution,
                            schedule,
                            schedule_len,
                        },
                    );
                }
            }
        }
    }

    /// Whether anything broke yet.
    #[cfg(all(not(loom), not(cowbreak_stress)))]
    pub(crate) fn any(&self) -> bool {
        !self.found.is_empty()
    }

    /// Count one more execution; returns how many have begun.
    /// Executions begun so far.
    #[cfg(all(not(loom), not(cowbreak_stress)))]
    pub(crate) fn executions(&self) -> u64 {
        self.executions
    }

    pub(crate) fn begin_execution(&mut self) -> u64 {
        self.executions += 1;
        self.executions
    }

    pub(crate) fn into_outcome(mut self) -> Outcome {
        let violations = self
            .order
            .iter()
            .filter_map(|k| self.found.remove(k))
            .collect();
        Outcome {
            executions: self.executions,
            steps: self.steps,
            decisions: self.decisions,
            violations,
            interrupted: false,
            single_schedule: self.single_schedule,
        }
    }
}
