//! `struct vm_area_struct` and `struct mm_struct` (include/linux/mm_types.h).

use cowbreak_sync::atomic::AtomicU64;
use cowbreak_sync::{Ghost, Mutex, RwLock, Snapshot};

use crate::pgtable::{Addr, PTRS_PER_PMD};

/// Index of an mm in the kernel's mm table.
pub type MmId = usize;
/// Index of a file (its page cache) in the kernel.
pub type FileId = usize;

/// `vm_flags` bits (include/linux/mm.h).
pub mod vm {
    /// `VM_READ`.
    pub const READ: u64 = 0x1;
    /// `VM_WRITE`.
    pub const WRITE: u64 = 0x2;
    /// `VM_SHARED`.
    pub const SHARED: u64 = 0x8;
    /// `VM_MAYREAD`.
    pub const MAYREAD: u64 = 0x10;
    /// `VM_MAYWRITE`.
    pub const MAYWRITE: u64 = 0x20;
    /// `VM_MAYSHARE`.
    pub const MAYSHARE: u64 = 0x80;
    /// `VM_HUGEPAGE` (`madvise(MADV_HUGEPAGE)`): transparent huge pages wanted.
    pub const HUGEPAGE: u64 = 0x2000_0000;

    /// The flags by name (`VM_READ|VM_MAYREAD`), for traces.
    pub fn names(flags: u64) -> String {
        let all = [
            (READ, "VM_READ"),
            (WRITE, "VM_WRITE"),
            (SHARED, "VM_SHARED"),
            (MAYREAD, "VM_MAYREAD"),
            (MAYWRITE, "VM_MAYWRITE"),
            (MAYSHARE, "VM_MAYSHARE"),
            (HUGEPAGE, "VM_HUGEPAGE"),
        ];
        crate::flag_names(flags, &all)
    }
}

/// `is_cow_mapping(flags)`: private and may become writable.
pub fn is_cow_mapping(flags: u64) -> bool {
    flags & (vm::SHARED | vm::MAYWRITE) == vm::MAYWRITE
}

/// What backs a vma.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Backing {
    /// Anonymous memory (`vma_is_anonymous`).
    Anon,
    /// A file's page cache, from page `pgoff` of the file on.
    File {
        /// The file.
        file: FileId,
        /// The file page mapped at `start`.
        pgoff: u64,
    },
}

/// `struct vm_area_struct`, reduced to what GUP and COW read.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Vma {
    /// `vm_start`.
    pub start: Addr,
    /// `vm_end` (exclusive).
    pub end: Addr,
    /// `vm_flags`.
    pub flags: u64,
    /// `vm_file` / anonymous.
    pub backing: Backing,
    /// Which of its mm's [`MmStruct::vma_locks`] is this vma's (`vma->vm_lock`): a new
    /// number for every vma made (mmap, split), kept by fork's copy.
    pub slot: usize,
}

impl Vma {
    /// Whether `addr` falls inside.
    pub fn contains(&self, addr: Addr) -> bool {
        self.start <= addr && addr < self.end
    }
    /// `!(vm_flags & VM_SHARED)`: writes are private to the mm.
    pub fn is_private(&self) -> bool {
        self.flags & vm::SHARED == 0
    }
    /// `vma_is_anonymous`.
    pub fn is_anonymous(&self) -> bool {
        self.backing == Backing::Anon
    }
    /// `transhuge_vma_suitable` + `hugepage_vma_check` for anonymous memory: a private
    /// anon vma with VM_HUGEPAGE that covers the whole PMD range of `addr`.
    pub fn thp_suitable(&self, addr: Addr) -> bool {
        let start = crate::pgtable::pmd_start(addr);
        self.is_anonymous()
            && self.is_private()
            && self.flags & vm::HUGEPAGE != 0
            && self.start <= start
            && start + crate::pgtable::PMD_SIZE <= self.end
    }
    /// The file page mapped at `addr`, for a file vma.
    pub fn file_page(&self, addr: Addr) -> Option<(FileId, usize)> {
        match self.backing {
            Backing::Anon => None,
            Backing::File { file, pgoff } => Some((
                file,
                (pgoff + (addr - self.start) / crate::pgtable::PAGE_SIZE) as usize,
            )),
        }
    }
}

