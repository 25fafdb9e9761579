//! Page tables made of atomics: a PMD level per mm and PTE-table pages from a pool.
//!
//! Models `include/linux/pgtable.h` / `arch/x86/include/asm/pgtable.h` entry encoding and
//! `mm/memory.c` `__pte_alloc` / `free_pte_range`. PTE tables are real objects that are
//! allocated, freed and reused, so a lockless walker (fast GUP) that outlives the IPI
//! barrier meets a freed or recycled table, as it would in the kernel.

use cowbreak_sync::atomic::AtomicU64;
use cowbreak_sync::{Mutex, Snapshot};

use crate::page::Pfn;

/// Bytes in a page.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 12;
/// Entries in a PTE table. Smaller than the kernel's 512 so that loom can afford whole
/// tables; the walk is the same.
pub const PTRS_PER_PTE: usize = 8;
/// Entries in the PMD of each mm.
pub const PTRS_PER_PMD: usize = 8;
/// Bytes mapped by one PMD entry.
pub const PMD_SIZE: u64 = PAGE_SIZE * PTRS_PER_PTE as u64;
/// The top of the modeled user address space.
pub const TASK_SIZE: u64 = PMD_SIZE * PTRS_PER_PMD as u64;

/// A user virtual address (bytes).
pub type Addr = u64;

/// Index of `addr` in its PTE table (`pte_index`).
pub fn pte_index(addr: Addr) -> usize {
    ((addr >> PAGE_SHIFT) as usize) % PTRS_PER_PTE
}

/// Index of `addr` in the PMD (`pmd_index`).
pub fn pmd_index(addr: Addr) -> usize {
    ((addr / PMD_SIZE) as usize) % PTRS_PER_PMD
}

/// A page-table entry value: pfn and the x86 bits the model needs.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default)]
pub struct Pte(pub u64);

impl Pte {
    const PRESENT: u64 = 1 << 0;
    const WRITE: u64 = Self::WRITE_BIT;
    /// The write bit, for in-place RMWs (`ptep_set_wrprotect`).
    pub const WRITE_BIT: u64 = 1 << 1;
    const DIRTY: u64 = 1 << 2;
    const YOUNG: u64 = 1 << 3;
    const SOFT_DIRTY: u64 = 1 << 4;
    const SPECIAL: u64 = 1 << 5;
    /// A non-present entry that is a swap entry of the migration type (bit 6 is the
    /// PMD's `HUGE`).
    const MIGRATION: u64 = 1 << 7;
    /// With `MIGRATION`: `make_writable_migration_entry`.
    const MIGRATION_WRITE: u64 = 1 << 8;
    /// With `MIGRATION`: `make_readable_exclusive_migration_entry` (v5.19).
    const MIGRATION_EXCLUSIVE: u64 = 1 << 9;
    const PFN_SHIFT: u32 = 12;

    /// The empty entry (`pte_none`).
    pub const NONE: Pte = Pte(0);

