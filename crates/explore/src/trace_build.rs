//! Turning an execution into a trace, whatever the backend: capture its events with each
//! attributed to its model thread, and package scenario, era, architecture, switches,
//! schedule, events and violation as a [`TraceFile`].

use cowbreak_mm::{Arch, Era, Policy, Violation};
use cowbreak_scenario::Scenario;
use cowbreak_trace::{
    BackendInfo, Event, ScenarioInfo, Schedule, ThreadInfo, TraceFile, ViolationRecord,
};

/// The model version written into traces: a trace replays exactly only on the model
/// that recorded it.
pub const MODEL_VERSION: &str = concat!("cowbreak-mm ", env!("CARGO_PKG_VERSION"));

/// Capture a replay of `scenario`'s execution, attributing each event to the model
/// thread that ran it: backend task n is scenario thread n - 1, and task 0 (setup,
/// joining, end-of-execution accounting) is shown as `main`, on the setup CPU.
pub fn capture<R>(scenario: &Scenario, f: impl FnOnce() -> R) -> (R, Vec<Event>) {
    let main = scenario.setup_cpu() as u32;
    cowbreak_trace::capture_with_threads(
        move || match cowbreak_sync::current_task()? {
            0 => Some(main),
            task => Some(task as u32 - 1),
        },
        f,
    )
}

/// A trace of `scenario` on `era` and `arch` with `policy`, found by `backend`, replayed
/// by `schedule`, with the captured `events` and the `violation` it ends with.
#[allow(clippy::too_many_arguments)]
pub fn trace_file(
    scenario: &Scenario,
    era: Era,
    arch: Arch,
    policy: &Policy,
    backend: BackendInfo,
    schedule: Schedule,
    events: Vec<Event>,
    violation: &Violation,
) -> TraceFile {
    TraceFile {
        format: cowbreak_trace::FORMAT.to_string(),
        version: cowbreak_trace::VERSION,
        model_version: MODEL_VERSION.to_string(),
        scenario: ScenarioInfo {
            name: scenario.name.clone(),
            source: scenario.text.clone(),
            path: Some(scenario.origin.clone()),
        },
        era: era.name().to_string(),
        arch: arch.name().to_string(),
        switches: policy.iter().map(|(n, v)| (n.to_string(), v)).collect(),
        backend,
        schedule,
        // `main` (setup and accounting) first: it runs before and after the threads.
        threads: std::iter::once(ThreadInfo {
            id: scenario.setup_cpu() as u32,
            name: "main".to_string(),
            process: scenario.processes[0].clone(),
        })
        .chain(
            scenario
                .threads
                .iter()
                .enumerate()
                .map(|(i, t)| ThreadInfo {
                    id: i as u32,
                    name: t.name.clone(),
                    process: scenario.processes[t.process].clone(),
                }),
        )
        .collect(),
        events,
        violation: ViolationRecord {
            kind: violation.kind.name().to_string(),
            at: violation.at.to_string(),
            message: violation.message.clone(),
            explanation: violation.kind.explain().to_string(),
        },
    }
}
