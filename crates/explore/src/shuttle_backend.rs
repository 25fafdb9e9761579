//! shuttle: randomized campaigns (random, PCT, URW, POS, SURW, DFS) and exact replay.
//!
//! A recording wrapper around the chosen scheduler keeps every decision of the current
//! execution, so whatever breaks comes with a schedule that
//! [`ReplayScheduler`](shuttle::scheduler::ReplayScheduler) plays back exactly.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cowbreak_mm::{Violation, ViolationKind};
use shuttle::scheduler::{
    DfsScheduler, RandomScheduler, ReplayScheduler, Schedule, Scheduler, Task, TaskId,
    UrwRandomScheduler,
};
use shuttle::{Config, FailurePersistence, MaxSteps, Runner};
use shuttle_engine::scheduler::serialization::serialize_schedule;

use crate::{Collector, Outcome};

/// How to pick schedules.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Uniformly random choice at every step.
    Random,
    /// Probabilistic concurrency testing with bug depth `depth` (Burckhardt et al.,
    /// ASPLOS 2010): random priorities plus `depth - 1` priority change points.
    Pct {
        /// The bug depth aimed at.
        depth: usize,
    },
    /// Uniform random walk over the remaining events of each task.
    Urw,
    /// Depth-first enumeration (spin loops make it unsuitable for IPI waits).
    Dfs,
    /// Partial order sampling over the objects the model's steps touch (Yuan et al.,
    /// CAV 2018): see `pos.rs`.
    Pos,
    /// Selectively uniform random walk over the steps on objects that two tasks touch
    /// (Zhao et al., ASPLOS 2025): see `surw.rs`.
    Surw,
}

/// A shuttle campaign's settings.
#[derive(Copy, Clone, Debug)]
pub struct ShuttleConfig {
    /// The scheduler.
    pub strategy: Strategy,
    /// Executions to run.
    pub iterations: usize,
    /// The seed of the scheduler's randomness.
    pub seed: u64,
    /// Scheduling decisions after which an execution counts as a livelock.
    pub steps_max: usize,
    /// End the campaign after the first execution that broke something (benchmarks of
    /// executions-to-first-violation); by default a campaign goes on collecting.
    pub stop_after_first: bool,
}

/// How a running exploration is watched and stopped from another thread: the campaign's
/// progress display reads `executed`, a Ctrl-C handler sets `stop`. Checked once per
/// execution, with relaxed atomics: nothing on the scheduling hot path.
#[derive(Debug, Default)]
pub struct Control {
    /// Set to end the exploration after the execution in flight.
    pub stop: Arc<AtomicBool>,
    /// Executions begun, over every exploration that shares this control.
    pub executed: AtomicU64,
}

impl Control {
    /// A control whose `stop` flag is `stop` (shared, e.g. by every cell of a matrix).
    pub fn new(stop: Arc<AtomicBool>) -> Control {
        Control {
            stop,
            executed: AtomicU64::new(0),
        }
    }
}

impl Default for ShuttleConfig {
    fn default() -> Self {
        ShuttleConfig {
            strategy: Strategy::Pct { depth: 3 },
            iterations: 1000,
            seed: 0,
            steps_max: 20_000,
            stop_after_first: false,
        }
    }
}

/// Whether a step is a decision: two or more tasks could run.
#[inline]
fn is_decision(runnable: &[&Task]) -> bool {
    runnable.len() > 1
}

/// Hands the scheduler it wraps only the steps that are decisions: two or more tasks
/// runnable. A step with one runnable task has one outcome whatever a scheduler says, so
/// it is taken here, without asking, and not recorded: a schedule is the list of
/// decisions, and a replay (under the same wrapper) skips the same forced steps. A
/// scheduler then spends nothing (no random draw, no priority lookup, no record) on the
/// steps where nothing can be interleaved, such as the main thread's joins and the
/// locks of a scenario's setup. shuttle's PCT already counts only these steps for its
/// change points; random now draws only at them. shuttle's URW counts every task's
/// events from the first step it sees the task at, so it is shown the forced steps too
/// (`show_forced`); the schedule records the decisions only all the same. Not the steps
/// before the execution's first spawn, where the main thread is alone: those are the
/// scenario's setup, which a campaign runs in its first execution only and copies after
/// (`Scenario::execution`), so a scheduler that saw them would see the executions of
/// one campaign differently.
pub(crate) struct Decisions<S> {
    inner: S,
    show_forced: bool,
    /// No task but the main one has been runnable yet in this execution.
    alone: bool,
    /// Every scheduling point, forced or not, over every execution.
    points: Rc<Cell<u64>>,
}

