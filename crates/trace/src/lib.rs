//! cowbreak's trace files: one self-contained, versioned JSON file per violation, enough
//! to understand the failure without the run that produced it and to replay it.
//!
//! - [`capture`] records the model's `tracing` events (targets `cowbreak::*`) while a
//!   run executes.
//! - [`TraceFile`] is the file: what ran (scenario, era, switches, backend), the schedule
//!   that replays it, the events and the violation. [`TraceFile::write`] and
//!   [`TraceFile::read`] store and load it; loading checks the format marker and version
//!   and reports a broken file as `file:line:col: ...` ([`TraceError`]).
//! - [`first_divergence`] compares a replay's events with the recorded ones.
//! - [`render_text`] and [`render_html`] show the interleaving, one column per thread.
//!
//! ```
//! use cowbreak_trace::*;
//!
//! let ((), events) = capture(|| {
//!     tracing::trace!(target: "cowbreak::mm", cpu = 0usize, func = "do_wp_page", addr = 0x8000u64, "reuse");
//! });
//! let trace = TraceFile {
//!     format: FORMAT.into(),
//!     version: VERSION,
//!     model_version: "0.1.0".into(),
//!     scenario: ScenarioInfo { name: "demo".into(), source: "...".into(), path: None },
//!     era: "v5.9".into(),
//!     arch: "x86".into(),
//!     switches: vec![("write_protect_seq".into(), false)],
//!     backend: BackendInfo { name: "random".into(), params: [("seed".into(), 7.into())].into() },
//!     schedule: Schedule { encoding: "none".into(), data: String::new(), steps: 1 },
//!     threads: vec![ThreadInfo { id: 0, name: "writer".into(), process: "parent".into() }],
//!     events,
//!     violation: ViolationRecord {
//!         kind: "cow-isolation".into(),
//!         at: "do_wp_page".into(),
//!         message: "mm1 sees mm0's write to pfn 3 at 0x8000".into(),
//!         explanation: "after fork, a private write became visible through another mm's mapping".into(),
//!     },
//! };
//! let loaded = TraceFile::from_json(&trace.to_json_pretty(), "demo.json").unwrap();
//! assert_eq!(first_divergence(&trace.events, &loaded.events), None);
//! assert!(render_text(&loaded, 80).contains("do_wp_page addr=0x8000 (reuse)"));
//! ```
//!
//! # The file format (version 3)
//!
//! A JSON object with these fields; readers check `format` and `version` before anything
//! else, and ignore fields they do not know.
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `format` | string | always `"cowbreak-trace"` ([`FORMAT`]): marks the file as a trace |
//! | `version` | number | the format version ([`VERSION`]); bumped on any incompatible change |
//! | `model_version` | string | the cowbreak version that wrote the file |
//! | `scenario` | object | `name`, `source` (the full scenario text, so the file stands alone), `path` (where it was loaded from, or `null`) |
//! | `era` | string | the era preset, e.g. `"v5.9"` |
//! | `arch` | string | the architecture, `"x86"` or `"arm64"` (new in version 2) |
//! | `switches` | array | `[name, on]` for every policy switch, after any flips on top of the era |
//! | `backend` | object | `name` (`pct`, `random`, `urw`, `dfs`, `loom`, `stress`) and `params` (an object: seed, depth, budget, ...) |
//! | `schedule` | object | `encoding` (`shuttle`, `loom` or `none`), `data` (the encoded schedule, replayable by that backend), `steps` (its length). A `shuttle` schedule lists only the decisions, the steps where two or more threads could run (version 3; version 2 listed every step) |
//! | `threads` | array | `{id, name, process}` per model thread; `id` is the CPU number that events carry |
//! | `events` | array | the recorded events, in order (see below) |
//! | `violation` | object | `kind` (`pin-coherence`, ...), `at` (the kernel function), `message`, `explanation` (one line on what broke) |
//!
//! An event is `{step, thread, target, level, func, message, fields}`: `step` numbers
//! events from 0; `thread` is the event's `cpu` field or `null` for events no CPU emits
//! (PTE updates, page allocation); `target` and `level` are tracing's (`cowbreak::mm`,
//! `TRACE`); `func` is the kernel function; `fields` maps every other field to its
//! formatted value (addresses in decimal, PTEs as `pfn3 RO D`, stamps as `mm0:5`).

#![warn(missing_docs)]

mod capture;
mod diverge;
mod file;
mod render;

pub use capture::{capture, capture_with_threads};
pub use diverge::{first_divergence, Divergence};
pub use file::{
    write_atomic, BackendInfo, Event, ScenarioInfo, Schedule, ThreadInfo, TraceError, TraceFile,
    ViolationRecord,
};
pub use render::{render_event_line, render_html, render_html_with, render_text, HtmlExtras};

/// The marker every trace file carries in its `format` field.
pub const FORMAT: &str = "cowbreak-trace";

/// The trace format version this crate writes and reads.
pub const VERSION: u32 = 3;
