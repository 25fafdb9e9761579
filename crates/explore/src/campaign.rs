//! Campaigns over scenarios: check one scenario on one era, turn every violation into a
//! self-contained trace (by replaying its schedule with tracing on), and replay traces.
//!
//! Exploring costs nothing in tracing: the model's events are only recorded when the
//! failing schedule is played again under [`cowbreak_trace::capture`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use cowbreak_mm::{Arch, Era, Policy, ViolationKind};
use cowbreak_scenario::Scenario;
use cowbreak_trace::{BackendInfo, Divergence, Event, Schedule, TraceFile};

use crate::shuttle_backend::{
    explore_shuttle_with, replay_shuttle, Control, ShuttleConfig, Strategy,
};
use crate::trace_build::{capture, trace_file};
use crate::Found;

pub use crate::trace_build::MODEL_VERSION;

/// One scenario on one era and architecture under one shuttle strategy.
#[derive(Clone, Debug)]
pub struct CheckRequest {
    /// The scenario.
    pub scenario: Scenario,
    /// The era whose preset to start from.
    pub era: Era,
    /// The architecture whose preset goes on top of the era's.
    pub arch: Arch,
    /// Switches flipped on top of the preset (after the scenario's own).
    pub switches: Vec<(String, bool)>,
    /// The campaign's settings.
    pub shuttle: ShuttleConfig,
}

impl CheckRequest {
    /// `scenario` on `era` and `arch`, with no switches flipped, as `check` runs it by
    /// default: PCT depth 3, `budget` executions, seed 0, 20,000 steps at most.
    pub fn new(scenario: Scenario, era: Era, arch: Arch, budget: usize) -> CheckRequest {
        CheckRequest {
            scenario,
            era,
            arch,
            switches: Vec::new(),
            shuttle: ShuttleConfig {
                strategy: Strategy::Pct { depth: 3 },
                iterations: budget,
                seed: 0,
                steps_max: 20_000,
                stop_after_first: false,
            },
        }
    }

    /// The policy the kernel runs with: the era's and the architecture's preset, the
    /// scenario's switches, then the request's. Fails on an unknown switch name.
    pub fn policy(&self) -> Result<Policy, cowbreak_mm::UnknownSwitch> {
        let mut p = self.scenario.policy(self.era, self.arch);
        for (name, on) in &self.switches {
            p.set(name, *on)?;
        }
        Ok(p)
    }
}

/// A violation a check found, with its trace.
#[derive(Clone, Debug)]
pub struct Reported {
    /// What the campaign found.
    pub found: Found,
    /// The trace of its shortest schedule.
    pub trace: TraceFile,
}

/// What a check saw.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// Scenario name.
    pub scenario: String,
    /// Era name.
    pub era: String,
    /// Architecture name.
    pub arch: String,
    /// Backend name (`pct`, `random`, `urw`, `dfs`).
    pub backend: String,
    /// Backend parameters, as written into traces.
    pub params: BTreeMap<String, serde_json::Value>,
    /// Executions run.
    pub executions: u64,
    /// Wall time of the exploration (not of trace writing).
    pub elapsed_ms: u128,
    /// Distinct violations.
    pub violations: Vec<Reported>,
}

/// The name of a strategy as the command line spells it.
pub fn strategy_name(s: Strategy) -> &'static str {
    match s {
        Strategy::Random => "random",
        Strategy::Pct { .. } => "pct",
        Strategy::Urw => "urw",
        Strategy::Pos => "pos",
        Strategy::Surw => "surw",
        Strategy::Dfs => "dfs",
    }
}

fn params(cfg: &ShuttleConfig) -> BTreeMap<String, serde_json::Value> {
    let mut p = BTreeMap::new();
    p.insert("iterations".to_string(), cfg.iterations.into());
    p.insert("seed".to_string(), cfg.seed.into());
    p.insert("steps_max".to_string(), cfg.steps_max.into());
    if let Strategy::Pct { depth } = cfg.strategy {
        p.insert("depth".to_string(), depth.into());
    }
    if cfg.strategy != Strategy::Dfs {
        p.insert("chunk".to_string(), CHUNK_EXECUTIONS.into());
    }
    p
}

/// Executions in one chunk of a seeded campaign: its unit of work, of seeding, of
/// resumption and of sharding. Chunk `c` runs executions `c * CHUNK + 1 ..= (c + 1) *
/// CHUNK` of the campaign with a seed derived from the campaign's seed and `c` alone, so
/// the executions a campaign runs are a function of its seed and budget: how many threads
/// or machines run the chunks, and in which order, changes nothing in the result.
pub const CHUNK_EXECUTIONS: usize = 1000;

