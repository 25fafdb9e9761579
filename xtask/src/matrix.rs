//! `cargo xtask matrix`: every scenario on every era, as one table.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cowbreak_explore::campaign::{self, CheckRequest, Shard};
use cowbreak_explore::{Control, ShuttleConfig, Strategy};
use cowbreak_mm::{Arch, Era, ViolationKind};
use cowbreak_scenario::Scenario;
use serde_json::{json, Value};

use crate::cli::{self, exit, Fail};
use crate::run;

#[derive(clap::Args)]
pub struct Args {
    /// Scenarios to run (built-in names or files, comma-separated); default: every built-in.
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Eras to run (comma-separated); default: all.
    #[arg(long, value_delimiter = ',')]
    eras: Vec<String>,
    /// Architectures to run (comma-separated): cells become scenario x era x arch.
    #[arg(long, value_delimiter = ',', default_value = "x86,arm64")]
    arch: Vec<String>,
    /// loom's preemption bound, for the proofs of clean cells and for scenarios whose
    /// history needs loom; default: the scenario's own (`preemption-bound=N`), else 2.
    #[arg(long)]
    preemption_bound: Option<usize>,
    /// PCT executions per cell (sampling). Where the scenario fits loom, a cell that
    /// `--probe` finds clean goes to loom first; if loom proves it (exhaustive at the
    /// preemption bound, no violation), the budget is not sampled.
    #[arg(long, default_value_t = 2_000)]
    budget: usize,
    /// Sample only: no loom proof of the cells where PCT found nothing (scenarios whose
    /// history needs weak memory still run under loom).
    #[arg(long)]
    no_proofs: bool,
    /// loom executions a proof may take: a clean cell whose loom run reaches it stays
    /// sampled (`checked` says so). The built-ins' largest proof takes 18,727.
    #[arg(long, default_value_t = 100_000)]
    proof_budget: u64,
    /// Seconds a proof may take (one execution of a big scenario under loom can take
    /// minutes): past them the cell stays sampled and `checked` says so.
    #[arg(long, default_value_t = 120.0)]
    proof_seconds: f64,
    /// Prove a clean cell at the next preemption bound too, where its proof at the bound
    /// took at most this many loom executions (0: never). The deeper proof has the same
    /// `--proof-budget` and `--proof-seconds`; `checked` names every bound proven, or
    /// says the deeper one did not finish. A cell's bound-3 proof costs about 2 to 20
    /// times its bound-2 one, so the small proofs are the ones worth deepening.
    #[arg(long, default_value_t = 100)]
    deepen_below: u64,
    /// PCT executions that probe a cell loom may prove, before the proof (they stop at the
    /// first violation; a cell they break runs the whole `--budget` instead).
    #[arg(long, default_value_t = 200)]
    probe: usize,
    /// Explore every cell itself. By default a cell whose scenario and arch match an
    /// explored cell's, and whose switches agree with that cell's on every switch its
    /// explorations read, takes that cell's outcome, since it would run the same executions
    /// (`checked` and `explored_as` say whose; its traces are that cell's, relabelled with
    /// this era and its switches, and replay as they are). Verdicts are the same either way.
    #[arg(long)]
    no_reuse: bool,
    /// PCT depth.
    #[arg(long, default_value_t = 3)]
    depth: usize,
    /// Seed of every cell's campaign.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Cells run in parallel (one OS thread each); the result does not depend on it.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    #[command(flatten)]
    run: run::RunArgs,
    /// Also write the cells as JSON to FILE.
    /// (`--json` alone, or `--json -`: print the JSON on stdout instead of text.)
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    json: Option<PathBuf>,
    /// Also write the table as Markdown to FILE.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
}

#[derive(Clone)]
struct Cell {
    scenario: usize,
    era: Era,
    arch: Arch,
    /// How the cell was checked, e.g. `PCT d=3 seed 0, 2000 executions, sampled; loom pb=2,
    /// 208 executions, exhaustive`.
    checked: String,
    kinds: Vec<ViolationKind>,
    first_at: Option<u64>,
    /// Found by loom alone (a weak-memory cell): `first_at` is loom's iteration.
    via_loom: bool,
    executions: u64,
    traces: Vec<PathBuf>,
    expected: Vec<ViolationKind>,
    /// The switches of the cell's kernel ([`cowbreak_mm::Policy::bits`]).
    policy: u64,
    /// The switches its explorations read ([`cowbreak_mm::SwitchReads`]); all of them
    /// where that is not known (a cell from an older state file).
    reads: u64,
    /// Whose exploration it took (see `--no-reuse`).
    reused: Option<Era>,
}

