//! What `check`, `matrix` and `merge` share about running campaigns that lose nothing:
//! output directories checked before the work, trace names that say what made the run,
//! traces written the moment they are found, state files for `--resume` and `merge`,
//! Ctrl-C / SIGTERM, shards, and progress a person can follow.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use cowbreak_explore::campaign::{self, Campaign, CheckRequest, Shard};
use cowbreak_explore::{Control, Found};
use cowbreak_mm::ViolationKind;
use cowbreak_scenario::{library, Scenario};
use cowbreak_trace::TraceFile;
use serde_json::{json, Value};

use crate::cli::Fail;

/// What `check` and `matrix` share on their command lines: where results go, resuming,
/// sharding and how much to say.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Where traces and the run's state file go; default: the workspace's `traces/`.
    #[arg(long, alias = "traces", value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Go on from the state file an interrupted run of the same command left in the
    /// output directory; ends with what an uninterrupted run gives.
    #[arg(long)]
    pub resume: bool,
    /// Run shard I of N (chunk or matrix cell k when k % N == I); default: from
    /// JOB_COMPLETION_INDEX/JOB_COMPLETIONS or SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT
    /// when set, else everything. `cargo xtask merge` joins the shards' outputs.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// No progress on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// A line for every finding (matrix: every cell), even on a terminal.
    #[arg(short, long, conflicts_with = "quiet")]
    pub verbose: bool,
}

/// The exit code of a run ended by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
pub const INTERRUPTED: u8 = 130;

/// The marker of a state file's `format` field.
pub const STATE_FORMAT: &str = "cowbreak-state";
/// The version of the state file format.
pub const STATE_VERSION: u64 = 1;

/// The flag every campaign of this process stops on: set by the first Ctrl-C or SIGTERM.
/// A second one ends the process at once.
pub fn stop_flag() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = Arc::clone(&flag);
        let installed = ctrlc::set_handler(move || {
            if f.swap(true, Ordering::SeqCst) {
                eprintln!("\ninterrupted again: exiting without saving more");
                std::process::exit(i32::from(INTERRUPTED));
            }
            eprintln!("\ninterrupted: finishing the executions in flight and saving what was found (Ctrl-C again to quit at once)");
        });
        if let Err(e) = installed {
            eprintln!("warning: cannot catch Ctrl-C / SIGTERM ({e}); an interrupted run keeps only what it already wrote");
        }
        flag
    })
    .clone()
}

/// How much to say on stderr.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Errors and results only.
    Quiet,
    /// A progress bar on a terminal, sparse lines otherwise.
    Normal,
    /// Every matrix cell and chunk as a line.
    Verbose,
}

impl Verbosity {
    pub fn from_flags(quiet: bool, verbose: bool) -> Verbosity {
        match (quiet, verbose) {
            (true, _) => Verbosity::Quiet,
            (false, true) => Verbosity::Verbose,
            _ => Verbosity::Normal,
        }
    }
}

/// Progress over `total` units (executions or cells): an `indicatif` bar on a terminal,
/// a plain line every tenth of the way (and at most every 30 s) otherwise.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    what: &'static str,
    verbosity: Verbosity,
    last_line: Instant,
    last_tenth: u64,
    started: Instant,
}

impl Progress {
    pub fn new(total: u64, what: &'static str, verbosity: Verbosity) -> Progress {
        let bar = (verbosity != Verbosity::Quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} {unit} {rate} ETA {eta} {msg}",
                )
                .expect("a valid template")
                .with_key(
                    "rate",
                    |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{:.0}/s", state.per_sec());
                    },
                )
                .with_key(
                    "unit",
                    move |_: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = w.write_str(what);
                    },
                ),
            );
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        Progress {
            bar,
            total,
            what,
            verbosity,
            last_line: Instant::now(),
            last_tenth: 0,
            started: Instant::now(),
        }
    }

    /// `done` units so far, `found` violations; `note` says what happened last.
    pub fn update(&mut self, done: u64, found: usize, note: &str) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(done);
                bar.set_message(format!("{found} violation(s) {note}"));
            }
            None if self.verbosity == Verbosity::Quiet => {}
            None => {
                let tenth = if self.total == 0 {
                    10
                } else {
                    done * 10 / self.total
                };
                let due =
                    tenth > self.last_tenth || self.last_line.elapsed() > Duration::from_secs(30);
                if due && done < self.total {
                    self.last_tenth = tenth;
                    self.last_line = Instant::now();
                    eprintln!(
                        "  ... {done}/{} {}, {found} violation(s), {:.1} s",
                        self.total,
                        self.what,
                        self.started.elapsed().as_secs_f64()
                    );
                }
            }
        }
    }

    /// Whether a bar is drawn (stderr is a terminal and not quiet).
    pub fn is_bar(&self) -> bool {
        self.bar.is_some()
    }

    /// A line that stays (a finding, a finished cell), printed above the bar.
    pub fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None if self.verbosity == Verbosity::Quiet => {}
            None => eprintln!("{text}"),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The shard to run: `--shard I/N` if given, else the cluster's own variables (a