/// The seed of chunk `chunk` of a campaign seeded `seed` (SplitMix64 of the pair).
pub fn chunk_seed(seed: u64, chunk: usize) -> u64 {
    let mut z = seed.wrapping_add((chunk as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl CheckRequest {
    /// Executions per chunk: [`CHUNK_EXECUTIONS`], or the whole budget for DFS, which
    /// enumerates one tree and cannot be split.
    pub fn chunk_size(&self) -> usize {
        match self.shuttle.strategy {
            Strategy::Dfs => self.shuttle.iterations.max(1),
            _ => CHUNK_EXECUTIONS,
        }
    }

    /// How many chunks the campaign has.
    pub fn chunks(&self) -> usize {
        self.shuttle.iterations.div_ceil(self.chunk_size()).max(1)
    }

    /// The settings chunk `chunk` runs with.
    pub fn chunk_config(&self, chunk: usize) -> ShuttleConfig {
        let start = chunk * self.chunk_size();
        ShuttleConfig {
            iterations: self
                .chunk_size()
                .min(self.shuttle.iterations.saturating_sub(start)),
            seed: match self.shuttle.strategy {
                Strategy::Dfs => self.shuttle.seed,
                _ => chunk_seed(self.shuttle.seed, chunk),
            },
            ..self.shuttle
        }
    }

    /// What makes this campaign's result what it is, as recorded in its state file, its
    /// JSON and (through the backend parameters) its traces: two campaigns with the same
    /// identity run the same executions.
    pub fn identity(&self) -> serde_json::Value {
        serde_json::json!({
            "scenario": self.scenario.name,
            "scenario_hash": scenario_hash(&self.scenario.text),
            "era": self.era.name(),
            "arch": self.arch.name(),
            "switches": self.switches.iter().map(|(n, on)| format!("{n}={}", if *on { "on" } else { "off" })).collect::<Vec<_>>(),
            "strategy": strategy_name(self.shuttle.strategy),
            "params": params(&self.shuttle),
            "model_version": MODEL_VERSION,
        })
    }
}

/// The switches a saved exploration read, from its JSON's `switches_read` list of
/// names (campaign and matrix state files, the loom runner's report). A missing list
/// means every switch, as an exploration from before the list existed may have read
/// any; `Err` says what is wrong with a list that is there. Each caller decides what a
/// bad list costs it: an error, a cell explored again, or every switch.
pub fn switches_read_from_json(v: &serde_json::Value) -> Result<u64, &'static str> {
    let Some(names) = v["switches_read"].as_array() else {
        return Ok(u64::MAX);
    };
    names
        .iter()
        .map(serde_json::Value::as_str)
        .collect::<Option<Vec<_>>>()
        .and_then(cowbreak_mm::SwitchReads::from_names)
        .ok_or("`switches_read` names a switch that does not exist")
}

/// A short, stable hash of a scenario's text (FNV-1a, 64 bits, as 8 hex digits): tells
/// two scenario files of the same name apart in trace names and state files.
pub fn scenario_hash(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{:08x}", (h >> 32) ^ (h & 0xffff_ffff))
}

/// What one chunk of a campaign gave.
#[derive(Clone, Debug)]
pub struct ChunkResult {
    /// The chunk's index.
    pub chunk: usize,
    /// Executions it ran.
    pub executions: u64,
    /// It ran its whole share (not stopped by an interrupt).
    pub complete: bool,
    /// The scheduler had only one schedule to give: the campaign is that schedule.
    pub single_schedule: bool,
    /// What it found; execution numbers are the campaign's.
    pub found: Vec<Found>,
    /// The switches its executions read ([`cowbreak_mm::SwitchReads`]).
    pub reads: u64,
}

/// Run chunks `chunks` of `req` on `jobs` threads (a crossbeam channel hands chunks out,
/// one at a time). Each result reaches `on_result` on the calling thread as soon as its
/// chunk ends; `on_wait` is called about every 200 ms meanwhile (progress displays).
/// Setting `control.stop` ends every chunk after its execution in flight; their results
/// still arrive, marked incomplete.
pub fn run_chunks(
    req: &CheckRequest,
    chunks: &[usize],
    jobs: usize,
    control: &Arc<Control>,
    mut on_result: impl FnMut(ChunkResult),
    mut on_wait: impl FnMut(),
) -> Result<(), cowbreak_mm::UnknownSwitch> {
    let policy = req.policy()?;
    let config = req.scenario.kernel_config(policy, req.arch);
    let (work_tx, work_rx) = crossbeam_channel::unbounded::<usize>();
    for &c in chunks {
        work_tx.send(c).expect("the receiver is alive");
    }
    drop(work_tx);
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<ChunkResult>();
    // A single-schedule chunk says all there is: the others need not run.
    let settled = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, chunks.len().max(1)) {
            let (work_rx, done_tx) = (work_rx.clone(), done_tx.clone());
            let (config, settled) = (config.clone(), &settled);
            s.spawn(move || {
                while let Ok(chunk) = work_rx.recv() {
                    if control.stop.load(Ordering::Relaxed) || settled.load(Ordering::Relaxed) {
                        break;
                    }
                    let cfg = req.chunk_config(chunk);
                    // Each chunk notes its own reads.
                    let config = cowbreak_mm::KernelConfig {
                        reads: Default::default(),
                        ..config.clone()
                    };
                    let execution = req.scenario.execution(config.clone());
                    let outcome = explore_shuttle_with(&cfg, Arc::clone(control), execution);
                    let start = (chunk * req.chunk_size()) as u64;
                    if outcome.single_schedule {
                        settled.store(true, Ordering::Relaxed);
                    }
                    let result = ChunkResult {
                        chunk,
                        executions: outcome.executions,
                        complete: !outcome.interrupted,
                        single_schedule: outcome.single_schedule,
                        reads: config.reads.get(),
                        found: outcome
                            .violations
                            .into_iter()
                            .map(|mut f| {
                                f.first_at_execution += start;
                                f.shortest_at_execution += start;
                                f
                            })
                            .collect(),
                    };
                    if done_tx.send(result).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        loop {
            match done_rx.recv_timeout(std::time::Duration::from_millis(200)) {
                Ok(r) => on_result(r),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => on_wait(),
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
        }
    });
    Ok(())
}

/// A campaign's results so far: which chunks are done and the distinct violations,
/// merged so that the outcome does not depend on the order chunks finish in (the
/// earliest first execution; the shortest schedule, the earliest among equals). This is
/// what a state file keeps, what `--resume` starts from and what `merge` joins.
#[derive(Clone, Debug, Default)]
pub struct Campaign {
    /// Chunks run to the end, with the executions each ran.
    pub done: BTreeMap<usize, u64>,
    /// The campaign is one schedule (see [`ChunkResult::single_schedule`]).
    pub single_schedule: bool,
    /// Distinct violations by (kind, place).
    pub found: BTreeMap<(ViolationKind, String), Found>,
    /// The switches the executions read, over every chunk folded in. A campaign read
    /// from a state file without them reads all: its outcome depends on every switch.
    pub reads: u64,
}

impl Campaign {
    /// Fold `r` in; returns the (kind, place) keys whose kept schedule changed (new ones
    /// included): their traces need writing.
    pub fn add(&mut self, r: ChunkResult) -> Vec<(ViolationKind, String)> {
        if r.complete {
            self.done.insert(r.chunk, r.executions);
            self.single_schedule |= r.single_schedule;
        }
        self.reads |= r.reads;
        self.keep(r.found)
    }

    /// Fold findings in by the campaign's rule (earliest first execution; shortest
    /// schedule, earliest among equals); returns the keys whose kept schedule changed.
    fn keep(&mut self, found: Vec<Found>) -> Vec<(ViolationKind, String)> {
        let mut changed = Vec::new();
        for f in found {
            let key = (f.violation.kind, f.violation.at.to_string());
            match self.found.get_mut(&key) {
                Some(kept) => {
                    let first = kept.first_at_execution.min(f.first_at_execution);
                    let better = f.schedule.is_some()
                        && (f.schedule_len, f.shortest_at_execution)
                            < (kept.schedule_len, kept.shortest_at_execution);
                    if better {
                        *kept = f;
                        changed.push(key);
                    }
                    kept.first_at_execution = first;
                }
                None => {
                    self.found.insert(key.clone(), f);
                    changed.push(key);
                }
            }
        }
        changed
    }

    /// Executions run: the sum over done chunks, or the one schedule there is.
    pub fn executions(&self) -> u64 {
        if self.single_schedule {
            1
        } else {
            self.done.values().sum()
        }
    }

    /// Whether every chunk of `req` (or of `shard`) has run.
    pub fn finished(&self, req: &CheckRequest, shard: Shard) -> bool {
        self.single_schedule || self.todo(req, shard).is_empty()
    }

    /// The chunks of `shard` still to run.
    pub fn todo(&self, req: &CheckRequest, shard: Shard) -> Vec<usize> {
        if self.single_schedule {
            return Vec::new();
        }
        (0..req.chunks())
            .filter(|c| shard.owns(*c) && !self.done.contains_key(c))
            .collect()
    }

    /// The violations in the order they were first found (then by kind and place).
    pub fn violations(&self) -> Vec<&Found> {
        let mut v: Vec<&Found> = self.found.values().collect();
        v.sort_by_key(|f| (f.first_at_execution, f.violation.kind, f.violation.at));
        v
    }

    /// Join `other` (another shard of the same campaign, or a resumed part) in.
    pub fn merge(&mut self, other: Campaign) {
        self.done.extend(other.done);
        self.single_schedule |= other.single_schedule;
        self.reads |= other.reads;
        self.keep(other.found.into_values().collect());
    }

    /// The campaign as JSON, for its state file.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "done": self.done.iter().map(|(c, n)| [*c as u64, *n]).collect::<Vec<_>>(),
            "executions": self.executions(),
            "single_schedule": self.single_schedule,
            "switches_read": cowbreak_mm::SwitchReads::names(self.reads),
            "found": self.violations().iter().map(|f| serde_json::json!({
                "kind": f.violation.kind.name(),
                "at": f.violation.at,
                "message": f.violation.message,
                "first_at_execution": f.first_at_execution,
                "shortest_at_execution": f.shortest_at_execution,
                "schedule": f.schedule,
                "schedule_len": f.schedule_len,
            })).collect::<Vec<_>>(),
        })
    }

    /// Read [`Campaign::to_json`] back; `Err` says what is wrong with it.
    pub fn from_json(v: &serde_json::Value) -> Result<Campaign, String> {
        let mut c = Campaign {
            single_schedule: v["single_schedule"].as_bool().unwrap_or(false),
            reads: switches_read_from_json(v)?,
            ..Campaign::default()
        };
        for d in v["done"].as_array().ok_or("no `done`")? {
            let pair = |i: usize| d.get(i).and_then(serde_json::Value::as_u64);
            match (pair(0), pair(1)) {
                (Some(chunk), Some(n)) => c.done.insert(chunk as usize, n),
                _ => return Err("`done` holds something other than [chunk, executions]".into()),
            };
        }
        for f in v["found"].as_array().ok_or("no `found`")? {
            let text = |k: &str| f[k].as_str().ok_or(format!("a finding has no `{k}`"));
            let num = |k: &str| f[k].as_u64().ok_or(format!("a finding has no `{k}`"));
            let kind = ViolationKind::from_name(text("kind")?)
                .ok_or_else(|| format!("unknown violation kind `{}`", f["kind"]))?;
            let found = Found {
                violation: cowbreak_mm::Violation {
                    kind,
                    at: place(text("at")?),
                    message: text("message")?.to_string(),
                },
                first_at_execution: num("first_at_execution")?,
                shortest_at_execution: num("shortest_at_execution")?,
                schedule: f["schedule"].as_str().map(str::to_string),
                schedule_len: num("schedule_len")? as usize,
            };
            c.found
                .insert((kind, found.violation.at.to_string()), found);
        }
        Ok(c)
    }

    /// The report of this campaign, with a trace for each violation from `trace`.
    pub fn report(
        &self,
        req: &CheckRequest,
        elapsed_ms: u128,
        mut trace: impl FnMut(&Found) -> TraceFile,
    ) -> CheckReport {
        CheckReport {
            scenario: req.scenario.name.clone(),
            era: req.era.name().to_string(),
            arch: req.arch.name().to_string(),
            backend: strategy_name(req.shuttle.strategy).to_string(),
            params: params(&req.shuttle),
            executions: self.executions(),
            elapsed_ms,
            violations: self
                .violations()
                .into_iter()
                .map(|f| {
                    let trace = trace(f);
                    let mut found = f.clone();
                    if found.violation.kind == ViolationKind::Deadlock {
                        // The trace explains it in the scenario's words.
                        found.violation.message = trace.violation.message.clone();
                    }
                    Reported { found, trace }
                })
                .collect(),
        }
    }
}

/// A violation's place, read back from a file: the model's places are `&'static str`;
/// each distinct text is kept once for the life of the process.
pub fn place(at: &str) -> &'static str {
    static PLACES: std::sync::Mutex<BTreeSet<&'static str>> =
        std::sync::Mutex::new(BTreeSet::new());
    let mut places = PLACES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = places.get(at) {
        return p;
    }
    let p: &'static str = Box::leak(at.to_string().into_boxed_str());
    places.insert(p);
    p
}