impl Cell {
    fn to_json(&self, scenarios: &[Scenario]) -> Value {
        json!({
            "scenario": scenarios[self.scenario].name,
            "scenario_index": self.scenario,
            "era": self.era.name(),
            "arch": self.arch.name(),
            "verdict": if self.kinds.is_empty() { "ok" } else { "violation" },
            "kind": self.kinds.first().map(|k| k.name()),
            "kinds": self.kinds.iter().map(|k| k.name()).collect::<Vec<_>>(),
            "executions": self.executions,
            "first_at_execution": self.first_at,
            "found_by": if self.kinds.is_empty() { None } else if self.via_loom { Some("loom") } else { Some("pct") },
            "trace": self.traces.first().map(|p| p.display().to_string()),
            "traces": self.traces.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "expected": self.expected.iter().map(|k| k.name()).collect::<Vec<_>>(),
            "agrees": self.agrees(),
            "checked": self.checked,
            "switches_read": cowbreak_mm::SwitchReads::names(self.reads),
            "explored_as": self.reused.map(|e| e.name()),
        })
    }

    fn from_json(v: &Value, scenarios: &[Scenario]) -> Option<Cell> {
        let kinds = |k: &str| -> Option<Vec<ViolationKind>> {
            v[k].as_array()?
                .iter()
                .map(|x| ViolationKind::from_name(x.as_str()?))
                .collect()
        };
        let scenario = v["scenario_index"].as_u64()? as usize;
        (scenarios.get(scenario)?.name == v["scenario"].as_str()?).then_some(())?;
        let era = Era::from_name(v["era"].as_str()?).ok()?;
        let arch = Arch::from_name(v["arch"].as_str()?).ok()?;
        let reads = campaign::switches_read_from_json(v).ok()?;
        let reused = match v["explored_as"].as_str() {
            Some(e) => Some(Era::from_name(e).ok()?),
            None => None,
        };
        Some(Cell {
            scenario,
            era,
            arch,
            policy: scenarios[scenario].policy(era, arch).bits(),
            reads,
            reused,
            checked: v["checked"].as_str()?.to_string(),
            kinds: kinds("kinds")?,
            first_at: v["first_at_execution"].as_u64(),
            via_loom: v["found_by"] == "loom",
            executions: v["executions"].as_u64()?,
            traces: v["traces"]
                .as_array()?
                .iter()
                .map(|t| t.as_str().map(PathBuf::from))
                .collect::<Option<_>>()?,
            expected: kinds("expected")?,
        })
    }

    fn agrees(&self) -> bool {
        self.kinds == self.expected
    }
    /// The deepest preemption bound at which loom proved the cell exhaustive, read back
    /// from `checked` as `run_cell` writes it (`loom pb=N, M executions, exhaustive`):
    /// `checked` is what a state file keeps, so a resumed or merged cell has it too.
    fn proven_bound(&self) -> Option<usize> {
        self.checked
            .split("; ")
            .filter_map(|part| {
                let rest = part.strip_prefix("loom pb=")?;
                let (bound, rest) = rest.split_once(", ")?;
                rest.ends_with(" executions, exhaustive")
                    .then(|| bound.parse().ok())?
            })
            .max()
    }

    fn text(&self) -> String {
        let mark = if self.agrees() { "" } else { " (!)" };
        match self.kinds.first() {
            None => format!("ok{mark}"),
            Some(k) => {
                let more = if self.kinds.len() > 1 {
                    format!("+{}", self.kinds.len() - 1)
                } else {
                    String::new()
                };
                let by = if self.via_loom { " loom" } else { "" };
                format!(
                    "{}{more}{by} @{}{mark}",
                    k.name(),
                    self.first_at.unwrap_or(0)
                )
            }
        }
    }
}

/// What identifies a matrix run: two runs with the same identity compute the same cells.
fn identity(scenarios: &[Scenario], eras: &[Era], arches: &[Arch], args: &Args) -> Value {
    json!({
        "scenarios": scenarios.iter().map(|s| json!([s.name, campaign::scenario_hash(&s.text)])).collect::<Vec<_>>(),
        "eras": eras.iter().map(|e| e.name()).collect::<Vec<_>>(),
        "arches": arches.iter().map(|a| a.name()).collect::<Vec<_>>(),
        "budget": args.budget,
        "depth": args.depth,
        "seed": args.seed,
        "preemption_bound": args.preemption_bound,
        "proofs": !args.no_proofs,
        "chunk": campaign::CHUNK_EXECUTIONS,
        "model_version": campaign::MODEL_VERSION,
    })
}

/// Every cell of the matrix in its fixed order (scenario, arch, era): a cell's index
/// decides its shard.
fn all_cells(scenarios: &[Scenario], eras: &[Era], arches: &[Arch]) -> Vec<(usize, Era, Arch)> {
    let mut work = Vec::new();
    for (s, sc) in scenarios.iter().enumerate() {
        for &a in arches.iter().filter(|&&a| sc.runs_on(a)) {
            for &e in eras {
                work.push((s, e, a));
            }
        }
    }
    work
}

/// A matrix as its state file holds it (and as `merge` reads it back).
pub struct Loaded {
    pub scenarios: Vec<Scenario>,
    pub eras: Vec<Era>,
    pub arches: Vec<Arch>,
    pub identity: Value,
    pub settings: Value,
    cells: Vec<Cell>,
}

