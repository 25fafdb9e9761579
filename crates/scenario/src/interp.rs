//! The interpreter: runs a [`Scenario`] against the model under whichever backend
//! `cowbreak-sync` was built for, one model thread per scenario thread.

use cowbreak_mm::{Arch, Era, Kernel, KernelConfig, Pin, Policy, Task, Violation, PAGE_SIZE};
use cowbreak_sync::{thread, Arc, Event};

use crate::ast::{Init, Op, Scenario, ThreadDecl};

/// loom runs at most 5 threads, the main one included.
pub const LOOM_THREADS_MAX: usize = 4;

impl Scenario {
    /// The preset of `era` on `arch` with the scenario's `switch` lines applied.
    pub fn policy(&self, era: Era, arch: Arch) -> Policy {
        let mut policy = Policy::preset(era, arch);
        for (name, on) in &self.switches {
            policy
                .set(name, *on)
                .expect("switch names are checked by the parser");
        }
        policy
    }

    /// A kernel sized for this scenario: every process, thread, mapping and file fits,
    /// with room for the copies COW makes.
    pub fn kernel_config(&self, policy: Policy, arch: Arch) -> KernelConfig {
        let file_pages: usize = self.files.iter().map(|f| f.pages).sum();
        let map_pages: u64 = self.maps.iter().map(|m| m.pages).sum();
        let procs = self.processes.len();
        let table_spans: usize = self
            .maps
            .iter()
            .map(|m| {
                use cowbreak_mm::pgtable::{PAGE_SIZE, PMD_SIZE};
                let last = m.addr + m.pages.max(1) * PAGE_SIZE - 1;
                (last / PMD_SIZE - m.addr / PMD_SIZE + 1) as usize
            })
            .sum();
        KernelConfig {
            policy,
            arch,
            nr_frames: 2 + file_pages + (map_pages as usize) * (procs + 2) + 2,
            // Every process may need a PTE table for each PMD-sized stretch a mapping
            // touches, and one spare.
            nr_tables: procs * (table_spans + 1),
            nr_mms: procs,
            // One CPU per thread, and one more for setup.
            nr_cpus: self.setup_cpu() + 1,
            files: self.files.iter().map(|f| f.pages).collect(),
            gup_retries_max: 16,
        }
    }

    /// The CPU setup runs on: the one after the threads' CPUs.
    pub fn setup_cpu(&self) -> usize {
        self.threads.len()
    }

    /// Whether the scenario fits `backend`'s limits; the error says why not.
    pub fn check_loom_limits(&self) -> Result<(), String> {
        if self.threads.len() > LOOM_THREADS_MAX {
            return Err(format!(
                "scenario `{}` has {} threads; loom runs at most {LOOM_THREADS_MAX} besides the main thread",
                self.name,
                self.threads.len()
            ));
        }
        Ok(())
    }

    /// One execution of the scenario on a fresh kernel built from `config`: set up the
    /// mappings in the initial process on the setup CPU, run every thread, join, account, and
    /// return the violations of the kinds the scenario checks.
    pub fn execution(
        &self,
        config: KernelConfig,
    ) -> impl Fn() -> Vec<Violation> + Send + Sync + 'static {
        // The scenario is shared text, not model state: a std Arc, which (unlike loom's)
        // may be made outside the execution.
        let sc = std::sync::Arc::new(self.clone());
        move || run(&sc, &config)
    }
}

fn run(sc: &std::sync::Arc<Scenario>, config: &KernelConfig) -> Vec<Violation> {
    let k = Arc::new(Kernel::new(config));
    setup(sc, &k);
    let ready: Arc<Vec<Event>> = Arc::new(sc.processes.iter().map(|_| Event::new()).collect());
    let points: Arc<Vec<Event>> = Arc::new(sc.points.iter().map(|_| Event::new()).collect());
    let handles: Vec<_> = (0..sc.threads.len())
        .map(|cpu| {
            let (sc, k, ready, points) = (
                std::sync::Arc::clone(sc),
                Arc::clone(&k),
                Arc::clone(&ready),
                Arc::clone(&points),
            );
            thread::spawn(move || {
                run_thread(
                    &sc,
                    &sc.threads[cpu],
                    &Task::new(&k, cpu, sc.threads[cpu].process),
                    &ready,
                    &points,
                )
            })
        })
        .collect();
    for h in handles {
        h.join()
            .expect("a scenario thread panicked: a bug in cowbreak");
    }
    k.check_accounting();
    let mut v = k.violations();
    if !sc.check.is_empty() {
        v.retain(|v| sc.check.contains(&v.kind));
    }
    v
}