/// Which chunks (or matrix cells) a process runs: shard `index` of `count` owns every
/// unit `u` with `u % count == index`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, from 0.
    pub index: usize,
    /// How many shards there are.
    pub count: usize,
}

impl Shard {
    /// The whole campaign.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Whether unit `unit` is this shard's.
    pub fn owns(&self, unit: usize) -> bool {
        unit % self.count == self.index
    }
}

/// The backend's description of `req`, as traces record it.
pub fn backend_info(req: &CheckRequest) -> BackendInfo {
    BackendInfo {
        name: strategy_name(req.shuttle.strategy).to_string(),
        params: params(&req.shuttle),
    }
}

/// Explore `req` and write a trace for every distinct violation.
pub fn check(req: &CheckRequest) -> Result<CheckReport, cowbreak_mm::UnknownSwitch> {
    check_sharded(req, 1)
}

/// [`check`] on `jobs` OS threads. The result is the same for every `jobs`: the chunks
/// and their seeds depend on the request alone (see [`CHUNK_EXECUTIONS`]).
pub fn check_sharded(
    req: &CheckRequest,
    jobs: usize,
) -> Result<CheckReport, cowbreak_mm::UnknownSwitch> {
    let (report, _) = check_with(req, jobs, &Arc::new(Control::default()))?;
    Ok(report)
}

