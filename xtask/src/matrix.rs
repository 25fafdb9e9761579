//! `cargo xtask matrix`: every scenario on every era, as one table.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use cowbreak_explore::campaign::{self, CheckRequest};
use cowbreak_explore::{ShuttleConfig, Strategy};
use cowbreak_mm::{Arch, Era, ViolationKind};
use cowbreak_scenario::Scenario;
use serde_json::json;

use crate::check::write_traces;
use crate::cli::{self, exit, Fail};

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
    /// loom's preemption bound for scenarios whose history needs loom (`backend loom`);
    /// default: the scenario's own (`preemption-bound=N`), else 2.
    #[arg(long)]
    preemption_bound: Option<usize>,
    /// PCT executions per cell.
    #[arg(long, default_value_t = 20_000)]
    budget: usize,
    /// PCT depth.
    #[arg(long, default_value_t = 3)]
    depth: usize,
    /// Seed of every cell's campaign.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Cells run in parallel (one OS thread each).
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Where to write traces.
    #[arg(long, default_value = "traces")]
    traces: PathBuf,
    /// Also write the cells as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Also write the table as Markdown to FILE.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
}

struct Cell {
    scenario: usize,
    era: Era,
    arch: Arch,
    /// How the cell was checked, e.g. `PCT d=3, 20000 executions`.
    checked: String,
    kinds: Vec<ViolationKind>,
    first_at: Option<u64>,
    /// Found by loom alone (a weak-memory cell): `first_at` is loom's iteration.
    via_loom: bool,
    executions: u64,
    traces: Vec<PathBuf>,
    expected: Vec<ViolationKind>,
}