fn state_json(
    scenarios: &[Scenario],
    identity: &Value,
    settings: &Value,
    shard: Shard,
    cells: &[Cell],
    total: usize,
) -> Value {
    json!({
        "format": run::STATE_FORMAT,
        "version": run::STATE_VERSION,
        "kind": "matrix",
        "identity": identity,
        "settings": settings,
        "scenario_texts": scenarios.iter().map(|s| s.text.clone()).collect::<Vec<_>>(),
        "shard": {"index": shard.index, "count": shard.count},
        "cells_in_shard": total,
        "complete": cells.len() == total,
        "cells": cells.iter().map(|c| c.to_json(scenarios)).collect::<Vec<_>>(),
    })
}

/// Read a matrix state file.
pub fn load(path: &Path, v: &Value) -> Result<Loaded, Fail> {
    let bad = |what: &str| {
        Fail::bad(format!(
            "{}: the matrix state has no valid `{what}`",
            path.display()
        ))
    };
    let mut scenarios = Vec::new();
    for t in v["scenario_texts"]
        .as_array()
        .ok_or_else(|| bad("scenario_texts"))?
    {
        let text = t.as_str().ok_or_else(|| bad("scenario_texts"))?;
        scenarios.push(
            cowbreak_scenario::parse(&format!("{} (embedded scenario)", path.display()), text)
                .map_err(|e| Fail::bad(e.to_string()))?,
        );
    }
    let names = |k: &str| -> Result<Vec<String>, Fail> {
        v["identity"][k]
            .as_array()
            .ok_or_else(|| bad(k))?
            .iter()
            .map(|x| x.as_str().map(str::to_string).ok_or_else(|| bad(k)))
            .collect()
    };
    let eras = names("eras")?
        .iter()
        .map(|e| cli::era(e))
        .collect::<Result<Vec<_>, _>>()?;
    let arches = names("arches")?
        .iter()
        .map(|a| cli::arch(a))
        .collect::<Result<Vec<_>, _>>()?;
    let mut cells = Vec::new();
    for c in v["cells"].as_array().ok_or_else(|| bad("cells"))? {
        cells.push(Cell::from_json(c, &scenarios).ok_or_else(|| bad("cells"))?);
    }
    Ok(Loaded {
        scenarios,
        eras,
        arches,
        identity: v["identity"].clone(),
        settings: v["settings"].clone(),
        cells,
    })
}

