//! The scenario data model: what a scenario file says, resolved (names to indices).

use cowbreak_mm::mmap::{MapKind, Prot};
use cowbreak_mm::{Arch, Era, PinMode, ViolationKind};

/// A parsed, checked scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// `scenario NAME`.
    pub name: String,
    /// `summary "..."`: one line.
    pub summary: String,
    /// `source "..."`: the kernel commit or selftest it follows.
    pub source: String,
    /// `check KIND ...`: the violation kinds it is about; empty means all.
    pub check: Vec<ViolationKind>,
    /// `expect KIND on ERA[@ARCH][:weak] ...`: the history; (era, arch) cells not listed
    /// are expected clean.
    pub expect: Vec<(ViolationKind, Vec<ExpectCell>)>,
    /// `arch NAME ...`: the architectures the scenario is for; empty means every one.
    pub arches: Vec<Arch>,
    /// `backend NAME`: the explorer its history needs (`loom` for a bug only weak memory
    /// shows); `None`: any, PCT by default.
    pub backend: Option<String>,
    /// `backend loom preemption-bound=N`: the bound loom needs to see its history.
    pub preemption_bound: Option<usize>,
    /// `switch NAME on|off`: flips applied on top of every era's preset.
    pub switches: Vec<(String, bool)>,
    /// `file NAME pages=N`.
    pub files: Vec<FileDecl>,
    /// `map NAME ...`, all in the initial process, set up before any thread runs.
    pub maps: Vec<MapDecl>,
    /// Processes: 0 is `main`, then one per `fork` in order of appearance.
    pub processes: Vec<String>,
    /// `thread NAME in PROCESS:` with its operations.
    pub threads: Vec<ThreadDecl>,
    /// Ordering point names, by index.
    pub points: Vec<String>,
    /// The text it was parsed from.
    pub text: String,
    /// Where the text came from (a path, or `builtin:NAME`).
    pub origin: String,
}

/// One cell of an `expect` line: `v5.19`, `v5.19@arm64`, `v5.19@arm64:weak`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ExpectCell {
    /// The era.
    pub era: Era,
    /// The architecture; `None` for every one.
    pub arch: Option<Arch>,
    /// `:weak`: only weak memory shows it there, so an explorer that is sequentially
    /// consistent (shuttle) must not find it and loom must.
    pub weak: bool,
}

impl ExpectCell {
    /// Whether the cell covers `era` on `arch`.
    pub fn covers(&self, era: Era, arch: Arch) -> bool {
        self.era == era && self.arch.is_none_or(|a| a == arch)
    }
}

impl std::fmt::Display for ExpectCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.era)?;
        if let Some(a) = self.arch {
            write!(f, "@{a}")?;
        }
        if self.weak {
            f.write_str(":weak")?;
        }
        Ok(())
    }
}

/// A file whose page cache the scenario maps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDecl {
    /// Its name.
    pub name: String,
    /// Pages.
    pub pages: usize,
}

/// How a mapping starts out.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Init {
    /// Nothing mapped yet: the first access faults.
    Untouched,
    /// Every page read once (a read fault: the zero page, or the page cache's page).
    Read,
    /// Every page written with this value (a write fault: private pages of its own).
    Written(u32),
}

/// A mapping of the initial process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapDecl {
    /// Its name.
    pub name: String,
    /// What it maps (files by index).
    pub kind: MapKind,
    /// Pages.
    pub pages: u64,
    /// Protection.
    pub prot: Prot,
    /// Start address (PMD-aligned unless given).
    pub addr: u64,
    /// Initial contents.
    pub init: Init,
    /// `thp=yes`: `madvise(MADV_HUGEPAGE)` right after mmap, so faults map huge PMDs.
    pub thp: bool,
}

/// A page of a mapping: `NAME` or `NAME+N`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Loc {
    /// The mapping.
    pub map: usize,
    /// The page within it.
    pub page: u64,
}