/// Kubernetes Indexed Job's `JOB_COMPLETION_INDEX` with `JOB_COMPLETIONS`, a Slurm array's
/// `SLURM_ARRAY_TASK_ID` with `SLURM_ARRAY_TASK_COUNT` and `SLURM_ARRAY_TASK_MIN`), else
/// the whole run.
pub fn shard(arg: Option<&str>) -> Result<Shard, Fail> {
    let parse = |what: &str, i: &str, n: &str| -> Result<Shard, Fail> {
        let num = |s: &str| s.trim().parse::<usize>().ok();
        match (num(i), num(n)) {
            (Some(index), Some(count)) if count >= 1 && index < count => Ok(Shard { index, count }),
            _ => Err(Fail::bad(format!(
                "{what}: expected shard I/N with 0 <= I < N, found `{i}/{n}`"
            ))),
        }
    };
    if let Some(a) = arg {
        let (i, n) = a
            .split_once('/')
            .ok_or_else(|| Fail::bad(format!("--shard `{a}`: expected I/N, e.g. 0/4")))?;
        return parse("--shard", i, n);
    }
    let var = |k: &str| std::env::var(k).ok();
    if let Some(i) = var("JOB_COMPLETION_INDEX") {
        let n = var("JOB_COMPLETIONS").ok_or_else(|| {
            Fail::bad("JOB_COMPLETION_INDEX is set but JOB_COMPLETIONS is not: set it to the Job's `completions` (deploy/k8s-job.yaml does)")
        })?;
        return parse("JOB_COMPLETION_INDEX/JOB_COMPLETIONS", &i, &n);
    }
    if let Some(id) = var("SLURM_ARRAY_TASK_ID") {
        let n = var("SLURM_ARRAY_TASK_COUNT").ok_or_else(|| {
            Fail::bad("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not")
        })?;
        let min = var("SLURM_ARRAY_TASK_MIN").unwrap_or_else(|| "0".into());
        let (id, min) = (id.trim().parse::<usize>(), min.trim().parse::<usize>());
        let i = match (id, min) {
            (Ok(id), Ok(min)) if id >= min => (id - min).to_string(),
            _ => {
                return Err(Fail::bad(
                    "SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_MIN are not numbers",
                ))
            }
        };
        return parse("SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT", &i, &n);
    }
    Ok(Shard::ALL)
}

/// The output directory: `arg`, else the workspace's `traces/` (from any directory).
/// Created and test-written before any work starts, so a bad path fails at once.
pub fn out_dir(arg: Option<&Path>) -> Result<PathBuf, Fail> {
    let dir = arg.map_or_else(|| crate::project_root().join("traces"), Path::to_path_buf);
    let fail =
        |e: std::io::Error| Fail::bad(format!("{}: cannot write results here: {e}", dir.display()));
    std::fs::create_dir_all(&dir).map_err(fail)?;
    tempfile::Builder::new()
        .prefix(".cowbreak-probe-")
        .tempfile_in(&dir)
        .map_err(fail)?;
    Ok(dir)
}

/// Whether a `--json` target means standard output (`--json` alone or `--json -`).
pub fn is_stdout(file: &Path) -> bool {
    file.as_os_str() == "-"
}

/// Write `text` to `file` atomically, or print it when `file` is `-`.
pub fn write_output(file: &Path, text: &str) -> Result<(), Fail> {
    if is_stdout(file) {
        print!("{text}");
        return Ok(());
    }
    cowbreak_trace::write_atomic(file, text.as_bytes())
        .map_err(|e| Fail::bad(format!("{}: cannot write: {e}", file.display())))
}