    /// `mk_pte(page, prot)` with the young bit set; write as given.
    pub fn mk(pfn: Pfn, write: bool) -> Pte {
        let mut v = Self::PRESENT | Self::YOUNG | ((pfn as u64) << Self::PFN_SHIFT);
        if write {
            v |= Self::WRITE;
        }
        Pte(v)
    }
    /// `swp_entry_to_pte(make_*_migration_entry(pfn))`: a migration entry for `pfn`,
    /// writable (`make_writable_migration_entry`), readable and exclusive
    /// (`make_readable_exclusive_migration_entry`, v5.19) or readable.
    pub fn migration(pfn: Pfn, writable: bool, exclusive: bool) -> Pte {
        let mut v = Self::MIGRATION | ((pfn as u64) << Self::PFN_SHIFT);
        if writable {
            v |= Self::MIGRATION_WRITE;
        } else if exclusive {
            v |= Self::MIGRATION_EXCLUSIVE;
        }
        Pte(v)
    }
    /// `is_migration_entry(pte_to_swp_entry(pte))` of a non-present entry.
    pub fn is_migration_entry(self) -> bool {
        !self.present() && self.0 & Self::MIGRATION != 0
    }
    /// `is_writable_migration_entry`.
    pub fn migration_writable(self) -> bool {
        self.is_migration_entry() && self.0 & Self::MIGRATION_WRITE != 0
    }
    /// `!is_readable_migration_entry`: writable or readable-exclusive, so the page is
    /// exclusive again when the entry is removed (`RMAP_EXCLUSIVE`).
    pub fn migration_exclusive(self) -> bool {
        self.is_migration_entry()
            && self.0 & (Self::MIGRATION_WRITE | Self::MIGRATION_EXCLUSIVE) != 0
    }
    /// `make_readable_migration_entry` of a writable one (fork, mprotect).
    pub fn migration_readable(self) -> Pte {
        Pte(self.0 & !Self::MIGRATION_WRITE)
    }
    /// `pte_none`.
    pub fn is_none(self) -> bool {
        self.0 == 0
    }
    /// `pte_present`.
    pub fn present(self) -> bool {
        self.0 & Self::PRESENT != 0
    }
    /// `pte_write`.
    pub fn write(self) -> bool {
        self.0 & Self::WRITE != 0
    }
    /// `pte_dirty`.
    pub fn dirty(self) -> bool {
        self.0 & Self::DIRTY != 0
    }
    /// `pte_young`.
    pub fn young(self) -> bool {
        self.0 & Self::YOUNG != 0
    }
    /// `pte_special`: set for the shared zero page, which `vm_normal_page` skips.
    pub fn special(self) -> bool {
        self.0 & Self::SPECIAL != 0
    }
    /// `pte_pfn`.
    pub fn pfn(self) -> Pfn {
        (self.0 >> Self::PFN_SHIFT) as Pfn
    }
    /// `pte_mkwrite`.
    pub fn mkwrite(self) -> Pte {
        Pte(self.0 | Self::WRITE)
    }
    /// `pte_wrprotect`.
    pub fn wrprotect(self) -> Pte {
        Pte(self.0 & !Self::WRITE)
    }
    /// `pte_mkdirty` (also soft-dirty, as the kernel's does).
    pub fn mkdirty(self) -> Pte {
        Pte(self.0 | Self::DIRTY | Self::SOFT_DIRTY)
    }
    /// `pte_mkclean`.
    pub fn mkclean(self) -> Pte {
        Pte(self.0 & !Self::DIRTY)
    }
    /// `pte_mkyoung`.
    pub fn mkyoung(self) -> Pte {
        Pte(self.0 | Self::YOUNG)
    }
    /// `pte_mkold`.
    pub fn mkold(self) -> Pte {
        Pte(self.0 & !Self::YOUNG)
    }
    /// `pte_mkspecial`.
    pub fn mkspecial(self) -> Pte {
        Pte(self.0 | Self::SPECIAL)
    }
}

impl std::fmt::Debug for Pte {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_none() {
            return f.write_str("none");
        }
        if self.is_migration_entry() {
            let kind = if self.migration_writable() {
                "W"
            } else if self.migration_exclusive() {
                "RO excl"
            } else {
                "RO"
            };
            return write!(f, "migration pfn{} {kind}", self.pfn());
        }
        write!(
            f,
            "pfn{}{}{}{}{}",
            self.pfn(),
            if self.write() { " W" } else { " RO" },
            if self.dirty() { " D" } else { "" },
            if self.young() { " Y" } else { "" },
            if self.special() { " S" } else { "" },
        )
    }
}

/// A PMD entry: none, a pointer to a PTE table (by pool index), or a huge page
/// (transparent huge page, or the huge zero page) mapped by the PMD itself.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default)]
pub struct Pmd(pub u64);

