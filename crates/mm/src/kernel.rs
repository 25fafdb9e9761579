//! The modeled kernel: frame and table pools, the mm table, CPUs, files, the policy and
//! the oracle; plus the page and PTE primitives every path is built from.

use cowbreak_sync::atomic::{fence, Ordering::SeqCst};

use crate::era::{Era, Policy};
use crate::irq::Cpu;
use crate::mm_types::{FileId, MmId, MmStruct, Vma};
use crate::oracle::{Oracle, UnmapCause, Violation, ViolationKind};
use crate::page::{flags, is_zero_pfn, writer, FramePool, Page, PageKind, Pfn, Stamp};
use crate::pgtable::{Addr, Pmd, Pte, PteTable, TableId, TablePool};
use crate::Errno;

/// Sizes and policy of one kernel instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelConfig {
    /// The behaviour switches (usually an [`Era`]'s preset, maybe with flips).
    pub policy: Policy,
    /// Frames in the pool, the zero page included.
    pub nr_frames: usize,
    /// PTE-table pages in the pool.
    pub nr_tables: usize,
    /// mm slots (processes). mm 0 is live at boot; fork fills the others.
    pub nr_mms: usize,
    /// CPUs, one per model thread.
    pub nr_cpus: usize,
    /// Files, by size in pages, whose page cache is filled at boot.
    pub files: Vec<usize>,
    /// Bound on the `__get_user_pages` retry loop; past it the model reports `livelock`
    /// (the kernel would spin forever).
    pub gup_retries_max: usize,
}

impl KernelConfig {
    /// A small kernel for `era`: 16 frames, 8 tables, 3 mms, 3 CPUs, no files.
    pub fn new(era: Era) -> Self {
        KernelConfig {
            policy: era.policy(),
            nr_frames: 16,
            nr_tables: 8,
            nr_mms: 3,
            nr_cpus: 3,
            files: Vec::new(),
            gup_retries_max: 16,
        }
    }
}

/// One file's page cache: its pages, filled at boot and never evicted.
#[derive(Debug)]
pub struct File {
    /// The page-cache page of each file page.
    pub pages: Vec<Pfn>,
}

/// The modeled kernel.
#[derive(Debug)]
pub struct Kernel {
    /// The behaviour switches.
    pub policy: Policy,
    /// The frames.
    pub frames: FramePool,
    /// The PTE-table pages.
    pub tables: TablePool,
    /// The mm slots.
    pub mms: Vec<MmStruct>,
    /// The CPUs.
    pub cpus: Vec<Cpu>,
    /// The files.
    pub files: Vec<File>,
    /// The oracle of this execution.
    pub oracle: Oracle,
    pub(crate) gup_retries_max: usize,
}

impl Kernel {
    /// Boot: pools, mm 0 with an empty address space, files read into the page cache.
    ///
    /// Panics if the page cache does not fit in the frame pool: that is a configuration
    /// error of the caller, not a model state.
    pub fn new(config: &KernelConfig) -> Kernel {
        let mut k = Kernel {
            policy: config.policy,
            frames: FramePool::new(config.nr_frames),
            tables: TablePool::new(config.nr_tables),
            mms: (0..config.nr_mms).map(MmStruct::new).collect(),
            cpus: (0..config.nr_cpus).map(|_| Cpu::default()).collect(),
            files: Vec::new(),
            oracle: Oracle::new(config.nr_frames, config.nr_tables),
            gup_retries_max: config.gup_retries_max,
        };
        for &n in &config.files {
            let pages = (0..n)
                .map(|i| {
                    let pfn = k
                        .alloc_page(PageKind::PageCache)
                        .expect("page cache larger than the frame pool");
                    k.page(pfn)
                        .data
                        .store(Stamp::new(writer::FILE, i as u32 + 1).0, SeqCst);
                    pfn
                })
                .collect();
            k.files.push(File { pages });
        }
        // Every mm slot but 0 is dead until fork fills it.
        for mm in &k.mms[1..] {
            mm.mmap_lock.write().dead = true;
        }
        k
    }

