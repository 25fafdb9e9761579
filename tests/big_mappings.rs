//! A scenario may map as many pages as the modeled address space holds (56 pages from
//! the first mapping's address to TASK_SIZE): the kernel it runs on has page tables (and
//! frames) for all of them in every process, so setup and fork never fail with ENOMEM
//! for want of model resources. Budget: 200 PCT (depth 3) executions, seed 1.
#![cfg(all(not(loom), not(cowbreak_stress)))]

use cowbreak::explore::{explore_shuttle, ShuttleConfig, Strategy};
use cowbreak::mm::{Arch, Era};

const SCENARIO: &str = "scenario big-fork
map buf private-anon pages=56 prot=rw write=1

thread parent:
    fork child
    wait written
    read buf+55
    write buf+20 5
thread kid in child:
    write buf+55 7
    write buf 8
    signal written
";

#[test]
fn a_56_page_mapping_maps_and_forks_without_enomem() {
    let sc = cowbreak::scenario::parse("big-fork.scn", SCENARIO).unwrap();
    for arch in [Arch::X86, Arch::Arm64] {
        let config = sc.kernel_config(sc.policy(Era::V6_2, arch), arch);
        let cfg = ShuttleConfig {
            strategy: Strategy::Pct { depth: 3 },
            iterations: 200,
            seed: 1,
            steps_max: 200_000,
            stop_after_first: false,
        };
        let ((), events) = cowbreak::trace::capture(|| {
            let outcome = explore_shuttle(&cfg, sc.execution(config.clone()));
            assert!(
                outcome.violations.is_empty(),
                "{arch}: {:?}",
                outcome.violations
            );
            assert_eq!(outcome.executions, 200);
        });
        // Every operation's result is traced: none may be an error.
        let failed: Vec<_> = events
            .iter()
            .filter(|e| e.fields.get("result").is_some_and(|r| r.contains("Err")))
            .collect();
        assert!(!events.is_empty());
        assert!(failed.is_empty(), "{arch}: {failed:?}");
    }
}
