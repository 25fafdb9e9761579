//! POS, partial order sampling (Yuan, Yang and Gu, "Partial Order Aware Concurrency
//! Sampling", CAV 2018), driven by what the model knows about every step.
//!
//! Every pending event (the next step of each task) carries a random priority, and the
//! runnable task whose event has the highest priority runs. When an event runs, the
//! events of other tasks that race with it (the same object, one of them a write) get
//! fresh random priorities, and so does the next event of the task that ran. Events that
//! do not race keep theirs. The paper shows that this samples the partial orders of
//! racing events far more evenly than a random walk, which spends its draws on orders of
//! independent steps that all lead to the same outcome.
//!
//! What an event is about comes from the model: every scheduling point of the shuttle
//! backend is an atomic access, a lock or an event wait of `cowbreak-sync`, which
//! announces its object (the PTE slot, the page's refcount, mapcount or flags word, the
//! lock, the seqcount) and whether it writes
//! ([`cowbreak_sync::next_access`]). shuttle's own points (spawn, join, yield, the inside
//! of a lock) are unknown events: they race with nothing and get a fresh priority when
//! they run.
//!
//! A task that yields (a spin loop waiting for another task) gets the lowest priority,
//! as PCT does, so that a spinner never starves the task it waits for.
//!
//! The scheduler is seeded, so a seed gives the same schedules every time, and the
//! schedules it makes are recorded and replayed like any other.

use cowbreak_sync::{next_access, Access};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use shuttle::scheduler::{Schedule, Scheduler, Task, TaskId};
use shuttle_engine::scheduler::{DataSource, RandomDataSource};

/// The POS scheduler: `iterations` executions from `seed`.
#[derive(Debug)]
pub(crate) struct PosScheduler {
    rng: Pcg64Mcg,
    data: RandomDataSource,
    iterations: usize,
    max_iterations: usize,
    /// Priority of each task's pending event, by task id (0: yielded, lowest).
    prio: Vec<u64>,
    /// Each task's pending event, as it announced it at its last scheduling point.
    pending: Vec<Access>,
}

impl PosScheduler {
    pub(crate) fn new(seed: u64, max_iterations: usize) -> PosScheduler {
        PosScheduler {
            rng: Pcg64Mcg::seed_from_u64(seed),
            data: RandomDataSource::initialize(seed),
            iterations: 0,
            max_iterations,
            prio: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// A fresh random priority, never the yielded one.
    fn fresh(&mut self) -> u64 {
        self.rng.gen::<u64>() | 1
    }

    /// Make room for task `t`, with a fresh priority if it is new.
    fn know(&mut self, t: usize) {
        while self.prio.len() <= t {
            let p = self.fresh();
            self.prio.push(p);
            self.pending.push(Access::UNKNOWN);
        }
    }
}

impl Scheduler for PosScheduler {
    fn new_execution(&mut self) -> Option<Schedule> {
        if self.iterations >= self.max_iterations {
            return None;
        }
        self.iterations += 1;
        self.prio.clear();
        self.pending.clear();
        Some(Schedule::new(self.data.reinitialize()))
    }

    fn next_task(
        &mut self,
        runnable: &[&Task],
        current: Option<TaskId>,
        is_yielding: bool,
    ) -> Option<TaskId> {
        if let Some(c) = current {
            let c = usize::from(c);
            self.know(c);
            self.pending[c] = next_access();
            if is_yielding {
                self.prio[c] = 0;
            }
        }
        let mut best: Option<(u64, usize)> = None;
        for t in runnable {
            let id = usize::from(t.id());
            self.know(id);
            let p = self.prio[id];
            if best.is_none_or(|(bp, _)| p > bp) {
                best = Some((p, id));
            }
        }
        let (_, chosen) = best?;
        // The chosen event runs: the events racing with it, and the chosen task's next
        // one, are reordered afresh.
        let ran = self.pending[chosen];
        for t in 0..self.pending.len() {
            if t != chosen && self.pending[t].conflicts(ran) {
                self.prio[t] = self.fresh();
            }
        }
        self.prio[chosen] = self.fresh();
        self.pending[chosen] = Access::UNKNOWN;
        Some(TaskId::from(chosen))
    }

    fn next_u64(&mut self) -> u64 {
        self.data.next_u64()
    }
}
