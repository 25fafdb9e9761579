//! What the shuttle schedulers see: a scenario's setup costs no scheduling points, a
//! schedule lists decisions only, and POS (partial order sampling over the objects the
//! model's steps touch) and SURW (a uniform random walk over the steps on racing
//! objects) are deterministic for a seed and their schedules replay.
#![cfg(all(not(loom), not(cowbreak_stress)))]

use cowbreak::explore::{explore_shuttle, replay_shuttle, Outcome, ShuttleConfig, Strategy};
use cowbreak::mm::{Arch, Era, ViolationKind};
use cowbreak::scenario::{library, parse, Scenario};

/// A campaign's settings: `iterations` executions of `strategy` from `seed`.
fn campaign(strategy: Strategy, iterations: usize, seed: u64) -> ShuttleConfig {
    ShuttleConfig {
        strategy,
        iterations,
        seed,
        steps_max: 20_000,
        stop_after_first: false,
    }
}

fn run(sc: &Scenario, era: Era, strategy: Strategy, iterations: usize, seed: u64) -> Outcome {
    let config = sc.kernel_config(sc.policy(era, Arch::X86), Arch::X86);
    explore_shuttle(&campaign(strategy, iterations, seed), sc.execution(config))
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

/// `strategy` finds the fork race of 57efa1fe5957 (v5.9), the same execution for the
/// same seed, another seed makes other schedules, and the schedule replays to the same
/// violation. Budget: 300 executions, seeds 0 (twice) and 1.
fn deterministic_and_replays(strategy: Strategy) {
    let sc = library::find("fast-gup-vs-fork").unwrap();
    let config = sc.kernel_config(sc.policy(Era::V5_9, Arch::X86), Arch::X86);
    let first = run(&sc, Era::V5_9, strategy, 300, 0);
    let again = run(&sc, Era::V5_9, strategy, 300, 0);
    let found = |o: &Outcome| {
        o.violations
            .iter()
            .find(|f| f.violation.kind == ViolationKind::PinCoherence)
            .map(|f| (f.first_at_execution, f.schedule.clone()))
            .unwrap_or_else(|| panic!("{strategy:?} finds the fork race"))
    };
    assert_eq!(found(&first), found(&again));
    assert_eq!(first.steps, again.steps);
    let other = run(&sc, Era::V5_9, strategy, 300, 1);
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

#[test]
fn pos_is_deterministic_and_its_schedules_replay() {
    deterministic_and_replays(Strategy::Pos);
}

#[test]
fn surw_is_deterministic_and_its_schedules_replay() {
    deterministic_and_replays(Strategy::Surw);
}

/// SURW learns which objects race and samples the orders of their steps, where URW
/// samples the orders of every step: on the fork race of 57efa1fe5957 (v5.9), over
/// seeds 0 to 19, SURW's median execution of the first violation is below half of
/// URW's (a seed that found nothing counts as the budget). Budget: 300 executions per
/// seed and scheduler.
#[test]
fn surw_finds_the_fork_race_sooner_than_urw() {
    let sc = library::find("fast-gup-vs-fork").unwrap();
    let median = |strategy: Strategy| {
        let mut firsts: Vec<u64> = (0..20)
            .map(|seed| {
                let o = run(&sc, Era::V5_9, strategy, 300, seed);
                (o.violations.iter())
                    .find(|f| f.violation.kind == ViolationKind::PinCoherence)
                    .map_or(300, |f| f.first_at_execution)
            })
            .collect();
        firsts.sort_unstable();
        firsts[firsts.len() / 2]
    };
    let (surw, urw) = (median(Strategy::Surw), median(Strategy::Urw));
    assert!(2 * surw < urw, "SURW's median {surw}, URW's {urw}");
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

/// A campaign boots the kernel and runs the setup in its first execution only, and
/// starts every later one from a snapshot of the result (`Scenario::execution`). That
/// changes no exploration: on every built-in, on v4.8, v6.4 (per-VMA locks) and v6.12,
/// PCT (d=3), random, URW, POS and SURW make the same decisions and find the same
/// violations, first at the same execution, with the same schedules, as when every
/// execution boots and sets up afresh (`execution_from(config, false)`). And the
/// snapshot does spare the setup: every scenario that maps something takes fewer
/// scheduling points with it (the setup's locks are forced steps). Budget: 40
/// executions per scheduler, scenario and era, seed 7.
#[test]
fn a_snapshot_of_the_setup_changes_no_exploration() {
    let strategies = [
        Strategy::Pct { depth: 3 },
        Strategy::Random,
        Strategy::Urw,
        Strategy::Pos,
        Strategy::Surw,
    ];
    let mut spared = 0;
    let scenarios = library::all().unwrap();
    for sc in &scenarios {
        for era in [Era::V4_8, Era::V6_4, Era::V6_12] {
            let config = sc.kernel_config(sc.policy(era, Arch::X86), Arch::X86);
            for strategy in strategies {
                let cfg = campaign(strategy, 40, 7);
                let kept = explore_shuttle(&cfg, sc.execution(config.clone()));
                let booted = explore_shuttle(&cfg, sc.execution_from(config.clone(), false));
                let what = format!("{} on {} with {:?}", sc.name, era.name(), strategy);
                assert_eq!(kept.executions, booted.executions, "{what}");
                assert_eq!(kept.decisions, booted.decisions, "{what}");
                let found = |o: &Outcome| {
                    o.violations
                        .iter()
                        .map(|f| {
                            (
                                f.violation.kind,
                                f.violation.at,
                                f.first_at_execution,
                                f.shortest_at_execution,
                                f.schedule.clone(),
                            )
                        })
                        .collect::<Vec<_>>()
                };
                assert_eq!(found(&kept), found(&booted), "{what}");
                assert!(kept.steps <= booted.steps, "{what}");
                if kept.executions > 1 && kept.steps < booted.steps {
                    spared += 1;
                }
            }
        }
    }
    // Every scenario maps something; the single-schedule PCT runs (one execution) have
    // no later execution to spare.
    assert!(
        spared >= scenarios.len() * 3 * 4,
        "the snapshot spared setup steps in {spared} campaigns"
    );
}

/// SURW knows an object across executions by its key: its region (of those the
/// execution names, `Kernel::regions`) and its offset there. A kernel and its copy,
/// which live at other addresses, give each page's refcount, mapcount and flags, and
/// each mm's PMD entry, the same key; different objects get different keys; an address
/// outside every region has none. On `fast-gup-vs-fork` (v5.9, x86), in one shuttle
/// execution.
#[test]
fn an_object_has_the_same_key_in_a_kernel_and_its_copy() {
    use cowbreak::sync::{object_key, set_regions};
    let sc = library::find("fast-gup-vs-fork").unwrap();
    let config = sc.kernel_config(sc.policy(Era::V5_9, Arch::X86), Arch::X86);
    let cfg = campaign(Strategy::Random, 1, 0);
    let keys = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let out = std::sync::Arc::clone(&keys);
    explore_shuttle(&cfg, move || {
        let mut k = sc.boot(&config);
        let copy = k.snapshot();
        let mut all = Vec::new();
        for kernel in [&k, &copy] {
            set_regions(kernel.regions());
            let mut these = Vec::new();
            for pfn in 2..config.nr_frames as u32 {
                let page = kernel.frames.page(pfn);
                for a in [
                    &page.refcount as *const _ as usize,
                    &page.mapcount as *const _ as usize,
                ] {
                    these.push(object_key(a));
                }
                these.push(object_key(&page.flags as *const _ as usize));
            }
            for mm in &kernel.mms {
                these.push(object_key(&mm.pmd[0] as *const _ as usize));
            }
            let outside = 0usize;
            these.push(object_key(&outside as *const usize as usize));
            all.push(these);
        }
        set_regions(Vec::new());
        *out.lock().unwrap() = all;
        Vec::new()
    });
    let keys = keys.lock().unwrap();
    let (kernel, copy) = (&keys[0], &keys[1]);
    assert_eq!(kernel, copy);
    let (outside, objects) = kernel.split_last().unwrap();
    assert_eq!(*outside, None, "a local of the test is in no region");
    let mut distinct: Vec<u64> = objects.iter().map(|k| k.expect("in a region")).collect();
    let n = distinct.len();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), n, "every object its own key");
}

/// What the snapshot copies: on every built-in, era and architecture, a snapshot of a
/// kernel just set up prints (`Debug`: every page, table, mm, lock, CPU,
/// file and the oracle's state) exactly as that kernel does, and as a second kernel
/// booted and set up the same way: setup is a function of the scenario and the config.
/// One execution each.
#[test]
fn a_snapshot_is_the_kernel_setup_leaves() {
    for sc in library::all().unwrap() {
        for (era, arch) in Era::ALL
            .into_iter()
            .flat_map(|e| [(e, Arch::X86), (e, Arch::Arm64)])
        {
            let config = sc.kernel_config(sc.policy(era, arch), arch);
            let cfg = campaign(Strategy::Random, 1, 0);
            let (sc2, what) = (
                sc.clone(),
                format!("{} on {} {}", sc.name, era.name(), arch.name()),
            );
            let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
            let out = std::sync::Arc::clone(&seen);
            explore_shuttle(&cfg, move || {
                let mut k = sc2.boot(&config);
                let copy = k.snapshot();
                let again = sc2.boot(&config);
                *out.lock().unwrap() = Some([k, copy, again].map(|k| format!("{k:?}")));
                Vec::new()
            });
            let [set_up, copy, again] = seen.lock().unwrap().take().expect("it ran");
            assert!(set_up.contains("refcount"), "{what}: {set_up}");
            assert_eq!(copy, set_up, "{what}");
            assert_eq!(again, set_up, "{what}");
        }
    }
}