impl<S> Decisions<S> {
    pub(crate) fn new(inner: S, show_forced: bool) -> (Decisions<S>, Rc<Cell<u64>>) {
        let points = Rc::new(Cell::new(0));
        let d = Decisions {
            inner,
            show_forced,
            alone: true,
            points: Rc::clone(&points),
        };
        (d, points)
    }
}

impl<S: Scheduler> Scheduler for Decisions<S> {
    fn new_execution(&mut self) -> Option<Schedule> {
        self.alone = true;
        self.inner.new_execution()
    }

    #[inline]
    fn next_task(
        &mut self,
        runnable: &[&Task],
        current: Option<TaskId>,
        is_yielding: bool,
    ) -> Option<TaskId> {
        self.points.set(self.points.get() + 1);
        if self.alone && self.show_forced {
            self.alone = runnable.iter().all(|t| t.id() == TaskId::from(0));
        }
        if is_decision(runnable) || (self.show_forced && !self.alone) {
            self.inner.next_task(runnable, current, is_yielding)
        } else {
            Some(runnable[0].id())
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }
}

/// State shared between the recording scheduler and the execution closure: touched once
/// per execution, never per step.
#[derive(Default)]
struct Shared {
    collector: Collector,
    /// What the running execution reported when it finished; `None` while running.
    pending: Option<Vec<Violation>>,
    started: bool,
    /// The exploration ended because its [`Control`] said stop.
    interrupted: bool,
}

impl Shared {
    /// Close the previous execution: `schedule` is its complete list of decisions.
    fn finish_execution(&mut self, schedule: &Schedule, steps_max: usize) {
        if !self.started {
            return;
        }
        self.started = false;
        self.collector.decisions += schedule.len() as u64;
        let violations = self
            .pending
            .take()
            .unwrap_or_else(|| vec![livelock(steps_max)]);
        if !violations.is_empty() {
            let len = schedule.len();
            self.collector
                .record_with(violations, len, Some(|| serialize_schedule(schedule)));
        }
    }
}

/// Keeps every decision of the running execution. The schedule lives on the exploring
/// OS thread (shuttle runs every task of an execution there), so recording a step is a
/// push, without a lock.
struct Recording<S> {
    inner: S,
    shared: Arc<Mutex<Shared>>,
    schedule: Rc<RefCell<Schedule>>,
    steps_max: usize,
    stop_after_first: bool,
    control: Arc<Control>,
}

impl<S: Scheduler> Scheduler for Recording<S> {
    fn new_execution(&mut self) -> Option<Schedule> {
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        shared.finish_execution(&self.schedule.borrow(), self.steps_max);
        let stop = self.control.stop.load(Ordering::Relaxed);
        shared.interrupted |= stop;
        if stop || (self.stop_after_first && shared.collector.any()) {
            // Let the inner scheduler reach its own end: shuttle's RandomScheduler
            // otherwise reports the last seed as a failure when it is dropped.
            while self.inner.new_execution().is_some() {}
            return None;
        }
        let s = self.inner.new_execution()?;
        *self.schedule.borrow_mut() = Schedule::new(s.seed);
        shared.started = true;
        shared.collector.begin_execution();
        self.control.executed.fetch_add(1, Ordering::Relaxed);
        Some(s)
    }

    #[inline]
    fn next_task(
        &mut self,
        runnable: &[&Task],
        current: Option<TaskId>,
        is_yielding: bool,
    ) -> Option<TaskId> {
        let t = self.inner.next_task(runnable, current, is_yielding)?;
        if is_decision(runnable) {
            self.schedule.borrow_mut().push_task(t);
        }
        Some(t)
    }

