//! An executable model of the Linux kernel's memory management, as far as
//! get_user_pages (GUP) and copy-on-write (COW) are concerned, era by era.
//!
//! The model is built from [`cowbreak_sync`] primitives only, so the same code runs
//! under loom, shuttle and real threads. Modules mirror kernel files and functions carry
//! the kernel's names (`follow_page_pte`, `faultin_page`, `do_wp_page`, `wp_page_copy`,
//! `copy_present_pte`, `gup_pte_range`, `zap_pte_range`, ...); each one's doc names the
//! kernel function it models and the [`Policy`] switches that change it.
//!
//! An era is a preset of switches; any switch can be flipped on top of it:
//!
//! ```
//! use cowbreak_mm::{Era, KernelConfig};
//!
//! let mut config = KernelConfig::new(Era::V5_9);
//! assert!(!config.policy.write_protect_seq);
//! config.policy.set("write_protect_seq", true).unwrap(); // "v5.9 with write_protect_seq"
//! assert!(config.policy.set("write_protect_sq", true).unwrap_err().to_string().contains("did you mean"));
//! ```
//!
//! A [`Kernel`] is built and driven inside an execution of a backend (its atomics are
//! shuttle's or loom's); `cowbreak-explore` runs one, and the workspace's `tests/common`
//! shows scenarios written directly against [`Task`].
//!
//! # Memory ordering and architectures
//!
//! Every access to shared state goes through [`primitives`], named after the kernel
//! primitive it models (`READ_ONCE`, `atomic_add_return`, `smp_mb`, ...) and mapped to
//! C11 as the Linux kernel memory model orders it, so that loom explores the reorderings
//! the kernel allows and no more. An [`Arch`] is a preset of switches on top of the era's:
//! x86 (TSO; the TLB flush is an IPI that waits for interrupts-off CPUs; its own fast GUP
//! before v4.13) or arm64 (weakly ordered; broadcast TLBI; page tables freed after an
//! RCU-sched grace period). [`record`] tells, in a loom trace, which store each load read.
//!
//! # What the model does not capture
//!
//! - Transparent huge pages only as v4.x had them: a PMD maps the huge zero page or a
//!   whole huge page (one frame), COW copies it whole, fork shares it, and ranges that
//!   would split a huge PMD are refused (EINVAL). Splitting (THP COW splits from v5.8,
//!   3917c80280c9) and `gup_huge_pmd` in fast GUP (huge PMDs go to slow GUP) are not
//!   modeled; neither is THP migration.
//! - hugetlb, swap and the LRU: v5.18's swap changes and the swap-out half of v6.1's
//!   barriers (`try_to_unmap_one`) live there ([`Era::unmodeled`]). Migration is of one
//!   small anon page, tried once (the kernel retries -EAGAIN up to ten passes); KSM merges
//!   into a KSM page made for the occasion with the page's contents.
//! - TLBs: every access walks the page tables. A TLB flush is modeled by what it waits
//!   for: an IPI waits for CPUs with interrupts off or in the middle of an access, a
//!   broadcast TLBI only for accesses in flight; both are full barriers on the flushing
//!   CPU. `ptep_clear_flush` always flushes (the kernel skips a flush of an inaccessible
//!   entry).
//! - C11 has no address dependencies: a walker's `READ_ONCE` of an entry it then
//!   dereferences is an acquire load ([`MemoryModel::read_once_dep`]).
//! - One anon_vma lock for the whole kernel, one page-table lock per mm (split PTE locks
//!   are a scalability device), no mmu_notifier, userfaultfd or soft-dirty.
//! - Pages are one data word; a "write" stamps it with (writer mm, value). An anonymous
//!   collapse copies the word of the page asked for into the huge page; a file collapse
//!   (`collapse_file`) makes a huge page of one frame per subpage, each with its page's
//!   word, never mapped by PMD (no `collapse_pte_mapped_thp`).
//! - The page cache is fixed at boot unless a scenario collapses a file range; only then
//!   do faults load it and take the page lock (`filemap_fault`).
//! - The slow walkers' `rcu_read_lock` sections (`pte_offset_map`, v6.6) are not modeled:
//!   what they read without the PTE lock they recheck under it.
//! - Per-VMA locks (v6.4): faults on private anonymous vmas only (as in 6.4); the tree
//!   `lock_vma_under_rcu` walks is a copy published by `mmap_write_unlock`, and of a
//!   vma's fields only `vm_flags` is memory a fault reads after locking. The vma rwsem is
//!   atomics; the mmap lock and page-table lock are loom / shuttle locks, which loom
//!   makes sequentially consistent fences (stronger than the kernel's).
//! - `anon_vma` is "set or not" per vma (what `lock_vma_under_rcu` reads); chains, merges
//!   and `unlink_anon_vmas` on a live vma are not modeled.