/// `map` lines: mmap in the initial process, then fault pages in as asked, on a CPU of
/// its own (so that a trace tells setup from the scenario's threads).
fn setup(sc: &Scenario, k: &Kernel) {
    let task = Task::new(k, sc.setup_cpu(), 0);
    for m in &sc.maps {
        let mut mapped = task.mmap(m.addr, m.pages, m.kind, m.prot);
        if m.thp && mapped.is_ok() {
            mapped = k
                .madvise_hugepage(0, m.addr, m.pages * PAGE_SIZE)
                .map(|()| m.addr);
        }
        tracing::trace!(target: "cowbreak::scenario", func = "setup", map = m.name.as_str(), addr = m.addr, result = ?mapped);
        for page in 0..m.pages {
            let addr = m.addr + page * PAGE_SIZE;
            let r = match m.init {
                Init::Untouched => continue,
                Init::Read => task.read(addr).map(|_| ()),
                Init::Written(v) => task.write(addr, v),
            };
            tracing::trace!(target: "cowbreak::scenario", func = "setup", map = m.name.as_str(), addr, result = ?r);
        }
    }
}

fn run_thread(sc: &Scenario, t: &ThreadDecl, task: &Task<'_>, ready: &[Event], points: &[Event]) {
    if t.process != 0 {
        // A forked process's threads start once the fork has returned.
        ready[t.process].wait();
    }
    let mut pins: Vec<Option<Pin>> = vec![None; t.pins.len()];
    for step in &t.steps {
        let result: Result<(), cowbreak_mm::Errno> = match step.op {
            Op::Read(loc) => task.read(sc.addr(loc)).map(|_| ()),
            Op::Write(loc, v) => task.write(sc.addr(loc), v),
            Op::Fork(child) => {
                let r = task.fork(child);
                ready[child].signal();
                r
            }
            Op::Exit => task.exit(),
            Op::Munmap(loc, pages) => task.munmap(sc.addr(loc), pages),
            Op::MadviseDontneed(loc, pages) => task.madvise_dontneed(sc.addr(loc), pages),
            Op::Mprotect(loc, pages, prot) => task.mprotect(sc.addr(loc), pages, prot),
            Op::ProcMemWrite(loc, v) => task.proc_mem_write(sc.addr(loc), v),
            Op::ProcMemRead(loc) => task.proc_mem_read(sc.addr(loc)).map(|_| ()),
            Op::Migrate(loc) => task.migrate(sc.addr(loc)),
            Op::KsmMerge(loc) => task.ksm_merge(sc.addr(loc)),
            Op::Vmsplice(loc, slot) => task.vmsplice(sc.addr(loc)).map(|p| pins[slot] = Some(p)),
            Op::Pin(loc, slot, mode) => task.pin(sc.addr(loc), mode).map(|p| pins[slot] = Some(p)),
            Op::Unpin(slot) => {
                if let Some(p) = pins[slot].take() {
                    task.unpin(p);
                }
                Ok(())
            }
            Op::ReadPin(slot) => {
                if let Some(p) = &pins[slot] {
                    task.read_pinned(p);
                }
                Ok(())
            }
            Op::Signal(p) => {
                points[p].signal();
                Ok(())
            }
            Op::Wait(p) => {
                // Said before blocking, so that a deadlock's trace shows who waits where.
                tracing::trace!(target: "cowbreak::scenario", cpu = task.cpu, func = "wait", line = step.line, "waits");
                points[p].wait();
                Ok(())
            }
        };
        tracing::trace!(target: "cowbreak::scenario", cpu = task.cpu, func = step.op.keyword(), line = step.line, result = ?result);
    }
}