    fn next_u64(&mut self) -> u64 {
        self.schedule.borrow_mut().push_random();
        self.inner.next_u64()
    }
}

/// A shuttle runner for `sched` behind [`Decisions`], and its count of scheduling points.
pub(crate) fn runner<S: Scheduler + 'static>(
    sched: S,
    steps_max: usize,
    show_forced: bool,
) -> (Runner<Decisions<S>>, Rc<Cell<u64>>) {
    let (d, points) = Decisions::new(sched, show_forced);
    (Runner::new(d, config(steps_max)), points)
}

pub(crate) fn config(steps_max: usize) -> Config {
    let mut config = Config::new();
    config.failure_persistence = FailurePersistence::None;
    config.max_steps = MaxSteps::ContinueAfter(steps_max);
    config.silence_warnings = true;
    config
}

/// The text of a panic payload.
fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a model thread panicked".to_string())
}

/// What a failed execution's panic text means: a deadlock or a livelock from the
/// scheduler, or a panic of the model itself.
pub(crate) fn classify(text: &str) -> Violation {
    let kind = if text.starts_with("deadlock") {
        ViolationKind::Deadlock
    } else {
        ViolationKind::Livelock
    };
    let kind_text = if kind == ViolationKind::Livelock && !text.starts_with("exceeded max_steps") {
        // Not a scheduler verdict: the model itself panicked. That is a bug in cowbreak,
        // surfaced rather than lost.
        return Violation {
            kind: ViolationKind::Livelock,
            at: "model panic",
            message: text.to_string(),
        };
    } else {
        text.lines().next().unwrap_or(text).to_string()
    };
    Violation {
        kind,
        at: "scheduler",
        message: kind_text,
    }
}

/// Run `execution` under shuttle with `cfg`, collecting every distinct violation with the
/// shortest schedule that produced it.
///
/// A deadlock (or a panic in the model) ends the campaign early: shuttle stops at a
/// failing execution. It is reported with its schedule like any violation.
pub fn explore_shuttle<F>(cfg: &ShuttleConfig, execution: F) -> Outcome
where
    F: Fn() -> Vec<Violation> + Send + Sync + 'static,
{
    explore_shuttle_with(cfg, Arc::new(Control::default()), execution)
}