impl Cell {
    fn agrees(&self) -> bool {
        self.kinds == self.expected
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
    let mut work: Vec<(usize, Era, Arch)> = Vec::new();
    for (s, sc) in scenarios.iter().enumerate() {
        for &a in arches.iter().filter(|&&a| sc.runs_on(a)) {
            for &e in &eras {
                work.push((s, e, a));
            }
        }
    }
    let next = AtomicUsize::new(0);
    let cells = Mutex::new(Vec::new());
    let failure = Mutex::new(None);
    let started = Instant::now();
    eprintln!(
        "matrix: {} scenarios x {} eras x {} arches ({} cells), PCT d={} {} executions per cell (and loom pb={} where a scenario needs weak memory), seed {}, {} jobs",
        scenarios.len(),
        eras.len(),
        arches.len(),
        work.len(),
        args.depth,
        args.budget,
        args.preemption_bound.map_or("its own".to_string(), |b| b.to_string()),
        args.seed,
        args.jobs
    );
    std::thread::scope(|s| {
        for _ in 0..args.jobs {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(si, era, arch)) = work.get(i) else {
                    break;
                };
                let sc = &scenarios[si];
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
                        progress: None,
                    },
                };
                // A scenario whose history needs weak memory is checked both ways: PCT
                // for what any interleaving shows, loom for what only weak memory does.
                let loom = sc.backend.as_deref() == Some("loom") || sc.needs_weak_memory();
                let bound = args.preemption_bound.or(sc.preemption_bound).unwrap_or(2);
                let report = campaign::check(&req)
                    .map_err(|e| Fail::bad(e.to_string()))
                    .and_then(|mut pct| {
                        if loom {
                            let l = crate::check::loom_report(&req, bound)?;
                            for r in l.violations {
                                let same = |k: &campaign::Reported| {
                                    k.found.violation.kind == r.found.violation.kind
                                        && k.found.violation.at == r.found.violation.at
                                };
                                if !pct.violations.iter().any(same) {
                                    pct.violations.push(r);
                                }
                            }
                            pct.params
                                .insert("loom_executions".into(), l.executions.into());
                        }
                        Ok(pct)
                    });
                let report = match report {
                    Ok(r) => r,
                    Err(e) => {
                        *failure.lock().unwrap() = Some(e);
                        break;
                    }
                };
                let mut checked = format!(
                    "PCT d={} seed {}, {} executions, sampled",
                    args.depth, args.seed, report.executions
                );
                if let Some(n) = report.params.get("loom_executions") {
                    checked.push_str(&format!("; loom pb={bound}, {n} executions, exhaustive"));
                }
                let traces = match write_traces(&report.violations, &args.traces) {
                    Ok(t) => t,
                    Err(e) => {
                        *failure.lock().unwrap() = Some(e);
                        break;
                    }
                };
                let mut kinds: Vec<ViolationKind> = report
                    .violations
                    .iter()
                    .map(|r| r.found.violation.kind)
                    .collect();
                kinds.sort();
                kinds.dedup();
                let cell = Cell {
                    scenario: si,
                    era,
                    arch,
                    checked,
                    first_at: report
                        .violations
                        .iter()
                        .map(|r| r.found.first_at_execution)
                        .min(),
                    via_loom: !report.violations.is_empty()
                        && report
                            .violations
                            .iter()
                            .all(|r| r.trace.schedule.encoding == "loom"),
                    kinds,
                    executions: report.executions,
                    traces,
                    expected: if loom {
                        sc.expected_on(era, arch)
                    } else {
                        sc.expected_on_sc(era, arch)
                    },
                };
                eprintln!(
                    "[{:>3}/{}] {:<40} {:<9} {:<5} {}",
                    i + 1,
                    work.len(),
                    sc.name,
                    era.name(),
                    arch.name(),
                    cell.text()
                );
                cells.lock().unwrap().push(cell);
            });
        }
    });
    if let Some(f) = failure.into_inner().unwrap() {
        return Err(f);
    }
    let mut cells = cells.into_inner().unwrap();
    cells.sort_by_key(|c| (c.scenario, c.arch, eras.iter().position(|&e| e == c.era)));
    let table = render(
        &scenarios,
        &eras,
        &arches,
        &cells,
        &args,
        started.elapsed().as_secs_f64(),
    );
    print!("{table}");
    if let Some(path) = &args.markdown {
        cowbreak_trace::write_atomic(path, table.as_bytes())
            .map_err(|e| Fail::bad(format!("{}: {e}", path.display())))?;
    }
    if let Some(path) = &args.json {
        let v = json!({"cells": cells.iter().map(|c| json!({
            "scenario": scenarios[c.scenario].name,
            "era": c.era.name(),
            "arch": c.arch.name(),
            "verdict": if c.kinds.is_empty() { "ok" } else { "violation" },
            "kind": c.kinds.first().map(|k| k.name()),
            "kinds": c.kinds.iter().map(|k| k.name()).collect::<Vec<_>>(),
            "executions": c.executions,
            "first_at_execution": c.first_at,
            "found_by": if c.kinds.is_empty() { None } else if c.via_loom { Some("loom") } else { Some("pct") },
            "trace": c.traces.first().map(|p| p.display().to_string()),
            "expected": c.expected.iter().map(|k| k.name()).collect::<Vec<_>>(),
            "agrees": c.agrees(),
            "checked": c.checked,
        })).collect::<Vec<_>>()});
        cowbreak_trace::write_atomic(
            path,
            serde_json::to_string_pretty(&v)
                .expect("JSON of plain values")
                .as_bytes(),
        )
        .map_err(|e| Fail::bad(format!("{}: {e}", path.display())))?;
    }
    let disagree = cells.iter().filter(|c| !c.agrees()).count();
    Ok(if disagree == 0 {
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
    args: &Args,
    secs: f64,
) -> String {
    let mut out = String::new();
    let width = |i: usize| {
        cells
            .iter()
            .filter(|c| eras[i] == c.era)
            .map(|c| c.text().len())
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
            let text = cells
                .iter()
                .find(|c| c.scenario == si && c.era == *e && c.arch == arch)
                .map(|c| c.text())
                .unwrap_or_default();
            out.push_str(&format!(" {:w$} |", text, w = width(i)));
        }
        out.push('\n');
    }
    let agree = cells.iter().filter(|c| c.agrees()).count();
    let found = cells.iter().filter(|c| !c.kinds.is_empty()).count();
    out.push_str(&format!(
        "\nok: PCT d={} seed {}, {} executions (and loom, exhaustive, for scenarios that need weak memory), no violation. KIND @N: found first at execution N; KIND loom @N: found only by loom, at its iteration N (trace in {}/).\n",
        args.depth,
        args.seed,
        args.budget,
        args.traces.display()
    ));
    out.push_str(&format!(
        "{} cells, {found} with violations; {agree}/{} agree with the scenarios' expected history{}; {secs:.1} s.\n",
        cells.len(),
        cells.len(),
        if agree == cells.len() { "" } else { " ((!) marks the others)" },
    ));
    out
}