/// [`check_sharded`] under `control`; the flag says whether the campaign was stopped
/// before it finished (the report then holds what was found so far).
pub fn check_with(
    req: &CheckRequest,
    jobs: usize,
    control: &Arc<Control>,
) -> Result<(CheckReport, bool), cowbreak_mm::UnknownSwitch> {
    let policy = req.policy()?;
    let started = Instant::now();
    let mut campaign = Campaign::default();
    let todo = campaign.todo(req, Shard::ALL);
    run_chunks(
        req,
        &todo,
        jobs,
        control,
        |r| {
            campaign.add(r);
        },
        || {},
    )?;
    let elapsed_ms = started.elapsed().as_millis();
    let backend = backend_info(req);
    let report = campaign.report(req, elapsed_ms, |f| {
        trace_of(&req.scenario, req.era, req.arch, &policy, &backend, f)
    });
    Ok((report, !campaign.finished(req, Shard::ALL)))
}

/// The step limit a campaign ran with, as its backend parameters record it (the command
/// line's default, 20,000, when they do not say).
fn recorded_steps_max(backend: &BackendInfo) -> usize {
    backend
        .params
        .get("steps_max")
        .and_then(serde_json::Value::as_u64)
        .map_or(20_000, |n| n as usize)
}

/// Play `found`'s schedule again with tracing on and package it as a trace.
pub fn trace_of(
    scenario: &Scenario,
    era: Era,
    arch: Arch,
    policy: &Policy,
    backend: &BackendInfo,
    found: &Found,
) -> TraceFile {
    let config = scenario.kernel_config(*policy, arch);
    let (schedule, events) = match &found.schedule {
        Some(s) => {
            let steps_max = recorded_steps_max(backend);
            let (_, events) = capture(scenario, || {
                replay_shuttle(s, steps_max, scenario.execution(config.clone()))
            });
            (
                Schedule {
                    encoding: "shuttle".into(),
                    data: s.clone(),
                    steps: found.schedule_len,
                },
                events,
            )
        }
        None => (
            Schedule {
                encoding: "none".into(),
                data: String::new(),
                steps: 0,
            },
            Vec::new(),
        ),
    };
    let mut trace = trace_file(
        scenario,
        era,
        arch,
        policy,
        backend.clone(),
        schedule,
        events,
        &found.violation,
    );
    if found.violation.kind == ViolationKind::Deadlock {
        if let Some(why) = explain_deadlock(&trace) {
            trace.violation.message = why;
        }
    }
    trace
}