pub fn run(args: Args) -> Result<ExitCode, Fail> {
    let scenarios: Vec<Scenario> = if args.scenarios.is_empty() {
        cli::builtins()?
    } else {
        args.scenarios
            .iter()
            .map(|s| cli::scenario(s))
            .collect::<Result<_, _>>()?
    };
    let eras: Vec<Era> = if args.eras.is_empty() {
        Era::ALL.to_vec()
    } else {
        args.eras
            .iter()
            .map(|e| cli::era(e))
            .collect::<Result<_, _>>()?
    };
    let arches: Vec<Arch> = args
        .arch
        .iter()
        .map(|a| cli::arch(a))
        .collect::<Result<_, _>>()?;
    if args.depth == 0 || args.jobs == 0 || args.budget == 0 || arches.is_empty() {
        return Err(Fail::bad(
            "--depth, --jobs and --budget must be at least 1, and --arch must name one",
        ));
    }
    let shard = run::shard(args.run.shard.as_deref())?;
    let dir = run::out_dir(args.run.out.as_deref())?;
    for f in args.json.iter().chain(&args.markdown) {
        run::check_output_file(f)?;
    }
    let verbosity = run::Verbosity::from_flags(args.run.quiet, args.run.verbose);
    let identity = identity(&scenarios, &eras, &arches, &args);
    let settings = json!({"depth": args.depth, "seed": args.seed, "budget": args.budget, "proofs": !args.no_proofs, "proof_budget": args.proof_budget, "proof_seconds": args.proof_seconds, "deepen_below": args.deepen_below, "probe": args.probe, "reuse": !args.no_reuse, "traces": dir.display().to_string()});
    let work = all_cells(&scenarios, &eras, &arches);
    let mine: Vec<usize> = (0..work.len()).filter(|&i| shard.owns(i)).collect();
    let state_path = run::state_path(&dir, "matrix", shard);
    let mut kept: Vec<Cell> = Vec::new();
    if args.run.resume {
        let v = run::read_state(&state_path, "matrix")?;
        if v["identity"] != identity
            || v["shard"] != json!({"index": shard.index, "count": shard.count})
        {
            return Err(Fail::bad(format!(
                "{}: the state file is of another matrix (scenarios, eras, arches, budget, seed or shard differ)",
                state_path.display()
            )));
        }
        kept = load(&state_path, &v)?.cells;
    }
    let todo: Vec<usize> = mine
        .iter()
        .copied()
        .filter(|&i| {
            let (s, e, a) = work[i];
            !kept
                .iter()
                .any(|c| c.scenario == s && c.era == e && c.arch == a)
        })
        .collect();
    if verbosity != run::Verbosity::Quiet {
        eprintln!(
            "matrix: {} scenarios x {} eras x {} arches ({} cells{}{}), PCT d={} {} executions per cell (and loom pb={} where a scenario needs weak memory), seed {}, {} jobs",
            scenarios.len(),
            eras.len(),
            arches.len(),
            work.len(),
            if shard == Shard::ALL { String::new() } else { format!(", shard {}/{}: {}", shard.index, shard.count, mine.len()) },
            if kept.is_empty() { String::new() } else { format!(", {} resumed", kept.len()) },
            args.depth,
            args.budget,
            args.preemption_bound.map_or("its own".to_string(), |b| b.to_string()),
            args.seed,
            args.jobs
        );
    }
    let queue = Mutex::new(Queue {
        left: todo.iter().map(|&i| work[i]).collect(),
        on: vec![None; args.jobs],
    });
    // Explored cells, whose outcome others may take (see `--no-reuse`).
    let explored = Mutex::new(
        kept.iter()
            .filter(|c| c.reused.is_none())
            .cloned()
            .collect::<Vec<_>>(),
    );
    let cells = Mutex::new(kept);
    let failure = Mutex::new(None);
    let stop = run::stop_flag();
    let progress = Mutex::new(run::Progress::new(mine.len() as u64, "cells", verbosity));
    let started = Instant::now();
    let save = |cells: &[Cell]| {
        run::write_state(
            &state_path,
            &state_json(&scenarios, &identity, &settings, shard, cells, mine.len()),
        )
    };
    save(&cells.lock().unwrap())?;
    std::thread::scope(|s| {
        for job in 0..args.jobs {
            let (queue, explored) = (&queue, &explored);
            let (scenarios, args, dir, stop) = (&scenarios, &args, &dir, &stop);
            let (cells, failure, progress, save, mine) =
                (&cells, &failure, &progress, &save, &mine);
            s.spawn(move || loop {
                if stop.load(Ordering::Relaxed) || failure.lock().unwrap().is_some() {
                    break;
                }
                let Some(cell) = queue.lock().unwrap().take(job) else {
                    break;
                };
                match run_cell(scenarios, cell, args, dir, stop, explored) {
                    Ok(Some(cell)) => {
                        let mut all = cells.lock().unwrap();
                        let line = format!(
                            "{:<40} {:<9} {:<5} {}",
                            scenarios[cell.scenario].name,
                            cell.era.name(),
                            cell.arch.name(),
                            cell.text()
                        );
                        let interesting = !cell.kinds.is_empty() || !cell.agrees();
                        all.push(cell);
                        if let Err(e) = save(&all) {
                            *failure.lock().unwrap() = Some(e);
                        }
                        let found = all.iter().filter(|c| !c.kinds.is_empty()).count();
                        let done = all.len() as u64;
                        drop(all);
                        let mut p = progress.lock().unwrap();
                        p.update(done, found, "");
                        if verbosity == run::Verbosity::Verbose || (interesting && p.is_bar()) {
                            p.line(&format!("[{done:>3}/{}] {line}", mine.len()));
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        *failure.lock().unwrap() = Some(e);
                        break;
                    }
                }
            });
        }
    });
    progress.into_inner().unwrap().finish();
    if let Some(f) = failure.into_inner().unwrap() {
        return Err(f);
    }
    let mut cells = cells.into_inner().unwrap();
    let complete = cells.len() == mine.len();
    cells.sort_by_key(|c| (c.scenario, c.arch, eras.iter().position(|&e| e == c.era)));
    let status = Status {
        shard,
        cells: cells.len(),
        of: mine.len(),
        secs: started.elapsed().as_secs_f64(),
    };
    let out = Output {
        scenarios: &scenarios,
        eras: &eras,
        arches: &arches,
        identity: &identity,
        settings: &settings,
        status,
    };
    out.write(&cells, args.json.as_deref(), args.markdown.as_deref())?;
    if !complete {
        eprintln!(
            "interrupted: {} of {} cells done and kept in {}; resume with the same command and --resume",
            cells.len(),
            mine.len(),
            state_path.display()
        );
        return Ok(ExitCode::from(run::INTERRUPTED));
    }
    let disagree = cells.iter().filter(|c| !c.agrees()).count();
    Ok(if disagree == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::VIOLATION)
    })
}

/// The cells left to run, handed out so that each job keeps to one scenario and arch
/// while it can: the eras of a (scenario, arch) run one after another on one job, so each
/// can take an earlier one's exploration (see `--no-reuse`) instead of two jobs
/// exploring the same class of eras side by side.
struct Queue {
    left: Vec<(usize, Era, Arch)>,
    /// The (scenario, arch) each job is on.
    on: Vec<Option<(usize, Arch)>>,
}

