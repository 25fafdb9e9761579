//! PCT, probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi and
//! Nagarakatte, "A Randomized Scheduler with Probabilistic Guarantees of Finding Bugs",
//! ASPLOS 2010), as shuttle's `PctScheduler` runs it, with the same random draws in the
//! same order: a seed gives the very schedules shuttle's gives (the test below checks),
//! so campaigns, traces and the matrix are unchanged by the swap.
//!
//! The algorithm, in shuttle's variant (which follows Coyote's): every task has a
//! distinct priority and the runnable task with the best one runs. The first execution
//! runs oldest-first to learn how many decisions an execution takes; every later one
//! shuffles the priorities and picks `depth - 1` change points among the decisions seen
//! so far; at a change point, or when the running task yields, that task drops below
//! every other. Steps with a single runnable task are not decisions and never change
//! points. A new task takes the priority of a random existing task, which moves below
//! all others.
//!
//! Why our own: shuttle keeps the priorities in a SipHash `HashMap` that it reads for
//! every runnable task at every step (7% of a campaign's time when the issue was
//! filed); here they are a `Vec` indexed by task id. The seed is the one given: unlike
//! shuttle's, `SHUTTLE_RANDOM_SEED` does not override it (a campaign's chunks each have
//! their own seed).

use rand::seq::{index::sample, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use shuttle::scheduler::{Schedule, Scheduler, Task, TaskId};
use shuttle_engine::runtime::task::DEFAULT_INLINE_TASKS;
use shuttle_engine::scheduler::{DataSource, RandomDataSource};

/// The PCT scheduler: `max_iterations` executions of depth `depth` from `seed`.
#[derive(Debug)]
pub(crate) struct PctScheduler {
    rng: Pcg64Mcg,
    data: RandomDataSource,
    depth: usize,
    iterations: usize,
    max_iterations: usize,
    /// Each task's priority, by task id; lower runs first. All distinct.
    priority: Vec<usize>,
    /// The priority the next demoted or new task gets (worse than all).
    next: usize,
    /// The decisions at which the running task is demoted (at most `depth - 1`).
    change_points: Vec<usize>,
    /// Decisions in this execution so far, and the most any execution took.
    steps: usize,
    max_steps: usize,
}

impl PctScheduler {
    pub(crate) fn new(seed: u64, depth: usize, max_iterations: usize) -> PctScheduler {
        assert!(depth > 0, "PCT depth is at least 1");
        PctScheduler {
            rng: Pcg64Mcg::seed_from_u64(seed),
            data: RandomDataSource::initialize(seed),
            depth,
            iterations: 0,
            max_iterations,
            priority: (0..DEFAULT_INLINE_TASKS).collect(),
            next: DEFAULT_INLINE_TASKS,
            change_points: Vec::new(),
            steps: 0,
            max_steps: 0,
        }
    }
}

impl Scheduler for PctScheduler {
    fn new_execution(&mut self) -> Option<Schedule> {
        if self.iterations >= self.max_iterations {
            return None;
        }
        self.steps = 0;
        // The first execution only measures (oldest first); from the second on, fresh
        // priorities and change points among the decisions seen.
        if self.iterations > 0 {
            if self.max_steps == 0 {
                // It never ran two tasks at once: it was the only schedule there is.
                // (shuttle's PCT panics here.)
                return None;
            }
            let mut order: Vec<usize> = (0..self.priority.len()).collect();
            order.shuffle(&mut self.rng);
            self.priority = order;
            self.next = self.priority.len();
            let points = (self.depth - 1).min(self.max_steps - 1);
            // Decisions 1..max_steps: none at 0, where the shuffle already chose.
            self.change_points = sample(&mut self.rng, self.max_steps - 1, points)
                .iter()
                .map(|s| s + 1)
                .collect();
        }
        self.iterations += 1;
        Some(Schedule::new(self.data.reinitialize()))
    }

    fn next_task(
        &mut self,
        runnable: &[&Task],
        current: Option<TaskId>,
        is_yielding: bool,
    ) -> Option<TaskId> {
        // Tasks never seen: each takes a random task's priority (maybe its own slot's,
        // the worst), and that task moves to the worst.
        let newest = runnable.iter().map(|t| usize::from(t.id())).max()?;
        while self.priority.len() <= newest {
            let id = self.priority.len();
            let target = self.rng.gen_range(0..self.priority.len()) + 1;
            let mine = if target == id {
                self.next
            } else {
                std::mem::replace(&mut self.priority[target], self.next)
            };
            self.priority.push(mine);
            self.next += 1;
        }
        if runnable.len() > 1 {
            if is_yielding || self.change_points.contains(&self.steps) {
                let c = usize::from(current.expect("a task ran before the first decision"));
                self.priority[c] = self.next;
                self.next += 1;
            }
            self.steps += 1;
            self.max_steps = self.max_steps.max(self.steps);
        }
        runnable
            .iter()
            .map(|t| t.id())
            .min_by_key(|&id| self.priority[usize::from(id)])
    }

    fn next_u64(&mut self) -> u64 {
        self.data.next_u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shuttle::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    /// Records every task a scheduler picks.
    struct Log<S> {
        inner: S,
        picks: Arc<Mutex<Vec<usize>>>,
    }

    impl<S: Scheduler> Scheduler for Log<S> {
        fn new_execution(&mut self) -> Option<Schedule> {
            self.picks.lock().unwrap().push(usize::MAX);
            self.inner.new_execution()
        }
        fn next_task(
            &mut self,
            runnable: &[&Task],
            current: Option<TaskId>,
            is_yielding: bool,
        ) -> Option<TaskId> {
            let t = self.inner.next_task(runnable, current, is_yielding);
            self.picks.lock().unwrap().extend(t.map(usize::from));
            t
        }
        fn next_u64(&mut self) -> u64 {
            self.inner.next_u64()
        }
    }

    fn picks(s: impl Scheduler + 'static) -> Vec<usize> {
        let picks = Arc::new(Mutex::new(Vec::new()));
        let log = Log {
            inner: s,
            picks: Arc::clone(&picks),
        };
        shuttle::Runner::new(log, shuttle::Config::new()).run(|| {
            // Three threads that race on a counter, one of them spinning until it moves,
            // and a nested spawn: decisions, yields and new tasks.
            let n = Arc::new(AtomicUsize::new(0));
            let hs: Vec<_> = (0..3)
                .map(|i| {
                    let n = Arc::clone(&n);
                    shuttle::thread::spawn(move || {
                        if i == 2 {
                            while n.load(Ordering::SeqCst) == 0 {
                                shuttle::thread::yield_now();
                            }
                            let m = Arc::clone(&n);
                            shuttle::thread::spawn(move || m.fetch_add(1, Ordering::SeqCst))
                                .join()
                                .unwrap();
                        }
                        for _ in 0..3 {
                            n.fetch_add(1, Ordering::SeqCst);
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
        });
        Arc::try_unwrap(picks).unwrap().into_inner().unwrap()
    }

    /// Same seed, same schedules as shuttle's PCT, at depths 1 to 3; and the seeds do
    /// differ. Budget: 30 executions for each of 8 seeds and 3 depths.
    #[test]
    fn schedules_are_shuttles() {
        let mut all = std::collections::HashSet::new();
        for depth in 1..=3 {
            for seed in 0..8 {
                let ours = picks(PctScheduler::new(seed, depth, 30));
                let theirs = picks(shuttle::scheduler::PctScheduler::new_from_seed(
                    seed, depth, 30,
                ));
                assert_eq!(ours, theirs, "seed {seed}, depth {depth}");
                all.insert(ours);
            }
        }
        assert!(all.len() > 8, "only {} distinct schedule sets", all.len());
    }
}
