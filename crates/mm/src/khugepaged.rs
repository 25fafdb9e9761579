//! khugepaged's collapse of a PMD range of small anonymous pages into a huge page
//! (mm/khugepaged.c `collapse_huge_page`, as `MADV_COLLAPSE` (v6.1, 7d8faaf15545) runs
//! it: no `max_ptes_none` / `max_ptes_shared` limits, the same locking and checks).
//!
//! The race with GUP-fast: `pmdp_collapse_flush` clears the PMD and flushes the TLB. On
//! x86 the flush is an IPI that waits for interrupts-off CPUs, so a GUP-fast that read
//! the old PMD has taken its reference before `__collapse_huge_page_isolate` checks the
//! refcount, and the collapse backs off. On arm64 the flush waits for nobody: a GUP-fast
//! can take its reference after the refcount check, see the PTE unchanged (the copy
//! clears it only later) and return the small page that the collapse then replaces
//! (70cbc3cc78a9, v6.0: GUP-fast rechecks the PMD too). And the old PTE table, deposited
//! with the huge PMD, is freed by the next zap of that PMD (`zap_deposited_table`, a
//! plain `pte_free`) while such a walker may still read it (2ba99c5e0881, v6.1:
//! `tlb_remove_table_sync_one()` after the flush waits the walkers out).
//!
//! The model's huge page holds one data word for its whole range (as every huge page of
//! the model does): the collapse copies the word of the page at the address asked for.

use crate::kernel::Kernel;
use crate::mm_types::MmId;
use crate::mmap::page_range;
use crate::oracle::UnmapCause;
use crate::page::{is_zero_pfn, PageKind, Pfn};
use crate::pgtable::{pmd_index, pmd_start, Addr, Pmd, Pte, PMD_SIZE};
use crate::Errno;