impl Queue {
    /// The next cell for `job`: of its (scenario, arch) if one is left, else the first
    /// of a (scenario, arch) no job is on, else the first left.
    fn take(&mut self, job: usize) -> Option<(usize, Era, Arch)> {
        let group = |c: &(usize, Era, Arch)| (c.0, c.2);
        let at = self
            .left
            .iter()
            .position(|c| Some(group(c)) == self.on[job])
            .or_else(|| {
                self.left
                    .iter()
                    .position(|c| !self.on.contains(&Some(group(c))))
            })
            .or((!self.left.is_empty()).then_some(0))?;
        let cell = self.left.remove(at);
        self.on[job] = Some(group(&cell));
        Some(cell)
    }
}

/// Run one cell; `None` when the run was interrupted before the cell finished.
fn run_cell(
    scenarios: &[Scenario],
    (si, era, arch): (usize, Era, Arch),
    args: &Args,
    dir: &Path,
    stop: &Arc<std::sync::atomic::AtomicBool>,
    explored: &Mutex<Vec<Cell>>,
) -> Result<Option<Cell>, Fail> {
    let sc = &scenarios[si];
    // A scenario whose history needs weak memory is checked both ways: PCT for what any
    // interleaving shows, loom for what only weak memory does.
    let weak = sc.backend.as_deref() == Some("loom") || sc.needs_weak_memory();
    let expected = if weak {
        sc.expected_on(era, arch)
    } else {
        sc.expected_on_sc(era, arch)
    };
    let req = CheckRequest {
        scenario: sc.clone(),
        era,
        arch,
        switches: Vec::new(),
        shuttle: ShuttleConfig {
            strategy: Strategy::Pct { depth: args.depth },
            iterations: args.budget,
            seed: args.seed,
            steps_max: 20_000,
            stop_after_first: false,
        },
    };
    let policy = sc.policy(era, arch).bits();
    // The model branches on the era only through the switches it reads, so a cell that
    // agrees with an explored cell on every switch that cell's explorations read would
    // run the very same executions (same seed, same schedules, same outcome).
    let same = |o: &&Cell| {
        o.scenario == si
            && o.arch == arch
            && o.reads != u64::MAX
            && (o.policy ^ policy) & o.reads == 0
    };
    if !args.no_reuse {
        let found = explored.lock().unwrap().iter().find(same).cloned();
        if let Some(o) = found {
            // Its traces are the origin's, relabelled: the same schedule, run on this
            // era's switches, replays to the same violation.
            let switches: Vec<(String, bool)> = sc
                .policy(era, arch)
                .iter()
                .map(|(n, on)| (n.to_string(), on))
                .collect();
            let (from, to) = (
                run::run_name(&CheckRequest {
                    era: o.era,
                    ..req.clone()
                }),
                run::run_name(&req),
            );
            let traces = o
                .traces
                .iter()
                .map(|p| relabel(p, &from, &to, era, &switches, dir))
                .collect::<Result<Vec<_>, Fail>>()?;
            return Ok(Some(Cell {
                era,
                checked: format!(
                    "{}; as on {}, whose {} read switches agree",
                    o.checked,
                    o.era.name(),
                    o.reads.count_ones()
                ),
                traces,
                expected,
                policy,
                reused: Some(o.era),
                ..o
            }));
        }
    }
    let bound = args.preemption_bound.or(sc.preemption_bound).unwrap_or(2);
    let control = Arc::new(Control::new(Arc::clone(stop)));
    // A cell loom may prove is probed first: a few PCT executions that stop at the first
    // violation. Where they find none, loom tries to prove the cell, and PCT's whole
    // budget runs only where the proof does not settle it.
    // (A weak-memory cell runs loom anyway; with proofs on, its sampling is cut the same way.)
    let provable = !args.no_proofs && sc.check_loom_limits().is_ok();
    let mut probe_reads = 0;
    let probed_clean = provable && {
        let probe = CheckRequest {
            shuttle: ShuttleConfig {
                iterations: args.probe.min(args.budget),
                stop_after_first: true,
                ..req.shuttle
            },
            ..req.clone()
        };
        let (mut clean, mut complete) = (true, true);
        campaign::run_chunks(
            &probe,
            &[0],
            1,
            &control,
            |r| {
                clean &= r.found.is_empty();
                complete &= r.complete;
                probe_reads |= r.reads;
            },
            || {},
        )
        .map_err(|e| Fail::bad(e.to_string()))?;
        if !complete {
            return Ok(None);
        }
        clean
    };
    let proof_budget = crate::check::LoomBudget {
        executions: Some(args.proof_budget),
        seconds: Some(args.proof_seconds),
    };
    // loom at bound `b`; `None` when Ctrl-C, which reaches the loom runner too, stopped
    // it: an interrupted cell, not a failure.
    let loom_at =
        |b: usize, budget: &crate::check::LoomBudget| match crate::check::loom_report_within(
            &req, b, budget,
        ) {
            Ok(l) => Ok(Some(l)),
            Err(_) if stop.load(Ordering::Relaxed) => Ok(None),
            Err(e) => Err(e),
        };
    // A weak-memory cell's loom run is its check, not a proof: no budget.
    let loom = if weak || probed_clean {
        let budget = if weak {
            crate::check::LoomBudget::default()
        } else {
            proof_budget
        };
        let Some(l) = loom_at(bound, &budget)? else {
            return Ok(None);
        };
        Some(l)
    } else {
        None
    };
    let proven = probed_clean && matches!(&loom, Some((l, true, _)) if l.violations.is_empty());
    let (mut violations, executions, mut traces, pct_reads) = if proven {
        (
            Vec::new(),
            args.probe.min(args.budget) as u64,
            Vec::new(),
            probe_reads,
        )
    } else {
        let mut r = run::Run::new(&req, dir, None, Shard::ALL, None)?;
        if !r.go(1, &control, |_, _, _| {})? {
            return Ok(None);
        }
        if let Some(e) = r.write_error.take() {
            return Err(e);
        }
        let (report, traces) = r.report(0)?;
        (
            report.violations,
            report.executions,
            traces,
            r.campaign.reads,
        )
    };
    // A small clean proof, in a cell nothing broke, is tried again one bound deeper
    // (`--deepen-below`).
    let deeper = match &loom {
        Some((l, true, _))
            if l.violations.is_empty()
                && violations.is_empty()
                && l.executions <= args.deepen_below =>
        {
            let Some(l) = loom_at(bound + 1, &proof_budget)? else {
                return Ok(None);
            };
            Some(l)
        }
        _ => None,
    };
    // The cell's outcome depends on every exploration that steered it: the probe and
    // loom (which decide whether PCT's budget runs) as well as PCT, even where PCT's
    // findings are the ones kept.
    let reads = pct_reads
        | probe_reads
        | loom.as_ref().map_or(0, |l| l.2)
        | deeper.as_ref().map_or(0, |l| l.2);
    let mut checked = format!(
        "PCT d={} seed {}, {} executions{}, sampled",
        args.depth,
        args.seed,
        executions,
        if proven { " (a probe)" } else { "" }
    );
    // loom's findings count where PCT's whole budget found nothing, as when loom ran only
    // after it: a cell PCT breaks reads as PCT found it.
    // A deeper proof runs only where the first found nothing; its findings count the same.
    let proofs = [(bound, loom, ": sampled only"), (bound + 1, deeper, "")];
    for (b, run, sampled) in proofs {
        let Some((l, exhaustive, _)) = run.filter(|_| weak || violations.is_empty()) else {
            continue;
        };
        let mut extra = Vec::new();
        for v in l.violations {
            let same = |k: &campaign::Reported| {
                k.found.violation.kind == v.found.violation.kind
                    && k.found.violation.at == v.found.violation.at
            };
            if !violations.iter().any(same) {
                extra.push(v);
            }
        }
        traces.extend(crate::check::write_traces(&req, &extra, dir)?);
        violations.extend(extra);
        checked.push_str(&if exhaustive {
            format!("; loom pb={b}, {} executions, exhaustive", l.executions)
        } else {
            format!(
                "; loom pb={b} did not finish within {} executions or {} s{sampled}",
                args.proof_budget, args.proof_seconds
            )
        });
    }
    let mut kinds: Vec<ViolationKind> = violations.iter().map(|r| r.found.violation.kind).collect();
    kinds.sort();
    kinds.dedup();
    let cell = Cell {
        scenario: si,
        era,
        arch,
        checked,
        first_at: violations.iter().map(|r| r.found.first_at_execution).min(),
        via_loom: !violations.is_empty()
            && violations
                .iter()
                .all(|r| r.trace.schedule.encoding == "loom"),
        kinds,
        executions,
        traces,
        expected,
        policy,
        reads,
        reused: None,
    };
    explored.lock().unwrap().push(cell.clone());
    Ok(Some(cell))
}