#![warn(missing_docs)]

pub mod arch;
pub mod era;
pub mod gup;
pub mod irq;
mod kernel;
mod khugepaged;
mod ksm;
pub mod memory;
mod migrate;
pub mod mm_types;
pub mod mmap;
pub mod oracle;
pub mod page;
pub mod pgtable;
pub mod primitives;
pub mod record;
mod uaccess;
mod vma_lock;

pub use arch::{Arch, UnknownArch};
pub use era::{
    Axis, Era, Policy, ReadPolicy, Switch, SwitchReads, UnknownEra, UnknownSwitch, SWITCHES,
};
pub use irq::Cpu;
pub use kernel::{File, Kernel, KernelConfig};
pub use mm_types::{FileId, MmId, MmStruct, Vma};
pub use mmap::{MapKind, Prot};
pub use oracle::{Violation, ViolationKind};
pub use page::{Pfn, Stamp};
pub use pgtable::{Addr, PAGE_SIZE};
pub use primitives::MemoryModel;
pub use uaccess::{Pin, PinMode};

use std::fmt;

/// What a system call or fault returns when it fails, with the kernel's names.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[allow(clippy::upper_case_acronyms)]
pub enum Errno {
    /// Bad address, or GUP refused the vma.
    EFAULT,
    /// Out of frames or page tables (the pools are sized by [`KernelConfig`]).
    ENOMEM,
    /// Bad argument.
    EINVAL,
    /// mprotect asked for more than VM_MAYWRITE allows.
    EACCES,
    /// The address space is gone (exit).
    ESRCH,
    /// The range is already mapped.
    EEXIST,
    /// No such file.
    EBADF,
    /// The fork target slot is in use.
    EBUSY,
    /// The page tables changed under a fault (a huge PMD appeared): retry.
    EAGAIN,
    /// The access was not allowed by the vma: the thread would get SIGSEGV.
    SIGSEGV,
    /// Past the end of the file.
    SIGBUS,
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for Errno {}

/// A model thread: a task of mm `mm` running on `cpu`. The methods are the system calls
/// and accesses a scenario is made of.
#[derive(Copy, Clone, Debug)]
pub struct Task<'k> {
    /// The kernel.
    pub k: &'k Kernel,
    /// The CPU the task runs on (one per model thread).
    pub cpu: usize,
    /// The task's address space.
    pub mm: MmId,
}