    /// The mm in slot `mm`.
    pub fn mm(&self, mm: MmId) -> &MmStruct {
        &self.mms[mm]
    }

    /// The page of frame `pfn`.
    pub fn page(&self, pfn: Pfn) -> &Page {
        self.frames.page(pfn)
    }

    /// The page-cache page of file page `index`, if the file has one.
    pub fn file_page(&self, file: FileId, index: usize) -> Option<Pfn> {
        self.files.get(file)?.pages.get(index).copied()
    }

    /// Everything the oracle reported in this execution.
    pub fn violations(&self) -> Vec<Violation> {
        self.oracle.violations()
    }

    // ---- pages -------------------------------------------------------------------

    /// `alloc_page`: a zero-filled frame with refcount 1.
    pub(crate) fn alloc_page(&self, kind: PageKind) -> Result<Pfn, Errno> {
        let pfn = self.frames.pop_free().ok_or(Errno::ENOMEM)?;
        let page = self.page(pfn);
        page.data.store(Stamp::ZERO.0, SeqCst);
        page.mapcount.store(0, SeqCst);
        page.flags.store(
            if kind == PageKind::PageCache {
                flags::PAGECACHE
            } else {
                0
            },
            SeqCst,
        );
        page.refcount.store(1, SeqCst);
        self.oracle.on_page_alloc(pfn, kind);
        tracing::trace!(target: "cowbreak::mm", func = "alloc_page", pfn, ?kind);
        Ok(pfn)
    }

    /// `get_page`: take a reference on a page the caller knows is live.
    pub(crate) fn get_page(&self, pfn: Pfn, at: &'static str) {
        self.oracle.check_live(pfn, at);
        self.page(pfn).refcount.fetch_add(1, SeqCst);
    }

    /// `put_page` (`page_ref_sub` by `refs`): free the page when the last reference goes.
    pub(crate) fn put_page_refs(&self, pfn: Pfn, refs: i64, at: &'static str) {
        let old = self.page(pfn).refcount.fetch_sub(refs, SeqCst);
        if old < refs {
            self.oracle.report(
                ViolationKind::PageLifetime,
                at,
                format!("refcount of pfn {pfn} underflowed ({old} - {refs})"),
            );
        } else if old == refs && !is_zero_pfn(pfn) {
            self.free_page(pfn);
        }
    }

    /// `put_page`.
    pub(crate) fn put_page(&self, pfn: Pfn, at: &'static str) {
        self.put_page_refs(pfn, 1, at)
    }

    /// `__free_pages`: back to the pool.
    fn free_page(&self, pfn: Pfn) {
        tracing::trace!(target: "cowbreak::mm", func = "__free_pages", pfn);
        self.oracle.on_page_free(pfn);
        self.page(pfn).flags.store(0, SeqCst);
        self.frames.push_free(pfn);
    }

