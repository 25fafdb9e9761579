//! The interpreter: runs a [`Scenario`] against the model under whichever backend
//! `cowbreak-sync` was built for, one model thread per scenario thread.

use cowbreak_mm::{
    Arch, Era, Kernel, KernelConfig, MapKind, Pin, Policy, Task, Violation, PAGE_SIZE,
};
use cowbreak_sync::{thread, Arc, Event, Ghost};

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
        let map_pages = self.pages();
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
        // A collapse of a file range puts a huge page's subpages in the page cache.
        let file_collapses = self
            .threads
            .iter()
            .flat_map(|t| &t.steps)
            .filter(|s| matches!(&s.op, Op::Collapse(l) if self.maps[l.map].kind != MapKind::PrivateAnon))
            .count();
        KernelConfig {
            policy,
            arch,
            nr_frames: 2
                + file_pages
                + (map_pages as usize) * (procs + 2)
                + 2
                + file_collapses * cowbreak_mm::pgtable::PTRS_PER_PTE,
            // Every process may need a PTE table for each PMD-sized stretch a mapping
            // touches, and one spare.
            nr_tables: procs * (table_spans + 1),
            nr_mms: procs,
            threads: (0..procs)
                .map(|p| self.threads.iter().filter(|t| t.process == p).count())
                .collect(),
            // One CPU per thread, and one more for setup.
            nr_cpus: self.setup_cpu() + 1,
            files: self.files.iter().map(|f| f.pages).collect(),
            gup_retries_max: 16,
            page_cache_mutable: file_collapses > 0,
            reads: Default::default(),
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
    ///
    /// The first execution of the closure boots the kernel and runs the setup; it keeps
    /// a [snapshot](Kernel::snapshot) of the result, and every later execution starts
    /// from a snapshot of that instead (where [`cowbreak_sync::SNAPSHOTS`] allows, and
    /// unless a run is being traced, so that a trace always shows the setup). Setup runs
    /// before any model thread exists and depends on nothing but the scenario and the
    /// config, so every execution starts from the same kernel either way.
    pub fn execution(
        &self,
        config: KernelConfig,
    ) -> impl Fn() -> Vec<Violation> + Send + Sync + 'static {
        self.execution_from(config, true)
    }

    /// A kernel booted from `config` with the scenario's setup done (its `map` lines, on
    /// the setup CPU), as every execution starts. Inside an execution of the backend,
    /// before any model thread is spawned: the setup's accesses are no scheduling points.
    pub fn boot(&self, config: &KernelConfig) -> Kernel {
        cowbreak_sync::without_scheduling(|| {
            let k = Kernel::new(config);
            setup(self, &k);
            k
        })
    }

    /// [`Scenario::execution`], booting and setting up afresh in every execution when
    /// `snapshots` is false: what the snapshot is checked against.
    pub fn execution_from(
        &self,
        config: KernelConfig,
        snapshots: bool,
    ) -> impl Fn() -> Vec<Violation> + Send + Sync + 'static {
        // The scenario is shared text, not model state: a std Arc, which (unlike loom's)
        // may be made outside the execution. The kept kernel is not model state either
        // between executions: no execution touches it but to copy it.
        let sc = std::sync::Arc::new(self.clone());
        let kept = std::sync::Arc::new(Ghost::new(None));
        let snapshots = snapshots && cowbreak_sync::SNAPSHOTS;
        move || run(&sc, &config, snapshots.then_some(&*kept))
    }
}

