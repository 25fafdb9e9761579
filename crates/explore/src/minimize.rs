//! The smallest counterexample: fewer preemptions, then fewer steps, with the same
//! violation (same kind, same place).
//!
//! A schedule is played by a [`Guided`] scheduler that follows a wanted sequence of task
//! choices and, where a choice no longer fits (the task is not runnable), keeps the task
//! that was running or takes the first runnable one: any edit of a schedule still runs
//! (Hypothesis's tolerant replay). The search edits the schedule as runs of one task:
//! moving a run to join the previous or next run of the same task removes a context
//! switch (dejafu's normal form moves independent steps the same way), and deleting a
//! single step shortens spins. An edit is kept when the violation stays, the steps stay
//! within a ceiling (the original's: minimizing never lengthens a trace), and
//! (preemptions, steps) gets smaller in that order. The result is confirmed by an exact
//! replay, and, where the bound is small, [`search_below`] searches every schedule with
//! fewer preemptions (a preemption-bounded DFS) to show that none breaks the same way.

use std::sync::{Arc, Mutex};

use cowbreak_mm::{Violation, ViolationKind};
use shuttle::scheduler::{Schedule, Scheduler, Task, TaskId};
use shuttle_engine::scheduler::serialization::{deserialize_schedule, serialize_schedule};
use shuttle_engine::scheduler::{DataSource, RandomDataSource, ScheduleStep};

use crate::shuttle_backend::{classify, execute_once};

/// What one guided execution did.
#[derive(Clone, Debug)]
pub struct Played {
    /// The oracle's reports (a livelock when it did not finish, a deadlock).
    pub violations: Vec<Violation>,
    /// The choices it really made.
    pub tasks: Vec<usize>,
    /// Context switches away from a task that could have gone on.
    pub preemptions: usize,
    /// The schedule, encoded as traces store it.
    pub encoded: String,
}

#[derive(Default)]
struct Log {
    schedule: Schedule,
    tasks: Vec<usize>,
    preemptions: usize,
}

/// How a one-execution scheduler picks among the runnable tasks (by id), given the
/// task that was running, if it still can, and whether it yielded.
trait Choose {
    fn choose(&mut self, ids: &[usize], running: Option<usize>, yielding: bool) -> Option<usize>;
}

/// A scheduler for exactly one execution that asks a [`Choose`] at every step.
struct Once<C> {
    chooser: C,
    began: bool,
    data: RandomDataSource,
}

impl<C: Choose> Scheduler for Once<C> {
    fn new_execution(&mut self) -> Option<Schedule> {
        if self.began {
            return None;
        }
        self.began = true;
        Some(Schedule::new(0))
    }

    fn next_task(
        &mut self,
        runnable: &[&Task],
        current: Option<TaskId>,
        is_yielding: bool,
    ) -> Option<TaskId> {
        let ids: Vec<usize> = runnable.iter().map(|t| usize::from(t.id())).collect();
        let running = current.map(usize::from).filter(|c| ids.contains(c));
        self.chooser
            .choose(&ids, running, is_yielding)
            .map(TaskId::from)
    }

    fn next_u64(&mut self) -> u64 {
        self.data.next_u64()
    }
}

/// Run `execution` once under `chooser`: what the oracle reported (a livelock when it
/// did not finish, a deadlock or a model panic as the campaign classifies them).
fn execute<C, F>(chooser: C, steps_max: usize, execution: &Arc<F>) -> Vec<Violation>
where
    C: Choose + 'static,
    F: Fn() -> Vec<Violation> + Send + Sync + 'static,
{
    let sched = Once {
        chooser,
        began: false,
        data: RandomDataSource::initialize(0),
    };
    let execution = Arc::clone(execution);
    execute_once(sched, steps_max, move || execution()).unwrap_or_else(|text| vec![classify(&text)])
}

/// Follows `want`, tolerating choices that do not fit: the running task goes on, else
/// the first runnable one.
struct Guided {
    want: Vec<usize>,
    pos: usize,
    log: Arc<Mutex<Log>>,
}

impl Choose for Guided {
    fn choose(&mut self, ids: &[usize], running: Option<usize>, yielding: bool) -> Option<usize> {
        let wanted = self.want.get(self.pos).copied().filter(|w| ids.contains(w));
        let choice = wanted.or(running).or(ids.first().copied())?;
        self.pos += 1;
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if running.is_some_and(|c| c != choice) && !yielding {
            log.preemptions += 1;
        }
        log.tasks.push(choice);
        log.schedule.push_task(TaskId::from(choice));
        Some(choice)
    }
}

