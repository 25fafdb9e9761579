//! The command line end to end: exit codes, JSON output, traces and their replay, and
//! bad input of every kind. Results are read from `--json` output and trace files,
//! never scraped from the human-readable text.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// Run `cargo xtask ARGS` in `dir`; `check` and `matrix` write their results into
/// `dir/traces` (their default is the workspace's `traces/`).
fn xtask(args: &[&str], dir: &Path) -> Output {
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let writes = matches!(args.first().map(String::as_str), Some("check" | "matrix"));
    if writes && !args.iter().any(|a| a == "--out") {
        args.push("--out".into());
        args.push(dir.join("traces").display().to_string());
    }
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(&args)
        .current_dir(dir)
        .output()
        .expect("xtask runs")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `matrix ARGS -q --json F` in `dir`, which must exit 0: the JSON's cells.
fn matrix_cells(args: &[&str], dir: &Path) -> Vec<Value> {
    let out = dir.join("matrix.json");
    let mut all = vec!["matrix"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-q", "--json", out.to_str().unwrap()]);
    let o = xtask(&all, dir);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    v["cells"].as_array().unwrap().clone()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&o.stdout)))
}

#[test]
fn list_json_has_every_scenario_era_and_switch() {
    let dir = tempfile::tempdir().unwrap();
    let o = xtask(&["list", "--json"], dir.path());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(
        v["scenarios"].as_array().unwrap().len(),
        cowbreak_scenario::library::FILES.len()
    );
    assert_eq!(
        v["eras"].as_array().unwrap().len(),
        cowbreak_mm::Era::ALL.len()
    );
    assert!(v["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| !s["source"].as_str().unwrap().is_empty()));
    assert_eq!(
        v["switches"].as_array().unwrap().len(),
        cowbreak_mm::SWITCHES.len()
    );
}

#[test]
fn check_finds_dirty_cow_on_v4_8_and_the_trace_replays_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let o = xtask(
        &[
            "check",
            "dirty-cow",
            "--era",
            "v4.8",
            "--iterations",
            "2000",
            "--json",
        ],
        dir.path(),
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["scenario"], "dirty-cow");
    assert_eq!(v["backend"], "pct");
    let viol = &v["violations"][0];
    assert_eq!(viol["kind"], "ro-page-written");
    assert!(viol["first_at_execution"].as_u64().unwrap() >= 1);
    let trace = dir.path().join(viol["trace"].as_str().unwrap());
    assert!(trace.exists());
    let r = xtask(&["replay", trace.to_str().unwrap()], dir.path());
    assert_eq!(code(&r), 0, "{}", stderr(&r));
    let html = dir.path().join("t.html");
    let v = xtask(
        &[
            "view",
            trace.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code(&v), 0, "{}", stderr(&v));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("ro-page-written") && page.contains("madviser"),
        "{page}"
    );
}

#[test]
fn check_on_a_fixed_era_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let o = xtask(
        &[
            "check",
            "dirty-cow",
            "--era",
            "v4.9",
            "--iterations",
            "2000",
            "--json",
        ],
        dir.path(),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json(&o)["violations"].as_array().unwrap().len(), 0);
    assert_eq!(json(&o)["executions"], 2000);
}

#[test]
fn the_same_seed_gives_the_same_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        let o = xtask(
            &[
                "check",
                "fast-gup-vs-fork",
                "--era",
                "v5.9",
                "--iterations",
                "3000",
                "--seed",
                "5",
                "--json",
            ],
            dir.path(),
        );
        let mut v = json(&o);
        v.as_object_mut().unwrap().remove("elapsed_ms");
        (code(&o), v)
    };
    assert_eq!(run(), run());
}

