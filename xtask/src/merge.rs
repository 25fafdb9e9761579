//! `cargo xtask merge DIR...`: join the output directories of the shards of one campaign
//! or one matrix (`--shard I/N`, by hand or from a Kubernetes Indexed Job or a Slurm
//! array) into the result the unsharded run gives.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use cowbreak_explore::campaign::{Campaign, Shard};
use serde_json::{json, Value};

use crate::cli::{exit, Fail};
use crate::run;

#[derive(clap::Args)]
pub struct Args {
    /// The shards' output directories (each holds `*.state.json` files).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Matrix: also write the merged cells as JSON to FILE.
    /// (`--json` alone, or `--json -`: print the JSON on stdout instead of text.)
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    json: Option<PathBuf>,
    /// Matrix: also write the merged table as Markdown to FILE.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// Campaigns: where the merged traces and state go; default: the workspace's `traces/`.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode, Fail> {
    for f in args.json.iter().chain(&args.markdown) {
        run::check_output_file(f)?;
    }
    let mut matrices = Vec::new();
    let mut campaigns: BTreeMap<String, Vec<(PathBuf, Value)>> = BTreeMap::new();
    for dir in &args.dirs {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| Fail::bad(format!("{}: cannot read the directory: {e}", dir.display())))?;
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(".state.json"))
            .collect();
        paths.sort();
        if paths.is_empty() {
            return Err(Fail::bad(format!(
                "{}: no state file (*.state.json): not the output directory of a check or matrix run",
                dir.display()
            )));
        }
        for path in paths {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| Fail::bad(format!("{}: {e}", path.display())))?;
            let kind: Value = serde_json::from_str(&text).map_err(|e| {
                Fail::bad(format!(
                    "{}:{}:{}: not JSON: {e}",
                    path.display(),
                    e.line(),
                    e.column()
                ))
            })?;
            match kind["kind"].as_str() {
                Some("matrix") => matrices.push((path.clone(), run::read_state(&path, "matrix")?)),
                Some("campaign") => {
                    let v = run::read_state(&path, "campaign")?;
                    let key = format!("{}\n{}", v["run"], v["request"]["identity"]);
                    campaigns.entry(key).or_default().push((path.clone(), v));
                }
                _ => {
                    return Err(Fail::bad(format!(
                        "{}: not a cowbreak state file",
                        path.display()
                    )))
                }
            }
        }
    }
    let started = std::time::Instant::now();
    let mut code = ExitCode::SUCCESS;
    if !matrices.is_empty() {
        code = crate::matrix::merge(matrices, args.json.as_deref(), args.markdown.as_deref())?;
    } else if args.json.is_some() || args.markdown.is_some() {
        return Err(Fail::bad(
            "--json and --markdown are for merging matrix shards; these directories hold campaigns",
        ));
    }
    if !campaigns.is_empty() {
        let out = run::out_dir(args.out.as_deref())?;
        for (_, states) in campaigns {
            let c = merge_campaign(states, &out)?;
            if c != ExitCode::SUCCESS {
                code = c;
            }
        }
    }
    eprintln!("merged in {:.2} s", started.elapsed().as_secs_f64());
    Ok(code)
}

/// Join the shards of one campaign: union of their done chunks and findings (the same
/// merge rule a single run uses), traces rebuilt into `out` from the kept schedules.
fn merge_campaign(states: Vec<(PathBuf, Value)>, out: &std::path::Path) -> Result<ExitCode, Fail> {
    let (first_path, first) = &states[0];
    let req = run::request_from_json(&first["request"], first_path)?;
    let count = first["shard"]["count"].as_u64().unwrap_or(1) as usize;
    let mut merged = Campaign::default();
    let mut seen = std::collections::BTreeSet::new();
    for (path, v) in &states {
        if v["shard"]["count"].as_u64() != Some(count as u64) {
            return Err(Fail::bad(format!(
                "{}: a shard of a {}-way split, not {count}",
                path.display(),
                v["shard"]["count"]
            )));
        }
        if !seen.insert(v["shard"]["index"].as_u64().unwrap_or(0)) {
            return Err(Fail::bad(format!(
                "{}: shard {} given twice",
                path.display(),
                v["shard"]["index"]
            )));
        }
        let c = Campaign::from_json(&v["campaign"])
            .map_err(|e| Fail::bad(format!("{}: {e}", path.display())))?;
        merged.merge(c);
    }
    let state = run::state_path(out, &run::run_name(&req), Shard::ALL);
    let mut r = run::Run::new(&req, out, Some(state), Shard::ALL, None)?;
    r.campaign = merged;
    let complete = r.campaign.finished(&req, Shard::ALL);
    let (report, paths) = r.report(0)?;
    for (rep, path) in report.violations.iter().zip(&paths) {
        rep.trace
            .write(path)
            .map_err(|e| Fail::bad(format!("cannot write trace: {e}")))?;
    }
    r.save()?;
    let v = json!({
        "complete": complete,
        "campaign": req.identity(),
        "shards": states.len(),
        "executions": report.executions,
        "violations": report.violations.iter().zip(&paths).map(|(r, p)| json!({
            "kind": r.found.violation.kind.name(),
            "at": r.found.violation.at,
            "first_at_execution": r.found.first_at_execution,
            "schedule_steps": r.found.schedule_len,
            "trace": p.display().to_string(),
        })).collect::<Vec<_>>(),
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&v).expect("JSON of plain values")
    );
    if !complete {
        eprintln!(
            "incomplete: {} shard(s) of {count} given, or a shard was interrupted: {} of {} chunks done",
            states.len(),
            r.campaign.done.len(),
            req.chunks()
        );
        return Ok(ExitCode::from(run::INTERRUPTED));
    }
    Ok(if report.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::VIOLATION)
    })
}
