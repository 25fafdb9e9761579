//! `minimize` on every built-in race: the violation stays (kind and place), preemptions
//! never grow (steps grow only to save a preemption), the result replays exactly, and on
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
        let m = campaign::minimize_trace(&found.trace, &sc.name, 20_000).unwrap();
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
        if a.preemptions == b.preemptions {
            assert!(
                a.tasks.len() <= b.tasks.len(),
                "{}: steps grew without saving a preemption",
                sc.name
            );
        }
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