/// [`explore_shuttle`] under `control`: it counts executions there and ends early, with
/// [`Outcome::interrupted`] set, when `control.stop` is set.
pub fn explore_shuttle_with<F>(cfg: &ShuttleConfig, control: Arc<Control>, execution: F) -> Outcome
where
    F: Fn() -> Vec<Violation> + Send + Sync + 'static,
{
    let shared = Arc::new(Mutex::new(Shared::default()));
    let body = {
        let shared = Arc::clone(&shared);
        move || {
            let violations = execution();
            shared.lock().unwrap_or_else(|p| p.into_inner()).pending = Some(violations);
        }
    };
    let steps_max = cfg.steps_max;
    let inner: Box<dyn Scheduler + Send> = match cfg.strategy {
        Strategy::Random => Box::new(RandomScheduler::new_from_seed(cfg.seed, cfg.iterations)),
        Strategy::Pct { depth } => Box::new(crate::pct::PctScheduler::new(
            cfg.seed,
            depth.max(1),
            cfg.iterations,
        )),
        Strategy::Urw => Box::new(UrwRandomScheduler::new_from_seed(cfg.seed, cfg.iterations)),
        Strategy::Dfs => Box::new(DfsScheduler::new(Some(cfg.iterations), false)),
        Strategy::Pos => Box::new(crate::pos::PosScheduler::new(cfg.seed, cfg.iterations)),
        Strategy::Surw => Box::new(crate::surw::SurwScheduler::new(cfg.seed, cfg.iterations)),
    };
    let schedule = Rc::new(RefCell::new(Schedule::new(0)));
    let sched = Recording {
        inner,
        shared: Arc::clone(&shared),
        schedule: Rc::clone(&schedule),
        steps_max,
        stop_after_first: cfg.stop_after_first,
        control,
    };
    // URW counts every event of a task, POS and SURW keep every task's pending access
    // (SURW learns from every access): they see the forced steps too.
    let show_forced = matches!(cfg.strategy, Strategy::Urw | Strategy::Pos | Strategy::Surw);
    let (runner, points) = runner(sched, steps_max, show_forced);
    let result = quietly(|| catch_unwind(AssertUnwindSafe(|| runner.run(body))));
    // A failed execution leaks its tasks (and their clones of `shared`): take the
    // results out rather than unwrap the Arc.
    let mut shared = std::mem::take(&mut *shared.lock().unwrap_or_else(|p| p.into_inner()));
    let schedule = schedule.borrow();
    match result {
        Ok(_) => {
            shared.finish_execution(&schedule, steps_max);
            // PCT ends a campaign whose first execution never ran two threads at once
            // (`pct.rs`): there is nothing to interleave, so one execution says it all.
            if matches!(cfg.strategy, Strategy::Pct { .. })
                && shared.collector.decisions == 0
                && !shared.interrupted
                && shared.collector.executions() < cfg.iterations as u64
            {
                shared.collector.single_schedule = true;
            }
        }
        Err(payload) => {
            shared.pending = Some(vec![classify(&payload_text(&*payload))]);
            shared.finish_execution(&schedule, steps_max);
        }
    }
    shared.collector.steps = points.get();
    let interrupted = shared.interrupted;
    let mut outcome = shared.collector.into_outcome();
    outcome.interrupted = interrupted;
    outcome
}

/// What replaying a schedule gave.
#[derive(Clone, Debug)]
pub struct Replayed {
    /// What the oracle reported (a livelock when the execution did not finish within the
    /// step limit, as in the campaign).
    pub violations: Vec<Violation>,
    /// Scheduling decisions the replay really took.
    pub steps: usize,
}

/// Whether `schedule` is a shuttle schedule at all; `Err` says why not (shuttle itself
/// panics on a bad one, so it is decoded here under `catch_unwind`, quietly).
pub fn check_schedule(schedule: &str) -> Result<(), String> {
    if schedule.trim().is_empty() {
        return Err("the schedule is empty".into());
    }
    quietly(|| catch_unwind(|| ReplayScheduler::new_from_encoded(schedule)))
        .map(|_| ())
        .map_err(|p| format!("not a shuttle schedule ({})", payload_text(&*p)))
}

/// Counts the decisions of the scheduler it wraps.
struct Counting<S> {
    inner: S,
    steps: Arc<Mutex<usize>>,
}

impl<S: Scheduler> Scheduler for Counting<S> {
    fn new_execution(&mut self) -> Option<Schedule> {
        self.inner.new_execution()
    }

    fn next_task(
        &mut self,
        runnable: &[&Task],
        current: Option<TaskId>,
        is_yielding: bool,
    ) -> Option<TaskId> {
        let t = self.inner.next_task(runnable, current, is_yielding)?;
        *self.steps.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        Some(t)
    }

    fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }
}

/// Play `schedule` (as encoded in a [`Found`](crate::Found)) back once, with the
/// campaign's step limit `steps_max`, and return what the oracle reported. `Err` when the
/// schedule is not one or does not fit the execution (another scenario or model
/// version): shuttle's message says where it diverged.
pub fn replay_shuttle<F>(schedule: &str, steps_max: usize, execution: F) -> Result<Replayed, String>
where
    F: Fn() -> Vec<Violation> + Send + Sync + 'static,
{
    check_schedule(schedule)?;
    let steps = Arc::new(Mutex::new(0));
    let sched = Counting {
        inner: ReplayScheduler::new_from_encoded(schedule),
        steps: Arc::clone(&steps),
    };
    let result = execute_once(sched, steps_max, execution);
    let steps = *steps.lock().unwrap_or_else(|p| p.into_inner());
    match result {
        Ok(violations) => Ok(Replayed { violations, steps }),
        Err(text) if text.starts_with("deadlock") => Ok(Replayed {
            violations: vec![classify(&text)],
            steps,
        }),
        Err(text) => Err(shuttle_message(&text)),
    }
}