impl Kernel {
    /// `collapse LOC`: `madvise(MADV_COLLAPSE)` of the PMD range holding `addr` ->
    /// `hpage_collapse_scan_pmd` -> `collapse_huge_page`:
    /// 1. allocate the huge page, `mmap_write_lock`, `hugepage_vma_revalidate` (an
    ///    anonymous private vma covering the whole range) and `check_pmd_still_valid`
    ///    (a PTE table);
    /// 2. `anon_vma_lock_write`; under the PMD lock `pmdp_collapse_flush`
    ///    (`pmdp_huge_get_and_clear` + `flush_tlb_range`); with
    ///    `khugepaged_ipi_before_table_free` (2ba99c5e0881, v6.1)
    ///    `tlb_remove_table_sync_one()`;
    /// 3. under the PTE lock `__collapse_huge_page_isolate`: every present page
    ///    anonymous, at least one PTE writable, `trylock_page`, and
    ///    `is_refcount_suitable` (`page_count == total_mapcount`: any GUP reference or
    ///    pin refuses). On failure `pmd_populate` puts the old table back: EAGAIN;
    /// 4. `anon_vma_unlock_write`; `__collapse_huge_page_copy`: copy, then per page
    ///    `unlock_page`, under the PTE lock `ptep_clear` + `page_remove_rmap`, and
    ///    `free_page_and_swap_cache`;
    /// 5. `__SetPageUptodate`; under the PMD lock `page_add_new_anon_rmap`,
    ///    `pgtable_trans_huge_deposit` of the old table and `set_pmd_at` of the huge PMD.
    ///
    /// The mmap lock is held for write throughout, so slow GUP and faults wait; only
    /// GUP-fast (and rmap walks) run beside it.
    pub fn collapse_huge_page(&self, cpu: usize, mm: MmId, addr: Addr) -> Result<(), Errno> {
        let start = pmd_start(addr);
        let hpage = self.alloc_page(PageKind::Anon)?;
        let v = self.mmap_write_lock(mm);
        let fail = |e: Errno| {
            self.put_page(hpage, "collapse_huge_page");
            Err(e)
        };
        if v.dead {
            return fail(Errno::ESRCH);
        }
        let Some(vma) = v.lookup(start).filter(|x| {
            x.end >= start + PMD_SIZE && x.file_page(start).is_none() && x.is_private()
        }) else {
            return fail(Errno::EINVAL);
        };
        let old = self.pmd_read(mm, start);
        if old.is_none() || old.is_huge() {
            return fail(Errno::EINVAL);
        }
        let table = self.tables.table(old.table_id());
        // From v6.4 (per-VMA locks) the vma is write-locked against faults.
        self.vma_start_write(mm, &vma);
        tracing::trace!(target: "cowbreak::mm", cpu, mm, func = "collapse_huge_page", addr = start, table = old.table_id());
        let anon_vma = self.mo.down_write(&self.anon_vma_lock);
        // pmdp_collapse_flush, under the PMD lock.
        let ptl = self.mo.spin_lock(&self.mm(mm).page_table_lock);
        self.pmdp_huge_get_and_clear(mm, start, UnmapCause::Replace, "pmdp_collapse_flush");
        self.flush_tlb(cpu, "pmdp_collapse_flush");
        drop(ptl);
        if self.policy.khugepaged_ipi_before_table_free {
            self.tlb_remove_table_sync_one(cpu);
        }
        // __collapse_huge_page_isolate, under the PTE lock.
        let ptl = self.mo.spin_lock(&self.mm(mm).page_table_lock);
        let mut pages: Vec<(Addr, Pfn)> = Vec::new();
        let mut writable = false;
        let mut refused = None;
        for a in page_range(start, start + PMD_SIZE) {
            let pte = self.ptep_get(table, a);
            if !pte.present() {
                if pte != Pte::NONE {
                    refused = Some("a PTE not present (a migration entry)");
                    break;
                }
                continue;
            }
            let Some(pfn) = self.vm_normal_page(pte).filter(|&p| !is_zero_pfn(p)) else {
                continue;
            };
            if !self.page_anon(pfn) {
                refused = Some("not an anonymous page");
                break;
            }
            if !self.trylock_page(pfn) {
                refused = Some("page locked");
                break;
            }
            pages.push((a, pfn));
            // is_refcount_suitable: no reference beyond the mappings.
            if self.page_count(pfn) != self.page_mapcount(pfn) {
                refused = Some("page referenced beyond its mappings (GUP)");
                break;
            }
            writable |= pte.write();
        }
        if refused.is_none() && !writable {
            refused = Some("no writable PTE");
        }
        drop(ptl);
        if let Some(why) = refused {
            for &(_, pfn) in &pages {
                self.unlock_page(pfn);
            }
            // pmd_populate(mm, pmd, pmd_pgtable(_pmd)) under the PMD lock.
            let ptl = self.mo.spin_lock(&self.mm(mm).page_table_lock);
            self.mo
                .write_once(&self.mm(mm).pmd[pmd_index(start)], old.0);
            drop(ptl);
            drop(anon_vma);
            tracing::trace!(target: "cowbreak::mm", cpu, mm, func = "__collapse_huge_page_isolate", addr = start, "refused: {why}");
            return fail(Errno::EAGAIN);
        }
        drop(anon_vma);
        // __collapse_huge_page_copy.
        if let Some(&(_, from)) = pages.iter().find(|&&(a, _)| a == addr).or(pages.first()) {
            self.copy_user_highpage(hpage, from);
        }
        for &(a, pfn) in &pages {
            self.unlock_page(pfn);
            let ptl = self.mo.spin_lock(&self.mm(mm).page_table_lock);
            self.ptep_get_and_clear(
                mm,
                table,
                a,
                UnmapCause::Replace,
                "__collapse_huge_page_copy",
            );
            self.page_remove_rmap(pfn, "__collapse_huge_page_copy");
            drop(ptl);
            self.put_page(pfn, "free_page_and_swap_cache");
        }
        self.__SetPageUptodate(hpage);
        let entry = Pmd::huge(crate::memory::maybe_mkwrite(
            Pte::mk(hpage, false).mkdirty(),
            &vma,
        ));
        let ptl = self.mo.spin_lock(&self.mm(mm).page_table_lock);
        self.page_add_new_anon_rmap(hpage);
        self.mm(mm)
            .deposited
            .with(|d| d[pmd_index(start)] = Some(old.table_id()));
        self.set_pmd_at(mm, &vma, start, entry, "collapse_huge_page");
        drop(ptl);
        Ok(())
    }

    /// `zap_deposited_table`: the PTE table deposited with the huge PMD at `addr` (by a
    /// collapse), withdrawn and freed with a plain `pte_free` (not `tlb_remove_table`)
    /// when the huge PMD is zapped. Called with the PMD lock held.
    pub(crate) fn zap_deposited_table(&self, mm: MmId, addr: Addr) {
        let slot = pmd_index(addr);
        if let Some(t) = self.mm(mm).deposited.with(|d| d[slot].take()) {
            // The page goes back to the allocator, and its next user writes it (a new
            // table is cleared by `pte_alloc_one`): the model clears it now, entries the
            // collapse already cleared, so that a walker still reading it conflicts with
            // the free (loom orders only accesses that conflict).
            for e in &self.tables.table(t).entries {
                self.mo.write_once(e, Pte::NONE.0);
            }
            self.oracle.on_table_free(t);
            self.tables.free(t);
            tracing::trace!(target: "cowbreak::mm", mm, func = "zap_deposited_table", addr, table = t);
        }
    }
}