/// A deadlock in the scenario's words: which threads were left waiting, at which line
/// of the scenario, instead of shuttle's task ids. `None` when no scenario thread's
/// last step was a wait (the cycle is inside the model: its last events show it).
pub fn explain_deadlock(trace: &TraceFile) -> Option<String> {
    let lines: Vec<&str> = trace.scenario.source.lines().collect();
    let mut waits = Vec::new();
    for t in &trace.threads {
        let last = trace.events.iter().rev().find(|e| e.thread == Some(t.id));
        let Some(e) = last else { continue };
        if e.target == "cowbreak::scenario"
            && e.func.as_deref() == Some("wait")
            && e.message == "waits"
        {
            let line = e.fields.get("line").and_then(|l| l.parse::<usize>().ok());
            let text = line
                .and_then(|l| lines.get(l.wrapping_sub(1)))
                .map_or(String::new(), |t| format!(" `{}`", t.trim()));
            waits.push(format!(
                "thread {} waits at line {}{text}",
                t.name,
                line.map_or("?".to_string(), |l| l.to_string())
            ));
        }
    }
    (!waits.is_empty()).then(|| {
        format!(
            "deadlock: no thread can run; {} (no thread left will signal what they wait for)",
            waits.join(", ")
        )
    })
}

/// How [`run_one`] picks its one execution.
#[derive(Clone, Debug)]
pub enum OneRun {
    /// A uniformly random schedule from this seed.
    Seed(u64),
    /// This schedule (as a trace stores it).
    Schedule(String),
}

/// The violation record of a trace of an execution that broke nothing.
pub const NO_VIOLATION: &str = "none";

