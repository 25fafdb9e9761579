//! check -> trace file -> replay, through the API: the replay reproduces the recorded
//! violation with the same events, and the same seed gives the same trace.
#![cfg(all(not(loom), not(cowbreak_stress)))]

use cowbreak::explore::campaign::{self, CheckRequest};
use cowbreak::explore::{ShuttleConfig, Strategy};
use cowbreak::mm::{Arch, Era, ViolationKind};
use cowbreak::scenario::library;
use cowbreak::trace::TraceFile;

fn request(name: &str, era: Era, seed: u64) -> CheckRequest {
    CheckRequest {
        scenario: library::find(name).expect("built-in"),
        era,
        arch: Arch::X86,
        switches: Vec::new(),
        shuttle: ShuttleConfig {
            strategy: Strategy::Pct { depth: 3 },
            iterations: 2000,
            seed,
            steps_max: 20_000,
            stop_after_first: false,
        },
    }
}

#[test]
fn a_shuttle_found_violation_replays_from_its_trace_file() {
    let report = campaign::check(&request("dirty-cow", Era::V4_8, 0)).unwrap();
    let found = report
        .violations
        .iter()
        .find(|r| r.found.violation.kind == ViolationKind::RoPageWritten)
        .expect("found");
    assert!(!found.trace.events.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.json");
    found.trace.write(&path).unwrap();
    let read = TraceFile::read(&path).unwrap();
    assert_eq!(read, found.trace);
    let replay = campaign::replay(&read, "t.json").unwrap();
    assert!(replay.exact(), "{:?}", replay.divergence);
    assert_eq!(replay.events, found.trace.events);
    // The trace attributes every event to a scenario thread (0, 1) or to `main` (setup
    // and accounting, on the CPU after the threads').
    let threads: std::collections::BTreeSet<_> = replay.events.iter().map(|e| e.thread).collect();
    assert_eq!(
        threads.into_iter().collect::<Vec<_>>(),
        vec![Some(0), Some(1), Some(2)]
    );
    let names: Vec<_> = read
        .threads
        .iter()
        .map(|t| (t.id, t.name.as_str()))
        .collect();
    assert_eq!(names, vec![(2, "main"), (0, "writer"), (1, "madviser")]);
}

#[test]
fn a_sequential_violation_replays_and_a_wrong_schedule_diverges() {
    let report = campaign::check(&request("cve-2020-29374", Era::V4_9, 1)).unwrap();
    let trace = &report.violations[0].trace;
    assert!(campaign::replay(trace, "t").unwrap().exact());
    // Another scenario's schedule under this scenario: shuttle refuses it or the events
    // differ; never a silent success.
    let other = campaign::check(&request("dirty-cow", Era::V4_8, 0)).unwrap();
    let mut mixed = trace.clone();
    mixed.schedule = other.violations[0].trace.schedule.clone();
    let r = campaign::replay(&mixed, "mixed").unwrap();
    assert!(!r.exact());
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    let a = campaign::check(&request("fast-gup-vs-fork", Era::V5_9, 4)).unwrap();
    let b = campaign::check(&request("fast-gup-vs-fork", Era::V5_9, 4)).unwrap();
    assert_eq!(a.executions, b.executions);
    let traces = |r: &campaign::CheckReport| {
        r.violations
            .iter()
            .map(|v| v.trace.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(traces(&a), traces(&b));
    assert!(!a.violations.is_empty());
}

#[test]
fn the_thread_count_changes_nothing_in_a_campaign() {
    // Budget: 2,000 PCT executions, seed 9, run once on 2 threads and once on 1.
    let req = request("fast-gup-vs-fork", Era::V5_9, 9);
    let a = campaign::check_sharded(&req, 2).unwrap();
    let b = campaign::check_sharded(&req, 1).unwrap();
    assert_eq!(a.executions, 2000);
    let sig = |r: &campaign::CheckReport| {
        r.violations
            .iter()
            .map(|v| (v.found.first_at_execution, v.trace.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(sig(&a), sig(&b));
    assert!(a
        .violations
        .iter()
        .any(|r| r.found.violation.kind == ViolationKind::PinCoherence));
    for r in &a.violations {
        assert!(campaign::replay(&r.trace, "sharded").unwrap().exact());
    }
}

#[test]
fn chunk_results_merge_to_the_same_campaign_in_any_order() {
    // Budget: 4 chunks of 1,000 PCT executions of fast-gup-vs-fork on v5.9, seed 3;
    // folded in forward and reverse order, and as two shards joined with `merge`.
    use std::sync::Arc;
    let mut req = request("fast-gup-vs-fork", Era::V5_9, 3);
    req.shuttle.iterations = 4000;
    let mut results = Vec::new();
    let control = Arc::new(cowbreak::explore::Control::default());
    campaign::run_chunks(&req, &[0, 1, 2, 3], 2, &control, |r| results.push(r), || {}).unwrap();
    results.sort_by_key(|r| r.chunk);
    assert_eq!(results.len(), 4);
    let fold = |order: &[usize]| {
        let mut c = campaign::Campaign::default();
        for &i in order {
            c.add(results[i].clone());
        }
        c
    };
    let sig = |c: &campaign::Campaign| {
        c.violations()
            .iter()
            .map(|f| {
                (
                    f.first_at_execution,
                    f.shortest_at_execution,
                    f.schedule.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let forward = fold(&[0, 1, 2, 3]);
    let backward = fold(&[3, 2, 1, 0]);
    let mut sharded = fold(&[0, 2]);
    sharded.merge(fold(&[1, 3]));
    assert!(!forward.found.is_empty());
    assert_eq!(sig(&forward), sig(&backward));
    assert_eq!(sig(&forward), sig(&sharded));
    assert_eq!(forward.executions(), 4000);
    assert_eq!(sharded.executions(), 4000);
    assert!(forward.finished(&req, campaign::Shard::ALL));
    assert!(!fold(&[0, 1, 3]).finished(&req, campaign::Shard::ALL));
    // What a state file keeps reads back as the same campaign.
    let back = campaign::Campaign::from_json(&forward.to_json()).unwrap();
    assert_eq!(sig(&back), sig(&forward));
    assert_eq!(back.done, forward.done);
}

/// The switches a saved exploration read, as the campaign and matrix state files and the
/// loom runner's report write them: names back to the same bits, a missing list as
/// every switch (a file from before the list), and a name this build does not know, or
/// a name that is not a string, as an error.
#[test]
fn switches_read_round_trip_through_their_names() {
    use cowbreak::mm::{SwitchReads, SWITCHES};
    use serde_json::json;
    let bits = 0b1011 | 1 << (SWITCHES.len() - 1);
    let names = SwitchReads::names(bits);
    assert_eq!(names.len(), 4);
    let v = json!({ "switches_read": names });
    assert_eq!(campaign::switches_read_from_json(&v), Ok(bits));
    assert_eq!(
        campaign::switches_read_from_json(&json!({ "switches_read": [] })),
        Ok(0)
    );
    assert_eq!(campaign::switches_read_from_json(&json!({})), Ok(u64::MAX));
    for bad in [json!(["no_such_switch"]), json!([3])] {
        assert!(campaign::switches_read_from_json(&json!({ "switches_read": bad })).is_err());
    }
}