/// The vma list, protected by `mmap_lock`.
#[derive(Clone, Debug, Default)]
pub struct Vmas {
    /// The vmas, sorted by address, not overlapping.
    pub list: Vec<Vma>,
    /// Set by `exit_mmap`: the address space is gone.
    pub dead: bool,
    /// The next [`Vma::slot`] to give.
    pub next_slot: usize,
}

impl Vmas {
    /// A number for a new vma.
    pub fn new_slot(&mut self) -> usize {
        self.next_slot += 1;
        self.next_slot - 1
    }
}

/// Per-VMA lock slots an mm has (v6.4): enough for the vmas a scenario makes (maps and
/// their splits).
pub const VMAS_MAX: usize = 8;

/// A vma's per-VMA lock (v6.4, 5e31275cc997) and its `anon_vma` pointer, reduced to
/// whether it is set.
#[derive(Debug)]
pub struct VmaLock {
    /// `vma->vm_lock->lock`, an rwsem's `count` (kernel/locking/rwsem.c fast paths:
    /// `RWSEM_READER_BIAS` per reader, `RWSEM_WRITER_LOCKED`): readers are faults under
    /// `lock_vma_under_rcu`; the writer (`vma_start_write`) only passes through it to
    /// publish `vm_lock_seq`. Atomics rather than a scheduler lock: loom makes every lock
    /// operation a sequentially consistent fence, which would hide the message-passing
    /// race of b1f02b95758d that the rwsem's acquire / release do not.
    pub lock: AtomicU64,
    /// `vma->vm_lock_seq`: equal to `mm->mm_lock_seq` while the vma is write-locked
    /// (-1 at `vma_lock_alloc`).
    pub vm_lock_seq: AtomicU64,
    /// `vma->anon_vma != NULL` (set by `__anon_vma_prepare` under `page_table_lock`,
    /// copied by `anon_vma_fork` and by a split).
    pub anon_vma: AtomicU64,
    /// `vma->vm_flags` as memory a fault reads after taking the vma lock: written by
    /// `vm_flags_init` / `vm_flags_reset` under the mmap write lock (and the vma write
    /// lock). The vma list's copy is the mmap-locked paths' view.
    pub vm_flags: AtomicU64,
}

impl VmaLock {
    fn new() -> Self {
        VmaLock {
            lock: AtomicU64::new(0),
            vm_lock_seq: AtomicU64::new(u64::MAX),
            anon_vma: AtomicU64::new(0),
            vm_flags: AtomicU64::new(0),
        }
    }
}

impl Snapshot for VmaLock {
    fn snapshot(&mut self) -> Self {
        VmaLock {
            lock: self.lock.snapshot(),
            vm_lock_seq: self.vm_lock_seq.snapshot(),
            anon_vma: self.anon_vma.snapshot(),
            vm_flags: self.vm_flags.snapshot(),
        }
    }
}

impl Vmas {
    /// `find_vma` + the check that `addr` is inside it (`vma_lookup`).
    pub fn lookup(&self, addr: Addr) -> Option<Vma> {
        self.list.iter().copied().find(|v| v.contains(addr))
    }
}

