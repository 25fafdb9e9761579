//! loom: every interleaving within a preemption bound, under C11 weak memory, and the exact
//! replay of one of them.
//!
//! loom aborts the process when a check fails while other model threads are alive, so
//! the execution never panics on a violation: the oracle records it, the closure
//! returns it, and this collector keeps it. A loom deadlock still aborts (run loom
//! suites in their own process; `cargo xtask` does).
//!
//! A violation's execution is made replayable with loom's `checkpoint` feature: loom is
//! deterministic, so running the same exploration again and stopping at the same
//! iteration stores that iteration's *path* (every scheduling choice and every choice of
//! which store a load reads) in a checkpoint file; loading it into a fresh
//! [`loom::model::Builder`] and running one iteration plays the execution back exactly,
//! weak-memory choices included. Exploring costs nothing for this: the second pass runs
//! only for the violations found.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use cowbreak_mm::Violation;

use crate::{Collector, Outcome};

/// loom's settings: the same for the exploration, the capture of a path and its replay
/// (a path only replays under the settings that produced it).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct LoomConfig {
    /// `Builder::preemption_bound`: bound 2 or 3 finds most bugs; each step up costs an
    /// order of magnitude.
    pub preemption_bound: usize,
    /// `Builder::max_branches`: spin-waits (an IPI waiting for an interrupts-off CPU)
    /// take a branch per yield.
    pub max_branches: usize,
    /// At most this many executions (a proof's budget; loom's `max_permutations`, one
    /// more since loom counts the iteration it stops at); `None`, exhaustive whatever it
    /// takes. It changes no path's iteration number, so a path found under a budget
    /// replays without it.
    pub max_executions: Option<usize>,
}

impl LoomConfig {
    /// Exhaustive at `preemption_bound`, with room for the model's spin-waits.
    pub fn new(preemption_bound: usize) -> Self {
        LoomConfig {
            preemption_bound,
            max_branches: 100_000,
            max_executions: None,
        }
    }

    fn builder(&self) -> loom::model::Builder {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(self.preemption_bound);
        builder.max_branches = self.max_branches;
        // Whatever LOOM_* says in the environment, a path replays only under the
        // settings that found it.
        builder.checkpoint_file = None;
        builder.max_duration = None;
        // loom reads `max_permutations` only at the top of an iteration whose number is a
        // multiple of `checkpoint_interval` (and stores no path without a checkpoint
        // file): with an interval of 1 it stops at the top of iteration n + 1, after n
        // executions. With `usize::MAX` it never stopped, and a budget was not kept.
        match self.max_executions {
            Some(n) => {
                builder.checkpoint_interval = 1;
                builder.max_permutations = Some(n.saturating_add(1));
            }
            None => {
                builder.checkpoint_interval = usize::MAX;
                builder.max_permutations = None;
            }
        }
        builder
    }
}

/// Explore `execution` exhaustively under `cfg`. Each distinct violation's
/// `first_at_execution` is the 1-based loom iteration where it first happened, which
/// [`loom_path`] turns into a replayable path.
pub fn explore_loom<F>(cfg: LoomConfig, execution: F) -> Outcome
where
    F: Fn() -> Vec<Violation> + Send + Sync + 'static,
{
    let collector = Arc::new(Mutex::new(Collector::default()));
    let c = Arc::clone(&collector);
    cfg.builder().check(move || {
        c.lock().unwrap().begin_execution();
        let v = execution();
        c.lock().unwrap().record(v);
    });
    let collector = Arc::try_unwrap(collector)
        .ok()
        .expect("loom finished")
        .into_inner()
        .unwrap();
    collector.into_outcome()
}

/// A temporary checkpoint file for loom, removed when dropped: holding `contents` (written
/// before loom sees the name), or with `None` only a unique name and no file, since loom
/// loads a checkpoint file that exists.
fn checkpoint_file(what: &str, contents: Option<&str>) -> Result<tempfile::TempPath, String> {
    use std::io::Write;
    let fail = |e: std::io::Error| format!("cannot create loom's checkpoint file: {e}");
    let mut file = tempfile::Builder::new()
        .prefix(&format!("cowbreak-loom-{what}-"))
        .suffix(".json")
        .tempfile()
        .map_err(fail)?;
    if let Some(text) = contents {
        file.write_all(text.as_bytes()).map_err(fail)?;
    }
    let path = file.into_temp_path();
    if contents.is_none() {
        std::fs::remove_file(&path).map_err(fail)?;
    }
    Ok(path)
}

/// The path of loom iteration `iteration` (1-based) of the exploration of `execution`
/// under `cfg`, as loom's checkpoint JSON: the exploration runs again and stops there.
pub fn loom_path<F>(cfg: LoomConfig, iteration: u64, execution: F) -> Result<String, String>
where
    F: Fn() -> Vec<Violation> + Send + Sync + 'static,
{
    let file = checkpoint_file("path", None)?;
    let mut builder = cfg.builder();
    builder.checkpoint_file = Some(file.to_path_buf());
    // loom stores the path at the top of iteration i when i % interval == 0, then stops
    // if i >= max_permutations: both at `iteration` store its path and stop before it.
    builder.checkpoint_interval = iteration as usize;
    builder.max_permutations = Some(iteration as usize);
    builder.check(move || {
        execution();
    });
    std::fs::read_to_string(&file).map_err(|e| format!("loom stored no path: {e}"))
}

/// Play loom `path` (from [`loom_path`]) back once under `cfg` and return what the oracle
/// reported. `Err` when the path is not loom's or does not fit the execution.
pub fn replay_loom<F>(cfg: LoomConfig, path: &str, execution: F) -> Result<Vec<Violation>, String>
where
    F: Fn() -> Vec<Violation> + Send + Sync + 'static,
{
    // loom unwraps what it loads: check the shape first, so a corrupt path is an error.
    let v: serde_json::Value =
        serde_json::from_str(path).map_err(|e| format!("the loom path is not JSON: {e}"))?;
    for key in ["preemption_bound", "pos", "branches"] {
        if v.get(key).is_none() {
            return Err(format!(
                "the loom path has no `{key}`: not a loom checkpoint"
            ));
        }
    }
    let file = checkpoint_file("replay", Some(path))?;
    let seen = Arc::new(Mutex::new(None));
    let s = Arc::clone(&seen);
    let mut builder = cfg.builder();
    builder.checkpoint_file = Some(file.to_path_buf());
    // Load the path, run iteration 1 with it, and stop at the top of iteration 2.
    builder.checkpoint_interval = 1;
    builder.max_permutations = Some(2);
    let ran = catch_unwind(AssertUnwindSafe(|| {
        builder.check(move || {
            let v = execution();
            *s.lock().unwrap() = Some(v);
        })
    }));
    if let Err(payload) = ran {
        let text = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "loom panicked".into());
        return Err(format!("the loom path does not fit this execution: {text}"));
    }
    let v = seen.lock().unwrap().take();
    v.ok_or_else(|| "the replayed execution did not finish".to_string())
}