/// Write trace `path` of run `from` again as run `to`'s, on `era` with `switches`.
fn relabel(
    path: &Path,
    from: &str,
    to: &str,
    era: Era,
    switches: &[(String, bool)],
    dir: &Path,
) -> Result<PathBuf, Fail> {
    let mut t = cowbreak_trace::TraceFile::read(path).map_err(|e| Fail::bad(e.to_string()))?;
    t.era = era.name().to_string();
    t.switches = switches.to_vec();
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix(from))
        .ok_or_else(|| Fail::bad(format!("{}: not a trace of {from}", path.display())))?;
    let out = dir.join(format!("{to}{name}"));
    t.write(&out)
        .map_err(|e| Fail::bad(format!("cannot write trace: {e}")))?;
    Ok(out)
}

/// How far a matrix got.
#[derive(Copy, Clone)]
pub struct Status {
    pub shard: Shard,
    pub cells: usize,
    pub of: usize,
    pub secs: f64,
}

/// Writes a matrix's table and JSON (run, or merged from shards).
pub struct Output<'a> {
    pub scenarios: &'a [Scenario],
    pub eras: &'a [Era],
    pub arches: &'a [Arch],
    pub identity: &'a Value,
    pub settings: &'a Value,
    pub status: Status,
}

impl Output<'_> {
    /// Print the table; write `--markdown` and `--json` if asked (atomically). The table
    /// is printed first: a failing write loses nothing.
    fn write(
        &self,
        cells: &[Cell],
        json_file: Option<&Path>,
        markdown: Option<&Path>,
    ) -> Result<(), Fail> {
        let table = render(
            self.scenarios,
            self.eras,
            self.arches,
            cells,
            self.settings,
            self.status,
        );
        if json_file.is_some_and(run::is_stdout) {
            eprint!("{table}");
        } else {
            print!("{table}");
        }
        if let Some(path) = markdown {
            let proofs = render_proofs(self.scenarios, self.eras, self.arches, cells);
            run::write_output(path, &(table + &proofs))?;
        }
        if let Some(path) = json_file {
            let v = json!({
                "complete": self.status.cells == self.status.of,
                "cells_done": self.status.cells,
                "cells_total": self.status.of,
                "shard": {"index": self.status.shard.index, "count": self.status.shard.count},
                "campaign": self.identity,
                "cells": cells.iter().map(|c| c.to_json(self.scenarios)).collect::<Vec<_>>(),
            });
            run::write_output(
                path,
                &(serde_json::to_string_pretty(&v).expect("JSON of plain values") + "\n"),
            )?;
        }
        Ok(())
    }
}