/// `struct mm_struct`.
#[derive(Debug)]
pub struct MmStruct {
    /// Its index.
    pub id: MmId,
    /// `mmap_lock` (`mmap_sem` before 5.8), guarding the vma list.
    pub mmap_lock: RwLock<Vmas>,
    /// `page_table_lock`: the model uses one PTE lock per mm (split PTE locks are a
    /// scalability device and do not change which interleavings exist for one table).
    pub page_table_lock: Mutex<()>,
    /// The PMD (the model's top level: pgd/p4d/pud are folded).
    pub pmd: [AtomicU64; PTRS_PER_PMD],
    /// `write_protect_seq` (v5.11, 57efa1fe5957).
    pub write_protect_seq: AtomicU64,
    /// `has_pinned` (v5.9, 008cfe4418b3: an `atomic_t` set with `atomic_set`, read with
    /// `atomic_read`; the MMF_HAS_PINNED bit of `mm->flags` from v5.13): 0 or 1.
    pub has_pinned: AtomicU64,
    /// `mm_users` (an `atomic_t`): the threads using the address space (and the
    /// `mmget` references of others). `mmput` tears the mm down at zero.
    pub mm_users: AtomicU64,
    /// The PTE tables deposited with huge PMDs (`pgtable_trans_huge_deposit`), by PMD
    /// index: only a collapse deposits in the model. Touched under `page_table_lock`.
    pub deposited: Ghost<[Option<usize>; PTRS_PER_PMD]>,
    /// `mm_lock_seq` (v6.4): incremented by `mmap_write_unlock` (`vma_end_write_all`),
    /// which releases every vma write lock at once.
    pub mm_lock_seq: AtomicU64,
    /// The per-VMA locks, by [`Vma::slot`]; empty unless the kernel has them.
    pub vma_locks: Vec<VmaLock>,
    /// The vma tree as `lock_vma_under_rcu`'s `mas_walk` sees it: a copy of the vma list
    /// published by `mmap_write_unlock` (a write-locked vma's changes are not looked at
    /// before it is unlocked; see `crate::vma_lock`).
    pub tree: Ghost<Vec<Vma>>,
    /// The file vmas as the files' `i_mmap` trees hold them (what `rmap_walk_file`,
    /// `try_to_unmap` of a page-cache page and `retract_page_tables` walk): the vma list
    /// as `mmap_write_unlock` leaves it, and as `free_pgtables` leaves it under the rmap
    /// lock (`unlink_file_vma`) before any table goes.
    pub i_mmap: Ghost<Vec<Vma>>,
    /// `vma->anon_vma != NULL` by [`Vma::slot`] (a bit each) where there are no per-VMA
    /// locks to hold it ([`VmaLock::anon_vma`]): read only under the mmap write lock
    /// (`retract_page_tables` before v6.6), so bookkeeping suffices.
    pub anon_vma_ghost: Ghost<u64>,
}

impl Snapshot for MmStruct {
    fn snapshot(&mut self) -> Self {
        MmStruct {
            id: self.id,
            mmap_lock: self.mmap_lock.snapshot(),
            page_table_lock: self.page_table_lock.snapshot(),
            pmd: self.pmd.snapshot(),
            write_protect_seq: self.write_protect_seq.snapshot(),
            has_pinned: self.has_pinned.snapshot(),
            mm_users: self.mm_users.snapshot(),
            deposited: self.deposited.snapshot(),
            mm_lock_seq: self.mm_lock_seq.snapshot(),
            vma_locks: self.vma_locks.snapshot(),
            tree: self.tree.snapshot(),
            i_mmap: self.i_mmap.snapshot(),
            anon_vma_ghost: self.anon_vma_ghost.snapshot(),
        }
    }
}

impl MmStruct {
    pub(crate) fn new(id: MmId, users: u64, per_vma_lock: bool) -> Self {
        MmStruct {
            id,
            mmap_lock: RwLock::new(Vmas::default()),
            page_table_lock: Mutex::new(()),
            pmd: std::array::from_fn(|_| AtomicU64::new(0)),
            write_protect_seq: AtomicU64::new(0),
            has_pinned: AtomicU64::new(0),
            mm_users: AtomicU64::new(users),
            deposited: Ghost::new([None; PTRS_PER_PMD]),
            mm_lock_seq: AtomicU64::new(0),
            vma_locks: if per_vma_lock {
                (0..VMAS_MAX).map(|_| VmaLock::new()).collect()
            } else {
                Vec::new()
            },
            tree: Ghost::new(Vec::new()),
            i_mmap: Ghost::new(Vec::new()),
            anon_vma_ghost: Ghost::new(0),
        }
    }
}
