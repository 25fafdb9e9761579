//! SURW, selectively uniform random walk (Zhao, Wolff, Mathur and Roychoudhury,
//! "Selectively Uniform Concurrency Testing", ASPLOS 2025), over events the model
//! learns to be interesting: the steps on objects that two tasks touch, one of them
//! writing.
//!
//! URW (shuttle's `UrwRandomScheduler`, from the same paper) runs a task with
//! probability proportional to the events it has left, which samples the interleavings
//! of all events uniformly. Most of those events are independent of every other task's
//! (a lock no one else takes, a page no one else maps), and a uniform sample over their
//! orders spends itself on orders that all lead to the same outcome. SURW samples
//! uniformly over the orders of a chosen set of *interesting* events instead:
//!
//! - A runnable task whose next event is not interesting runs first (any such task,
//!   picked uniformly).
//! - When every runnable task is at an interesting event, a task runs with probability
//!   proportional to the interesting events it has left (the count in the previous
//!   execution, less those it ran since), which makes every order of the interesting
//!   events equally likely.
//! - A task that yields (a spin loop waiting for another task) runs only when nothing
//!   else can, so a spinner never starves the task it waits for.
//!
//! What is interesting is learned, and then sampled:
//!
//! - The model announces every step's object (the PTE slot, the page's refcount,
//!   mapcount or flags word, the lock, the seqcount) and whether it writes
//!   ([`cowbreak_sync::next_access`]), but addresses change from one execution to the
//!   next. So an object is known by each task that touches it as its ordinal among the
//!   distinct objects that task touched in the execution (the k-th object task t
//!   touched), which follows the task's code. After each execution, every object that
//!   two tasks touched, one of them writing, is added to the racing objects, as its
//!   touchers' (task, ordinal) pairs.
//! - Each execution draws a fraction p uniformly from [0, 1) and takes each racing
//!   object as interesting with probability p. With every racing object interesting,
//!   every execution runs the same uninteresting steps first and samples only the
//!   finest interleavings; measured over 50 seeds (`docs/schedulers.md`), that found
//!   the fork race in 5 executions but the no-IPI munmap race in 535 (PCT: 44). A
//!   sampled set leaves some racing objects' steps to run early, as whole blocks: the
//!   munmap race fell to 31, and no built-in race got more than 1.6x worse.
//! - The first execution knows nothing interesting and is a random walk, as URW's first
//!   (estimating) execution is.
//!
//! The scheduler is seeded and uses nothing of the objects but their identity within an
//! execution (racing objects are kept in an order of their own, not the addresses'), so
//! a seed gives the same schedules every time; the schedules it makes are recorded and
//! replayed like any other.

use cowbreak_sync::{next_access, Access};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use rustc_hash::{FxHashMap, FxHashSet};
use shuttle::scheduler::{Schedule, Scheduler, Task, TaskId};
use shuttle_engine::scheduler::{DataSource, RandomDataSource};

/// Tasks whose objects are tracked (task ids below it); a task beyond has no
/// interesting events. The built-ins have at most 9 (8 threads and `main`).
const TASKS: usize = 16;
/// No ordinal: the step is not one of the model's, or its task is not tracked.
const NONE: u32 = u32::MAX;

/// One object's touches in the running execution.
#[derive(Clone, Copy)]
struct Touches {
    /// Each task's ordinal for the object, [`NONE`] if it has not touched it.
    ordinal: [u32; TASKS],
    /// The tasks that touched it, and those that wrote it, as bit sets.
    touched: u16,
    written: u16,
}

/// The SURW scheduler: `max_iterations` executions from `seed`.
#[derive(Debug)]
pub(crate) struct SurwScheduler {
    rng: Pcg64Mcg,
    data: RandomDataSource,
    iterations: usize,
    max_iterations: usize,
    /// This execution's interesting events: by task, which of its ordinals are.
    interesting: Vec<Vec<bool>>,
    /// By task, the interesting events it ran in the previous execution.
    estimate: Vec<u32>,
    /// The running execution's objects, by address.
    objects: FxHashMap<usize, Touches>,
    /// By task: distinct objects touched so far, and its accesses to each by ordinal.
    touched: Vec<Vec<u32>>,
    /// By task: interesting events left (the estimate, less those run).
    remaining: Vec<u32>,
    /// By task: whether its pending event is interesting, and whether it yielded.
    hot: Vec<bool>,
    yielded: Vec<bool>,
    /// Every object found racing so far, as its touchers' (task, ordinal) pairs, in the
    /// order found; and the same as a set.
    groups: Vec<Vec<(usize, u32)>>,
    seen: FxHashSet<Vec<(usize, u32)>>,
    /// The previous execution's accesses, by task and ordinal.
    last: Vec<Vec<u32>>,
}

impl std::fmt::Debug for Touches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "touched={:#x} written={:#x}", self.touched, self.written)
    }
}

impl SurwScheduler {
    pub(crate) fn new(seed: u64, max_iterations: usize) -> SurwScheduler {
        SurwScheduler {
            rng: Pcg64Mcg::seed_from_u64(seed),
            data: RandomDataSource::initialize(seed),
            iterations: 0,
            max_iterations,
            interesting: Vec::new(),
            estimate: Vec::new(),
            objects: FxHashMap::default(),
            touched: Vec::new(),
            remaining: Vec::new(),
            hot: Vec::new(),
            yielded: Vec::new(),
            groups: Vec::new(),
            seen: Default::default(),
            last: Vec::new(),
        }
    }

