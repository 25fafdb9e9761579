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
use crate::mm_types::{Backing, FileId, MmId};
use crate::mmap::page_range;
use crate::oracle::{UnmapCause, ViolationKind};
use crate::page::{is_zero_pfn, PageKind, Pfn};
use crate::pgtable::{
    pmd_index, pmd_start, Addr, Pmd, Pte, TableId, PAGE_SIZE, PMD_SIZE, PTRS_PER_PTE,
};
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
        if self.policy.khugepaged_ipi_before_table_free() {
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

/// How `retract_page_tables` frees a table it took away.
#[derive(Copy, Clone, PartialEq, Eq)]
enum TableFree {
    /// `pte_free`: at once (before v6.6, after 2ba99c5e0881's IPI where the era has it).
    Now,
    /// `pte_free_defer` (v6.6): after an RCU grace period, which waits for every
    /// interrupts-off GUP-fast.
    Defer,
}

impl Kernel {
    /// `collapse LOC` on a file mapping: `madvise(MADV_COLLAPSE)` of the PMD range holding
    /// `addr` in a file vma -> `madvise_collapse`, which checks the vma under
    /// `mmap_read_lock` (`hugepage_vma_revalidate`: the vma covers the whole PMD range,
    /// whose file offset is huge-page aligned) and drops the lock ->
    /// `hpage_collapse_scan_file` -> `collapse_file` (khugepaged runs the same for a
    /// shmem file). Only with `khugepaged_file_collapse` (f3f0e1d2150b, v4.8): before,
    /// EINVAL; `retract_page_tables` changes with `khugepaged_ipi_before_table_free`
    /// (2ba99c5e0881, v6.1) and `retract_without_mmap_lock` (1d65b771bc08, v6.6).
    ///
    /// The model's file is shmem-like (the page cache is the only copy). The huge page is
    /// modeled as [`PTRS_PER_PTE`] new frames, one per subpage, so that each file page
    /// keeps its own data. `collapse_pte_mapped_thp` (MADV_COLLAPSE mapping the huge
    /// page by PMD in the caller's mm at once) is not modeled: every mm faults the
    /// subpages in again on PTEs.
    pub fn collapse_file_range(&self, cpu: usize, mm: MmId, addr: Addr) -> Result<(), Errno> {
        // A kernel whose page cache was built fixed (no collapse was planned) refuses too.
        if !self.policy.khugepaged_file_collapse() || !self.page_cache_mutable {
            return Err(Errno::EINVAL);
        }
        let start = pmd_start(addr);
        let (file, index) = {
            let v = self.mo.down_read(&self.mm(mm).mmap_lock);
            if v.dead {
                return Err(Errno::ESRCH);
            }
            let vma = v
                .lookup(start)
                .filter(|x| x.end >= start + PMD_SIZE)
                .ok_or(Errno::EINVAL)?;
            vma.file_page(start).ok_or(Errno::EINVAL)?
        };
        let len = self.files.get(file).map_or(0, |f| f.len);
        if index % PTRS_PER_PTE != 0 || index + PTRS_PER_PTE > len {
            return Err(Errno::EINVAL);
        }
        self.collapse_file(cpu, file, index)
    }

    /// `collapse_file` of file pages `[index, index + PTRS_PER_PTE)`:
    /// 1. allocate the huge page, locked (`__folio_set_locked`);
    /// 2. per small page: `find_lock_page` (a reference and the page lock), and if it is
    ///    mapped `try_to_unmap` (`TTU_BATCH_FLUSH`: every PTE mapping it, in every mm the
    ///    file's `i_mmap` reaches, cleared under the PTE lock), then one
    ///    `try_to_unmap_flush`;
    /// 3. per small page, `page_ref_freeze(page, 2)` (the page cache's reference and
    ///    ours; the isolation's is folded into ours): any other reference (a GUP pin, a
    ///    mapping that came back) refuses the collapse (EAGAIN), which unfreezes, unlocks
    ///    and drops everything; the unmapped PTEs are simply faulted in again;
    /// 4. copy each page into its subpage; store the subpages in the page cache in place
    ///    of the small pages; free the small pages (`page_ref_unfreeze(page, 1)`,
    ///    `unlock_page`, `put_page`);
    /// 5. `retract_page_tables`, then unlock the huge page: until then a fault on the
    ///    range waits for its lock in `filemap_fault`, so nothing maps it into a table
    ///    being retracted.
    pub(crate) fn collapse_file(
        &self,
        cpu: usize,
        file: FileId,
        index: usize,
    ) -> Result<(), Errno> {
        let mut new = [0 as Pfn; PTRS_PER_PTE];
        for i in 0..PTRS_PER_PTE {
            match self.alloc_page(PageKind::PageCache) {
                Ok(p) => new[i] = p,
                Err(e) => {
                    for &p in &new[..i] {
                        self.put_page(p, "collapse_file");
                    }
                    return Err(e);
                }
            }
        }
        for &p in &new {
            self.trylock_page(p);
        }
        tracing::trace!(target: "cowbreak::mm", cpu, func = "collapse_file", file, index, ?new);
        let mut old = [0 as Pfn; PTRS_PER_PTE];
        for (i, slot) in old.iter_mut().enumerate() {
            let pfn = self
                .file_page(file, index + i)
                .expect("checked by the caller");
            // find_lock_page: the page is in the page cache, whose reference keeps it.
            self.get_page(pfn, "collapse_file");
            self.lock_page(pfn);
            *slot = pfn;
            if self.page_mapcount(pfn) > 0 {
                self.try_to_unmap_file(file, index + i, pfn);
            }
        }
        self.flush_tlb(cpu, "try_to_unmap_flush");
        let mut frozen = 0;
        for &pfn in &old {
            if self.mo.cmpxchg(&self.page(pfn).refcount, 2, 0) != 2 {
                break;
            }
            frozen += 1;
        }
        if frozen < PTRS_PER_PTE {
            tracing::trace!(target: "cowbreak::mm", cpu, func = "collapse_file", file, index, pfn = old[frozen], "refused: page referenced beyond the page cache (GUP)");
            for (i, &pfn) in old.iter().enumerate() {
                if i < frozen {
                    self.mo.atomic_set(&self.page(pfn).refcount, 2);
                }
                self.unlock_page(pfn);
                self.put_page(pfn, "collapse_file");
            }
            for &p in &new {
                self.unlock_page(p);
                self.put_page(p, "collapse_file");
            }
            return Err(Errno::EAGAIN);
        }
        for (&to, &from) in new.iter().zip(&old) {
            self.copy_user_highpage(to, from);
            self.__SetPageUptodate(to);
        }
        for (i, &p) in new.iter().enumerate() {
            self.file_page_set(file, index + i, p);
        }
        for &pfn in &old {
            // folio->mapping = NULL; folio_ref_unfreeze(folio, 1); unlock; put.
            self.mo.atomic_set(&self.page(pfn).refcount, 1);
            self.unlock_page(pfn);
            self.put_page(pfn, "collapse_file");
        }
        self.retract_page_tables(cpu, file, index);
        for &p in &new {
            self.unlock_page(p);
        }
        Ok(())
    }

    /// The PTEs of file page `index` of `file` in every mm: `(mm, addr, vma slot,
    /// whether the whole PMD range around addr is that vma's and maps the file from a
    /// huge-page-aligned offset)`, as the file's `i_mmap` tree holds the vmas.
    fn file_mappings(&self, file: FileId, index: usize) -> Vec<(MmId, Addr, usize, bool)> {
        let mut out = Vec::new();
        for mm in 0..self.mms.len() {
            self.mm(mm).i_mmap.with(|list| {
                for vma in list {
                    let Backing::File { file: f, pgoff } = vma.backing else {
                        continue;
                    };
                    let pages = (vma.end - vma.start) / PAGE_SIZE;
                    let index = index as u64;
                    if f != file || index < pgoff || index >= pgoff + pages {
                        continue;
                    }
                    let addr = vma.start + (index - pgoff) * PAGE_SIZE;
                    let whole = addr.is_multiple_of(PMD_SIZE) && addr + PMD_SIZE <= vma.end;
                    out.push((mm, addr, vma.slot, whole));
                }
            });
        }
        out
    }

    /// `try_to_unmap` of page-cache page `pfn` (file page `index`): `rmap_walk_file` under
    /// the i_mmap lock (the model's rmap lock), and in each vma `try_to_unmap_one` under
    /// the PTE lock: clear the PTE if it maps the page, `page_remove_rmap`, drop the
    /// mapping's reference. The TLB flush is the caller's (`TTU_BATCH_FLUSH`).
    fn try_to_unmap_file(&self, file: FileId, index: usize, pfn: Pfn) {
        let _rmap = self.mo.down_read(&self.anon_vma_lock);
        for (mm, addr, _, _) in self.file_mappings(file, index) {
            let Some((id, table)) = self.pte_table(mm, addr) else {
                continue;
            };
            let Some(_ptl) = self.pte_offset_map_lock(mm, addr, id, "try_to_unmap_one") else {
                continue;
            };
            let pte = self.ptep_get(table, addr);
            if pte.present() && !pte.special() && pte.pfn() == pfn {
                self.ptep_get_and_clear(mm, table, addr, UnmapCause::Replace, "try_to_unmap_one");
                self.page_remove_rmap(pfn, "try_to_unmap_one");
                self.put_page(pfn, "try_to_unmap_one");
            }
        }
    }

    /// `retract_page_tables(mapping, pgoff)`: take the PTE table of the huge page's range
    /// away from every vma that maps the whole range from an aligned offset, so that it
    /// can fault the huge page in on a PMD. A vma with an `anon_vma` is skipped (its table
    /// may hold COW copies, private anonymous pages).
    /// - Before v6.6: `mmap_write_trylock` of each mm (skipped if that fails: khugepaged
    ///   comes back later), then `collapse_and_free_pmd`: under the PMD lock
    ///   `pmdp_collapse_flush` (clear the PMD, flush the TLB), with
    ///   `khugepaged_ipi_before_table_free` (2ba99c5e0881, v6.1)
    ///   `tlb_remove_table_sync_one()`, then `pte_free` at once.
    /// - `retract_without_mmap_lock` (1d65b771bc08, v6.6): no mmap lock; under the i_mmap
    ///   lock, the `anon_vma` check, then under the PMD and PTE locks the check again and
    ///   `pmdp_collapse_flush`, then `pte_free_defer` (freed after an RCU grace period).
    ///   Walkers that hold only the mmap read lock (slow GUP, faults, MADV_DONTNEED) can
    ///   be in the table meanwhile: `pte_offset_map_recheck` (0d940a9b270b) is what makes
    ///   them notice.
    fn retract_page_tables(&self, cpu: usize, file: FileId, index: usize) {
        let _i_mmap = self.mo.down_read(&self.anon_vma_lock);
        for (mm, addr, slot, whole) in self.file_mappings(file, index) {
            if !whole || self.vma_anon_vma(mm, slot) {
                continue;
            }
            if self.policy.retract_without_mmap_lock() {
                let ptl = self.mo.spin_lock(&self.mm(mm).page_table_lock);
                if self.vma_anon_vma(mm, slot) {
                    continue;
                }
                let Some(id) = self.pmdp_collapse_flush(cpu, mm, addr) else {
                    continue;
                };
                drop(ptl);
                self.pte_free(cpu, mm, addr, id, TableFree::Defer);
            } else {
                let Some(v) = self.mmap_write_trylock(mm) else {
                    tracing::trace!(target: "cowbreak::mm", cpu, mm, func = "retract_page_tables", addr, "mmap_write_trylock failed: left for later");
                    continue;
                };
                let Some(vma) = v.lookup(addr).filter(|x| !v.dead && x.slot == slot) else {
                    continue;
                };
                self.vma_start_write(mm, &vma);
                let ptl = self.mo.spin_lock(&self.mm(mm).page_table_lock);
                let Some(id) = self.pmdp_collapse_flush(cpu, mm, addr) else {
                    continue;
                };
                drop(ptl);
                if self.policy.khugepaged_ipi_before_table_free() {
                    self.tlb_remove_table_sync_one(cpu);
                }
                self.pte_free(cpu, mm, addr, id, TableFree::Now);
                drop(v);
            }
        }
    }

    /// `pmdp_collapse_flush` of the PMD of `addr` if it points at a PTE table (called
    /// with the PMD lock): clear it and flush the TLB; the table's id.
    fn pmdp_collapse_flush(&self, cpu: usize, mm: MmId, addr: Addr) -> Option<TableId> {
        let pmd = self.pmd_recheck(mm, addr);
        if pmd.is_none() || pmd.is_huge() {
            return None;
        }
        self.pmdp_huge_get_and_clear(mm, addr, UnmapCause::Replace, "pmdp_collapse_flush");
        self.flush_tlb(cpu, "pmdp_collapse_flush");
        tracing::trace!(target: "cowbreak::mm", cpu, mm, func = "retract_page_tables", addr, table = pmd.table_id(), "pmdp_collapse_flush");
        Some(pmd.table_id())
    }

    /// `mm_dec_nr_ptes` and `pte_free` / `pte_free_defer` of the table `id` retracted from
    /// `addr` of `mm`. The oracle reports a table that still maps a page (a walker put an
    /// entry in it after it was taken away). The page goes back to the allocator and its
    /// next user clears it: the model clears it now, so that a walker still reading it
    /// conflicts with the free.
    fn pte_free(&self, cpu: usize, mm: MmId, addr: Addr, id: TableId, how: TableFree) {
        if how == TableFree::Defer {
            self.synchronize_rcu(cpu, "pte_free_defer");
        }
        let table = self.tables.table(id);
        for (i, e) in table.entries.iter().enumerate() {
            let pte = Pte(self.mo.read_once(e));
            if pte.present() && !pte.special() {
                self.oracle.report(
                    ViolationKind::PgtableLifetime,
                    "retract_page_tables",
                    format!(
                        "PTE table {id} of mm{mm} freed while it still maps pfn {} at {:#x}",
                        pte.pfn(),
                        pmd_start(addr) + i as Addr * PAGE_SIZE
                    ),
                );
            }
            self.mo.write_once(e, Pte::NONE.0);
        }
        self.oracle.on_table_free(id);
        self.tables.free(id);
        tracing::trace!(target: "cowbreak::mm", cpu, mm, func = if how == TableFree::Now { "pte_free" } else { "pte_free_defer" }, addr, table = id);
    }
}
