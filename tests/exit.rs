//! `exit` is a thread's exit and the mm goes with its last thread (`mmput` ->
//! `exit_mmap`); `exit-group` takes every thread of the process with it. Budget: 300
//! PCT (depth 3) executions, seed 7, per scenario, era (v6.2, v6.12) and architecture.
#![cfg(all(not(loom), not(cowbreak_stress)))]

use cowbreak::explore::{explore_shuttle, ShuttleConfig, Strategy};
use cowbreak::mm::{Arch, Era};
use cowbreak::trace::Event;

/// Every event of 300 executions of `text` on `era`, asserting none violates anything.
fn events(text: &str, era: Era, arch: Arch) -> Vec<Event> {
    let sc = cowbreak::scenario::parse("exit.scn", text).unwrap();
    let config = sc.kernel_config(sc.policy(era, arch), arch);
    let cfg = ShuttleConfig {
        strategy: Strategy::Pct { depth: 3 },
        iterations: 300,
        seed: 7,
        steps_max: 20_000,
        stop_after_first: false,
    };
    let ((), events) = cowbreak::trace::capture(|| {
        let outcome = explore_shuttle(&cfg, sc.execution(config.clone()));
        assert!(
            outcome.violations.is_empty(),
            "{era} {arch}: {:?}",
            outcome.violations
        );
        assert_eq!(outcome.executions, 300);
    });
    assert!(!events.is_empty());
    events
}

fn func<'a>(events: &'a [Event], name: &'a str) -> impl Iterator<Item = &'a Event> + 'a {
    events
        .iter()
        .filter(move |e| e.func.as_deref() == Some(name))
}

/// The child's second thread keeps the address space: its read after its sibling's
/// `exit` finds the page, and nothing tears the child's mm down.
#[test]
fn a_thread_exit_leaves_the_mm_to_its_siblings() {
    const TEXT: &str = "scenario thread-exit
map buf private-anon pages=1 prot=rw write=1

thread parent:
    fork child
    write buf 2
thread one in child:
    exit
    signal gone
thread two in child:
    wait gone
    read buf
    write buf 3
";
    // v6.2 takes every fault under the mmap lock, v6.12 under the per-VMA lock.
    for (era, arch) in [Era::V6_2, Era::V6_12]
        .into_iter()
        .flat_map(|e| [(e, Arch::X86), (e, Arch::Arm64)])
    {
        let ev = events(TEXT, era, arch);
        let ops: Vec<_> = ev
            .iter()
            .filter(|e| {
                matches!(e.func.as_deref(), Some("read" | "write")) && e.fields.contains_key("line")
            })
            .collect();
        assert!(
            ops.len() >= 300 * 3,
            "{era} {arch}: {} operations",
            ops.len()
        );
        let failed: Vec<_> = ops
            .iter()
            .filter(|e| e.fields.get("result").is_some_and(|r| r.contains("Err")))
            .collect();
        assert!(failed.is_empty(), "{era} {arch}: {failed:?}");
        assert_eq!(
            func(&ev, "exit_mmap").count(),
            0,
            "{era} {arch}: an mm went away"
        );
        assert_eq!(func(&ev, "mmput").count(), 300, "{era} {arch}");
    }
}

/// `exit-group` in one thread: its sibling, waiting for an event that comes only later,
/// is killed in its wait and never reads; its parked sibling leaves too; the child's mm
/// goes exactly once per execution, and nothing deadlocks.
#[test]
fn exit_group_takes_every_thread_and_the_mm() {
    const TEXT: &str = "scenario exit-group
map buf private-anon pages=1 prot=rw write=1

thread parent:
    fork child
    wait gone
    signal go
    write buf 2
thread one in child:
    exit-group
    signal gone
thread two in child:
    wait go
    read buf
thread three in child:
    write buf 4
";
    // v6.2 takes every fault under the mmap lock, v6.12 under the per-VMA lock.
    for (era, arch) in [Era::V6_2, Era::V6_12]
        .into_iter()
        .flat_map(|e| [(e, Arch::X86), (e, Arch::Arm64)])
    {
        let ev = events(TEXT, era, arch);
        assert_eq!(func(&ev, "exit_mmap").count(), 300, "{era} {arch}");
        assert_eq!(func(&ev, "mmput").count(), 3 * 300, "{era} {arch}");
        let late_reads = ev
            .iter()
            .filter(|e| {
                e.func.as_deref() == Some("read") && e.fields.get("line").is_some_and(|l| l == "14")
            })
            .count();
        assert_eq!(
            late_reads, 0,
            "{era} {arch}: thread two read after the group exit"
        );
        // (Line numbers are as the events carry them: thread two's wait is line 13.)
        assert!(func(&ev, "wait").any(|e| e.fields.get("line").is_some_and(|l| l == "13")));
    }
}

#[test]
fn only_signal_may_follow_exit() {
    let bad = "scenario s
map buf private-anon pages=1 prot=rw write=1
thread a:
    exit
    read buf
";
    let e = cowbreak::scenario::parse("s.scn", bad).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("s.scn:5:5"), "{msg}");
    assert!(msg.contains("only `signal` after `exit` (line 4)"), "{msg}");
    let ok = "scenario s
map buf private-anon pages=1 prot=rw write=1
thread a:
    exit-group
    signal gone
thread b:
    wait gone
";
    cowbreak::scenario::parse("s.scn", ok).unwrap();
}
