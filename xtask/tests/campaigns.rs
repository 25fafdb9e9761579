//! Campaigns that lose nothing: traces written when found and never corrupted by a
//! second writer, interrupt and `--resume`, results independent of `--jobs`, shards
//! joined by `merge`, and bad input that exits 2 or 3 instead of panicking.
//!
//! Every campaign here is seeded and its budget is in its arguments.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn cmd(args: &[&str], dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.args(args).current_dir(dir);
    c
}

fn run(args: &[&str], dir: &Path) -> Output {
    cmd(args, dir).output().expect("xtask runs")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed by a signal")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", text(&o.stdout), text(&o.stderr)))
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap())
        .unwrap_or_else(|e| panic!("{}: not JSON: {e}", p.display()))
}

/// The trace files (not state files) in `dir`, by name, with their contents.
fn traces(dir: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.ends_with(".json") && !n.ends_with(".state.json")
        })
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Assert two directories' traces are the same files, naming the differing ones.
fn assert_same_traces(a: &[(String, String)], b: &[(String, String)]) {
    let names = |v: &[(String, String)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(a), names(b), "different trace files");
    for ((n, x), (_, y)) in a.iter().zip(b) {
        assert!(x == y, "{n} differs");
    }
}

/// A check's JSON without what legitimately differs between runs (time, paths).
fn comparable(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("elapsed_ms");
    for f in v["violations"].as_array_mut().into_iter().flatten() {
        let name = Path::new(f["trace"].as_str().unwrap())
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        f["trace"] = name.into();
    }
    v
}

/// Start `cargo xtask ARGS`, send it SIGINT (as Ctrl-C would) once its state file
/// `state` satisfies `ready` (polled), and return what it printed.
fn run_and_interrupt(
    args: &[&str],
    dir: &Path,
    state: &Path,
    ready: impl Fn(&Value) -> bool,
) -> Output {
    let mut child = cmd(args, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let v = std::fs::read_to_string(state)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok());
        if v.as_ref().is_some_and(&ready) {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be interrupted"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "never got ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    child.wait_with_output().unwrap()
}

/// `check dirty-cow --era v4.8` with 2,000 PCT executions (seed 0), quiet, into `out`.
fn dirty_cow<'a>(out: &'a Path, more: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "check",
        "dirty-cow",
        "--era",
        "v4.8",
        "--budget",
        "2000",
        "-q",
        "--out",
        out.to_str().unwrap(),
    ];
    v.extend(more);
    v
}

const FORK: [&str; 7] = [
    "check",
    "fast-gup-vs-fork",
    "--era",
    "v5.9",
    "--seed",
    "5",
    "--json",
];

#[test]
fn jobs_change_nothing_in_a_check() {
    // Budget: 6,000 PCT executions, seed 5, on 1 and on 2 threads.
    let dir = tempfile::tempdir().unwrap();
    let mut outs = Vec::new();
    for jobs in ["1", "2"] {
        let out = dir.path().join(format!("j{jobs}"));
        let mut args = FORK.to_vec();
        args.extend([
            "--budget",
            "6000",
            "--jobs",
            jobs,
            "--out",
            out.to_str().unwrap(),
        ]);
        let o = run(&args, dir.path());
        assert_eq!(code(&o), 1, "{}", text(&o.stderr));
        outs.push((comparable(json_of(&o)), traces(&out)));
    }
    assert!(!outs[0].1.is_empty());
    assert_eq!(outs[0].0, outs[1].0);
    assert_same_traces(&outs[0].1, &outs[1].1);
}

