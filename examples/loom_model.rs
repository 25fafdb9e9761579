//! A loom model test of your own over the mm model, written the way loom users write
//! theirs: a `#[test]` under `cfg(loom)` that builds a kernel, runs model threads on it,
//! and lets loom explore every interleaving (and every weak-memory outcome) within a
//! preemption bound.
//!
//! Run (loom's own way; the separate target directory keeps the normal build intact):
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --example loom_model
//! ```
//!
//! The model: a R/W longterm pin taken with GUP-fast races fork, then the parent writes
//! through its mapping and reads through the pin (57efa1fe5957, write_protect_seq).
//! On x86 (TSO) v5.11 is safe at any interleaving; on arm64 loom finds the
//! store-buffering outcome the kernel memory model allows there, and on v5.9 (before
//! write_protect_seq) the race is there on both.

#[cfg(all(loom, test))]
mod tests {
    use cowbreak::explore::{explore_loom, LoomConfig, Outcome};
    use cowbreak::mm::{
        Arch, Era, Kernel, KernelConfig, MapKind, PinMode, Prot, Task, ViolationKind,
    };
    use cowbreak::sync::{thread, Arc, Event};

    const A: u64 = 0x8000;

    fn pin_fast_vs_fork(era: Era, arch: Arch) -> Outcome {
        let mut config = KernelConfig::for_arch(era, arch);
        config.nr_frames = 6;
        config.nr_tables = 3;
        config.nr_mms = 2;
        config.nr_cpus = 2;
        explore_loom(LoomConfig::new(2), move || {
            let k = Arc::new(Kernel::new(&config));
            let setup = Task::new(&k, 0, 0);
            setup.mmap(A, 1, MapKind::PrivateAnon, Prot::RW).unwrap();
            setup.write(A, 1).unwrap();
            let forked = Arc::new(Event::new());
            let pinner = {
                let (k, forked) = (Arc::clone(&k), Arc::clone(&forked));
                thread::spawn(move || {
                    let t = Task::new(&k, 0, 0);
                    let mode = PinMode {
                        write: true,
                        longterm: true,
                        fast: true,
                    };
                    if let Ok(pin) = t.pin(A, mode) {
                        forked.wait();
                        t.write(A, 2).unwrap();
                        let _ = t.read_pinned(&pin);
                        t.unpin(pin);
                    }
                })
            };
            let forker = {
                let (k, forked) = (Arc::clone(&k), Arc::clone(&forked));
                thread::spawn(move || {
                    Task::new(&k, 1, 0).fork(1).unwrap();
                    forked.signal();
                })
            };
            pinner.join().unwrap();
            forker.join().unwrap();
            k.check_accounting();
            k.violations()
        })
    }

    #[test]
    fn v5_11_is_safe_on_x86() {
        let out = pin_fast_vs_fork(Era::V5_11, Arch::X86);
        assert!(out.violations.is_empty(), "{:?}", out.violations);
        assert!(out.executions > 1);
    }

    #[test]
    fn v5_11_breaks_on_arm64_under_weak_memory() {
        let out = pin_fast_vs_fork(Era::V5_11, Arch::Arm64);
        assert_eq!(
            out.kinds(),
            vec![ViolationKind::PinCoherence],
            "{:?}",
            out.violations
        );
    }

    #[test]
    fn v5_9_breaks_on_x86() {
        let out = pin_fast_vs_fork(Era::V5_9, Arch::X86);
        assert_eq!(
            out.kinds(),
            vec![ViolationKind::PinCoherence],
            "{:?}",
            out.violations
        );
    }
}

#[cfg_attr(test, allow(dead_code))]
fn main() {
    eprintln!(
        "loom_model is a loom test: run it with\n  RUSTFLAGS=\"--cfg loom\" CARGO_TARGET_DIR=target/loom cargo test --release --example loom_model"
    );
}