/// Check that `file` (a `--json` / `--markdown` output) can be written, before the work.
pub fn check_output_file(file: &Path) -> Result<(), Fail> {
    if is_stdout(file) {
        return Ok(());
    }
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fail = |e: std::io::Error| Fail::bad(format!("{}: cannot write here: {e}", file.display()));
    if file.is_dir() {
        return Err(Fail::bad(format!("{}: is a directory", file.display())));
    }
    std::fs::create_dir_all(dir).map_err(fail)?;
    tempfile::Builder::new()
        .prefix(".cowbreak-probe-")
        .tempfile_in(dir)
        .map_err(fail)?;
    Ok(())
}

/// The scenario's part of file names: its name for a built-in as shipped, else the name
/// and a hash of its text (two files that share a name do not share traces).
pub fn scenario_label(scenario: &Scenario) -> String {
    let builtin = library::find(&scenario.name).is_some_and(|b| b.text == scenario.text);
    if builtin {
        scenario.name.clone()
    } else {
        format!(
            "{}-{}",
            scenario.name,
            campaign::scenario_hash(&scenario.text)
        )
    }
}

/// The name of a run: `<scenario>--<era>--<arch>[--<switch>=on|off,...]`. Everything
/// that makes one run's findings differ from another's is in it.
pub fn run_name(req: &CheckRequest) -> String {
    let mut name = format!(
        "{}--{}--{}",
        scenario_label(&req.scenario),
        req.era.name(),
        req.arch.name()
    );
    if !req.switches.is_empty() {
        let sw: Vec<String> = req
            .switches
            .iter()
            .map(|(n, on)| format!("{n}={}", if *on { "on" } else { "off" }))
            .collect();
        name.push_str("--");
        name.push_str(&sw.join(","));
    }
    name
}

/// A trace's file name: `<run>--<kind>--<place>.json`.
pub fn trace_name(run: &str, kind: ViolationKind, at: &str) -> String {
    let place: String = at
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{run}--{}--{place}.json", kind.name())
}

/// Remove the traces an earlier run of `run` left in `dir` (`<run>--<kind>--<place>.json`):
/// a fresh run must not leave a file claiming what it did not find.
pub fn remove_stale_traces(dir: &Path, run: &str) -> Result<usize, Fail> {
    let prefix = format!("{run}--");
    let mut removed = 0;
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(_) => return Ok(0),
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(".json"))
        else {
            continue;
        };
        let ours = rest.split_once("--").is_some_and(|(kind, place)| {
            ViolationKind::from_name(kind).is_some() && !place.contains("--")
        });
        if ours {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                // Another run of the same name removed it first.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Fail::bad(format!(
                        "{}: cannot remove a stale trace: {e}",
                        entry.path().display()
                    )))
                }
            }
        }
    }
    Ok(removed)
}

/// A state file: what a campaign (or a matrix) has done, for `--resume` and `merge`.
pub fn state_path(dir: &Path, stem: &str, shard: Shard) -> PathBuf {
    if shard == Shard::ALL {
        dir.join(format!("{stem}.state.json"))
    } else {
        dir.join(format!(
            "{stem}.shard-{}-of-{}.state.json",
            shard.index, shard.count
        ))
    }
}

/// Read a state file of `kind` (`campaign` or `matrix`), checking its format.
pub fn read_state(path: &Path, kind: &str) -> Result<Value, Fail> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Fail::bad(format!(
            "{}: cannot read the state file: {e} (nothing to resume: run without --resume first)",
            path.display()
        ))
    })?;
    let v: Value = serde_json::from_str(&text).map_err(|e| {
        Fail::bad(format!(
            "{}:{}:{}: the state file is not JSON: {e}",
            path.display(),
            e.line(),
            e.column()
        ))
    })?;
    if v["format"] != STATE_FORMAT {
        return Err(Fail::bad(format!(
            "{}: not a cowbreak state file",
            path.display()
        )));
    }
    if v["version"] != STATE_VERSION {
        return Err(Fail::bad(format!(
            "{}: state file version {} (this cowbreak reads version {STATE_VERSION})",
            path.display(),
            v["version"]
        )));
    }
    if v["kind"] != kind {
        return Err(Fail::bad(format!(
            "{}: a {} state file, not a {kind} one",
            path.display(),
            v["kind"]
        )));
    }
    Ok(v)
}