#[test]
fn bad_input_exits_two_with_a_located_message() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.scn");
    std::fs::write(
        &bad,
        "scenario x\nmap buf private-anon pages=1\nthread t:\n    wirte buf 1\n",
    )
    .unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["check", "dirty-cwo", "--era", "v4.8"],
            "did you mean `dirty-cow`",
        ),
        (
            vec!["check", "dirty-cow", "--era", "v4.99"],
            "unknown era `v4.99`",
        ),
        (
            vec![
                "check",
                "dirty-cow",
                "--era",
                "v4.8",
                "--switch",
                "foll_cwo=on",
            ],
            "did you mean `foll_cow`",
        ),
        (
            vec!["check", bad.to_str().unwrap(), "--era", "v4.8"],
            "bad.scn:4:5: expected a statement",
        ),
        (
            vec!["check", "missing.scn", "--era", "v4.8"],
            "missing.scn: cannot read scenario",
        ),
        (vec!["check", "dirty-cow"], "--era"),
        (
            vec!["check", "dirty-cow", "--era", "v4.8", "--backend", "bogus"],
            "bogus",
        ),
        (vec!["frobnicate"], "frobnicate"),
        (vec!["replay", "nope.json"], "nope.json"),
    ];
    for (args, want) in cases {
        let o = xtask(&args, dir.path());
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", stderr(&o));
    }
}

/// A trace from a real check, for the tampering tests.
fn a_trace(dir: &Path) -> (std::path::PathBuf, Value) {
    let o = xtask(
        &[
            "check",
            "cve-2020-29374",
            "--era",
            "v4.9",
            "--iterations",
            "10",
            "--json",
        ],
        dir,
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let path = dir.join(json(&o)["violations"][0]["trace"].as_str().unwrap());
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    (path, v)
}

#[test]
fn corrupt_truncated_and_foreign_traces_exit_two() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = a_trace(dir.path());
    let text = std::fs::read_to_string(&path).unwrap();
    let cases = [
        (
            "truncated.json",
            text[..text.len() / 2].to_string(),
            "truncated.json:",
        ),
        (
            "foreign.json",
            r#"{"hello": "world"}"#.to_string(),
            "not a cowbreak trace",
        ),
        (
            "garbage.json",
            "\u{1F980} not json at all".to_string(),
            "garbage.json:1:1",
        ),
        ("empty.json", String::new(), "empty.json"),
    ];
    for (name, body, want) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        let o = xtask(&["replay", p.to_str().unwrap()], dir.path());
        assert_eq!(code(&o), 2, "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{name}: {}", stderr(&o));
    }
}

