//! `minimize` on every built-in race: the violation stays (kind and place), neither
//! preemptions nor steps grow, the result replays exactly, and on
//! dirty-cow, huge-dirty-cow and fast-gup-vs-fork the bounded search below the result
//! proves it minimal. Budget: each trace comes from 2,000 PCT (depth 3) executions,
//! seed 0, on the scenario's newest buggy era on x86; the search and the proof get
//! 20,000 executions each.
#![cfg(all(not(loom), not(cowbreak_stress)))]

use cowbreak::explore::campaign::{self, CheckRequest};
use cowbreak::mm::{Arch, Era};
use cowbreak::scenario::library;

#[test]
fn minimize_keeps_the_violation_and_reaches_the_proven_minimum() {
    let mut seen = 0;
    for sc in library::all().unwrap() {
        let Some(era) = Era::ALL
            .into_iter()
            .rev()
            .find(|&e| !sc.expected_on_sc(e, Arch::X86).is_empty())
        else {
            continue;
        };
        let report =
            campaign::check(&CheckRequest::new(sc.clone(), era, Arch::X86, 2_000)).unwrap();
        let Some(found) = report.violations.first() else {
            panic!(
                "{} on {era}: the history says it breaks, the campaign found nothing",
                sc.name
            );
        };
        let m = campaign::minimize_trace(&found.trace, &sc.name, 20_000, false).unwrap();
        let (b, a) = (&m.search.before, &m.search.after);
        assert_eq!(
            m.trace.violation.kind, found.trace.violation.kind,
            "{}",
            sc.name
        );
        assert_eq!(
            m.trace.violation.at, found.trace.violation.at,
            "{}",
            sc.name
        );
        assert!(
            a.preemptions <= b.preemptions,
            "{}: {} -> {}",
            sc.name,
            b.preemptions,
            a.preemptions
        );
        assert!(
            a.tasks.len() <= b.tasks.len(),
            "{}: steps grew {} -> {}",
            sc.name,
            b.tasks.len(),
            a.tasks.len()
        );
        assert_eq!(
            a.tasks.len(),
            cowbreak::explore::minimize::tasks_of(&m.trace.schedule.data)
                .map(|t| t.len())
                .unwrap_or(0),
            "{}: the written trace is not the schedule searched",
            sc.name
        );
        let again = campaign::replay(&m.trace, &sc.name).unwrap();
        assert!(
            again.exact(),
            "{}: the minimized trace does not replay exactly",
            sc.name
        );
        if ["dirty-cow", "huge-dirty-cow", "fast-gup-vs-fork"].contains(&sc.name.as_str()) {
            assert_eq!(
                m.proven,
                Some(true),
                "{}: not proven minimal at {} preemptions",
                sc.name,
                a.preemptions
            );
            assert!(
                a.preemptions < b.preemptions || b.preemptions <= 1,
                "{}: nothing to shrink?",
                sc.name
            );
        }
        seen += 1;
    }
    assert!(seen >= 10, "only {seen} race built-ins");
}

/// CVE-2020-29374 breaks with no preemption at all. Its sequential schedule takes more
/// scheduling points than seed 0's (the parent's `wait` blocks instead of finding its
/// event signalled), but those are forced steps, and a schedule lists decisions only:
/// the default search takes the 0-preemption schedule within the original's length.
/// `may_lengthen` searches within that length first, so it never ends longer than the
/// default where the default reached as few preemptions. Budget as above.
#[test]
fn fewer_preemptions_within_the_length_and_may_lengthen_never_costs_steps() {
    let sc = library::find("cve-2020-29374").unwrap();
    let report = campaign::check(&CheckRequest::new(
        sc.clone(),
        Era::V4_4_289,
        Arch::X86,
        2_000,
    ))
    .unwrap();
    let found = &report
        .violations
        .first()
        .expect("4.4.289 on x86 breaks")
        .trace;
    let kept = campaign::minimize_trace(found, &sc.name, 20_000, false).unwrap();
    let (b, a) = (&kept.search.before, &kept.search.after);
    assert!(b.preemptions > 0, "seed 0's trace has nothing to shrink");
    assert_eq!(a.preemptions, 0);
    assert!(a.tasks.len() <= b.tasks.len());
    assert_eq!(kept.proven, Some(true));
    assert_eq!(kept.longer_below, None);
    let taken = campaign::minimize_trace(found, &sc.name, 20_000, true).unwrap();
    assert_eq!(taken.search.after.preemptions, 0);
    assert_eq!(taken.proven, Some(true));
    assert!(
        taken.search.after.tasks.len() <= a.tasks.len(),
        "may_lengthen took {} steps, the default {}",
        taken.search.after.tasks.len(),
        a.tasks.len()
    );
}

/// Dirty COW on v4.8 x86 (seed 0's PCT trace of a 500-execution campaign): a schedule
/// with one preemption breaks it, but only in more decisions than the original's. The
/// default keeps within the length and reports the longer one; `may_lengthen` takes it.
#[test]
fn a_longer_schedule_with_fewer_preemptions_is_reported_or_taken_on_request() {
    let sc = library::find("dirty-cow").unwrap();
    let report =
        campaign::check(&CheckRequest::new(sc.clone(), Era::V4_8, Arch::X86, 500)).unwrap();
    let found = &report.violations.first().expect("v4.8 on x86 breaks").trace;
    let kept = campaign::minimize_trace(found, &sc.name, 20_000, false).unwrap();
    let (b, a) = (&kept.search.before, &kept.search.after);
    assert!(a.tasks.len() <= b.tasks.len());
    assert_eq!(kept.proven, Some(true));
    let (p, n) = kept
        .longer_below
        .expect("fewer preemptions exist in more steps: they must be reported");
    assert!(p < a.preemptions && n > b.tasks.len(), "({p}, {n})");
    let taken = campaign::minimize_trace(found, &sc.name, 20_000, true).unwrap();
    assert_eq!(
        (
            taken.search.after.preemptions,
            taken.search.after.tasks.len()
        ),
        (p, n)
    );
    assert_eq!(taken.longer_below, None);
}