/// Run `execution` once, following `want`.
pub fn play<F>(want: &[usize], steps_max: usize, execution: &Arc<F>) -> Played
where
    F: Fn() -> Vec<Violation> + Send + Sync + 'static,
{
    let log = Arc::new(Mutex::new(Log::default()));
    let guided = Guided {
        want: want.to_vec(),
        pos: 0,
        log: Arc::clone(&log),
    };
    let violations = execute(guided, steps_max, execution);
    let log = std::mem::take(&mut *log.lock().unwrap_or_else(|p| p.into_inner()));
    Played {
        violations,
        encoded: serialize_schedule(&log.schedule),
        tasks: log.tasks,
        preemptions: log.preemptions,
    }
}

/// The task choices of an encoded schedule; `None` when it is not one.
pub fn tasks_of(encoded: &str) -> Option<Vec<usize>> {
    crate::shuttle_backend::check_schedule(encoded).ok()?;
    let s = deserialize_schedule(encoded)?;
    Some(
        s.steps
            .iter()
            .filter_map(|st| match st {
                ScheduleStep::Task(t) => Some(usize::from(*t)),
                ScheduleStep::Random => None,
            })
            .collect(),
    )
}

/// The outcome of [`minimize`].
#[derive(Clone, Debug)]
pub struct Minimized {
    /// The original schedule as played.
    pub before: Played,
    /// The smallest schedule found.
    pub after: Played,
    /// Executions the search ran.
    pub tries: usize,
}

fn breaks(p: &Played, kind: ViolationKind, at: &str) -> bool {
    p.violations.iter().any(|v| v.kind == kind && v.at == at)
}

/// Runs of one task: (task, start, len).
fn runs(tasks: &[usize]) -> Vec<(usize, usize, usize)> {
    let mut out: Vec<(usize, usize, usize)> = Vec::new();
    for (i, &t) in tasks.iter().enumerate() {
        match out.last_mut() {
            Some(r) if r.0 == t => r.2 += 1,
            _ => out.push((t, i, 1)),
        }
    }
    out
}

/// Shrink `encoded` (a schedule that breaks `kind` at `at`) within `budget` executions.
/// `Err` when the schedule does not break that way to begin with.
pub fn minimize<F>(
    encoded: &str,
    kind: ViolationKind,
    at: &str,
    steps_max: usize,
    budget: usize,
    execution: F,
) -> Result<Minimized, String>
where
    F: Fn() -> Vec<Violation> + Send + Sync + 'static,
{
    let want = tasks_of(encoded).ok_or("not a shuttle schedule")?;
    minimize_from(
        &want,
        kind,
        at,
        steps_max,
        budget,
        want.len(),
        &Arc::new(execution),
    )
}

/// [`minimize`] from a schedule given as its task choices, keeping at most `ceiling`
/// steps. A start above the ceiling is shrunk towards it first (a schedule under the
/// ceiling beats any above it), so a result may still lie above it: the caller checks.
pub fn minimize_from<F>(
    want: &[usize],
    kind: ViolationKind,
    at: &str,
    steps_max: usize,
    budget: usize,
    ceiling: usize,
    execution: &Arc<F>,
) -> Result<Minimized, String>
where
    F: Fn() -> Vec<Violation> + Send + Sync + 'static,
{
    let execution = Arc::clone(execution);
    let before = play(want, steps_max, &execution);
    if !breaks(&before, kind, at) {
        return Err(format!("the schedule does not give {kind} in {at}"));
    }
    let mut best = before.clone();
    let mut tries = 1;
    // Under the ceiling, then fewer preemptions, then fewer steps.
    let key = |p: &Played| (p.tasks.len() > ceiling, p.preemptions, p.tasks.len());
    let better = |p: &Played, best: &Played| breaks(p, kind, at) && key(p) < key(best);
    'search: loop {
        let cur = best.tasks.clone();
        let rs = runs(&cur);
        let mut candidates: Vec<Vec<usize>> = Vec::new();
        // Move a run to join the previous run of its task, or the next one.
        for (j, &(t, start, len)) in rs.iter().enumerate() {
            let block = &cur[start..start + len];
            if let Some(prev) = rs[..j].iter().rposition(|r| r.0 == t) {
                let end = rs[prev].1 + rs[prev].2;
                let mut c = cur[..end].to_vec();
                c.extend_from_slice(block);
                c.extend_from_slice(&cur[end..start]);
                c.extend_from_slice(&cur[start + len..]);
                candidates.push(c);
            }
            if let Some(next) = rs[j + 1..].iter().position(|r| r.0 == t).map(|k| k + j + 1) {
                let at_next = rs[next].1;
                let mut c = cur[..start].to_vec();
                c.extend_from_slice(&cur[start + len..at_next]);
                c.extend_from_slice(block);
                c.extend_from_slice(&cur[at_next..]);
                candidates.push(c);
            }
        }
        // Delete one step.
        for i in 0..cur.len() {
            let mut c = cur.clone();
            c.remove(i);
            candidates.push(c);
        }
        for c in candidates {
            if tries >= budget {
                break 'search;
            }
            tries += 1;
            let p = play(&c, steps_max, &execution);
            if better(&p, &best) {
                best = p;
                continue 'search;
            }
        }
        break;
    }
    Ok(Minimized {
        before,
        after: best,
        tries,
    })
}