fn run(
    sc: &std::sync::Arc<Scenario>,
    config: &KernelConfig,
    kept: Option<&Ghost<Option<Kernel>>>,
) -> Vec<Violation> {
    // Building the kernel and the setup run before any model thread exists: nothing can
    // be interleaved with them, so their accesses are not scheduling points.
    let boot = || sc.boot(config);
    // A traced run boots and sets up itself, so that its trace shows the setup.
    let traced = cowbreak_mm::record::is_on()
        || tracing::enabled!(target: "cowbreak::scenario", tracing::Level::TRACE);
    // Either way the kernel is made before any model thread exists (and the steps it
    // took do not count toward the step bound: see `without_scheduling`).
    let k = cowbreak_sync::without_scheduling(|| match kept.filter(|_| !traced) {
        None => boot(),
        Some(kept) => match kept.with(|k| k.as_mut().map(Kernel::snapshot)) {
            Some(k) => k,
            None => {
                let mut k = boot();
                let copy = k.snapshot();
                kept.with(|kept| *kept = Some(copy));
                k
            }
        },
    });
    let k = Arc::new(k);
    let ready: Arc<Vec<Event>> = Arc::new(sc.processes.iter().map(|_| Event::new()).collect());
    let points: Arc<Vec<Event>> = Arc::new(sc.points.iter().map(|_| Event::new()).collect());
    let groups: Arc<Ghost<Vec<Group>>> = Arc::new(Ghost::new(
        sc.processes.iter().map(|_| Group::default()).collect(),
    ));
    // Where the objects the threads step on live, for schedulers that learn across
    // executions which of them race (SURW).
    cowbreak_sync::set_regions(
        k.regions()
            .chain([&ready, &points].map(|v| cowbreak_sync::region_of(v))),
    );
    let handles: Vec<_> = (0..sc.threads.len())
        .map(|cpu| {
            let (sc, k, ready, points, groups) = (
                std::sync::Arc::clone(sc),
                Arc::clone(&k),
                Arc::clone(&ready),
                Arc::clone(&points),
                Arc::clone(&groups),
            );
            thread::spawn(move || {
                let shared = Shared {
                    ready: &ready,
                    points: &points,
                    groups: &groups,
                };
                run_thread(
                    &sc,
                    &sc.threads[cpu],
                    &Task::new(&k, cpu, sc.threads[cpu].process),
                    &shared,
                )
            })
        })
        .collect();
    for h in handles {
        h.join()
            .expect("a scenario thread panicked: a bug in cowbreak");
    }
    // Every thread has been joined: the accounting is not interleaved with anything.
    cowbreak_sync::without_scheduling(|| k.check_accounting());
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

/// A process's threads as `exit_group` sees them: not model state (signal delivery is
/// bookkeeping here; what matters is the `mmput` each thread then does).
#[derive(Default)]
struct Group {
    /// `SIGNAL_GROUP_EXIT`: an `exit-group` ran; every thread leaves at its next
    /// operation boundary or killable wait.
    killed: bool,
    /// Threads whose operations have ended without an `exit`: they stay (as a thread
    /// blocked in `pause()` does), holding their `mm_users`, until killed.
    parked: Vec<usize>,
}

/// What the threads of one execution share besides the kernel.
struct Shared<'a> {
    ready: &'a [Event],
    points: &'a [Event],
    groups: &'a Ghost<Vec<Group>>,
}

fn run_thread(sc: &Scenario, t: &ThreadDecl, task: &Task<'_>, sh: &Shared<'_>) {
    let Shared {
        ready,
        points,
        groups,
    } = *sh;
    let p = t.process;
    if p != 0 {
        // A forked process's threads start once the fork has returned.
        ready[p].wait();
    }
    let killed = || groups.with(|g| g[p].killed);
    let mut exited = false;
    let mut pins: Vec<Option<Pin>> = vec![None; t.pins.len()];
    for step in &t.steps {
        if !exited && killed() {
            // The pending SIGKILL: the thread leaves instead of going on.
            let r = task.exit();
            tracing::trace!(target: "cowbreak::scenario", cpu = task.cpu, func = "killed", line = step.line, result = ?r);
            return;
        }
        let result: Result<(), cowbreak_mm::Errno> = match step.op {
            Op::Read(loc) => task.read(sc.addr(loc)).map(|_| ()),
            Op::Write(loc, v) => task.write(sc.addr(loc), v),
            Op::Fork(child) => {
                let r = task.fork(child);
                ready[child].signal();
                r
            }
            Op::Exit => {
                exited = true;
                task.exit().map(|_| ())
            }
            Op::ExitGroup => {
                exited = true;
                // `do_group_exit` -> `zap_other_threads`: every sibling is sent SIGKILL;
                // those already parked leave now (their `mmput` done here), the others
                // at their next step; killable waits wake.
                let parked = groups.with(|g| {
                    g[p].killed = true;
                    std::mem::take(&mut g[p].parked)
                });
                for e in points {
                    e.kick();
                }
                let mut r = Ok(());
                for _ in parked {
                    r = r.and(task.exit().map(|_| ()));
                }
                r.and(task.exit().map(|_| ()))
            }
            Op::Munmap(loc, pages) => task.munmap(sc.addr(loc), pages),
            Op::MadviseDontneed(loc, pages) => task.madvise_dontneed(sc.addr(loc), pages),
            Op::Mprotect(loc, pages, prot) => task.mprotect(sc.addr(loc), pages, prot),
            Op::ProcMemWrite(loc, v) => task.proc_mem_write(sc.addr(loc), v),
            Op::ProcMemRead(loc) => task.proc_mem_read(sc.addr(loc)).map(|_| ()),
            Op::Migrate(loc) => task.migrate(sc.addr(loc)),
            Op::KsmMerge(loc) => task.ksm_merge(sc.addr(loc)),
            Op::Collapse(loc) => task.collapse(sc.addr(loc)),
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
                points[p].wait_unless(|| !exited && killed());
                Ok(())
            }
        };
        tracing::trace!(target: "cowbreak::scenario", cpu = task.cpu, func = step.op.keyword(), line = step.line, result = ?result);
    }
    if exited {
        return;
    }
    // The operations have ended: park, or leave at once if the group is exiting.
    let leave = groups.with(|g| {
        g[p].killed || {
            g[p].parked.push(task.cpu);
            false
        }
    });
    if leave {
        let r = task.exit();
        tracing::trace!(target: "cowbreak::scenario", cpu = task.cpu, func = "killed", result = ?r);
    }
}