/// One row per scenario (and architecture, when there are several), one column per era,
/// each cell as `text` puts it.
fn grid(
    scenarios: &[Scenario],
    eras: &[Era],
    arches: &[Arch],
    cells: &[Cell],
    text: impl Fn(&Cell) -> String,
) -> String {
    let mut out = String::new();
    let width = |i: usize| {
        cells
            .iter()
            .filter(|c| eras[i] == c.era)
            .map(|c| text(c).len())
            .max()
            .unwrap_or(2)
            .max(eras[i].name().len())
    };
    let row_name = |sc: &Scenario, a: Arch| {
        if arches.len() > 1 {
            format!("{} ({a})", sc.name)
        } else {
            sc.name.clone()
        }
    };
    let rows: Vec<(usize, Arch)> = (0..scenarios.len())
        .flat_map(|s| {
            arches
                .iter()
                .filter(move |&&a| scenarios[s].runs_on(a))
                .map(move |&a| (s, a))
        })
        .collect();
    let name_w = rows
        .iter()
        .map(|&(s, a)| row_name(&scenarios[s], a).len())
        .max()
        .unwrap_or(8)
        .max(8);
    out.push_str(&format!("| {:name_w$} |", "scenario"));
    for (i, e) in eras.iter().enumerate() {
        out.push_str(&format!(" {:w$} |", e.name(), w = width(i)));
    }
    out.push_str(&format!("\n|{}|", "-".repeat(name_w + 2)));
    for i in 0..eras.len() {
        out.push_str(&format!("{}|", "-".repeat(width(i) + 2)));
    }
    out.push('\n');
    for &(si, arch) in &rows {
        out.push_str(&format!("| {:name_w$} |", row_name(&scenarios[si], arch)));
        for (i, e) in eras.iter().enumerate() {
            let shown = cells
                .iter()
                .find(|c| c.scenario == si && c.era == *e && c.arch == arch)
                .map(&text)
                .unwrap_or_default();
            out.push_str(&format!(" {:w$} |", shown, w = width(i)));
        }
        out.push('\n');
    }
    out
}

/// What the proofs reached, as a second table: the deepest preemption bound at which
/// loom proved each clean cell, `sampled` where no proof finished, `-` where the cell
/// found a violation; and the count of each.
fn render_proofs(scenarios: &[Scenario], eras: &[Era], arches: &[Arch], cells: &[Cell]) -> String {
    let text = |c: &Cell| match (c.kinds.is_empty(), c.proven_bound()) {
        (false, _) => "-".to_string(),
        (true, Some(b)) => format!("pb={b}"),
        (true, None) => "sampled".to_string(),
    };
    let mut counts = std::collections::BTreeMap::new();
    for c in cells.iter().filter(|c| c.kinds.is_empty()) {
        *counts
            .entry(std::cmp::Reverse(c.proven_bound()))
            .or_insert(0) += 1;
    }
    let said: Vec<String> = counts
        .iter()
        .map(|(std::cmp::Reverse(b), n)| match b {
            Some(b) => format!("{n} at bound {b}"),
            None => format!("{n} sampled only"),
        })
        .collect();
    format!(
        "\n## Proofs\n\nThe deepest preemption bound at which loom proved each clean cell exhaustive (`pb=N`), `sampled` where no proof finished, `-` where the cell found a violation. {} clean cells: {}.\n\n{}",
        counts.values().sum::<usize>(),
        said.join(", "),
        grid(scenarios, eras, arches, cells, text)
    )
}