#[test]
fn an_interrupted_check_resumes_to_the_uninterrupted_result() {
    // Budget: 150,000 PCT executions, seed 5: long enough to interrupt on 2 cores.
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let part = dir.path().join("part");
    let mut args = FORK.to_vec();
    args.extend(["--budget", "150000", "-q"]);
    let mut a = args.clone();
    a.extend(["--out", whole.to_str().unwrap()]);
    let full = run(&a, dir.path());
    assert_eq!(code(&full), 1, "{}", text(&full.stderr));

    let mut p = args.clone();
    p.extend(["--out", part.to_str().unwrap()]);
    let state = part.join("fast-gup-vs-fork--v5.9--x86.state.json");
    let stopped = run_and_interrupt(&p, dir.path(), &state, |v| {
        v["campaign"]["done"]
            .as_array()
            .is_some_and(|d| d.len() >= 3)
    });
    assert_eq!(code(&stopped), 130, "{}", text(&stopped.stderr));
    // What the interrupted run printed and kept is whole and says it is partial.
    let partial = json_of(&stopped);
    assert_eq!(partial["complete"], false);
    assert!(partial["executions"].as_u64().unwrap() < 150_000);
    assert!(
        !partial["violations"].as_array().unwrap().is_empty(),
        "found early, kept: {partial}"
    );
    assert_eq!(read_json(&state)["complete"], false);
    for (name, body) in traces(&part) {
        serde_json::from_str::<Value>(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
    }

    p.push("--resume");
    let resumed = run(&p, dir.path());
    assert_eq!(code(&resumed), 1, "{}", text(&resumed.stderr));
    assert_eq!(comparable(json_of(&resumed)), comparable(json_of(&full)));
    assert_same_traces(&traces(&part), &traces(&whole));
}

#[test]
fn concurrent_checks_writing_the_same_names_never_corrupt_a_file() {
    // 12 pairs of identical campaigns (2,000 PCT executions of dirty-cow on v4.8, seed 0)
    // writing into one directory at the same time.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("shared");
    let args = dirty_cow(&out, &[]);
    for _ in 0..12 {
        let pair: Vec<Child> = (0..2)
            .map(|_| {
                cmd(&args, dir.path())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in pair {
            let o = c.wait_with_output().unwrap();
            assert_eq!(o.status.code(), Some(1));
        }
        let files = traces(&out);
        assert!(!files.is_empty());
        for (name, body) in files {
            let v: Value =
                serde_json::from_str(&body).unwrap_or_else(|e| panic!("{name} is corrupt: {e}"));
            assert_eq!(v["format"], "cowbreak-trace");
        }
        read_json(&out.join("dirty-cow--v4.8--x86.state.json"));
    }
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn a_fresh_run_removes_its_own_stale_traces_and_switches_get_their_own_names() {
    // Budget: 2,000 PCT executions of dirty-cow on v4.8, seed 0, with and without the fix.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t");
    let base = dirty_cow(&out, &["--json"]);
    let o = run(&base, dir.path());
    assert_eq!(code(&o), 1);
    let found = traces(&out);
    assert_eq!(found.len(), 1);
    // A trace under the v4.9 run's name (as an older run could have left), then a fresh
    // v4.9 run that finds nothing: the file claiming a v4.9 violation must go, the v4.8
    // run's trace must stay.
    let stale = out.join(found[0].0.replace("--v4.8--", "--v4.9--"));
    std::fs::write(&stale, &found[0].1).unwrap();
    let mut clean = base.to_vec();
    clean[3] = "v4.9";
    let o = run(&clean, dir.path());
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(
        !stale.exists(),
        "a run that found nothing left a trace claiming it did"
    );
    assert!(
        out.join(&found[0].0).exists(),
        "another run's trace was removed"
    );
    // A flipped switch is part of the name.
    let mut sw = base.to_vec();
    sw.extend(["--switch", "write_protect_seq=on"]);
    let o = run(&sw, dir.path());
    let v = json_of(&o);
    let name = v["violations"][0]["trace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(name.contains("--write_protect_seq=on--"), "{name}");
}

#[test]
fn shards_merge_into_the_unsharded_campaign() {
    // Budget: 5,000 PCT executions of fast-gup-vs-fork on v5.9, seed 5, whole and as 3 shards.
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let mut args = FORK.to_vec();
    args.extend(["--budget", "5000", "-q"]);
    let mut a = args.clone();
    a.extend(["--out", whole.to_str().unwrap()]);
    let full = run(&a, dir.path());
    assert_eq!(code(&full), 1);
    let mut dirs = Vec::new();
    for i in 0..3 {
        let d = dir.path().join(format!("shard{i}"));
        let shard = format!("{i}/3");
        let mut s = args.clone();
        s.extend(["--out", d.to_str().unwrap(), "--shard", &shard]);
        let o = run(&s, dir.path());
        assert!(matches!(code(&o), 0 | 1), "{}", text(&o.stderr));
        dirs.push(d);
    }
    let merged = dir.path().join("merged");
    let mut m = vec!["merge"];
    m.extend(dirs.iter().map(|d| d.to_str().unwrap()));
    m.extend(["--out", merged.to_str().unwrap()]);
    let o = run(&m, dir.path());
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    let v = json_of(&o);
    let f = json_of(&full);
    assert_eq!(v["complete"], true);
    assert_eq!(v["executions"], f["executions"]);
    assert_eq!(v["campaign"], f["campaign"]);
    let firsts = |v: &Value| -> Vec<(Value, Value, Value)> {
        v["violations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x["kind"].clone(),
                    x["at"].clone(),
                    x["first_at_execution"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(firsts(&v), firsts(&f));
    assert_same_traces(&traces(&merged), &traces(&whole));
    // Two of three shards are not the campaign.
    let o = run(
        &[
            "merge",
            dirs[0].to_str().unwrap(),
            dirs[1].to_str().unwrap(),
            "--out",
            dir.path().join("m2").to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code(&o), 130, "{}", text(&o.stderr));
}

/// `matrix` over 9 x86 cells (3 scenarios x 3 eras), seed 0, `budget` PCT executions a
/// cell, quiet, into `dir/name` with `--json dir/name.json`, plus `more`.
fn matrix_args(dir: &Path, name: &str, budget: &'static str, more: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "matrix",
        "--scenarios",
        "dirty-cow,ro-pin-shared,cve-2020-29374",
        "--eras",
        "v4.8,v5.9,v6.1",
        "--arch",
        "x86",
        "--budget",
        budget,
        "-q",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(["--out".into(), dir.join(name).display().to_string()]);
    v.extend([
        "--json".into(),
        dir.join(format!("{name}.json")).display().to_string(),
    ]);
    v.extend(more.iter().map(|s| s.to_string()));
    v
}

fn run_matrix(dir: &Path, name: &str, budget: &'static str, more: &[&str]) -> (Output, Value) {
    let args = matrix_args(dir, name, budget, more);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&args, dir);
    let v = read_json(&dir.join(format!("{name}.json")));
    (o, v)
}

/// A matrix's cells without their trace paths (which name the output directory).
fn matrix_cells(v: &Value) -> Vec<Value> {
    let mut cells = v["cells"].as_array().unwrap().clone();
    for c in &mut cells {
        let o = c.as_object_mut().unwrap();
        for k in ["trace", "traces"] {
            o.remove(k);
        }
    }
    cells
}

#[test]
fn a_sharded_and_an_interrupted_matrix_equal_the_whole_one() {
    // Budget: 1,000 PCT executions per cell (40,000 for the interrupted run), seed 0.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (o, full) = run_matrix(d, "whole", "1000", &["--jobs", "1"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(full["complete"], true);
    assert_eq!(matrix_cells(&full).len(), 9);

    // --jobs 2: the same cells.
    let (o, j2) = run_matrix(d, "j2", "1000", &["--jobs", "2"]);
    assert_eq!(code(&o), 0);
    assert_eq!(matrix_cells(&j2), matrix_cells(&full));

    // Two shards, merged.
    for i in ["0/2", "1/2"] {
        let (o, _) = run_matrix(d, &format!("s{}", &i[..1]), "1000", &["--shard", i]);
        assert_eq!(code(&o), 0);
    }
    let mj = d.join("merged.json");
    let (s0, s1) = (d.join("s0"), d.join("s1"));
    let o = run(
        &[
            "merge",
            s0.to_str().unwrap(),
            s1.to_str().unwrap(),
            "--json",
            mj.to_str().unwrap(),
        ],
        d,
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(matrix_cells(&read_json(&mj)), matrix_cells(&full));
    let mut shard_traces = traces(&s0);
    shard_traces.extend(traces(&s1));
    shard_traces.sort();
    assert_same_traces(&shard_traces, &traces(&d.join("whole")));

    // Interrupted after some cells, then resumed: the uninterrupted run's cells.
    let args = matrix_args(d, "part", "40000", &["--jobs", "1"]);
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stopped = run_and_interrupt(&args, d, &d.join("part/matrix.state.json"), |v| {
        v["cells"].as_array().is_some_and(|c| !c.is_empty())
    });
    assert_eq!(code(&stopped), 130, "{}", text(&stopped.stderr));
    let partial = read_json(&d.join("part.json"));
    assert_eq!(partial["complete"], false);
    let done = partial["cells"].as_array().unwrap().len();
    assert!((1..9).contains(&done), "{done} cells");
    assert!(text(&stopped.stdout).contains("INCOMPLETE"));
    args.push("--resume");
    let o = run(&args, d);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let resumed = read_json(&d.join("part.json"));
    assert_eq!(resumed["complete"], true);
    let (o, uninterrupted) = run_matrix(d, "u", "40000", &[]);
    assert_eq!(code(&o), 0);
    assert_eq!(matrix_cells(&resumed), matrix_cells(&uninterrupted));
}

#[test]
fn bad_input_exits_two_or_three_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t");
    let o = run(&dirty_cow(&out, &["--json"]), dir.path());
    assert_eq!(code(&o), 1);
    let trace = PathBuf::from(json_of(&o)["violations"][0]["trace"].as_str().unwrap());
    let t = read_json(&trace);
    let variant = |name: &str, f: &dyn Fn(&mut Value)| {
        let mut v = t.clone();
        f(&mut v);
        let p = dir.path().join(name);
        std::fs::write(&p, v.to_string()).unwrap();
        p
    };
    let other = cowbreak_scenario::library::find("ro-pin-shared").unwrap();
    let cases: Vec<(PathBuf, &[i32])> = vec![
        (
            variant("empty.json", &|v| v["schedule"]["data"] = "".into()),
            &[2],
        ),
        (
            variant("invalid.json", &|v| {
                v["schedule"]["data"] = "not a schedule!".into()
            }),
            &[2],
        ),
        (
            variant("cut.json", &|v| v["schedule"]["data"] = "91010a".into()),
            &[2, 3],
        ),
        (
            variant("other.json", &|v| {
                v["scenario"]["source"] = other.text.clone().into();
                v["scenario"]["name"] = other.name.clone().into();
            }),
            &[2, 3],
        ),
    ];
    for (p, codes) in cases {
        let o = run(&["replay", p.to_str().unwrap()], dir.path());
        assert!(
            codes.contains(&code(&o)),
            "{}: exit {}: {}",
            p.display(),
            code(&o),
            text(&o.stderr)
        );
        assert!(
            text(&o.stderr).starts_with("error: "),
            "{}",
            text(&o.stderr)
        );
        assert!(!text(&o.stderr).contains("panicked"), "{}", text(&o.stderr));
        assert!(
            !text(&o.stderr).contains("Task {"),
            "shuttle's dump reached the user: {}",
            text(&o.stderr)
        );
    }
    for width in ["0", "1", "100000"] {
        let o = run(
            &["replay", trace.to_str().unwrap(), "--width", width],
            dir.path(),
        );
        assert_eq!(code(&o), 0, "--width {width}: {}", text(&o.stderr));
    }
    // Standard output on a full disk: a message and exit 2.
    let full = std::fs::File::create("/dev/full");
    if let Ok(full) = full {
        let o = cmd(&["replay", trace.to_str().unwrap()], dir.path())
            .stdout(full)
            .output()
            .unwrap();
        assert_eq!(code(&o), 2, "{}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains("No space left"),
            "{}",
            text(&o.stderr)
        );
    }
    // Standard output closed early: a quiet exit.
    let mut child = cmd(&["list"], dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(text(&o.stderr).is_empty(), "{}", text(&o.stderr));
    // Flags for another backend, a zero budget, a bad shard, nothing to resume.
    let state_dir = dir.path().join("nostate");
    for args in [
        vec![
            "check",
            "dirty-cow",
            "--era",
            "v4.8",
            "--backend",
            "dfs",
            "--depth",
            "2",
        ],
        vec![
            "check",
            "dirty-cow",
            "--era",
            "v4.8",
            "--backend",
            "loom",
            "--budget",
            "5",
        ],
        vec![
            "check",
            "dirty-cow",
            "--era",
            "v4.8",
            "--preemption-bound",
            "2",
        ],
        vec!["check", "dirty-cow", "--era", "v4.8", "--budget", "0"],
        vec!["check", "dirty-cow", "--era", "v4.8", "--shard", "3/3"],
        vec![
            "check",
            "dirty-cow",
            "--era",
            "v4.8",
            "--resume",
            "--out",
            state_dir.to_str().unwrap(),
        ],
        vec!["merge", state_dir.to_str().unwrap()],
    ] {
        let o = run(&args, dir.path());
        assert_eq!(code(&o), 2, "{args:?}: {}", text(&o.stderr));
        assert!(
            text(&o.stderr).starts_with("error: "),
            "{args:?}: {}",
            text(&o.stderr)
        );
    }
    // A corrupt state file is named with its line and column.
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("dirty-cow--v4.8--x86.state.json"),
        "{\n  \"format\": \n",
    )
    .unwrap();
    let o = run(
        &[
            "check",
            "dirty-cow",
            "--era",
            "v4.8",
            "--resume",
            "--out",
            bad.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code(&o), 2);
    assert!(
        text(&o.stderr).contains("state.json:3:"),
        "{}",
        text(&o.stderr)
    );
    // With --json, the error is JSON on stdout too.
    let o = run(
        &["check", "dirty-cow", "--era", "v4.99", "--json"],
        dir.path(),
    );
    assert_eq!(code(&o), 2);
    assert_eq!(json_of(&o)["error"]["exit_code"], 2);
    // LOOM_* variables cowbreak does not honour are refused.
    let o = cmd(
        &["check", "dirty-cow", "--era", "v4.8", "--backend", "loom"],
        dir.path(),
    )
    .env("LOOM_MAX_BRANCHES", "5")
    .output()
    .unwrap();
    assert_eq!(code(&o), 2);
    assert!(
        text(&o.stderr).contains("LOOM_MAX_BRANCHES"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn the_shard_comes_from_the_cluster_when_not_given() {
    // Budget: 2,000 PCT executions, seed 0; shard 1 of 2 from each scheduler's variables.
    let dir = tempfile::tempdir().unwrap();
    for (vars, name) in [
        (
            vec![("JOB_COMPLETION_INDEX", "1"), ("JOB_COMPLETIONS", "2")],
            "k8s",
        ),
        (
            vec![
                ("SLURM_ARRAY_TASK_ID", "4"),
                ("SLURM_ARRAY_TASK_MIN", "3"),
                ("SLURM_ARRAY_TASK_COUNT", "2"),
            ],
            "slurm",
        ),
    ] {
        let out = dir.path().join(name);
        let mut c = cmd(
            &[
                "check",
                "dirty-cow",
                "--era",
                "v4.8",
                "--budget",
                "2000",
                "-q",
                "--json",
                "--out",
                out.to_str().unwrap(),
            ],
            dir.path(),
        );
        for (k, v) in vars {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        let v = json_of(&o);
        assert_eq!(
            v["shard"],
            serde_json::json!({"index": 1, "count": 2}),
            "{name}"
        );
        assert_eq!(v["executions"], 1000, "{name}");
        assert!(out
            .join("dirty-cow--v4.8--x86.shard-1-of-2.state.json")
            .exists());
    }
}

#[test]
fn a_livelock_trace_replays() {
    // Budget: 1,000 PCT executions of dirty-cow on v4.9, seed 0, with a step limit of 30
    // scheduling decisions, which every execution exceeds: a livelock by definition.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t");
    let o = run(
        &[
            "check",
            "dirty-cow",
            "--era",
            "v4.9",
            "--steps-max",
            "30",
            "--budget",
            "1000",
            "-q",
            "--json",
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    let v = json_of(&o);
    assert_eq!(v["violations"][0]["kind"], "livelock", "{v}");
    let trace = v["violations"][0]["trace"].as_str().unwrap();
    let o = run(&["replay", trace], dir.path());
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("reproduced: livelock"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn run_writes_a_trace_of_one_execution_clean_or_not() {
    // One execution each: dirty-cow on v4.9 from random seed 3 (clean), and on v4.8 the
    // schedule of a check's trace (2,000 PCT executions, seed 0), given back to `run`.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t");
    let o = run(
        &[
            "run",
            "dirty-cow",
            "--era",
            "v4.9",
            "--seed",
            "3",
            "--json",
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let v = json_of(&o);
    assert!(v["violations"].as_array().unwrap().is_empty());
    let clean = v["trace"].as_str().unwrap().to_string();
    let t = read_json(Path::new(&clean));
    assert_eq!(t["violation"]["kind"], "none");
    assert!(t["events"].as_array().unwrap().len() > 5);
    let o = run(&["replay", &clean], dir.path());
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("reproduced: no violation"),
        "{}",
        text(&o.stdout)
    );
    // The same seed, the same execution.
    let again = run(
        &[
            "run",
            "dirty-cow",
            "--era",
            "v4.9",
            "--seed",
            "3",
            "--json",
            "--out",
            dir.path().join("u").to_str().unwrap(),
        ],
        dir.path(),
    );
    let t2 = read_json(Path::new(json_of(&again)["trace"].as_str().unwrap()));
    assert_eq!(t["events"], t2["events"]);
    assert_eq!(t["schedule"], t2["schedule"]);

    // A violating schedule, from a trace.
    let o = run(&dirty_cow(&out, &["--json"]), dir.path());
    let found = json_of(&o)["violations"][0]["trace"]
        .as_str()
        .unwrap()
        .to_string();
    let o = run(
        &[
            "run",
            "dirty-cow",
            "--era",
            "v4.8",
            "--schedule",
            &found,
            "--json",
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    assert_eq!(json_of(&o)["violations"][0]["kind"], "ro-page-written");
    // A schedule that is not one.
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "zz").unwrap();
    let o = run(
        &[
            "run",
            "dirty-cow",
            "--era",
            "v4.8",
            "--schedule",
            bad.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
}

#[test]
fn minimize_writes_a_smaller_trace_beside_the_original() {
    // dirty-cow on v4.8 from 2,000 PCT executions (seed 0); the search and the proof get
    // their default 20,000 executions each.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t");
    let o = run(&dirty_cow(&out, &["--json"]), dir.path());
    let trace = json_of(&o)["violations"][0]["trace"]
        .as_str()
        .unwrap()
        .to_string();
    let o = run(&["minimize", &trace, "--json"], dir.path());
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let v = json_of(&o);
    for k in [
        "preemptions_before",
        "preemptions_after",
        "steps_before",
        "steps_after",
    ] {
        assert!(v[k].is_u64(), "{k}: {v}");
    }
    assert!(v["preemptions_after"].as_u64() <= v["preemptions_before"].as_u64());
    assert_eq!(v["proven_minimal"], true, "{v}");
    let min = v["trace"].as_str().unwrap();
    assert!(
        min.ends_with(".min.json") && Path::new(min).exists(),
        "{min}"
    );
    let o = run(&["replay", min], dir.path());
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    // A trace without a violation has nothing to keep.
    let o = run(
        &[
            "run",
            "dirty-cow",
            "--era",
            "v4.9",
            "--json",
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    let clean = json_of(&o)["trace"].as_str().unwrap().to_string();
    let o = run(&["minimize", &clean], dir.path());
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
}