#[test]
fn edited_traces_diverge_or_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (_, v) = a_trace(dir.path());
    let write = |name: &str, v: &Value| {
        let p = dir.path().join(name);
        std::fs::write(&p, serde_json::to_string(v).unwrap()).unwrap();
        p
    };
    // An event edited: the replay diverges at that step (exit 3).
    let mut edited = v.clone();
    edited["events"][3]["func"] = Value::String("do_something_else".into());
    let o = xtask(
        &["replay", write("edited.json", &edited).to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("step 3"), "{}", stderr(&o));
    // A trace recorded by another model version: events no longer match (exit 3).
    let mut other = v.clone();
    other["events"].as_array_mut().unwrap().pop();
    other["model_version"] = Value::String("cowbreak-mm 0.0.1".into());
    let o = xtask(
        &[
            "replay",
            write("other-model.json", &other).to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("cowbreak-mm 0.0.1"), "{}", stderr(&o));
    // Another scenario's text under this trace's schedule: rejected or diverges.
    let mut foreign = v.clone();
    foreign["scenario"]["source"] = Value::String(
        cowbreak_scenario::library::FILES
            .iter()
            .find(|f| f.0 == "dirty-cow.scn")
            .unwrap()
            .1
            .to_string(),
    );
    let o = xtask(
        &[
            "replay",
            write("foreign-scenario.json", &foreign).to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(matches!(code(&o), 2 | 3), "{}", stderr(&o));
    // An unknown era inside the trace: bad input.
    let mut era = v.clone();
    era["era"] = Value::String("v9.9".into());
    let o = xtask(
        &["replay", write("era.json", &era).to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"));
}

#[test]
fn loom_finds_cve_2020_29374_on_v4_9_with_a_replayable_trace_and_passes_v5_9() {
    let dir = tempfile::tempdir().unwrap();
    let o = xtask(
        &[
            "check",
            "cve-2020-29374",
            "--era",
            "v4.9",
            "--backend",
            "loom",
            "--json",
        ],
        dir.path(),
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["backend"], "loom");
    assert_eq!(v["violations"][0]["kind"], "pin-isolation");
    let trace = dir
        .path()
        .join(v["violations"][0]["trace"].as_str().unwrap());
    let r = xtask(&["replay", trace.to_str().unwrap()], dir.path());
    assert_eq!(code(&r), 0, "{}", stderr(&r));
    let o = xtask(
        &[
            "check",
            "cve-2020-29374",
            "--era",
            "v5.9",
            "--backend",
            "loom",
            "--json",
        ],
        dir.path(),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(json(&o)["executions"].as_u64().unwrap() > 1);
}

/// 088b8aa537c2 through the command line: the scenario's own backend (loom) finds it
/// on arm64 v5.19 with a trace that replays under loom with identical events, and the
/// trace shows the load that read a store other than the latest.
#[test]
fn a_weak_memory_race_found_by_loom_replays_from_its_trace() {
    let dir = tempfile::tempdir().unwrap();
    let o = xtask(
        &[
            "check",
            "ksm-vs-ro-pin-fast",
            "--era",
            "v5.19",
            "--arch",
            "arm64",
            "--json",
        ],
        dir.path(),
    );
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(
        (v["backend"].as_str(), v["arch"].as_str()),
        (Some("loom"), Some("arm64"))
    );
    assert_eq!(v["violations"][0]["kind"], "pin-coherence");
    let trace = dir
        .path()
        .join(v["violations"][0]["trace"].as_str().unwrap());
    let t = cowbreak_trace::TraceFile::read(&trace).unwrap();
    assert_eq!(
        (t.schedule.encoding.as_str(), t.arch.as_str()),
        ("loom", "arm64")
    );
    assert!(t.events.iter().any(|e| e.target == "cowbreak::mem"
        && e.fields.get("stale").map(String::as_str) == Some("true")));
    let r = xtask(&["replay", trace.to_str().unwrap()], dir.path());
    assert_eq!(code(&r), 0, "{}", stderr(&r));
    assert!(String::from_utf8_lossy(&r.stdout).contains("identical events"));
    // The same cell on x86 is clean.
    let o = xtask(
        &[
            "check",
            "ksm-vs-ro-pin-fast",
            "--era",
            "v5.19",
            "--arch",
            "x86",
            "--json",
        ],
        dir.path(),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // An architecture that does not exist is bad input.
    let o = xtask(
        &["check", "dirty-cow", "--era", "v4.8", "--arch", "arm46"],
        dir.path(),
    );
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("did you mean `arm64`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn loom_refuses_scenarios_with_too_many_threads() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("five.scn");
    let mut text = String::from("scenario five\nmap buf private-anon pages=1 prot=rw write=1\n");
    for i in 0..5 {
        text.push_str(&format!("thread t{i}:\n    read buf\n"));
    }
    std::fs::write(&f, text).unwrap();
    let o = xtask(
        &[
            "check",
            f.to_str().unwrap(),
            "--era",
            "v5.9",
            "--backend",
            "loom",
        ],
        dir.path(),
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("loom runs at most 4"), "{}", stderr(&o));
}

/// Budget: 3,000 PCT executions a cell, seed 0, then loom's proof of every clean cell
/// (the collapse-table race on arm64 v6.0
/// first shows at execution 2,456 of seed 0's campaign).
#[test]
fn the_matrix_agrees_with_the_kernel_history() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("matrix.json");
    let o = xtask(
        &[
            "matrix",
            "--budget",
            "3000",
            "--json",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(
        code(&o),
        0,
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let cells = v["cells"].as_array().unwrap();
    let arches: usize = cowbreak_scenario::library::all()
        .unwrap()
        .iter()
        .map(|s| {
            cowbreak_mm::Arch::ALL
                .iter()
                .filter(|&&a| s.runs_on(a))
                .count()
        })
        .sum();
    assert_eq!(cells.len(), arches * cowbreak_mm::Era::ALL.len());
    for arch in ["x86", "arm64"] {
        assert!(cells.iter().any(|c| c["arch"] == arch), "no {arch} cell");
    }
    for c in cells {
        assert_eq!(c["agrees"], true, "{c}");
        if c["verdict"] == "violation" {
            assert!(
                dir.path().join(c["trace"].as_str().unwrap()).exists(),
                "{c}"
            );
        } else {
            // Every built-in fits loom: every clean cell is proven, not only sampled.
            let checked = c["checked"].as_str().unwrap();
            assert!(checked.contains("exhaustive"), "{c}");
        }
    }
}

/// `--no-proofs` samples only: a clean cell of a scenario that needs no weak memory says
/// so, and is not proven. Budget: 500 PCT executions a cell, seed 0.
#[test]
fn a_matrix_without_proofs_only_samples() {
    let dir = tempfile::tempdir().unwrap();
    let cells = matrix_cells(
        &[
            "--scenarios",
            "dirty-cow",
            "--eras",
            "v5.9",
            "--arch",
            "x86",
            "--budget",
            "500",
            "--no-proofs",
        ],
        dir.path(),
    );
    assert_eq!(cells.len(), 1);
    assert_eq!(cells[0]["verdict"], "ok");
    assert_eq!(
        cells[0]["checked"], "PCT d=3 seed 0, 500 executions, sampled",
        "{}",
        cells[0]
    );
}

/// A clean cell takes an equal cell's exploration only where exploring it would give the
/// same: dirty-cow on x86 in v5.11 and v5.18 reads the switches v5.9 read, with the same
/// values, so those cells are v5.9's; `--no-reuse` explores each, and every cell then
/// says what the reused one said, with the same executions. v4.8 breaks and is its own.
/// One job, so the eras run in order. Budget: 500 PCT executions a cell (200 probing),
/// seed 0, and loom at bound 2.
#[test]
fn a_reused_cell_says_what_exploring_it_says() {
    let run = |extra: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec![
            "--scenarios",
            "dirty-cow",
            "--eras",
            "v4.8,v5.9,v5.11,v5.18",
            "--arch",
            "x86",
            "--budget",
            "500",
            "--jobs",
            "1",
        ];
        args.extend_from_slice(extra);
        matrix_cells(&args, dir.path())
    };
    let reused = run(&[]);
    let own = run(&["--no-reuse"]);
    assert_eq!(reused.len(), 4);
    let by_era = |cells: &[Value], era: &str| -> Value {
        cells.iter().find(|c| c["era"] == era).unwrap().clone()
    };
    assert_eq!(by_era(&reused, "v4.8")["verdict"], "violation");
    assert!(by_era(&reused, "v4.8")["explored_as"].is_null());
    assert!(by_era(&reused, "v5.9")["explored_as"].is_null());
    for era in ["v5.11", "v5.18"] {
        let c = by_era(&reused, era);
        assert_eq!(c["explored_as"], "v5.9", "{c}");
        let read: Vec<&str> = c["switches_read"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        assert!(read.contains(&"foll_cow"), "{c}");
    }
    for c in &own {
        assert!(c["explored_as"].is_null(), "{c}");
        let r = by_era(&reused, c["era"].as_str().unwrap());
        let checked = r["checked"].as_str().unwrap();
        let said = checked.split("; as on ").next().unwrap();
        assert_eq!(c["checked"].as_str().unwrap(), said, "{c}\n{r}");
        for k in ["verdict", "kinds", "executions", "agrees", "switches_read"] {
            assert_eq!(c[k], r[k], "{k}: {c}\n{r}");
        }
    }
    // The proven cells ran only the probe of PCT's budget.
    assert_eq!(by_era(&own, "v5.9")["executions"], 200);
    assert_eq!(by_era(&own, "v4.8")["executions"], 500);
}

/// A cell with a violation takes an equal cell's exploration too, and its traces are
/// that cell's relabelled with its own era and switches: they replay exactly, as the
/// origin's do (fast-gup-vs-fork on arm64 is found by loom, whose traces name every
/// location, the per-VMA locks of v6.4 on included). One job, so the eras run in order.
/// Budget: 300 PCT executions a cell (200 probing), seed 0, and loom at bound 2.
#[test]
fn a_reused_cells_traces_replay() {
    let dir = tempfile::tempdir().unwrap();
    let cells = matrix_cells(
        &[
            "--scenarios",
            "fast-gup-vs-fork",
            "--eras",
            "v6.5,v6.6",
            "--arch",
            "arm64",
            "--budget",
            "300",
            "--jobs",
            "1",
        ],
        dir.path(),
    );
    let (origin, reused) = (&cells[0], &cells[1]);
    assert_eq!(
        (origin["era"].as_str(), reused["era"].as_str()),
        (Some("v6.5"), Some("v6.6"))
    );
    assert_eq!(reused["explored_as"], "v6.5", "{reused}");
    assert_eq!(origin["verdict"], "violation", "{origin}");
    assert_eq!(reused["kinds"], origin["kinds"]);
    for c in &cells {
        let traces = c["traces"].as_array().unwrap();
        assert!(!traces.is_empty(), "{c}");
        for t in traces {
            let t = t.as_str().unwrap();
            assert!(
                t.contains(&format!("--{}--", c["era"].as_str().unwrap())),
                "{t}"
            );
            let r = xtask(&["replay", t], dir.path());
            assert_eq!(code(&r), 0, "{t}: {}", stderr(&r));
            assert!(
                String::from_utf8_lossy(&r.stdout).contains("reproduced"),
                "{t}"
            );
        }
    }
}

/// A proof that does not finish within its budget leaves the cell sampled, and says
/// so: by executions (dirty-cow v5.9 x86 needs a few hundred loom executions; 10 are
/// allowed) and by the clock (one loom execution of the 4-thread scale scenario takes
/// minutes; 3 s are allowed). Budget: 200 PCT executions a cell, seed 0.
#[test]
fn a_proof_that_does_not_finish_leaves_the_cell_sampled() {
    for (scenario, flag, value, says) in [
        ("dirty-cow", "--proof-budget", "10", "within 10 executions"),
        ("scale-fork-pins-4", "--proof-seconds", "3", "or 3 s"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cells = matrix_cells(
            &[
                "--scenarios",
                scenario,
                "--eras",
                "v5.11",
                "--arch",
                "x86",
                "--budget",
                "200",
                flag,
                value,
            ],
            dir.path(),
        );
        let cell = &cells[0];
        assert_eq!(cell["verdict"], "ok", "{cell}");
        let checked = cell["checked"].as_str().unwrap();
        assert!(
            checked.contains("did not finish") && checked.contains(says),
            "{scenario}: {checked}"
        );
        assert!(!checked.contains("exhaustive"), "{checked}");
    }
}

/// A small proof is tried one preemption bound deeper: dirty-cow v5.9 x86 is proven at
/// bound 2 in a couple of hundred loom executions, so with `--deepen-below` above that
/// count its cell is proven at bound 3 as well (in more executions), below it only at 2,
/// and a deeper proof that runs out of its budget says so and leaves the bound-2 proof
/// standing; the Markdown's proofs table shows the deepest bound proven. Budget: 200 PCT
/// executions a cell, seed 0.
#[test]
fn a_small_proof_is_deepened_to_the_next_bound() {
    let checked = |extra: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec![
            "--scenarios",
            "dirty-cow",
            "--eras",
            "v5.9",
            "--arch",
            "x86",
            "--budget",
            "200",
        ];
        args.extend_from_slice(extra);
        let md = dir.path().join("matrix.md");
        args.extend_from_slice(&["--markdown", md.to_str().unwrap()]);
        let cells = matrix_cells(&args, dir.path());
        assert_eq!(cells[0]["verdict"], "ok", "{}", cells[0]);
        let table = std::fs::read_to_string(&md).unwrap();
        // The Markdown's proofs table gives the deepest bound proven.
        let proofs = table
            .split("## Proofs")
            .nth(1)
            .unwrap_or_else(|| panic!("{table}"));
        let row = proofs.lines().find(|l| l.starts_with("| dirty-cow"));
        let shown = row.and_then(|r| r.split('|').nth(2)).map(str::trim);
        (
            cells[0]["checked"].as_str().unwrap().to_string(),
            shown.unwrap_or("").to_string(),
        )
    };
    let executions = |checked: &str, bound: usize| -> Option<u64> {
        let key = format!("loom pb={bound}, ");
        let rest = &checked[checked.find(&key)? + key.len()..];
        assert!(rest.contains(" executions, exhaustive"), "{checked}");
        rest.split(' ').next()?.parse().ok()
    };
    let (deep, shown) = checked(&["--deepen-below", "100000"]);
    let two = executions(&deep, 2).unwrap_or_else(|| panic!("{deep}"));
    let three = executions(&deep, 3).unwrap_or_else(|| panic!("{deep}"));
    assert!(three > two, "{deep}");
    assert_eq!(shown, "pb=3");

    let (shallow, shown) = checked(&["--deepen-below", &(two - 1).to_string()]);
    assert_eq!(executions(&shallow, 2), Some(two), "{shallow}");
    assert!(!shallow.contains("pb=3"), "{shallow}");
    assert_eq!(shown, "pb=2");

    // Room for the bound-2 proof, not for the bound-3 one.
    let budget = (two + 1).to_string();
    let (cut, shown) = checked(&["--deepen-below", "100000", "--proof-budget", &budget]);
    assert_eq!(executions(&cut, 2), Some(two), "{cut}");
    assert_eq!(shown, "pb=2");
    assert!(
        cut.ends_with(&format!(
            "loom pb=3 did not finish within {budget} executions or 120 s"
        )),
        "{cut}"
    );
}

/// Threads that wait for each other forever: a deadlock violation with a replayable
/// trace from shuttle, and from loom (which aborts its runner on a deadlock) the same,
/// never a crash of the command.
#[test]
fn a_deadlocking_scenario_is_a_violation_on_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("deadlock.scn");
    std::fs::write(
        &f,
        "scenario deadlock\nmap buf private-anon pages=1 prot=rw write=1\nthread a:\n    wait x\n    signal y\nthread b:\n    wait y\n    signal x\n",
    )
    .unwrap();
    for backend in ["pct", "random", "loom"] {
        let o = xtask(
            &[
                "check",
                f.to_str().unwrap(),
                "--era",
                "v5.9",
                "--backend",
                backend,
                "--json",
            ],
            dir.path(),
        );
        assert_eq!(code(&o), 1, "{backend}: {}", stderr(&o));
        let v = json(&o);
        assert_eq!(v["violations"][0]["kind"], "deadlock", "{backend}: {v}");
        let trace = dir
            .path()
            .join(v["violations"][0]["trace"].as_str().unwrap());
        let r = xtask(&["replay", trace.to_str().unwrap()], dir.path());
        assert_eq!(code(&r), 0, "{backend}: {}", stderr(&r));
    }
}

/// `check` finds a built-in by the cow.c test it follows or a commit its source cites,
/// says which built-ins share an ambiguous one, and suggests over all three kinds of name.
#[test]
fn check_takes_cow_c_test_names_and_commit_ids() {
    let dir = tempfile::tempdir().unwrap();
    let check = |what: &str| {
        xtask(
            &[
                "check", what, "--era", "v5.9", "--budget", "1000", "-q", "--json",
            ],
            dir.path(),
        )
    };
    for (what, name) in [
        ("vmsplice() + unmap in child", "cve-2020-29374"),
        ("vmsplice() + unmap in child (THP)", "cve-2020-29374-thp"),
        (
            "R/O GUP-fast pin on R/O-mapped shared page",
            "ro-pin-fast-shared",
        ),
        ("57efa1fe5957", "fast-gup-vs-fork"),
        ("57efa1f", "fast-gup-vs-fork"),
        ("CVE-2016-5195", "dirty-cow"),
    ] {
        let o = check(what);
        assert!(matches!(code(&o), 0 | 1), "{what}: {}", stderr(&o));
        assert_eq!(json(&o)["scenario"], name, "{what}");
    }
    let o = check("6c287605fd56");
    assert_eq!(code(&o), 2);
    for name in [
        "ro-pin-exclusive",
        "ro-pin-fast-exclusive",
        "ro-mapping-rw-pinned-page",
    ] {
        assert!(stderr(&o).contains(name), "{}", stderr(&o));
    }
    for (typo, meant) in [
        ("vmsplice() + unmap in chlid", "vmsplice() + unmap in child"),
        ("57efa1fe5958", "57efa1fe5957"),
        ("fast-gup-vs-frok", "fast-gup-vs-fork"),
    ] {
        let o = check(typo);
        assert_eq!(code(&o), 2);
        assert!(
            stderr(&o).contains(&format!("did you mean `{meant}`")),
            "{}",
            stderr(&o)
        );
    }
}
