//! The trace file: its types, and reading and writing it as JSON.

use std::collections::BTreeMap;
use std::path::Path;
use std::{fmt, fs, io};

use serde::{Deserialize, Serialize};

use crate::{FORMAT, VERSION};

/// One trace file: everything needed to understand a violation and to replay it. The
/// crate docs describe every field as it appears in JSON.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TraceFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`] when written by this crate.
    pub version: u32,
    /// The version of cowbreak that wrote the trace, set by the caller.
    pub model_version: String,
    /// The scenario that ran.
    pub scenario: ScenarioInfo,
    /// The era preset, e.g. `"v5.9"`.
    pub era: String,
    /// The architecture, e.g. `"arm64"`.
    pub arch: String,
    /// Every policy switch and its value, in the model's order.
    pub switches: Vec<(String, bool)>,
    /// The backend that found the violation.
    pub backend: BackendInfo,
    /// The schedule that replays the run.
    pub schedule: Schedule,
    /// The model threads, one per CPU.
    pub threads: Vec<ThreadInfo>,
    /// The recorded events, in order; `events[i].step == i`.
    pub events: Vec<Event>,
    /// The violation the run ended with.
    pub violation: ViolationRecord,
}

/// The scenario a trace ran.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ScenarioInfo {
    /// The scenario's name.
    pub name: String,
    /// The full scenario text, so that the trace stands alone.
    pub source: String,
    /// Where the scenario was loaded from, if from a file.
    pub path: Option<String>,
}

/// The exploration backend of a trace and its parameters.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct BackendInfo {
    /// `pct`, `random`, `urw`, `dfs`, `loom` or `stress`.
    pub name: String,
    /// Its parameters (seed, depth, budget, ...), by name.
    pub params: BTreeMap<String, serde_json::Value>,
}

/// A replayable schedule, encoded by the backend that produced it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Schedule {
    /// `shuttle`, `loom`, or `none` for a backend that cannot replay (stress).
    pub encoding: String,
    /// The encoded schedule; empty when `encoding` is `none`.
    pub data: String,
    /// The number of scheduling steps.
    pub steps: usize,
}

/// A model thread.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ThreadInfo {
    /// The CPU number the thread runs as; events carry it as their `cpu` field.
    pub id: u32,
    /// The scenario's name for the thread.
    pub name: String,
    /// The process (mm) the thread belongs to.
    pub process: String,
}

/// One recorded `tracing` event of the model.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Event {
    /// The event's position in the run, from 0.
    pub step: u64,
    /// The `cpu` field, when the event has one.
    pub thread: Option<u32>,
    /// The tracing target, e.g. `cowbreak::mm`.
    pub target: String,
    /// The tracing level, e.g. `TRACE`.
    pub level: String,
    /// The `func` field: the kernel function.
    pub func: Option<String>,
    /// The event's message; empty when it has none.
    pub message: String,
    /// Every other field, formatted (`Debug` for `?x` fields, `Display` for `%x`).
    pub fields: BTreeMap<String, String>,
}

/// The violation a trace ends with.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ViolationRecord {
    /// The invariant broken, e.g. `pin-coherence`.
    pub kind: String,
    /// The kernel function where the oracle noticed.
    pub at: String,
    /// What happened, naming the pages, mms and addresses involved.
    pub message: String,
    /// One line on what the invariant means.
    pub explanation: String,
}

/// Why a trace file could not be read or written. Every message names the file.
#[derive(Debug)]
pub enum TraceError {
    /// Reading, writing or creating a directory failed.
    Io {
        /// The file or directory.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The text is not JSON, is truncated, or does not have a trace's shape.
    Json {
        /// The file.
        path: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// serde_json's description, without its location.
        message: String,
    },
    /// Valid JSON without the `"format": "cowbreak-trace"` marker.
    NotATrace {
        /// The file.
        path: String,
    },
    /// A trace of another format version.
    Version {
        /// The file.
        path: String,
        /// The version the file declares.
        found: u64,
    },
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::Io { path, source } => write!(f, "{path}: {source}"),
            TraceError::Json {
                path,
                line,
                column,
                message,
            } => write!(f, "{path}:{line}:{column}: {message}"),
            TraceError::NotATrace { path } => {
                write!(
                    f,
                    "{path}: not a cowbreak trace (no \"format\": \"{FORMAT}\" marker)"
                )
            }
            TraceError::Version { path, found } => {
                write!(
                    f,
                    "{path}: trace format version {found}, this cowbreak reads version {VERSION}"
                )
            }
        }
    }
}

impl std::error::Error for TraceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TraceError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl TraceFile {
    /// The trace as indented JSON, the form [`TraceFile::write`] stores.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self)
            .expect("a TraceFile has string keys only, so it always serializes")
    }

    /// Write the trace to `path`, creating its parent directories, atomically (see
    /// [`write_atomic`]): a reader, or a crash, never sees half a trace.
    pub fn write(&self, path: &Path) -> Result<(), TraceError> {
        write_atomic(path, (self.to_json_pretty() + "\n").as_bytes()).map_err(io_error(path))
    }

    /// Read the trace at `path`.
    pub fn read(path: &Path) -> Result<TraceFile, TraceError> {
        let text = fs::read_to_string(path).map_err(io_error(path))?;
        TraceFile::from_json(&text, &path.display().to_string())
    }

    /// Parse a trace from `text`; errors name `path_for_errors`. The format marker and
    /// version are checked before the shape, so a foreign JSON file or a trace of another
    /// version says so instead of reporting a missing field.
    pub fn from_json(text: &str, path_for_errors: &str) -> Result<TraceFile, TraceError> {
        let path = path_for_errors;
        let value: serde_json::Value = serde_json::from_str(text).map_err(json_error(path))?;
        if value.get("format").and_then(|v| v.as_str()) != Some(FORMAT) {
            return Err(TraceError::NotATrace {
                path: path.to_owned(),
            });
        }
        match value.get("version").and_then(|v| v.as_u64()) {
            Some(found) if found != u64::from(VERSION) => {
                return Err(TraceError::Version {
                    path: path.to_owned(),
                    found,
                })
            }
            _ => {}
        }
        // Parse the text again rather than converting `value`: only errors from the text
        // carry a line and column.
        serde_json::from_str(text).map_err(json_error(path))
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> TraceError + '_ {
    move |source| TraceError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn json_error(path: &str) -> impl FnOnce(serde_json::Error) -> TraceError + '_ {
    move |e| {
        // serde_json's Display appends " at line L column C"; we put the location first.
        let message = e.to_string();
        let location = format!(" at line {} column {}", e.line(), e.column());
        TraceError::Json {
            path: path.to_owned(),
            line: e.line(),
            column: e.column(),
            message: message
                .strip_suffix(&location)
                .unwrap_or(&message)
                .to_owned(),
        }
    }
}

/// Write `bytes` to `path` so that the file is either its old self or entirely new: the
/// bytes go to a temporary file in the same directory (created with `tempfile`, so two
/// writers never share one), are synced, and the file is renamed over `path`. Parent
/// directories are created. Every result cowbreak writes (traces, matrix tables, JSON,
/// HTML pages) goes through here.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use io::Write;
    let dir = match path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        Some(dir) => {
            fs::create_dir_all(dir)?;
            dir
        }
        None => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".cowbreak-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