    /// Make room for task `t` in this execution's state.
    fn know(&mut self, t: usize) {
        while self.hot.len() <= t {
            let id = self.hot.len();
            self.hot.push(false);
            self.yielded.push(false);
            if self.touched.len() <= id {
                self.touched.push(Vec::new());
            }
            let left = self.estimate.get(id).copied().unwrap_or(1);
            self.remaining.push(left);
        }
    }

    /// Note that task `t` is about to make `access`; its ordinal for the object.
    fn note(&mut self, t: usize, access: Access) -> u32 {
        if access.object == 0 || t >= TASKS {
            return NONE;
        }
        let next = self.touched[t].len() as u32;
        let entry = self
            .objects
            .entry(access.object)
            .or_insert_with(|| Touches {
                ordinal: [NONE; TASKS],
                touched: 0,
                written: 0,
            });
        let bit = 1u16 << t;
        entry.touched |= bit;
        if access.write {
            entry.written |= bit;
        }
        let ordinal = if entry.ordinal[t] == NONE {
            entry.ordinal[t] = next;
            self.touched[t].push(0);
            next
        } else {
            entry.ordinal[t]
        };
        self.touched[t][ordinal as usize] += 1;
        ordinal
    }

    /// Whether task `t`'s event on its object `o` is interesting in this execution.
    fn is_interesting(&self, t: usize, o: u32) -> bool {
        o != NONE
            && self
                .interesting
                .get(t)
                .is_some_and(|i| i.get(o as usize).copied().unwrap_or(false))
    }

    /// Add the objects that raced in the execution that just ended to the racing
    /// objects, and keep its access counts for the estimates.
    fn learn(&mut self) {
        let mut found: Vec<Vec<(usize, u32)>> = Vec::new();
        let mut group: Vec<(usize, u32)> = Vec::with_capacity(TASKS);
        for touches in self.objects.values() {
            // Two tasks touched it and one of them wrote: each toucher's access races
            // with another task's.
            if touches.touched.count_ones() < 2 || touches.written == 0 {
                continue;
            }
            group.clear();
            group.extend(
                (touches.ordinal.iter().enumerate())
                    .filter(|(_, &o)| o != NONE)
                    .map(|(t, &o)| (t, o)),
            );
            if !self.seen.contains(group.as_slice()) {
                found.push(group.clone());
            }
        }
        // In an order of their own, not the addresses'.
        found.sort();
        for g in found {
            self.seen.insert(g.clone());
            self.groups.push(g);
        }
        std::mem::swap(&mut self.last, &mut self.touched);
    }

    /// This execution's interesting events: each racing object with probability p,
    /// itself uniform in [0, 1); and each task's estimate of them from the previous
    /// execution.
    fn choose(&mut self) {
        let p: f64 = self.rng.gen();
        for marks in &mut self.interesting {
            marks.iter_mut().for_each(|m| *m = false);
        }
        for g in &self.groups {
            if !self.rng.gen_bool(p) {
                continue;
            }
            for &(t, o) in g {
                if self.interesting.len() <= t {
                    self.interesting.resize(t + 1, Vec::new());
                }
                let marks = &mut self.interesting[t];
                if marks.len() <= o as usize {
                    marks.resize(o as usize + 1, false);
                }
                marks[o as usize] = true;
            }
        }
        self.estimate.clear();
        for (t, counts) in self.last.iter().enumerate() {
            let marks = self.interesting.get(t).map(Vec::as_slice).unwrap_or(&[]);
            let n = counts
                .iter()
                .zip(marks)
                .filter(|(_, &m)| m)
                .map(|(&c, _)| c)
                .sum::<u32>();
            self.estimate.push(n);
        }
    }
}

impl Scheduler for SurwScheduler {
    fn new_execution(&mut self) -> Option<Schedule> {
        if self.iterations >= self.max_iterations {
            return None;
        }
        if self.iterations > 0 {
            self.learn();
            self.choose();
        }
        self.iterations += 1;
        self.objects.clear();
        // Keep the tasks' buffers: `know` makes room for as many as the execution has.
        self.touched.iter_mut().for_each(Vec::clear);
        self.remaining.clear();
        self.hot.clear();
        self.yielded.clear();
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
            let ordinal = self.note(c, next_access());
            self.hot[c] = self.is_interesting(c, ordinal);
            self.yielded[c] = is_yielding;
        }
        // Runnable tasks at an uninteresting event, and the weight of those at an
        // interesting one; spinners aside.
        let (mut plain, mut weight) = (0u32, 0u64);
        for t in runnable {
            let id = usize::from(t.id());
            self.know(id);
            if self.yielded[id] {
                continue;
            }
            if self.hot[id] {
                weight += u64::from(self.remaining[id].max(1));
            } else {
                plain += 1;
            }
        }
        let chosen = if plain > 0 {
            let mut k = self.rng.gen_range(0..plain);
            runnable.iter().map(|t| usize::from(t.id())).find(|&id| {
                if self.yielded[id] || self.hot[id] {
                    return false;
                }
                if k == 0 {
                    return true;
                }
                k -= 1;
                false
            })
        } else if weight > 0 {
            let mut w = self.rng.gen_range(0..weight);
            runnable.iter().map(|t| usize::from(t.id())).find(|&id| {
                if self.yielded[id] {
                    return false;
                }
                let mine = u64::from(self.remaining[id].max(1));
                if w < mine {
                    return true;
                }
                w -= mine;
                false
            })
        } else {
            let k = self.rng.gen_range(0..runnable.len());
            Some(usize::from(runnable[k].id()))
        }?;
        if self.hot[chosen] {
            self.remaining[chosen] = self.remaining[chosen].saturating_sub(1);
        }
        Some(TaskId::from(chosen))
    }

    fn next_u64(&mut self) -> u64 {
        self.data.next_u64()
    }
}
