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
//!   ([`cowbreak_sync::next_access`]). Objects are fresh in every execution, so their
//!   addresses change; an execution built by the scenario interpreter names the memory
//!   its objects live in (the kernel, its frame and table pools, its mms, CPUs and
//!   files, the scenario's events: [`cowbreak_sync::set_regions`]), and an object in
//!   one is known by its key, its region and offset, which are the same in every
//!   execution. An object outside them is known by each task that touches it as its
//!   ordinal among the distinct objects that task touched (the k-th), which follows
//!   the task's code but shifts when the task's path does.
//! - After each execution, every object that two tasks touched, one of them writing,
//!   joins the racing objects.
//! - Each execution draws a fraction p uniformly from [0, 1) and takes each racing
//!   object as interesting with probability p. With every racing object interesting,
//!   every execution runs the same uninteresting steps first and samples only the
//!   finest interleavings: over 50 seeds (`docs/schedulers.md`) that found the fork
//!   race in 5 executions but the no-IPI munmap race in 535 (PCT: 44). A sampled set
//!   leaves some racing objects' steps to run early, as whole blocks, and found them in
//!   8 and 31 (both figures with objects known by ordinals only).
//! - The first execution knows nothing interesting and is a random walk, as URW's first
//!   (estimating) execution is.
//!
//! The scheduler is seeded and uses nothing of an object's address but its identity
//! within the execution and its offset in a named region (racing objects are kept in an
//! order of their own, not the addresses'), so a seed gives the same schedules every
//! time; the schedules it makes are recorded and replayed like any other.

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
/// No key: the object is outside the regions the execution named.
const NO_KEY: u64 = u64::MAX;

/// How a racing object is known from one execution to the next.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Label {
    /// Its place in the memory the execution named ([`cowbreak_sync::object_key`]).
    Key(u64),
    /// Its touchers' (task, ordinal) pairs.
    Ordinals(Vec<(usize, u32)>),
}

/// One object's touches in the running execution.
#[derive(Clone, Copy, Debug)]
struct Touches {
    /// Each task's ordinal for the object, [`NONE`] if it has not touched it.
    ordinal: [u32; TASKS],
    /// The tasks that touched it, and those that wrote it, as bit sets.
    touched: u16,
    written: u16,
    /// Its key ([`NO_KEY`] if none), and whether that key is interesting.
    key: u64,
    chosen: bool,
}

/// The SURW scheduler: `max_iterations` executions from `seed`.
#[derive(Debug)]
pub(crate) struct SurwScheduler {
    rng: Pcg64Mcg,
    data: RandomDataSource,
    iterations: usize,
    max_iterations: usize,
    /// This execution's interesting objects: the keys, and by task, which of its
    /// ordinals are (for objects without a key).
    chosen: FxHashSet<u64>,
    interesting: Vec<Vec<bool>>,
    /// By task, the interesting events it ran in the previous execution.
    estimate: Vec<u32>,
    /// The running execution's objects, by address.
    objects: FxHashMap<usize, Touches>,
    /// By task: distinct objects touched so far, as its accesses to each and the
    /// object's key, by ordinal.
    touched: Vec<Vec<(u32, u64)>>,
    /// By task: interesting events left (the estimate, less those run).
    remaining: Vec<u32>,
    /// By task: whether its pending event is interesting, and whether it yielded.
    hot: Vec<bool>,
    yielded: Vec<bool>,
    /// Every object found racing so far, in the order found; and the same as a set.
    groups: Vec<Label>,
    seen: FxHashSet<Label>,
    /// The previous execution's accesses, by task and ordinal.
    last: Vec<Vec<(u32, u64)>>,
}

impl SurwScheduler {
    pub(crate) fn new(seed: u64, max_iterations: usize) -> SurwScheduler {
        SurwScheduler {
            rng: Pcg64Mcg::seed_from_u64(seed),
            data: RandomDataSource::initialize(seed),
            iterations: 0,
            max_iterations,
            chosen: Default::default(),
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

    /// Note that task `t` is about to make `access`; whether it is interesting.
    fn note(&mut self, t: usize, access: Access) -> bool {
        if access.object == 0 || t >= TASKS {
            return false;
        }
        let next = self.touched[t].len() as u32;
        let chosen = &self.chosen;
        let entry = self.objects.entry(access.object).or_insert_with(|| {
            let key = cowbreak_sync::object_key(access.object).unwrap_or(NO_KEY);
            Touches {
                ordinal: [NONE; TASKS],
                touched: 0,
                written: 0,
                key,
                chosen: key != NO_KEY && chosen.contains(&key),
            }
        });
        let bit = 1u16 << t;
        entry.touched |= bit;
        if access.write {
            entry.written |= bit;
        }
        let ordinal = if entry.ordinal[t] == NONE {
            entry.ordinal[t] = next;
            self.touched[t].push((0, entry.key));
            next
        } else {
            entry.ordinal[t]
        };
        self.touched[t][ordinal as usize].0 += 1;
        if entry.key != NO_KEY {
            entry.chosen
        } else {
            self.marked(t, ordinal)
        }
    }

    /// Whether task `t`'s object `o` (one without a key) is interesting.
    fn marked(&self, t: usize, o: u32) -> bool {
        self.interesting
            .get(t)
            .is_some_and(|i| i.get(o as usize).copied().unwrap_or(false))
    }

    /// Add the objects that raced in the execution that just ended to the racing
    /// objects, and keep its access counts for the estimates.
    fn learn(&mut self) {
        let mut found: Vec<Label> = Vec::new();
        for touches in self.objects.values() {
            // Two tasks touched it and one of them wrote: each toucher's access races
            // with another task's.
            if touches.touched.count_ones() < 2 || touches.written == 0 {
                continue;
            }
            let label = if touches.key != NO_KEY {
                Label::Key(touches.key)
            } else {
                Label::Ordinals(
                    (touches.ordinal.iter().enumerate())
                        .filter(|(_, &o)| o != NONE)
                        .map(|(t, &o)| (t, o))
                        .collect(),
                )
            };
            if !self.seen.contains(&label) {
                found.push(label);
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
        self.chosen.clear();
        for g in &self.groups {
            if !self.rng.gen_bool(p) {
                continue;
            }
            let pairs = match g {
                Label::Key(k) => {
                    self.chosen.insert(*k);
                    continue;
                }
                Label::Ordinals(pairs) => pairs,
            };
            for &(t, o) in pairs {
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
            let n = (counts.iter().enumerate())
                .filter(|&(o, &(_, key))| {
                    if key != NO_KEY {
                        self.chosen.contains(&key)
                    } else {
                        self.marked(t, o as u32)
                    }
                })
                .map(|(_, &(c, _))| c)
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
        // The execution names its regions afresh, if it has any: a previous one's
        // would give its stale addresses keys.
        cowbreak_sync::set_regions([]);
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
            self.hot[c] = self.note(c, next_access());
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
