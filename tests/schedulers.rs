//! What the shuttle schedulers see: a scenario's setup costs no scheduling points, a
//! schedule lists decisions only, and POS (partial order sampling over the objects the
//! model's steps touch) is deterministic for a seed and its schedules replay.
#![cfg(all(not(loom), not(cowbreak_stress)))]

use cowbreak::explore::{explore_shuttle, replay_shuttle, Outcome, ShuttleConfig, Strategy};
use cowbreak::mm::{Arch, Era, ViolationKind};
use cowbreak::scenario::{library, parse, Scenario};

fn run(sc: &Scenario, era: Era, strategy: Strategy, iterations: usize, seed: u64) -> Outcome {
    let config = sc.kernel_config(sc.policy(era, Arch::X86), Arch::X86);
    let cfg = ShuttleConfig {
        strategy,
        iterations,
        seed,
        steps_max: 20_000,
        stop_after_first: false,
    };
    explore_shuttle(&cfg, sc.execution(config))
}

/// The same two threads after a setup that writes 1 page and after one that writes 48:
/// the setup runs before any thread exists, so its atomic accesses (dozens per page
/// fault) are not scheduling points, and the locks it takes (a handful per fault) are
/// forced steps, not decisions. Both scenarios make exactly the same decisions. Budget:
/// 50 random executions, seed 3, each (the same seed gives the same schedules when the
/// decisions are the same).
#[test]
fn setup_costs_no_decisions_and_no_atomic_steps() {
    let scenario = |pages: usize| {
        let text = format!(
            "scenario setup-{pages}
map buf private-anon pages={pages} prot=rw write=1

thread a:
    write buf 2
thread b:
    read buf
"
        );
        parse(&format!("setup-{pages}.scn"), &text).unwrap()
    };
    let small = run(&scenario(1), Era::V6_2, Strategy::Random, 50, 3);
    let big = run(&scenario(48), Era::V6_2, Strategy::Random, 50, 3);
    assert_eq!(small.executions, 50);
    assert!(small.decisions > 0);
    assert_eq!(big.decisions, small.decisions);
    // What the 47 more faults still cost: their locks' forced steps only.
    let per_page = (big.steps - small.steps) as f64 / 50.0 / 47.0;
    assert!(per_page < 10.0, "{per_page} steps per page of setup");
}

/// A step with one runnable thread is not a decision: a schedule records the decisions
/// only, and a scenario whose threads never run side by side has none to make. Budget:
/// 20 random executions, seed 0.
#[test]
fn forced_steps_are_not_decisions() {
    let sc = parse(
        "sequential.scn",
        "scenario sequential
map buf private-anon pages=1 prot=rw write=1

thread a:
    write buf 2
    signal done
thread b:
    wait done
    read buf
",
    )
    .unwrap();
    let out = run(&sc, Era::V6_2, Strategy::Random, 20, 0);
    assert!(out.steps > 0);
    // Each decision is a point where two or more threads could run: `b` runnable until
    // it blocks in `wait`, then `a` alone. So decisions are few and steps are many.
    assert!(
        out.decisions * 2 < out.steps,
        "{} decisions of {} steps",
        out.decisions,
        out.steps
    );
}

/// POS finds the fork race of 57efa1fe5957 (v5.9), the same execution for the same
/// seed, and its schedule replays to the same violation. Budget: 300 executions, seeds
/// 0 and 1.
#[test]
fn pos_is_deterministic_and_its_schedules_replay() {
    let sc = library::find("fast-gup-vs-fork").unwrap();
    let config = sc.kernel_config(sc.policy(Era::V5_9, Arch::X86), Arch::X86);
    let first = run(&sc, Era::V5_9, Strategy::Pos, 300, 0);
    let again = run(&sc, Era::V5_9, Strategy::Pos, 300, 0);
    let found = |o: &Outcome| {
        o.violations
            .iter()
            .find(|f| f.violation.kind == ViolationKind::PinCoherence)
            .map(|f| (f.first_at_execution, f.schedule.clone()))
            .expect("POS finds the fork race")
    };
    assert_eq!(found(&first), found(&again));
    assert_eq!(first.steps, again.steps);
    let other = run(&sc, Era::V5_9, Strategy::Pos, 300, 1);
    assert_ne!(first.steps, other.steps, "another seed, other schedules");
    let (_, schedule) = found(&first);
    let replayed = replay_shuttle(
        &schedule.expect("a shuttle schedule"),
        20_000,
        sc.execution(config),
    )
    .unwrap();
    assert!(replayed
        .violations
        .iter()
        .any(|v| v.kind == ViolationKind::PinCoherence));
}

/// PCT (our own, `crates/explore/src/pct.rs`) ends a campaign whose first execution made
/// no decision: a scenario with one thread has one schedule, and the outcome says so.
/// With two threads it runs its whole budget. Budget: 500 PCT executions each, seed 0.
#[test]
fn pct_stops_where_there_is_one_schedule() {
    let one = library::find("ro-pin-shared").unwrap();
    assert_eq!(one.threads.len(), 1);
    let o = run(&one, Era::V6_2, Strategy::Pct { depth: 3 }, 500, 0);
    assert_eq!((o.executions, o.decisions), (1, 0));
    assert!(o.single_schedule);
    let two = library::find("dirty-cow").unwrap();
    let o = run(&two, Era::V6_2, Strategy::Pct { depth: 3 }, 500, 0);
    assert_eq!(o.executions, 500);
    assert!(!o.single_schedule);
}
