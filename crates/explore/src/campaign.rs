//! Campaigns over scenarios: check one scenario on one era, turn every violation into a
//! self-contained trace (by replaying its schedule with tracing on), and replay traces.
//!
//! Exploring costs nothing in tracing: the model's events are only recorded when the
//! failing schedule is played again under [`cowbreak_trace::capture`].

use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

use cowbreak_mm::{Arch, Era, Policy, ViolationKind};
use cowbreak_scenario::Scenario;
use cowbreak_trace::{BackendInfo, Divergence, Event, Schedule, TraceFile};

use crate::shuttle_backend::{explore_shuttle, replay_shuttle, ShuttleConfig, Strategy};
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
    p
}

/// Explore `req` and write a trace for every distinct violation.
pub fn check(req: &CheckRequest) -> Result<CheckReport, cowbreak_mm::UnknownSwitch> {
    check_sharded(req, 1)
}

/// [`check`] split over `jobs` OS threads: shard `i` explores its share of the
/// iterations from seed `seed + i`, and the shards' violations are merged (distinct by
/// kind and place, shortest schedule kept). Execution `k` of shard `i` counts as
/// execution `(k - 1) * jobs + i + 1` of the campaign, as if the shards took turns. The
/// same seed and `jobs` give the same outcome; another `jobs` explores other schedules.
pub fn check_sharded(
    req: &CheckRequest,
    jobs: usize,
) -> Result<CheckReport, cowbreak_mm::UnknownSwitch> {
    let policy = req.policy()?;
    let config = req.scenario.kernel_config(policy, req.arch);
    let jobs = jobs.clamp(1, req.shuttle.iterations.max(1));
    let started = Instant::now();
    let outcomes: Vec<crate::Outcome> = std::thread::scope(|s| {
        let shards: Vec<_> = (0..jobs)
            .map(|i| {
                let shard = ShuttleConfig {
                    iterations: req.shuttle.iterations / jobs
                        + usize::from(i < req.shuttle.iterations % jobs),
                    seed: req.shuttle.seed.wrapping_add(i as u64),
                    // One heartbeat is enough.
                    progress: req.shuttle.progress.filter(|_| i == 0),
                    ..req.shuttle
                };
                let execution = req.scenario.execution(config.clone());
                s.spawn(move || explore_shuttle(&shard, execution))
            })
            .collect();
        shards
            .into_iter()
            .map(|h| h.join().expect("a shard panicked"))
            .collect()
    });
    let elapsed_ms = started.elapsed().as_millis();
    let mut params = params(&req.shuttle);
    if jobs > 1 {
        params.insert("jobs".to_string(), jobs.into());
    }
    let backend = BackendInfo {
        name: strategy_name(req.shuttle.strategy).to_string(),
        params,
    };
    let executions = outcomes.iter().map(|o| o.executions).sum();
    let mut merged: Vec<Found> = Vec::new();
    for (i, outcome) in outcomes.into_iter().enumerate() {
        for mut found in outcome.violations {
            found.first_at_execution = (found.first_at_execution - 1) * jobs as u64 + i as u64 + 1;
            let same = |f: &&mut Found| {
                f.violation.kind == found.violation.kind && f.violation.at == found.violation.at
            };
            match merged.iter_mut().find(same) {
                Some(kept) => {
                    kept.first_at_execution = kept.first_at_execution.min(found.first_at_execution);
                    if found.schedule_len < kept.schedule_len {
                        let first = kept.first_at_execution;
                        *kept = found;
                        kept.first_at_execution = first;
                    }
                }
                None => merged.push(found),
            }
        }
    }
    let violations = merged
        .into_iter()
        .map(|found| {
            let trace = trace_of(&req.scenario, req.era, req.arch, &policy, &backend, &found);
            Reported { found, trace }
        })
        .collect();
    Ok(CheckReport {
        scenario: req.scenario.name.clone(),
        era: req.era.name().to_string(),
        arch: req.arch.name().to_string(),
        backend: backend.name,
        params: backend.params,
        executions,
        elapsed_ms,
        violations,
    })
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
            let (_, events) = capture(scenario, || {
                replay_shuttle(s, scenario.execution(config.clone()))
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
    trace_file(
        scenario,
        era,
        arch,
        policy,
        backend.clone(),
        schedule,
        events,
        &found.violation,
    )
}

/// The file name of a violation's trace: `<scenario>--<era>--<arch>--<kind>[-N].json`.
pub fn trace_file_name(
    scenario: &str,
    era: &str,
    arch: &str,
    kind: ViolationKind,
    index: usize,
) -> String {
    let suffix = if index == 0 {
        String::new()
    } else {
        format!("-{}", index + 1)
    };
    format!("{scenario}--{era}--{arch}--{}{suffix}.json", kind.name())
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
}

impl ReplayReport {
    /// Reproduced with identical events.
    pub fn exact(&self) -> bool {
        self.reproduced && self.divergence.is_none() && self.schedule_error.is_none()
    }
}

/// Replay `trace` (read from `origin`): rebuild the scenario, era and switches it
/// records, play its schedule with tracing on, and compare.
pub fn replay(trace: &TraceFile, origin: &str) -> Result<ReplayReport, BadTrace> {
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
    Era::from_name(&trace.era).map_err(|e| BadTrace(format!("{origin}: {e}")))?;
    let arch = Arch::from_name(&trace.arch).map_err(|e| BadTrace(format!("{origin}: {e}")))?;
    let mut policy = Policy::default();
    for (name, on) in &trace.switches {
        policy
            .set(name, *on)
            .map_err(|e| BadTrace(format!("{origin}: {e}")))?;
    }
    if trace.schedule.encoding != "shuttle" {
        return Err(BadTrace(format!(
            "{origin}: the trace has no replayable schedule (encoding `{}`)",
            trace.schedule.encoding
        )));
    }
    let kind = ViolationKind::from_name(&trace.violation.kind).ok_or_else(|| {
        BadTrace(format!(
            "{origin}: unknown violation kind `{}`",
            trace.violation.kind
        ))
    })?;
    let config = scenario.kernel_config(policy, arch);
    let (result, events) = capture(&scenario, || {
        replay_shuttle(&trace.schedule.data, scenario.execution(config))
    });
    let divergence = cowbreak_trace::first_divergence(&trace.events, &events);
    Ok(match result {
        Ok(violations) => ReplayReport {
            reproduced: violations
                .iter()
                .any(|v| v.kind == kind && v.at == trace.violation.at),
            events,
            divergence,
            schedule_error: None,
        },
        Err(e) => ReplayReport {
            events,
            divergence,
            reproduced: false,
            schedule_error: Some(e),
        },
    })
}