/// Write a state file atomically.
pub fn write_state(path: &Path, v: &Value) -> Result<(), Fail> {
    let text = serde_json::to_string_pretty(v).expect("JSON of plain values") + "\n";
    cowbreak_trace::write_atomic(path, text.as_bytes()).map_err(|e| {
        Fail::bad(format!(
            "{}: cannot write the state file: {e}",
            path.display()
        ))
    })
}

/// The request part of a campaign's state: enough to rebuild it (`merge`).
pub fn request_json(req: &CheckRequest) -> Value {
    json!({
        "identity": req.identity(),
        "scenario_text": req.scenario.text,
        "scenario_origin": req.scenario.origin,
        "era": req.era.name(),
        "arch": req.arch.name(),
        "switches": req.switches.iter().map(|(n, on)| json!([n, on])).collect::<Vec<_>>(),
        "backend": campaign::strategy_name(req.shuttle.strategy),
        "iterations": req.shuttle.iterations,
        "seed": req.shuttle.seed,
        "depth": match req.shuttle.strategy { cowbreak_explore::Strategy::Pct { depth } => depth, _ => 0 },
        "steps_max": req.shuttle.steps_max,
    })
}

/// Rebuild a request from [`request_json`].
pub fn request_from_json(v: &Value, origin: &Path) -> Result<CheckRequest, Fail> {
    let bad = |what: &str| {
        Fail::bad(format!(
            "{}: the state file's request has no valid `{what}`",
            origin.display()
        ))
    };
    let text = v["scenario_text"]
        .as_str()
        .ok_or_else(|| bad("scenario_text"))?;
    let scenario_origin = v["scenario_origin"]
        .as_str()
        .ok_or_else(|| bad("scenario_origin"))?;
    let scenario = cowbreak_scenario::parse(scenario_origin, text).map_err(|e| {
        Fail::bad(format!(
            "{}: the embedded scenario does not parse: {e}",
            origin.display()
        ))
    })?;
    let era = crate::cli::era(v["era"].as_str().ok_or_else(|| bad("era"))?)?;
    let arch = crate::cli::arch(v["arch"].as_str().ok_or_else(|| bad("arch"))?)?;
    let mut switches = Vec::new();
    for s in v["switches"].as_array().ok_or_else(|| bad("switches"))? {
        match (s[0].as_str(), s[1].as_bool()) {
            (Some(n), Some(on)) => switches.push((n.to_string(), on)),
            _ => return Err(bad("switches")),
        }
    }
    let backend = v["backend"].as_str().ok_or_else(|| bad("backend"))?;
    let num = |k: &str| v[k].as_u64().ok_or_else(|| bad(k));
    let req = CheckRequest {
        scenario,
        era,
        arch,
        switches,
        shuttle: cowbreak_explore::ShuttleConfig {
            strategy: crate::check::strategy(backend, num("depth")? as usize),
            iterations: num("iterations")? as usize,
            seed: num("seed")?,
            steps_max: num("steps_max")? as usize,
            stop_after_first: false,
        },
    };
    if req.identity() != v["identity"] {
        return Err(Fail::bad(format!(
            "{}: the state file was written by another cowbreak model version or edited by hand",
            origin.display()
        )));
    }
    Ok(req)
}

/// A campaign being run with its traces and state on disk.
pub struct Run<'a> {
    pub req: &'a CheckRequest,
    pub dir: &'a Path,
    /// Where to keep the state after every chunk; `None` for matrix cells, whose state is
    /// the matrix's.
    pub state: Option<PathBuf>,
    pub shard: Shard,
    pub campaign: Campaign,
    /// The run's name (see [`run_name`]): its traces and state file are named after it.
    pub name: String,
    /// Trace contents, for the report.
    pub trace_files: BTreeMap<(ViolationKind, String), TraceFile>,
    /// The first trace or state file that could not be written: the run goes on (its
    /// result is printed) and the command fails after.
    pub write_error: Option<Fail>,
}