impl<'k> Task<'k> {
    /// A task of `mm` on `cpu`.
    pub fn new(k: &'k Kernel, cpu: usize, mm: MmId) -> Self {
        Task { k, cpu, mm }
    }
    /// `mmap(start, pages * PAGE_SIZE, prot, kind)`.
    pub fn mmap(&self, start: Addr, pages: u64, kind: MapKind, prot: Prot) -> Result<Addr, Errno> {
        self.k.mmap(self.mm, start, pages * PAGE_SIZE, kind, prot)
    }
    /// A load from `addr`.
    pub fn read(&self, addr: Addr) -> Result<Stamp, Errno> {
        self.k.user_access(self.cpu, self.mm, addr, None)
    }
    /// A store of `value` to `addr`.
    pub fn write(&self, addr: Addr, value: u32) -> Result<(), Errno> {
        self.k
            .user_access(self.cpu, self.mm, addr, Some(value))
            .map(|_| ())
    }
    /// fork(), filling mm slot `child`.
    pub fn fork(&self, child: MmId) -> Result<(), Errno> {
        self.k.fork(self.cpu, self.mm, child)
    }
    /// This thread's exit (`do_exit` -> `exit_mm` -> `mmput`): the mm goes when its
    /// last user leaves. Returns whether it did.
    pub fn exit(&self) -> Result<bool, Errno> {
        self.k.mmput(self.cpu, self.mm)
    }
    /// `munmap(start, pages * PAGE_SIZE)`.
    pub fn munmap(&self, start: Addr, pages: u64) -> Result<(), Errno> {
        self.k.munmap(self.cpu, self.mm, start, pages * PAGE_SIZE)
    }
    /// `madvise(start, pages * PAGE_SIZE, MADV_DONTNEED)`.
    pub fn madvise_dontneed(&self, start: Addr, pages: u64) -> Result<(), Errno> {
        self.k
            .madvise_dontneed(self.cpu, self.mm, start, pages * PAGE_SIZE)
    }
    /// `mprotect(start, pages * PAGE_SIZE, prot)`.
    pub fn mprotect(&self, start: Addr, pages: u64, prot: Prot) -> Result<(), Errno> {
        self.k
            .mprotect(self.cpu, self.mm, start, pages * PAGE_SIZE, prot)
    }
    /// A write of `value` through `/proc/self/mem` (FOLL_FORCE).
    pub fn proc_mem_write(&self, addr: Addr, value: u32) -> Result<(), Errno> {
        self.k
            .proc_mem_access(self.cpu, self.mm, addr, Some(value))
            .map(|_| ())
    }
    /// A read through `/proc/self/mem` (FOLL_FORCE).
    pub fn proc_mem_read(&self, addr: Addr) -> Result<Stamp, Errno> {
        self.k.proc_mem_access(self.cpu, self.mm, addr, None)
    }
    /// vmsplice the page at `addr` into a pipe.
    pub fn vmsplice(&self, addr: Addr) -> Result<Pin, Errno> {
        self.k.vmsplice(self.cpu, self.mm, addr)
    }
    /// Pin the page at `addr`.
    pub fn pin(&self, addr: Addr, mode: PinMode) -> Result<Pin, Errno> {
        self.k.pin_user_page(self.cpu, self.mm, addr, mode)
    }
    /// Read through a pin.
    pub fn read_pinned(&self, pin: &Pin) -> Stamp {
        self.k.read_pinned(pin)
    }
    /// Release a pin.
    pub fn unpin(&self, pin: Pin) {
        self.k.unpin(pin)
    }
    /// Migrate the page at `addr` (`move_pages(2)` of one anon page).
    pub fn migrate(&self, addr: Addr) -> Result<(), Errno> {
        self.k.migrate(self.cpu, self.mm, addr)
    }
    /// `madvise(MADV_COLLAPSE)` of the PMD range holding `addr`: khugepaged's
    /// `collapse_huge_page` for anonymous memory, `collapse_file` (and
    /// `retract_page_tables`) for a file range. `madvise_collapse` decides by the vma it
    /// finds under the mmap read lock; the model decides by the vma list as the last
    /// `mmap_write_unlock` left it (scenarios map nothing at run time), and each path
    /// revalidates under its own lock.
    pub fn collapse(&self, addr: Addr) -> Result<(), Errno> {
        let file = self.k.mm(self.mm).i_mmap.with(|t| {
            t.iter()
                .any(|v| v.contains(addr) && v.backing != mm_types::Backing::Anon)
        });
        if file {
            self.k.collapse_file_range(self.cpu, self.mm, addr)
        } else {
            self.k.collapse_huge_page(self.cpu, self.mm, addr)
        }
    }
    /// KSM merges the page at `addr` with a KSM page of the same contents.
    pub fn ksm_merge(&self, addr: Addr) -> Result<(), Errno> {
        self.k.ksm_merge(self.cpu, self.mm, addr)
    }
}

/// `flags` as `A|B` by the names in `all` (`0` when none is set), for traces.
pub(crate) fn flag_names(flags: u64, all: &[(u64, &str)]) -> String {
    let names: Vec<&str> = all
        .iter()
        .filter(|&&(f, _)| flags & f != 0)
        .map(|&(_, n)| n)
        .collect();
    if names.is_empty() {
        "0".into()
    } else {
        names.join("|")
    }
}

/// The candidate closest to `word` by edit distance, if any is close enough to be a
/// plausible typo ("did you mean").
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    // Optimal string alignment distance: edits, with a swap of two neighbours as one.
    fn distance(a: &str, b: &str) -> usize {
        let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for (i, row) in d.iter_mut().enumerate() {
            row[0] = i;
        }
        for (j, cell) in d[0].iter_mut().enumerate() {
            *cell = j;
        }
        for i in 1..=a.len() {
            for j in 1..=b.len() {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                d[i][j] = (d[i - 1][j] + 1)
                    .min(d[i][j - 1] + 1)
                    .min(d[i - 1][j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
                }
            }
        }
        d[a.len()][b.len()]
    }
    candidates
        .into_iter()
        .map(|c| (distance(&word.to_lowercase(), &c.to_lowercase()), c))
        .filter(|&(d, c)| d <= (c.len() / 3).max(1))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}