impl Pmd {
    const PRESENT: u64 = 1;
    /// `_PAGE_PSE`: the entry maps a huge page; its other bits are a [`Pte`]'s.
    const HUGE: u64 = 1 << 6;
    const TABLE_SHIFT: u32 = 12;
    /// `pmd_none`.
    pub const NONE: Pmd = Pmd(0);
    /// A PMD entry pointing at PTE table `table` (`pmd_populate`).
    pub fn table(table: TableId) -> Pmd {
        Pmd(Self::PRESENT | ((table as u64) << Self::TABLE_SHIFT))
    }
    /// A huge PMD mapping what `pte` describes (`mk_huge_pmd`, `pmd_mkhuge`).
    pub fn huge(pte: Pte) -> Pmd {
        Pmd(pte.0 | Self::HUGE)
    }
    /// `pmd_none`.
    pub fn is_none(self) -> bool {
        self.0 & Self::PRESENT == 0
    }
    /// `pmd_trans_huge`.
    pub fn is_huge(self) -> bool {
        !self.is_none() && self.0 & Self::HUGE != 0
    }
    /// The PTE table this entry points at (`pmd_page`); only for a table entry.
    pub fn table_id(self) -> TableId {
        debug_assert!(!self.is_huge(), "a huge PMD has no PTE table");
        (self.0 >> Self::TABLE_SHIFT) as TableId
    }
    /// A huge entry's page and bits, read like a PTE (`pmd_write`, `pmd_dirty`,
    /// `pmd_pfn`, ...).
    pub fn leaf(self) -> Pte {
        Pte(self.0 & !Self::HUGE)
    }
}

impl std::fmt::Debug for Pmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_none() {
            f.write_str("none")
        } else if self.is_huge() {
            write!(f, "huge {:?}", self.leaf())
        } else {
            write!(f, "table{}", self.table_id())
        }
    }
}

/// The PMD-aligned start of the PMD range holding `addr`.
pub fn pmd_start(addr: Addr) -> Addr {
    addr / PMD_SIZE * PMD_SIZE
}

/// Index of a PTE table in the [`TablePool`].
pub type TableId = usize;

/// One PTE-table page.
#[derive(Debug)]
pub struct PteTable {
    /// The entries. Written under the owning mm's page-table lock; read locklessly by
    /// fast GUP and by the model's hardware walker.
    pub entries: [AtomicU64; PTRS_PER_PTE],
}

impl PteTable {
    fn new() -> Self {
        PteTable {
            entries: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// The pool of PTE-table pages (`pte_alloc_one` / `pte_free`).
#[derive(Debug)]
pub struct TablePool {
    tables: Vec<PteTable>,
    free: Mutex<Vec<TableId>>,
}

impl TablePool {
    /// The memory the tables live in: (address, length).
    pub fn region(&self) -> (usize, usize) {
        cowbreak_sync::region_of(&self.tables)
    }

    /// A pool of `n` tables, all free.
    pub fn new(n: usize) -> Self {
        TablePool {
            tables: (0..n).map(|_| PteTable::new()).collect(),
            // Popped from the end: hand out table 0 first.
            free: Mutex::new((0..n).rev().collect()),
        }
    }

    /// A copy of the pool between executions ([`Snapshot`]).
    pub(crate) fn snapshot(&mut self) -> Self {
        TablePool {
            tables: self
                .tables
                .iter_mut()
                .map(|t| PteTable {
                    entries: t.entries.snapshot(),
                })
                .collect(),
            free: self.free.snapshot(),
        }
    }

    /// The table behind `id`, freed or not: a lockless walker may hold a stale id.
    pub fn table(&self, id: TableId) -> &PteTable {
        &self.tables[id]
    }

    /// Allocate a zeroed table (`pte_alloc_one`). `None` when the pool is exhausted.
    pub fn alloc(&self) -> Option<TableId> {
        let id = self.free.lock().pop()?;
        // Freed tables are empty: zap cleared every entry before free_pte_range.
        Some(id)
    }

    /// Return a table to the pool (`pte_free`).
    pub fn free(&self, id: TableId) {
        self.free.lock().push(id);
    }

    /// Number of tables free in the pool now.
    pub fn free_count(&self) -> usize {
        self.free.lock().len()
    }

    /// Number of tables in the pool.
    pub fn len(&self) -> usize {
        self.tables.len()
    }

    /// Whether the pool has no tables at all.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }
}