impl<'a> Run<'a> {
    /// A run of `req` writing into `dir`. Fresh unless `resume` holds a campaign state.
    pub fn new(
        req: &'a CheckRequest,
        dir: &'a Path,
        state: Option<PathBuf>,
        shard: Shard,
        resume: Option<Campaign>,
    ) -> Result<Run<'a>, Fail> {
        let name = run_name(req);
        let campaign = match resume {
            Some(c) => c,
            None => {
                remove_stale_traces(dir, &name)?;
                Campaign::default()
            }
        };
        let r = Run {
            req,
            dir,
            state,
            shard,
            campaign,
            name,
            trace_files: BTreeMap::new(),
            write_error: None,
        };
        Ok(r)
    }

    /// The state file's JSON.
    pub fn state_json(&self, complete: bool) -> Value {
        json!({
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "kind": "campaign",
            "run": self.name,
            "request": request_json(self.req),
            "shard": {"index": self.shard.index, "count": self.shard.count},
            "complete": complete,
            "campaign": self.campaign.to_json(),
            "traces": self.campaign.found.keys().map(|(kind, at)| trace_name(&self.name, *kind, at)).collect::<Vec<_>>(),
        })
    }

    /// Write the state file, if the run keeps one.
    pub fn save(&self) -> Result<(), Fail> {
        match &self.state {
            Some(path) => write_state(
                path,
                &self.state_json(self.campaign.finished(self.req, self.shard)),
            ),
            None => Ok(()),
        }
    }

    /// The trace of `found`, built by replaying its schedule under capture.
    fn build_trace(&self, found: &Found) -> Result<TraceFile, Fail> {
        let policy = self.req.policy().map_err(|e| Fail::bad(e.to_string()))?;
        Ok(campaign::trace_of(
            &self.req.scenario,
            self.req.era,
            self.req.arch,
            &policy,
            &campaign::backend_info(self.req),
            found,
        ))
    }

    /// Run the chunks of this shard not done yet on `jobs` threads, writing each new or
    /// shorter finding's trace at once and the state after every chunk. `progress` hears
    /// (executions done, violations so far, a line to print). Returns whether the run
    /// finished (false: stopped by `control`).
    pub fn go(
        &mut self,
        jobs: usize,
        control: &Arc<Control>,
        progress: impl FnMut(u64, usize, Option<String>),
    ) -> Result<bool, Fail> {
        let todo = self.campaign.todo(self.req, self.shard);
        let before = self.campaign.executions();
        self.save()?;
        let req = self.req;
        let progress = std::cell::RefCell::new(progress);
        let found_so_far = std::cell::Cell::new(self.campaign.found.len());
        let done = || before + control.executed.load(Ordering::Relaxed);
        campaign::run_chunks(
            req,
            &todo,
            jobs,
            control,
            |r| {
                let changed = self.campaign.add(r);
                found_so_far.set(self.campaign.found.len());
                for key in changed {
                    let found = self.campaign.found[&key].clone();
                    let path = self.dir.join(trace_name(&self.name, key.0, &key.1));
                    let trace = match self.build_trace(&found) {
                        Ok(t) => t,
                        Err(e) => {
                            self.write_error.get_or_insert(e);
                            continue;
                        }
                    };
                    let written = trace.write(&path);
                    self.trace_files.insert(key.clone(), trace);
                    match written {
                        Ok(()) => (progress.borrow_mut())(
                            done(),
                            found_so_far.get(),
                            Some(format!(
                                "found {} in {} at execution {} ({} steps): {}",
                                found.violation.kind,
                                found.violation.at,
                                found.first_at_execution,
                                found.schedule_len,
                                path.display()
                            )),
                        ),
                        Err(e) => {
                            self.write_error
                                .get_or_insert(Fail::bad(format!("cannot write trace: {e}")));
                        }
                    }
                }
                if let Err(e) = self.save() {
                    self.write_error.get_or_insert(e);
                }
                (progress.borrow_mut())(done(), found_so_far.get(), None);
            },
            || (progress.borrow_mut())(done(), found_so_far.get(), None),
        )
        .map_err(|e| Fail::bad(e.to_string()))?;
        Ok(self.campaign.finished(self.req, self.shard))
    }

    /// The report over what is done, each violation with its trace and path.
    pub fn report(
        &mut self,
        elapsed_ms: u128,
    ) -> Result<(campaign::CheckReport, Vec<PathBuf>), Fail> {
        for (key, found) in self.campaign.found.clone() {
            if !self.trace_files.contains_key(&key) {
                let t = self.build_trace(&found)?;
                self.trace_files.insert(key, t);
            }
        }
        let files = &self.trace_files;
        let report = self.campaign.report(self.req, elapsed_ms, |f| {
            files[&(f.violation.kind, f.violation.at.to_string())].clone()
        });
        let paths = report
            .violations
            .iter()
            .map(|r| {
                self.dir.join(trace_name(
                    &self.name,
                    r.found.violation.kind,
                    r.found.violation.at,
                ))
            })
            .collect();
        Ok((report, paths))
    }
}