/// Run one execution of `req` (its seed or a given schedule) and return its trace,
/// whether or not it violated anything: a clean run's trace has violation kind
/// [`NO_VIOLATION`] and replays to no violation. `Err` when the schedule is not one or
/// does not fit.
pub fn run_one(
    req: &CheckRequest,
    how: &OneRun,
) -> Result<(TraceFile, Vec<cowbreak_mm::Violation>), String> {
    let policy = req.policy().map_err(|e| e.to_string())?;
    let config = req.scenario.kernel_config(policy, req.arch);
    let steps_max = req.shuttle.steps_max;
    let (violations, schedule, steps) = match how {
        OneRun::Seed(seed) => {
            let (v, s, n) = crate::shuttle_backend::run_once(
                *seed,
                steps_max,
                req.scenario.execution(config.clone()),
            );
            (v, s, n)
        }
        OneRun::Schedule(s) => {
            let r = replay_shuttle(s, steps_max, req.scenario.execution(config.clone()))?;
            (r.violations, s.clone(), r.steps)
        }
    };
    // Play the schedule again with tracing on, as for any trace.
    let (_, events) = capture(&req.scenario, || {
        replay_shuttle(&schedule, steps_max, req.scenario.execution(config.clone()))
    });
    let mut params = params(&req.shuttle);
    params.remove("iterations");
    params.remove("chunk");
    params.remove("depth");
    if let OneRun::Seed(seed) = how {
        params.insert("seed".into(), (*seed).into());
    } else {
        params.remove("seed");
    }
    let backend = BackendInfo {
        name: match how {
            OneRun::Seed(_) => "random".into(),
            OneRun::Schedule(_) => "schedule".into(),
        },
        params,
    };
    let shown = violations
        .first()
        .cloned()
        .unwrap_or(cowbreak_mm::Violation {
            kind: ViolationKind::Livelock,
            at: "",
            message: String::new(),
        });
    let mut trace = trace_file(
        &req.scenario,
        req.era,
        req.arch,
        &policy,
        backend,
        Schedule {
            encoding: "shuttle".into(),
            data: schedule,
            steps,
        },
        events,
        &shown,
    );
    if violations.is_empty() {
        trace.violation = cowbreak_trace::ViolationRecord {
            kind: NO_VIOLATION.into(),
            at: String::new(),
            message: "this execution broke no invariant".into(),
            explanation: "a clean interleaving, recorded to be read".into(),
        };
    } else if shown.kind == ViolationKind::Deadlock {
        if let Some(why) = explain_deadlock(&trace) {
            trace.violation.message = why;
        }
    }
    Ok((trace, violations))
}

/// Why a trace could not be replayed at all (bad input: exit 2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadTrace(pub String);

impl fmt::Display for BadTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadTrace {}

/// What replaying a trace gave.
#[derive(Clone, Debug)]
pub struct ReplayReport {
    /// The events of the replay.
    pub events: Vec<Event>,
    /// The first difference from the recorded events, if any.
    pub divergence: Option<Divergence>,
    /// Whether the recorded violation (kind and place) happened again.
    pub reproduced: bool,
    /// Why the run diverged before producing events (the schedule did not fit).
    pub schedule_error: Option<String>,
    /// Scheduling decisions the replay took (shuttle traces).
    pub steps: Option<usize>,
    /// What the oracle reported in the replay.
    pub violations: Vec<(ViolationKind, String)>,
    /// Switches whose recorded value differs from the era's and architecture's preset
    /// (with the scenario's own switches): the trace was made with them flipped.
    pub flipped: Vec<(String, bool)>,
}

impl ReplayReport {
    /// Reproduced with identical events.
    pub fn exact(&self) -> bool {
        self.reproduced && self.divergence.is_none() && self.schedule_error.is_none()
    }
}

/// The scenario, era, architecture and policy a trace records, checked: the embedded
/// scenario must parse and carry the trace's name, the era, arch and switches exist.
fn rebuild(trace: &TraceFile, origin: &str) -> Result<(Scenario, Era, Arch, Policy), BadTrace> {
    let scenario = cowbreak_scenario::parse(
        &format!("{origin} (embedded scenario)"),
        &trace.scenario.source,
    )
    .map_err(|e| {
        BadTrace(format!(
            "{origin}: the trace's scenario does not parse: {e}"
        ))
    })?;
    if scenario.name != trace.scenario.name {
        return Err(BadTrace(format!(
            "{origin}: the trace names scenario `{}` but embeds `{}`",
            trace.scenario.name, scenario.name
        )));
    }
    let era = Era::from_name(&trace.era).map_err(|e| BadTrace(format!("{origin}: {e}")))?;
    let arch = Arch::from_name(&trace.arch).map_err(|e| BadTrace(format!("{origin}: {e}")))?;
    let mut policy = Policy::default();
    for (name, on) in &trace.switches {
        policy
            .set(name, *on)
            .map_err(|e| BadTrace(format!("{origin}: {e}")))?;
    }
    Ok((scenario, era, arch, policy))
}