/// Join matrix shards (`merge`): the cells of every state, checked to be of one matrix.
pub fn merge(
    states: Vec<(PathBuf, Value)>,
    json_file: Option<&Path>,
    markdown: Option<&Path>,
) -> Result<ExitCode, Fail> {
    let mut loaded: Option<Loaded> = None;
    let mut total = 0;
    let mut shards = std::collections::BTreeSet::new();
    for (path, v) in states {
        let l = load(&path, &v)?;
        let count = v["shard"]["count"].as_u64().unwrap_or(1);
        let index = v["shard"]["index"].as_u64().unwrap_or(0);
        if !shards.insert(index) {
            return Err(Fail::bad(format!(
                "{}: shard {index} given twice",
                path.display()
            )));
        }
        total += v["cells_in_shard"].as_u64().unwrap_or(0) as usize;
        match &mut loaded {
            None => {
                if shards.len() as u64 > count {
                    return Err(Fail::bad("more shards than the matrix has"));
                }
                loaded = Some(l);
            }
            Some(m) => {
                if m.identity != l.identity {
                    return Err(Fail::bad(format!(
                        "{}: a shard of another matrix (scenarios, eras, arches, budget or seed differ)",
                        path.display()
                    )));
                }
                for c in l.cells {
                    if !m
                        .cells
                        .iter()
                        .any(|k| k.scenario == c.scenario && k.era == c.era && k.arch == c.arch)
                    {
                        m.cells.push(c);
                    }
                }
            }
        }
    }
    let Some(mut m) = loaded else {
        return Err(Fail::bad("no matrix state file in the directories given"));
    };
    let all = all_cells(&m.scenarios, &m.eras, &m.arches).len();
    let eras = m.eras.clone();
    m.cells
        .sort_by_key(|c| (c.scenario, c.arch, eras.iter().position(|&e| e == c.era)));
    let complete = m.cells.len() == all && total == all;
    let out = Output {
        scenarios: &m.scenarios,
        eras: &m.eras,
        arches: &m.arches,
        identity: &m.identity,
        settings: &m.settings,
        status: Status {
            shard: Shard::ALL,
            cells: m.cells.len(),
            of: all,
            secs: 0.0,
        },
    };
    out.write(&m.cells, json_file, markdown)?;
    if !complete {
        eprintln!(
            "incomplete: the shards hold {} of the matrix's {all} cells",
            m.cells.len()
        );
        return Ok(ExitCode::from(run::INTERRUPTED));
    }
    Ok(if m.cells.iter().all(Cell::agrees) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::VIOLATION)
    })
}

/// The table as Markdown, which also reads well in a terminal: one row per scenario (and
/// architecture, when there are several), one column per era.
fn render(
    scenarios: &[Scenario],
    eras: &[Era],
    arches: &[Arch],
    cells: &[Cell],
    settings: &Value,
    status: Status,
) -> String {
    let mut out = grid(scenarios, eras, arches, cells, Cell::text);
    let agree = cells.iter().filter(|c| c.agrees()).count();
    let found = cells.iter().filter(|c| !c.kinds.is_empty()).count();
    out.push_str(&format!(
        "\nok: no violation {}. KIND @N: found first at execution N; KIND loom @N: found only by loom, at its iteration N (trace in {}/). Each cell's `checked` (JSON) says what ran{}.\n",
        match (settings["proofs"] == json!(false), settings["probe"].as_u64()) {
            (true, _) | (false, None) => format!(
                "in PCT d={} seed {}, {} executions{}",
                settings["depth"],
                settings["seed"],
                settings["budget"],
                if settings["proofs"] == json!(false) {
                    " (and loom, exhaustive, for scenarios that need weak memory)"
                } else {
                    ", then loom, exhaustive at the preemption bound, where the scenario fits loom"
                }
            ),
            (false, Some(probe)) => format!(
                "in a probe of {probe} PCT d={} seed {} executions, then loom, exhaustive at the preemption bound (2 unless the scenario asks for another{}), where the scenario fits loom and loom finishes within its proof budget; in {} PCT executions where it does not (a cell whose proof does not finish says so in `checked`)",
                settings["depth"],
                settings["seed"],
                match settings["deepen_below"].as_u64() {
                    Some(n) if n > 0 => format!(", and one deeper where that proof took at most {n} executions"),
                    _ => String::new(),
                },
                settings["budget"],
            ),
        },
        settings["traces"].as_str().unwrap_or("traces"),
        if settings["reuse"] == json!(true) {
            ", and `explored_as` whose exploration a cell took: the cell agrees with it on every switch that exploration read"
        } else {
            ""
        },
    ));
    if status.shard != Shard::ALL {
        out.push_str(&format!(
            "shard {} of {}: this shard's cells only; `cargo xtask merge` joins the shards.\n",
            status.shard.index, status.shard.count
        ));
    }
    if status.cells < status.of {
        out.push_str(&format!(
            "INCOMPLETE: {} of {} cells done; empty cells were not run (--resume goes on).\n",
            status.cells, status.of
        ));
    }
    out.push_str(&format!(
        "{} cells, {found} with violations; {agree}/{} agree with the scenarios' expected history{}; {:.1} s.\n",
        cells.len(),
        cells.len(),
        if agree == cells.len() { "" } else { " ((!) marks the others)" },
        status.secs,
    ));
    out
}