    /// `page_ref_add_unless(page, refs, 0)` (`try_get_page`, `try_grab_compound_head`):
    /// the speculative reference of fast GUP, which fails on a page whose refcount is 0
    /// (free, or being freed).
    pub(crate) fn page_ref_add_unless_zero(&self, pfn: Pfn, refs: i64) -> bool {
        let rc = &self.page(pfn).refcount;
        let mut cur = rc.load(SeqCst);
        loop {
            if cur <= 0 {
                return false;
            }
            match rc.compare_exchange(cur, cur + refs, SeqCst, SeqCst) {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
    }

    /// `vm_normal_page`: the page behind a present PTE, or `None` for the special zero
    /// page mapping.
    pub(crate) fn vm_normal_page(&self, pte: Pte) -> Option<Pfn> {
        if pte.special() {
            None
        } else {
            Some(pte.pfn())
        }
    }

    /// `PageAnon`.
    pub(crate) fn page_anon(&self, pfn: Pfn) -> bool {
        self.page(pfn).test(flags::ANON)
    }

    /// `page_add_new_anon_rmap`: the first mapping of a new anon page; from v5.19
    /// (`anon_exclusive`, 6c287605fd56) the page is marked PG_anon_exclusive.
    pub(crate) fn page_add_new_anon_rmap(&self, pfn: Pfn) {
        let page = self.page(pfn);
        page.mapcount.store(1, SeqCst);
        let mut f = flags::ANON;
        if self.policy.anon_exclusive {
            f |= flags::ANON_EXCLUSIVE;
        }
        page.flags.fetch_or(f, SeqCst);
    }

    /// `page_dup_rmap` / `page_add_file_rmap`: one more mapping.
    pub(crate) fn page_dup_rmap(&self, pfn: Pfn) {
        self.page(pfn).mapcount.fetch_add(1, SeqCst);
    }

    /// `page_remove_rmap`: one mapping fewer.
    pub(crate) fn page_remove_rmap(&self, pfn: Pfn, at: &'static str) {
        let old = self.page(pfn).mapcount.fetch_sub(1, SeqCst);
        if old <= 0 {
            self.oracle.report(
                ViolationKind::PageLifetime,
                at,
                format!("mapcount of pfn {pfn} underflowed"),
            );
        }
    }

    /// `trylock_page`.
    pub(crate) fn trylock_page(&self, pfn: Pfn) -> bool {
        self.page(pfn).flags.fetch_or(flags::LOCKED, SeqCst) & flags::LOCKED == 0
    }

    /// `lock_page`: sleeps until the page lock is free.
    pub(crate) fn lock_page(&self, pfn: Pfn) {
        while !self.trylock_page(pfn) {
            cowbreak_sync::spin_wait();
        }
    }

    /// `unlock_page`.
    pub(crate) fn unlock_page(&self, pfn: Pfn) {
        self.page(pfn).clear(flags::LOCKED);
    }

    /// `copy_user_highpage`: copy the contents of `from` into `to`.
    pub(crate) fn copy_user_highpage(&self, to: Pfn, from: Pfn) {
        self.oracle.check_live(from, "copy_user_highpage");
        let data = self.page(from).data.load(SeqCst);
        self.page(to).data.store(data, SeqCst);
    }

    // ---- page tables -------------------------------------------------------------

    /// `pmd_offset` + `READ_ONCE`: the PMD entry covering `addr`.
    pub(crate) fn pmd_read(&self, mm: MmId, addr: Addr) -> Pmd {
        Pmd(self.mm(mm).pmd[crate::pgtable::pmd_index(addr)].load(SeqCst))
    }

    /// The PTE table covering `addr`, if one is installed.
    pub(crate) fn pte_table(&self, mm: MmId, addr: Addr) -> Option<(TableId, &PteTable)> {
        let pmd = self.pmd_read(mm, addr);
        if pmd.is_huge() {
            return None;
        }
        (!pmd.is_none()).then(|| (pmd.table_id(), self.tables.table(pmd.table_id())))
    }

    /// `__pte_alloc`: install a PTE table under the PMD entry of `addr` if there is none.
    /// Called with `mmap_lock` held; takes the page-table lock to install.
    pub(crate) fn pte_alloc(&self, mm: MmId, addr: Addr) -> Result<(TableId, &PteTable), Errno> {
        if let Some(t) = self.pte_table(mm, addr) {
            return Ok(t);
        }
        let new = self.tables.alloc().ok_or(Errno::ENOMEM)?;
        self.oracle.on_table_alloc(new);
        let _ptl = self.mm(mm).page_table_lock.lock();
        let slot = &self.mm(mm).pmd[crate::pgtable::pmd_index(addr)];
        if Pmd(slot.load(SeqCst)).is_none() {
            // smp_wmb() in __pte_alloc: the zeroed table is visible before the PMD.
            fence(SeqCst);
            slot.store(Pmd::table(new).0, SeqCst);
            tracing::trace!(target: "cowbreak::mm", func = "__pte_alloc", mm, addr, table = new);
        } else {
            self.oracle.on_table_free(new);
            self.tables.free(new);
        }
        // A THP fault may have installed a huge PMD meanwhile (`pmd_trans_unstable`):
        // the caller retries the fault.
        self.pte_table(mm, addr).ok_or(Errno::EAGAIN)
    }

    /// `set_pte_at`: store a PTE (page-table lock held) and tell the oracle.
    pub(crate) fn set_pte_at(
        &self,
        mm: MmId,
        table: &PteTable,
        vma: &Vma,
        addr: Addr,
        pte: Pte,
        at: &'static str,
    ) {
        let old = Pte(table.entries[crate::pgtable::pte_index(addr)].swap(pte.0, SeqCst));
        tracing::trace!(target: "cowbreak::mm", func = at, mm, addr, old = ?old, new = ?pte, "set_pte_at");
        if pte.present() {
            self.oracle
                .on_map(mm, addr, pte.pfn(), vma.is_private(), at);
        }
    }

    /// `ptep_get_and_clear` (an xchg, a full barrier on x86) and tell the oracle.
    pub(crate) fn ptep_get_and_clear(
        &self,
        mm: MmId,
        table: &PteTable,
        addr: Addr,
        cause: UnmapCause,
        at: &'static str,
    ) -> Pte {
        let old = Pte(table.entries[crate::pgtable::pte_index(addr)].swap(0, SeqCst));
        fence(SeqCst);
        if old.present() {
            tracing::trace!(target: "cowbreak::mm", func = at, mm, addr, old = ?old, new = ?Pte::NONE, "ptep_get_and_clear");
            self.oracle.on_unmap(mm, addr, cause);
        }
        old
    }

    /// `ptep_set_wrprotect`: clear the write bit in place (a locked RMW on x86).
    pub(crate) fn ptep_set_wrprotect(
        &self,
        mm: MmId,
        table: &PteTable,
        addr: Addr,
        at: &'static str,
    ) {
        let old =
            Pte(table.entries[crate::pgtable::pte_index(addr)].fetch_and(!Pte::WRITE_BIT, SeqCst));
        tracing::trace!(target: "cowbreak::mm", func = at, mm, addr, old = ?old, new = ?old.wrprotect(), "ptep_set_wrprotect");
    }

    /// `ptep_set_access_flags`: update the young / dirty / write bits of a PTE whose page
    /// does not change (page-table lock held).
    pub(crate) fn ptep_set_access_flags(
        &self,
        mm: MmId,
        table: &PteTable,
        addr: Addr,
        pte: Pte,
        at: &'static str,
    ) {
        let old = Pte(table.entries[crate::pgtable::pte_index(addr)].swap(pte.0, SeqCst));
        debug_assert_eq!(
            old.pfn(),
            pte.pfn(),
            "ptep_set_access_flags changed the page"
        );
        tracing::trace!(target: "cowbreak::mm", func = at, mm, addr, old = ?old, new = ?pte, "ptep_set_access_flags");
    }

    /// `set_pmd_at` of a huge entry (PMD lock held) and tell the oracle.
    pub(crate) fn set_pmd_at(&self, mm: MmId, vma: &Vma, addr: Addr, pmd: Pmd, at: &'static str) {
        let old = Pmd(self.mm(mm).pmd[crate::pgtable::pmd_index(addr)].swap(pmd.0, SeqCst));
        tracing::trace!(target: "cowbreak::mm", func = at, mm, addr, old = ?old, new = ?pmd, "set_pmd_at");
        let base = crate::pgtable::pmd_start(addr);
        self.oracle
            .on_map_huge(mm, base, pmd.leaf().pfn(), vma.is_private(), at);
    }

    /// `pmdp_huge_get_and_clear` (an xchg) and tell the oracle.
    pub(crate) fn pmdp_huge_get_and_clear(
        &self,
        mm: MmId,
        addr: Addr,
        cause: UnmapCause,
        at: &'static str,
    ) -> Pmd {
        let old = Pmd(self.mm(mm).pmd[crate::pgtable::pmd_index(addr)].swap(0, SeqCst));
        fence(SeqCst);
        if old.is_huge() {
            tracing::trace!(target: "cowbreak::mm", func = at, mm, addr, old = ?old, new = ?Pmd::NONE, "pmdp_huge_get_and_clear");
            self.oracle
                .on_unmap(mm, crate::pgtable::pmd_start(addr), cause);
        }
        old
    }

    /// `pmdp_set_access_flags` / `touch_pmd`: new young / dirty / write bits on a huge
    /// PMD whose page does not change (PMD lock held).
    pub(crate) fn pmdp_set_access_flags(&self, mm: MmId, addr: Addr, pmd: Pmd, at: &'static str) {
        let old = Pmd(self.mm(mm).pmd[crate::pgtable::pmd_index(addr)].swap(pmd.0, SeqCst));
        debug_assert_eq!(
            old.leaf().pfn(),
            pmd.leaf().pfn(),
            "pmdp_set_access_flags changed the page"
        );
        tracing::trace!(target: "cowbreak::mm", func = at, mm, addr, old = ?old, new = ?pmd, "pmdp_set_access_flags");
    }

    /// `flush_tlb_mm_range` / `tlb_flush_mmu`: the TLB shootdown IPI from `cpu`.
    pub(crate) fn flush_tlb(&self, cpu: usize, at: &'static str) {
        self.ipi_sync(cpu, at);
    }

    // ---- end-of-execution accounting ----------------------------------------------

    /// The oracle's end-of-execution check: for every live frame, its refcount and
    /// mapcount against the page tables (walked for real) and the pins the ghost state
    /// knows of. Call it after every model thread has been joined.
    pub fn check_accounting(&self) {
        let mut maps = vec![0i64; self.frames.len()];
        for mm in &self.mms {
            for slot in &mm.pmd {
                let pmd = Pmd(slot.load(SeqCst));
                if pmd.is_none() {
                    continue;
                }
                if pmd.is_huge() {
                    if !pmd.leaf().special() {
                        maps[pmd.leaf().pfn() as usize] += 1;
                    }
                    continue;
                }
                for e in &self.tables.table(pmd.table_id()).entries {
                    let pte = Pte(e.load(SeqCst));
                    if pte.present() && !pte.special() {
                        maps[pte.pfn() as usize] += 1;
                    }
                }
            }
        }
        for pfn in (0..self.frames.len() as Pfn).filter(|&p| !is_zero_pfn(p)) {
            let Some(kind) = self.oracle.frame_live(pfn) else {
                if maps[pfn as usize] != 0 {
                    self.oracle.report(
                        ViolationKind::PageLifetime,
                        "check_accounting",
                        format!(
                            "freed pfn {pfn} is still mapped {} times",
                            maps[pfn as usize]
                        ),
                    );
                }
                continue;
            };
            let page = self.page(pfn);
            let (ghost_maps, pins) = self.oracle.expected_refs(pfn);
            let cache_ref = i64::from(kind == PageKind::PageCache);
            let want_count = maps[pfn as usize] + pins + cache_ref;
            let (count, mapcount) = (page.count(), page.mapcount());
            if count != want_count
                || mapcount != maps[pfn as usize]
                || ghost_maps != maps[pfn as usize]
            {
                self.oracle.report(
                    ViolationKind::Accounting,
                    "check_accounting",
                    format!(
                        "pfn {pfn}: refcount {count} mapcount {mapcount}, but {} PTEs map it and pins hold {pins}",
                        maps[pfn as usize]
                    ),
                );
            }
        }
    }
}