/// What the bounded search of [`search_below`] saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Below {
    /// Every schedule within the bound was run; none breaks that way.
    Clean,
    /// This schedule (its task choices) breaks that way within the bound and the
    /// ceiling on steps.
    Found(Vec<usize>),
    /// Every schedule within the bound was run; those that break that way all take more
    /// steps than the ceiling, and this is the shortest of them.
    Longer(Vec<usize>),
    /// The budget ran out first.
    Unfinished,
}

/// Whether some schedule with at most `bound` preemptions and at most `ceiling` steps
/// breaks `kind` at `at`: a depth-first search over every schedule within the bound (at
/// most `budget` executions) that stops at the first that fits the ceiling.
pub fn search_below<F>(
    bound: usize,
    kind: ViolationKind,
    at: &str,
    steps_max: usize,
    budget: usize,
    ceiling: usize,
    execution: F,
) -> Below
where
    F: Fn() -> Vec<Violation> + Send + Sync + 'static,
{
    let execution = Arc::new(execution);
    // The tree: at each step, the choices in order (the running task first) and the one
    // taken. Each execution follows the stack's prefix and extends it.
    let mut stack: Stack = Vec::new();
    let mut longer: Option<Vec<usize>> = None;
    for _ in 0..budget {
        let shared = Arc::new(Mutex::new((stack.clone(), 0usize, 0usize)));
        let dfs = Dfs {
            shared: Arc::clone(&shared),
            bound,
        };
        let violations = execute(dfs, steps_max, &execution);
        stack = std::mem::take(&mut shared.lock().unwrap_or_else(|p| p.into_inner()).0);
        if violations.iter().any(|v| v.kind == kind && v.at == at) {
            let tasks: Vec<usize> = stack.iter().map(|(c, t)| c[*t]).collect();
            if tasks.len() <= ceiling {
                return Below::Found(tasks);
            }
            if longer.as_ref().is_none_or(|l| tasks.len() < l.len()) {
                longer = Some(tasks);
            }
        }
        // Backtrack: the deepest step with a choice left takes its next one.
        while let Some((choices, taken)) = stack.last_mut() {
            if *taken + 1 < choices.len() {
                *taken += 1;
                break;
            }
            stack.pop();
        }
        if stack.is_empty() {
            return longer.map_or(Below::Clean, Below::Longer);
        }
    }
    Below::Unfinished
}

/// The depth-first search's tree: at each step, the choices in order and the one taken.
type Stack = Vec<(Vec<usize>, usize)>;

/// The chooser of [`search_below`]: (stack, position, preemptions so far).
struct Dfs {
    shared: Arc<Mutex<(Stack, usize, usize)>>,
    bound: usize,
}

impl Choose for Dfs {
    fn choose(&mut self, ids: &[usize], running: Option<usize>, yielding: bool) -> Option<usize> {
        let current = running.filter(|_| !yielding);
        let mut s = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        let (stack, pos, preemptions) = &mut *s;
        if *pos == stack.len() {
            // A new step: the running task first; others only while the bound allows. A
            // task that yields (a spin loop) hands over to the others, without counting a
            // preemption and without making every spin a branch.
            let others = || ids.iter().copied().filter(|&t| Some(t) != running);
            let choices: Vec<usize> = match (current, running) {
                (Some(c), _) if *preemptions >= self.bound => vec![c],
                (Some(c), _) => std::iter::once(c).chain(others()).collect(),
                (None, Some(r)) => {
                    let o: Vec<usize> = others().collect();
                    if o.is_empty() {
                        vec![r]
                    } else {
                        o
                    }
                }
                (None, None) => ids.to_vec(),
            };
            stack.push((choices, 0));
        }
        let (choices, taken) = &stack[*pos];
        let choice = choices
            .get(*taken)
            .copied()
            .filter(|t| ids.contains(t))
            .or(ids.first().copied())?;
        if current.is_some_and(|c| c != choice) {
            *preemptions += 1;
        }
        *pos += 1;
        Some(choice)
    }
}
