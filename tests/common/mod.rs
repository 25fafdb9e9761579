//! Scenarios written in Rust for the model's tests, and the harness that turns one into
//! an execution closure for any backend.

#![allow(dead_code)]

use cowbreak::mm::{
    Arch, Era, Kernel, KernelConfig, MapKind, MmId, PinMode, Policy, Prot, Task, Violation,
};
use cowbreak::sync::{thread, Arc, Event};

/// The address every scenario maps its page at (PMD-aligned, so munmap frees the table).
pub const A: u64 = 0x8000;

/// Ordering points between model threads.
pub struct Points(pub [Event; 4]);

impl Points {
    pub fn signal(&self, i: usize) {
        self.0[i].signal()
    }
    pub fn wait(&self, i: usize) {
        self.0[i].wait()
    }
}

/// A model thread: runs on its own CPU in mm `mm`.
pub type Body = fn(&Task, &Points);

/// A scenario in Rust.
#[derive(Clone)]
pub struct Spec {
    pub era: Era,
    pub config: KernelConfig,
    pub setup: fn(&Task),
    pub threads: Vec<(MmId, Body)>,
}

impl Spec {
    pub fn new(era: Era, setup: fn(&Task), threads: Vec<(MmId, Body)>) -> Spec {
        let mut config = KernelConfig::new(era);
        config.files = vec![1];
        config.nr_cpus = threads.len().max(1);
        Spec {
            era,
            config,
            setup,
            threads,
        }
    }

    /// The same scenario on `arch`: its preset replaces x86's (call before `switch`).
    pub fn on(mut self, arch: Arch) -> Spec {
        self.config.policy = Policy::preset(self.era, arch);
        self.config.arch = arch;
        self
    }

    /// Small pools, for loom.
    pub fn small(mut self) -> Spec {
        self.config.nr_frames = 6;
        self.config.nr_tables = 3;
        self.config.nr_mms = 2;
        self
    }

    pub fn switch(mut self, name: &str, on: bool) -> Spec {
        self.config.policy.set(name, on).unwrap();
        self
    }

    /// One execution: boot, set up on CPU 0, run the threads, join, account.
    pub fn execution(self) -> impl Fn() -> Vec<Violation> + Send + Sync + 'static {
        move || {
            let k = Arc::new(Kernel::new(&self.config));
            (self.setup)(&Task::new(&k, 0, 0));
            let points = Arc::new(Points(std::array::from_fn(|_| Event::new())));
            let handles: Vec<_> = self
                .threads
                .iter()
                .enumerate()
                .map(|(cpu, &(mm, body))| {
                    let (k, points) = (Arc::clone(&k), Arc::clone(&points));
                    thread::spawn(move || body(&Task::new(&k, cpu, mm), &points))
                })
                .collect();
            for h in handles {
                h.join().expect("model thread panicked");
            }
            k.check_accounting();
            k.violations()
        }
    }
}

fn anon_written(t: &Task) {
    t.mmap(A, 1, MapKind::PrivateAnon, Prot::RW).unwrap();
    t.write(A, 1).unwrap();
}

/// Dirty COW (CVE-2016-5195): a /proc/self/mem write to a read-only private file
/// mapping races MADV_DONTNEED of the same page.
pub fn dirty_cow(era: Era) -> Spec {
    fn setup(t: &Task) {
        t.mmap(A, 1, MapKind::PrivateFile(0), Prot::R).unwrap();
    }
    fn writer(t: &Task, _: &Points) {
        t.proc_mem_write(A, 0xbad).unwrap();
    }
    fn madviser(t: &Task, _: &Points) {
        t.madvise_dontneed(A, 1).unwrap();
    }
    Spec::new(era, setup, vec![(0, writer), (0, madviser)])
}

/// CVE-2020-29374: the child vmsplices a page it shares with the parent, unmaps it; the
/// parent writes and (mapcount 1) reuses the page the child's pipe still holds.
pub fn cve_2020_29374(era: Era) -> Spec {
    fn parent(t: &Task, p: &Points) {
        t.fork(1).unwrap();
        p.signal(0);
        p.wait(1);
        t.write(A, 2).unwrap();
        p.signal(2);
    }
    fn child(t: &Task, p: &Points) {
        p.wait(0);
        let pin = t.vmsplice(A).unwrap();
        t.munmap(A, 1).unwrap();
        p.signal(1);
        p.wait(2);
        let _ = t.read_pinned(&pin);
        t.unpin(pin);
    }
    Spec::new(era, anon_written, vec![(0, parent), (1, child)])
}

/// The RDMA case: a R/W longterm pin, then fork, then the parent writes.
pub fn rw_pin_then_fork(era: Era) -> Spec {
    fn parent(t: &Task, _: &Points) {
        let pin = t
            .pin(
                A,
                PinMode {
                    write: true,
                    longterm: true,
                    fast: false,
                },
            )
            .unwrap();
        t.fork(1).unwrap();
        t.write(A, 2).unwrap();
        let _ = t.read_pinned(&pin);
        t.unpin(pin);
    }
    Spec::new(era, anon_written, vec![(0, parent)])
}

/// A R/O pin (slow or fast) of an anon page shared with a child, then the parent writes.
pub fn ro_pin_shared(era: Era, fast: bool) -> Spec {
    fn body(t: &Task, fast: bool) {
        t.fork(1).unwrap();
        let pin = t
            .pin(
                A,
                PinMode {
                    write: false,
                    longterm: true,
                    fast,
                },
            )
            .unwrap();
        t.write(A, 2).unwrap();
        let _ = t.read_pinned(&pin);
        t.unpin(pin);
    }
    fn slow(t: &Task, _: &Points) {
        body(t, false)
    }
    fn fast_(t: &Task, _: &Points) {
        body(t, true)
    }
    Spec::new(
        era,
        anon_written,
        vec![(0, if fast { fast_ } else { slow })],
    )
}

/// Fast GUP walking the page tables while another thread unmaps the range and frees
/// the PTE table.
pub fn fast_gup_vs_munmap(era: Era) -> Spec {
    fn pinner(t: &Task, _: &Points) {
        if let Ok(pin) = t.pin(
            A,
            PinMode {
                write: false,
                longterm: false,
                fast: true,
            },
        ) {
            t.unpin(pin);
        }
    }
    fn unmapper(t: &Task, _: &Points) {
        t.munmap(A, 1).unwrap();
    }
    Spec::new(era, anon_written, vec![(0, pinner), (0, unmapper)])
}