/// The violation of an execution that did not finish within `steps_max` decisions.
pub(crate) fn livelock(steps_max: usize) -> Violation {
    Violation {
        kind: ViolationKind::Livelock,
        at: "scheduler",
        message: format!("the execution did not finish within {steps_max} scheduling steps"),
    }
}

/// Run `execution` once under `sched`: `Ok` with what the oracle reported (a livelock
/// when it did not finish within `steps_max` decisions), `Err` with shuttle's panic text
/// (a deadlock, a schedule that does not fit, a model panic).
pub(crate) fn execute_once<S, F>(
    sched: S,
    steps_max: usize,
    execution: F,
) -> Result<Vec<Violation>, String>
where
    S: Scheduler + 'static,
    F: Fn() -> Vec<Violation> + Send + Sync + 'static,
{
    let seen = Arc::new(Mutex::new(None));
    let body = {
        let seen = Arc::clone(&seen);
        move || {
            let v = execution();
            *seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(v);
        }
    };
    let (runner, _points) = runner(sched, steps_max, false);
    match quietly(|| catch_unwind(AssertUnwindSafe(|| runner.run(body)))) {
        Ok(_) => Ok(seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_else(|| vec![livelock(steps_max)])),
        Err(payload) => Err(payload_text(&*payload)),
    }
}

/// Run `execution` once under a uniformly random scheduler seeded `seed` and return what
/// the oracle reported with the schedule it took (encoded, as a trace stores it) and its
/// length, whether or not anything broke.
pub fn run_once<F>(seed: u64, steps_max: usize, execution: F) -> (Vec<Violation>, String, usize)
where
    F: Fn() -> Vec<Violation> + Send + Sync + 'static,
{
    let shared = Arc::new(Mutex::new(Shared::default()));
    let schedule = Rc::new(RefCell::new(Schedule::new(0)));
    let sched = Recording {
        inner: RandomScheduler::new_from_seed(seed, 1),
        shared: Arc::clone(&shared),
        schedule: Rc::clone(&schedule),
        steps_max,
        stop_after_first: false,
        control: Arc::new(Control::default()),
    };
    let violations =
        execute_once(sched, steps_max, execution).unwrap_or_else(|text| vec![classify(&text)]);
    let schedule = schedule.borrow();
    (violations, serialize_schedule(&schedule), schedule.len())
}

/// shuttle's failure text without its `Debug` dumps of tasks: the first line, cut
/// before the list of choices.
fn shuttle_message(text: &str) -> String {
    let line = text.lines().next().unwrap_or(text);
    let line = line.split(", but choices were").next().unwrap_or(line);
    let mut out: String = line.chars().take(300).collect();
    if out.len() < line.len() {
        out.push_str(" ...");
    }
    out
}

/// Run `f` with the process panic hook silenced: shuttle's failures are results here,
/// not crashes to print.
pub(crate) fn quietly<R>(f: impl FnOnce() -> R) -> R {
    // One process-wide hook, installed once, that stays silent while this OS thread is
    // exploring (shuttle runs every task of an execution on the calling thread).
    // Swapping the hook per run would serialize campaigns running side by side.
    static INSTALL: std::sync::Once = std::sync::Once::new();
    thread_local!(static EXPLORING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    INSTALL.call_once(|| {
        // shuttle installs its own printing hook on its first run (and prints task dumps
        // through it): let it, then put the process's own hook back, silenced while a
        // thread explores.
        let previous = std::panic::take_hook();
        Runner::new(shuttle::scheduler::RoundRobinScheduler::new(1), config(100)).run(|| {});
        let _shuttles = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !EXPLORING.with(|e| e.get()) {
                previous(info)
            }
        }));
    });
    let was = EXPLORING.with(|e| e.replace(true));
    let r = f();
    EXPLORING.with(|e| e.set(was));
    r
}