/// The switches `trace` was recorded with that differ from its era's and architecture's
/// preset (with the scenario's own switches); empty when the trace does not rebuild.
pub fn preset_diff(trace: &TraceFile) -> Vec<(String, bool)> {
    match rebuild(trace, "trace") {
        Ok((scenario, era, arch, recorded)) => recorded
            .diff(&scenario.policy(era, arch))
            .into_iter()
            .map(|(n, on)| (n.to_string(), on))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Where to replay a trace instead of where it was recorded (`replay --era/--arch/--switch`).
#[derive(Clone, Debug, Default)]
pub struct Elsewhere {
    /// Another era's preset.
    pub era: Option<Era>,
    /// Another architecture's preset.
    pub arch: Option<Arch>,
    /// Switches flipped on top.
    pub switches: Vec<(String, bool)>,
}

/// Replay `trace` (read from `origin`): rebuild the scenario, era and switches it
/// records, play its schedule with tracing on, and compare.
pub fn replay(trace: &TraceFile, origin: &str) -> Result<ReplayReport, BadTrace> {
    replay_elsewhere(trace, origin, &Elsewhere::default())
}

/// [`replay`] with the policy rebuilt from `elsewhere`'s era, architecture and switches
/// (the scenario's own switches included) when it names any: does the same schedule
/// break the same way there?
pub fn replay_elsewhere(
    trace: &TraceFile,
    origin: &str,
    elsewhere: &Elsewhere,
) -> Result<ReplayReport, BadTrace> {
    let (scenario, era, arch, recorded) = rebuild(trace, origin)?;
    let preset = scenario.policy(era, arch);
    let flipped = recorded
        .diff(&preset)
        .into_iter()
        .map(|(name, on)| (name.to_string(), on))
        .collect();
    let moved =
        elsewhere.era.is_some() || elsewhere.arch.is_some() || !elsewhere.switches.is_empty();
    let (policy, arch) = if moved {
        let arch = elsewhere.arch.unwrap_or(arch);
        let mut p = scenario.policy(elsewhere.era.unwrap_or(era), arch);
        for (name, on) in &elsewhere.switches {
            p.set(name, *on).map_err(|e| BadTrace(e.to_string()))?;
        }
        (p, arch)
    } else {
        (recorded, arch)
    };
    if trace.schedule.encoding != "shuttle" {
        return Err(BadTrace(format!(
            "{origin}: the trace has no replayable schedule (encoding `{}`)",
            trace.schedule.encoding
        )));
    }
    crate::shuttle_backend::check_schedule(&trace.schedule.data)
        .map_err(|e| BadTrace(format!("{origin}: {e}")))?;
    let clean = trace.violation.kind == NO_VIOLATION;
    let kind = match ViolationKind::from_name(&trace.violation.kind) {
        Some(k) => Some(k),
        None if clean => None,
        None => {
            return Err(BadTrace(format!(
                "{origin}: unknown violation kind `{}`",
                trace.violation.kind
            )))
        }
    };
    let steps_max = recorded_steps_max(&trace.backend);
    let config = scenario.kernel_config(policy, arch);
    let (result, events) = capture(&scenario, || {
        replay_shuttle(&trace.schedule.data, steps_max, scenario.execution(config))
    });
    let divergence = cowbreak_trace::first_divergence(&trace.events, &events);
    Ok(match result {
        Ok(r) => ReplayReport {
            reproduced: match kind {
                Some(kind) => r
                    .violations
                    .iter()
                    .any(|v| v.kind == kind && v.at == trace.violation.at),
                None => r.violations.is_empty(),
            },
            violations: r
                .violations
                .iter()
                .map(|v| (v.kind, v.at.to_string()))
                .collect(),
            steps: Some(r.steps),
            events,
            divergence,
            schedule_error: None,
            flipped,
        },
        Err(e) => ReplayReport {
            events,
            divergence,
            reproduced: false,
            schedule_error: Some(e),
            steps: None,
            violations: Vec::new(),
            flipped,
        },
    })
}

/// What [`minimize_trace`] gave.
#[derive(Clone, Debug)]
pub struct MinimizeReport {
    /// The search's outcome (before and after, as played).
    pub search: crate::minimize::Minimized,
    /// The trace of the smallest schedule, confirmed by an exact replay.
    pub trace: TraceFile,
    /// `Some(true)`: every schedule with fewer preemptions was tried and none breaks the
    /// same way within the original's steps (the minimum is proven; see `longer_below`
    /// for one that does in more steps); `Some(false)`: the search found one but the
    /// shrinking lost it (should not happen); `None`: the bounded search did not finish
    /// in its budget.
    pub proven: Option<bool>,
    /// The (preemptions, steps) of the shortest schedule with fewer preemptions that
    /// breaks the same way, when it takes more steps than the original. Minimizing never
    /// lengthens a trace, so it is reported, not written.
    pub longer_below: Option<(usize, usize)>,
}

/// Shrink the schedule of `trace` (read from `origin`) to the fewest preemptions, then
/// the fewest steps, that still give its violation (same kind, same place); confirm it
/// by replay; and, within `budget` executions, search every schedule with fewer
/// preemptions for the same violation.
///
/// The result never takes more steps than the original unless `may_lengthen`: then
/// fewer preemptions win whatever the steps (a spin or a blocking wait that now waits
/// its turn costs a few).
pub fn minimize_trace(
    trace: &TraceFile,
    origin: &str,
    budget: usize,
    may_lengthen: bool,
) -> Result<MinimizeReport, BadTrace> {
    let (scenario, era, arch, policy) = rebuild(trace, origin)?;
    if trace.schedule.encoding != "shuttle" {
        return Err(BadTrace(format!(
            "{origin}: minimize works on shuttle schedules; this trace's is `{}` (a loom path is already one execution of a bounded search)",
            trace.schedule.encoding
        )));
    }
    let kind = ViolationKind::from_name(&trace.violation.kind).ok_or_else(|| {
        BadTrace(format!(
            "{origin}: no violation to keep (kind `{}`)",
            trace.violation.kind
        ))
    })?;
    let at = place(&trace.violation.at);
    let steps_max = recorded_steps_max(&trace.backend);
    let config = scenario.kernel_config(policy, arch);
    let execution = std::sync::Arc::new(scenario.execution(config.clone()));
    let want = crate::minimize::tasks_of(&trace.schedule.data)
        .ok_or_else(|| BadTrace(format!("{origin}: not a shuttle schedule")))?;
    // The search first keeps within the original's steps, and lengthens only for fewer
    // preemptions that cannot be had otherwise: `may_lengthen` never costs steps that
    // the default would have saved.
    let mut ceiling = want.len();
    let mut search =
        crate::minimize::minimize_from(&want, kind, at, steps_max, budget, ceiling, &execution)
            .map_err(|e| BadTrace(format!("{origin}: {e}")))?;
    // Ask a bounded search below the preemptions reached; a schedule it finds is shrunk
    // in turn, and kept when it fits in the original's steps.
    let mut longer_below = None;
    let proven = loop {
        let p = search.after.preemptions;
        if p == 0 {
            break Some(true);
        }
        let e = std::sync::Arc::clone(&execution);
        let below =
            crate::minimize::search_below(p - 1, kind, at, steps_max, budget, ceiling, move || e());
        let (tasks, exhausted) = match below {
            crate::minimize::Below::Clean => break Some(true),
            crate::minimize::Below::Unfinished => break None,
            crate::minimize::Below::Found(tasks) => (tasks, false),
            crate::minimize::Below::Longer(tasks) => (tasks, true),
        };
        if may_lengthen && tasks.len() > ceiling {
            ceiling = usize::MAX;
        }
        let next = crate::minimize::minimize_from(
            &tasks, kind, at, steps_max, budget, ceiling, &execution,
        )
        .map_err(|e| BadTrace(format!("{origin}: {e}")))?;
        search.tries += next.tries;
        let a = &next.after;
        if a.preemptions < p && a.tasks.len() <= ceiling {
            search.after = next.after;
        } else {
            longer_below = (a.preemptions < p).then_some((a.preemptions, a.tasks.len()));
            // Every schedule below the bound was run: those that break all take longer.
            break Some(exhausted && longer_below.is_some());
        }
    };
    // Confirm with shuttle's own replay, and capture the events.
    let (result, events) = capture(&scenario, || {
        replay_shuttle(
            &search.after.encoded,
            steps_max,
            scenario.execution(config.clone()),
        )
    });
    let replayed = result.map_err(|e| {
        BadTrace(format!(
            "{origin}: the minimized schedule does not replay: {e}"
        ))
    })?;
    let violation = replayed
        .violations
        .iter()
        .find(|v| v.kind == kind && v.at == at)
        .cloned()
        .ok_or_else(|| {
            BadTrace(format!(
                "{origin}: the minimized schedule lost the violation on replay"
            ))
        })?;
    let mut backend = trace.backend.clone();
    backend.params.insert("minimized".into(), true.into());
    backend
        .params
        .insert("preemptions".into(), search.after.preemptions.into());
    let mut min = trace_file(
        &scenario,
        era,
        arch,
        &policy,
        backend,
        Schedule {
            encoding: "shuttle".into(),
            data: search.after.encoded.clone(),
            steps: replayed.steps,
        },
        events,
        &violation,
    );
    if kind == ViolationKind::Deadlock {
        if let Some(why) = explain_deadlock(&min) {
            min.violation.message = why;
        }
    }
    min.scenario.path = trace.scenario.path.clone();
    Ok(MinimizeReport {
        search,
        trace: min,
        proven,
        longer_below,
    })
}