/// One operation of a thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// A load.
    Read(Loc),
    /// A store.
    Write(Loc, u32),
    /// fork(), creating process index `.0`.
    Fork(usize),
    /// exit(): this thread leaves (`do_exit` -> `exit_mm` -> `mmput`); the mm goes
    /// (`exit_mmap`) when its last thread has left.
    Exit,
    /// exit_group(): every thread of the process leaves (`do_group_exit`: siblings
    /// finish the operation they are in, or wake from a `wait`, and exit; a thread whose
    /// operations have ended exits at once), then this one.
    ExitGroup,
    /// munmap of `pages` pages.
    Munmap(Loc, u64),
    /// MADV_DONTNEED of `pages` pages.
    MadviseDontneed(Loc, u64),
    /// mprotect of `pages` pages.
    Mprotect(Loc, u64, Prot),
    /// A forced write through /proc/self/mem.
    ProcMemWrite(Loc, u32),
    /// A forced read through /proc/self/mem.
    ProcMemRead(Loc),
    /// vmsplice into a pipe, holding the page in pin slot `.1`.
    Vmsplice(Loc, usize),
    /// pin_user_pages(_fast) into pin slot `.1`.
    Pin(Loc, usize, PinMode),
    /// Release pin slot `.0`.
    Unpin(usize),
    /// Migrate the page (`migrate_pages` of one page, as compaction or NUMA balancing
    /// would).
    Migrate(Loc),
    /// KSM merges the page with an identical KSM page (`try_to_merge_one_page`).
    KsmMerge(Loc),
    /// `madvise(MADV_COLLAPSE)` of the PMD range holding the location: khugepaged's
    /// `collapse_huge_page`.
    Collapse(Loc),
    /// Read through pin slot `.0`.
    ReadPin(usize),
    /// Signal ordering point `.0`.
    Signal(usize),
    /// Wait for ordering point `.0`.
    Wait(usize),
}

impl Op {
    /// The keyword of the operation, as written in scenario files.
    pub fn keyword(&self) -> &'static str {
        match self {
            Op::Read(_) => "read",
            Op::Write(..) => "write",
            Op::Fork(_) => "fork",
            Op::Exit => "exit",
            Op::ExitGroup => "exit-group",
            Op::Munmap(..) => "munmap",
            Op::MadviseDontneed(..) => "madvise-dontneed",
            Op::Mprotect(..) => "mprotect",
            Op::ProcMemWrite(..) => "proc-mem-write",
            Op::ProcMemRead(_) => "proc-mem-read",
            Op::Vmsplice(..) => "vmsplice",
            Op::Pin(_, _, m) if m.fast => "pin-fast",
            Op::Pin(..) => "pin",
            Op::Unpin(_) => "unpin",
            Op::Migrate(_) => "migrate",
            Op::KsmMerge(_) => "ksm-merge",
            Op::Collapse(_) => "collapse",
            Op::ReadPin(_) => "read-pin",
            Op::Signal(_) => "signal",
            Op::Wait(_) => "wait",
        }
    }
}

/// An operation and the line it was written on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The operation.
    pub op: Op,
    /// Its 1-based line in the scenario text.
    pub line: usize,
}

/// A thread: one model thread on its own CPU, in one process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadDecl {
    /// Its name.
    pub name: String,
    /// Its process (index into [`Scenario::processes`]).
    pub process: usize,
    /// Its operations in program order.
    pub steps: Vec<Step>,
    /// Names of its pin slots.
    pub pins: Vec<String>,
}

impl Scenario {
    /// Pages its `map` lines map, over every mapping.
    pub fn pages(&self) -> u64 {
        self.maps.iter().map(|m| m.pages).sum()
    }

    /// The kinds expected on `era` on `arch` by an explorer of weak memory (loom), per the
    /// scenario's `expect` lines.
    pub fn expected_on(&self, era: Era, arch: Arch) -> Vec<ViolationKind> {
        self.expected(era, arch, true)
    }

    /// The kinds expected on `era` on `arch` by a sequentially consistent explorer
    /// (shuttle): the `expect` cells without `:weak`.
    pub fn expected_on_sc(&self, era: Era, arch: Arch) -> Vec<ViolationKind> {
        self.expected(era, arch, false)
    }

    fn expected(&self, era: Era, arch: Arch, weak: bool) -> Vec<ViolationKind> {
        self.expect
            .iter()
            .filter(|(_, cells)| {
                cells
                    .iter()
                    .any(|c| c.covers(era, arch) && (weak || !c.weak))
            })
            .map(|&(k, _)| k)
            .collect()
    }

    /// Whether some of the scenario's history needs weak memory (`:weak` cells): then it
    /// is checked with loom as well as with shuttle.
    pub fn needs_weak_memory(&self) -> bool {
        self.expect
            .iter()
            .any(|(_, cells)| cells.iter().any(|c| c.weak))
    }

    /// Whether the scenario is for `arch` (its `arch` line, if any, names it).
    pub fn runs_on(&self, arch: Arch) -> bool {
        self.arches.is_empty() || self.arches.contains(&arch)
    }

    /// The architecture to run on when none is asked for: the first of the `arch` line,
    /// else x86.
    pub fn default_arch(&self) -> Arch {
        self.arches.first().copied().unwrap_or_default()
    }

    /// The address of a location.
    pub fn addr(&self, loc: Loc) -> u64 {
        self.maps[loc.map].addr + loc.page * cowbreak_mm::PAGE_SIZE
    }
}
