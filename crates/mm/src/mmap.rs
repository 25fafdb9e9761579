//! Address-space operations: mmap, munmap, MADV_DONTNEED, mprotect, exit (mm/mmap.c,
//! mm/madvise.c, mm/mprotect.c, mm/memory.c zap and free_pgtables) and fork
//! (kernel/fork.c `dup_mmap`, mm/memory.c `copy_page_range`).

use crate::kernel::Kernel;
use crate::mm_types::{is_cow_mapping, vm, Backing, MmId, Vma, Vmas};
use crate::oracle::UnmapCause;
use crate::page::{flags as pg, PageKind, Pfn};
use crate::pgtable::{
    pmd_index, Addr, Pmd, Pte, PteTable, TableId, PAGE_SIZE, PMD_SIZE, TASK_SIZE,
};
use crate::Errno;

/// What an mmap maps.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MapKind {
    /// `MAP_PRIVATE | MAP_ANONYMOUS`.
    PrivateAnon,
    /// `MAP_PRIVATE` of a file (pages start as the page cache's, COW on write).
    PrivateFile(usize),
    /// `MAP_SHARED` of a file.
    SharedFile(usize),
}

/// `PROT_*`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Prot {
    /// `PROT_READ`.
    pub read: bool,
    /// `PROT_WRITE`.
    pub write: bool,
}

impl Prot {
    /// `PROT_READ`.
    pub const R: Prot = Prot {
        read: true,
        write: false,
    };
    /// `PROT_READ | PROT_WRITE`.
    pub const RW: Prot = Prot {
        read: true,
        write: true,
    };
    /// `PROT_NONE`.
    pub const NONE: Prot = Prot {
        read: false,
        write: false,
    };
}

/// The page addresses in `[start, end)`.
pub(crate) fn page_range(start: Addr, end: Addr) -> impl Iterator<Item = Addr> {
    (start..end).step_by(PAGE_SIZE as usize)
}

/// Split the vmas of `v` so that `start` and `end` fall on vma boundaries
/// (`split_vma`).
fn split_at(v: &mut Vmas, start: Addr, end: Addr, mut made: impl FnMut(usize, usize)) {
    for cut in [start, end] {
        if let Some(i) = v.list.iter().position(|x| x.start < cut && cut < x.end) {
            let mut hi = v.list[i];
            hi.slot = v.new_slot();
            made(v.list[i].slot, hi.slot);
            if let Backing::File { file, pgoff } = hi.backing {
                hi.backing = Backing::File {
                    file,
                    pgoff: pgoff + (cut - hi.start) / PAGE_SIZE,
                };
            }
            hi.start = cut;
            v.list[i].end = cut;
            v.list.insert(i + 1, hi);
        }
    }
}

/// The checks of the madvise / mprotect family: the address space is alive (ESRCH) and
/// every page of `[start, end)` is inside a vma (ENOMEM).
fn check_mapped(v: &Vmas, start: Addr, end: Addr) -> Result<(), Errno> {
    if v.dead {
        return Err(Errno::ESRCH);
    }
    if page_range(start, end).any(|a| v.lookup(a).is_none()) {
        return Err(Errno::ENOMEM);
    }
    Ok(())
}

/// The syscalls' argument checks: page-aligned, non-empty, below TASK_SIZE; returns the end.
fn check_range(start: Addr, len: u64) -> Result<Addr, Errno> {
    let end = start.checked_add(len).ok_or(Errno::EINVAL)?;
    if !start.is_multiple_of(PAGE_SIZE)
        || len == 0
        || !len.is_multiple_of(PAGE_SIZE)
        || end > TASK_SIZE
    {
        return Err(Errno::EINVAL);
    }
    Ok(end)
}

impl Kernel {
    /// `do_mmap` with MAP_FIXED_NOREPLACE: a new vma at `start`. Private mappings get
    /// VM_MAYREAD | VM_MAYWRITE whatever the file's mode (they can always COW); shared
    /// ones VM_SHARED | VM_MAYSHARE, and VM_MAYWRITE only when mapped writable (the model's
    /// stand-in for a file opened read-only).
    pub fn mmap(
        &self,
        mm: MmId,
        start: Addr,
        len: u64,
        kind: MapKind,
        prot: Prot,
    ) -> Result<Addr, Errno> {
        let end = check_range(start, len)?;
        let mut v = self.mmap_write_lock(mm);
        if v.dead {
            return Err(Errno::ESRCH);
        }
        if v.list.iter().any(|x| x.start < end && start < x.end) {
            return Err(Errno::EEXIST);
        }
        let mut flags = 0;
        if prot.read {
            flags |= vm::READ;
        }
        if prot.write {
            flags |= vm::WRITE;
        }
        let backing = match kind {
            MapKind::PrivateAnon => {
                flags |= vm::MAYREAD | vm::MAYWRITE;
                Backing::Anon
            }
            MapKind::PrivateFile(file) => {
                flags |= vm::MAYREAD | vm::MAYWRITE;
                Backing::File { file, pgoff: 0 }
            }
            MapKind::SharedFile(file) => {
                flags |= vm::MAYREAD | vm::SHARED | vm::MAYSHARE;
                if prot.write {
                    flags |= vm::MAYWRITE;
                }
                Backing::File { file, pgoff: 0 }
            }
        };
        if let Backing::File { file, .. } = backing {
            let pages = self.files.get(file).ok_or(Errno::EBADF)?.len as u64;
            if len / PAGE_SIZE > pages {
                return Err(Errno::EINVAL);
            }
        }
        let vma = Vma {
            start,
            end,
            flags,
            backing,
            slot: v.new_slot(),
        };
        self.vm_flags_reset(mm, &vma);
        let at = v.list.partition_point(|x| x.start < start);
        v.list.insert(at, vma);
        tracing::trace!(target: "cowbreak::mm", mm, func = "do_mmap", addr = start, end, flags = %vm::names(flags));
        Ok(start)
    }

    /// The PTE table of `addr` in `mm`, locked: `pte_offset_map_lock`, looking at the PMD
    /// again when it fails (`change_pmd_range`'s retry on -EAGAIN); `None` once no table is
    /// there.
    fn pte_table_locked(
        &self,
        mm: MmId,
        addr: Addr,
        at: &'static str,
    ) -> Option<(&PteTable, cowbreak_sync::MutexGuard<'_, ()>)> {
        loop {
            let (id, table) = self.pte_table(mm, addr)?;
            if let Some(ptl) = self.pte_offset_map_lock(mm, addr, id, at) {
                return Some((table, ptl));
            }
        }
    }

    /// `zap_pte_range` over `[start, end)` of `mm`: under the page-table lock clear each
    /// PTE (`ptep_get_and_clear_full`) and `page_remove_rmap` its page; the pages are
    /// batched in the mmu_gather and freed by the caller after the TLB flush
    /// (`tlb_finish_mmu`), never before.
    fn zap_pte_range(&self, mm: MmId, start: Addr, end: Addr, batch: &mut Vec<Pfn>) {
        let mut addr = start;
        while addr < end {
            let pmd_end = ((addr / PMD_SIZE) + 1) * PMD_SIZE;
            let stop = end.min(pmd_end);
            if self.pmd_read(mm, addr).is_huge() {
                // zap_huge_pmd: callers refuse ranges that would split a huge PMD.
                let _ptl = self.mo.spin_lock(&self.mm(mm).page_table_lock);
                let old =
                    self.pmdp_huge_get_and_clear(mm, addr, UnmapCause::Discard, "zap_huge_pmd");
                if old.is_huge() && !old.leaf().special() {
                    self.page_remove_rmap(old.leaf().pfn(), "zap_huge_pmd");
                    batch.push(old.leaf().pfn());
                }
                if old.is_huge() {
                    self.zap_deposited_table(mm, addr);
                }
            } else if let Some((id, table)) = self.pte_table(mm, addr) {
                // pte_offset_map_lock failing: the table went (retract_page_tables);
                // zap_pmd_range looks at the PMD again.
                let Some(_ptl) = self.pte_offset_map_lock(mm, addr, id, "zap_pte_range") else {
                    continue;
                };
                for a in page_range(addr, stop) {
                    // A migration entry is cleared too (pte_clear_not_present_full): its
                    // page's mapping was already removed when the entry was installed.
                    let old =
                        self.ptep_get_and_clear(mm, table, a, UnmapCause::Discard, "zap_pte_range");
                    if old.present() {
                        if let Some(pfn) = self.vm_normal_page(old) {
                            self.page_remove_rmap(pfn, "zap_pte_range");
                            batch.push(pfn);
                        }
                    }
                }
            }
            addr = stop;
        }
    }

    /// Whether `[start, end)` cuts through a huge PMD of `mm`: that needs
    /// `split_huge_pmd`, which the model does not have, so the caller refuses (EINVAL).
    fn splits_huge_pmd(&self, mm: MmId, start: Addr, end: Addr) -> bool {
        [start, end]
            .iter()
            .any(|&cut| cut % PMD_SIZE != 0 && cut < TASK_SIZE && self.pmd_read(mm, cut).is_huge())
    }

    /// `__split_vma` at `start` and `end` (`vma_prepare` write-locks the vma split; the
    /// new one gets its own lock and the `anon_vma`), then `vma_start_write` of every
    /// vma inside `[start, end)`, as `vm_flags_reset` and munmap's detach do.
    fn split_vmas(&self, mm: MmId, v: &mut Vmas, start: Addr, end: Addr) {
        for x in v.list.iter().filter(|x| x.start < end && start < x.end) {
            self.vma_start_write(mm, x);
        }
        split_at(v, start, end, |from, to| {
            self.vma_dup_state(mm, from, mm, to)
        });
    }

    /// `madvise(MADV_HUGEPAGE)`: set VM_HUGEPAGE on the vmas of `[start, start + len)`,
    /// so that faults there map huge PMDs (`do_huge_pmd_anonymous_page`).
    pub fn madvise_hugepage(&self, mm: MmId, start: Addr, len: u64) -> Result<(), Errno> {
        let end = check_range(start, len)?;
        let mut v = self.mmap_write_lock(mm);
        check_mapped(&v, start, end)?;
        self.split_vmas(mm, &mut v, start, end);
        for x in v
            .list
            .iter_mut()
            .filter(|x| start <= x.start && x.end <= end)
        {
            x.flags |= vm::HUGEPAGE;
            self.vm_flags_reset(mm, x);
        }
        tracing::trace!(target: "cowbreak::mm", mm, func = "madvise_hugepage", addr = start, end);
        Ok(())
    }

    /// `tlb_finish_mmu` -> `tlb_flush_mmu`: flush the TLB ([`flush_tlb`](Self::flush_tlb):
    /// an IPI on x86, a broadcast TLBI on arm64), free the batched pages
    /// (`release_pages`), and free the page tables (`tlb_table_flush`: with
    /// `rcu_table_free` after an RCU-sched grace period, [`tlb_remove_table`](Self)).
    fn tlb_finish_mmu(&self, cpu: usize, pages: Vec<Pfn>, tables: Vec<usize>) {
        self.flush_tlb(cpu, "tlb_finish_mmu");
        for pfn in pages {
            self.put_page(pfn, "tlb_finish_mmu");
        }
        if !tables.is_empty() {
            self.tlb_remove_table(cpu);
        }
        for t in tables {
            self.oracle.on_table_free(t);
            self.tables.free(t);
            tracing::trace!(target: "cowbreak::mm", cpu, func = "pte_free", table = t);
        }
    }

    /// `free_pgtables` -> `free_pte_range`: for every PMD entry in `[start, end)` that no
    /// remaining vma of `v` needs, clear the PMD and queue the PTE table for freeing
    /// after the TLB flush (`pte_free_tlb` / `tlb_remove_table`).
    fn free_pgtables(&self, mm: MmId, v: &Vmas, start: Addr, end: Addr) -> Vec<usize> {
        let mut freed = Vec::new();
        // unlink_anon_vmas / unlink_file_vma: after this, rmap walks (and
        // `retract_page_tables`) no longer reach these tables, and a walk still under way
        // has finished.
        let rmap = self.mo.down_write(&self.anon_vma_lock);
        self.mm(mm).i_mmap.with(|t| t.clone_from(&v.list));
        drop(rmap);
        let first = start / PMD_SIZE;
        let last = end.div_ceil(PMD_SIZE);
        for i in first..last {
            let (lo, hi) = (i * PMD_SIZE, (i + 1) * PMD_SIZE);
            if v.list.iter().any(|x| x.start < hi && lo < x.end) {
                continue;
            }
            // pmd_pgtable(*pmd); pmd_clear(pmd): READ_ONCE, then WRITE_ONCE of none.
            let slot = &self.mm(mm).pmd[pmd_index(lo)];
            let pmd = Pmd(self.mo.read_once(slot));
            if !pmd.is_none() {
                self.mo.write_once(slot, Pmd::NONE.0);
            }
            if !pmd.is_none() && !pmd.is_huge() {
                tracing::trace!(target: "cowbreak::mm", mm, func = "free_pte_range", addr = lo, table = pmd.table_id(), "pmd_clear");
                freed.push(pmd.table_id());
            }
        }
        freed
    }

    /// `__do_munmap` -> `unmap_region`: remove the vmas in `[start, end)`, zap their
    /// PTEs, free the page tables nobody else needs, flush, free. Holds `mmap_lock` for
    /// write.
    pub fn munmap(&self, cpu: usize, mm: MmId, start: Addr, len: u64) -> Result<(), Errno> {
        let end = check_range(start, len)?;
        let mut v = self.mmap_write_lock(mm);
        if v.dead {
            return Err(Errno::ESRCH);
        }
        if self.splits_huge_pmd(mm, start, end) {
            return Err(Errno::EINVAL);
        }
        self.split_vmas(mm, &mut v, start, end);
        v.list.retain(|x| !(start <= x.start && x.end <= end));
        tracing::trace!(target: "cowbreak::mm", cpu, mm, func = "__do_munmap", addr = start, end);
        let mut pages = Vec::new();
        self.zap_pte_range(mm, start, end, &mut pages);
        let tables = self.free_pgtables(mm, &v, start, end);
        self.tlb_finish_mmu(cpu, pages, tables);
        Ok(())
    }

    /// `madvise(MADV_DONTNEED)` -> `zap_page_range`: under `mmap_lock` for read, zap the
    /// PTEs, flush, free; the vmas and page tables stay.
    pub fn madvise_dontneed(
        &self,
        cpu: usize,
        mm: MmId,
        start: Addr,
        len: u64,
    ) -> Result<(), Errno> {
        let end = check_range(start, len)?;
        let v = self.mo.down_read(&self.mm(mm).mmap_lock);
        check_mapped(&v, start, end)?;
        if self.splits_huge_pmd(mm, start, end) {
            return Err(Errno::EINVAL);
        }
        tracing::trace!(target: "cowbreak::mm", cpu, mm, func = "madvise_dontneed", addr = start, end);
        let mut pages = Vec::new();
        self.zap_pte_range(mm, start, end, &mut pages);
        self.tlb_finish_mmu(cpu, pages, Vec::new());
        Ok(())
    }

    /// `mprotect` -> `mprotect_fixup` / `change_pte_range`: new vm_flags for the range
    /// (EACCES if it asks for write without VM_MAYWRITE); removing write write-protects
    /// every PTE, adding it leaves PTEs read-only for the next write fault to fix. Then a
    /// TLB flush.
    pub fn mprotect(
        &self,
        cpu: usize,
        mm: MmId,
        start: Addr,
        len: u64,
        prot: Prot,
    ) -> Result<(), Errno> {
        let end = check_range(start, len)?;
        let mut v = self.mmap_write_lock(mm);
        check_mapped(&v, start, end)?;
        if prot.write
            && v.list
                .iter()
                .any(|x| x.start < end && start < x.end && x.flags & vm::MAYWRITE == 0)
        {
            return Err(Errno::EACCES);
        }
        if self.splits_huge_pmd(mm, start, end) {
            return Err(Errno::EINVAL);
        }
        self.split_vmas(mm, &mut v, start, end);
        for x in v
            .list
            .iter_mut()
            .filter(|x| start <= x.start && x.end <= end)
        {
            x.flags &= !(vm::READ | vm::WRITE);
            if prot.read {
                x.flags |= vm::READ;
            }
            if prot.write {
                x.flags |= vm::WRITE;
            }
            self.vm_flags_reset(mm, x);
        }
        tracing::trace!(target: "cowbreak::mm", cpu, mm, func = "mprotect_fixup", addr = start, end, write = prot.write);
        if !prot.write {
            for a in page_range(start, end) {
                if a % PMD_SIZE == 0 && self.pmd_read(mm, a).is_huge() {
                    // change_huge_pmd.
                    let _ptl = self.mo.spin_lock(&self.mm(mm).page_table_lock);
                    self.pmdp_set_wrprotect(mm, a, "change_huge_pmd");
                } else if let Some((table, _ptl)) = self.pte_table_locked(mm, a, "change_pte_range")
                {
                    let old = self.ptep_get(table, a);
                    if old.write() {
                        self.ptep_set_wrprotect(mm, table, a, old, "change_pte_range");
                    } else if old.migration_writable() {
                        let entry = old.migration_readable();
                        self.set_pte(mm, table, a, old, entry, true, "change_pte_range");
                    }
                }
            }
        }
        self.flush_tlb(cpu, "change_protection");
        Ok(())
    }

    /// `mmput` (kernel/fork.c), as `exit_mm` calls it when a thread exits:
    /// `atomic_dec_and_test(&mm->mm_users)`, and the last user's `__mmput` runs
    /// `exit_mmap`. Returns whether this was the last user.
    pub fn mmput(&self, cpu: usize, mm: MmId) -> Result<bool, Errno> {
        let before = self.mo.atomic_fetch_sub(1, &self.mm(mm).mm_users);
        tracing::trace!(target: "cowbreak::mm", cpu, mm, func = "mmput", users = before - 1);
        if before == 1 {
            self.exit_mmap(cpu, mm)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// `exit_mmap` (from `mmput` when the last user exits): zap every vma, free every
    /// page table, flush; the address space is dead. Pins held elsewhere stay.
    pub fn exit_mmap(&self, cpu: usize, mm: MmId) -> Result<(), Errno> {
        let mut v = self.mmap_write_lock(mm);
        if v.dead {
            return Err(Errno::ESRCH);
        }
        tracing::trace!(target: "cowbreak::mm", cpu, mm, func = "exit_mmap");
        let mut pages = Vec::new();
        self.zap_pte_range(mm, 0, TASK_SIZE, &mut pages);
        v.list.clear();
        v.dead = true;
        let tables = self.free_pgtables(mm, &v, 0, TASK_SIZE);
        self.tlb_finish_mmu(cpu, pages, tables);
        Ok(())
    }

    /// fork's `dup_mmap`: with the parent's `mmap_lock` held for write, copy the vmas to
    /// the child's (empty, dead) slot `child` and `copy_page_range` each, then
    /// `flush_tlb_mm` the parent. With `fork_locks_parent_vmas` (fb49c455323f, v6.5)
    /// each parent vma is `vma_start_write`-locked first, so that no fault runs in it
    /// under the per-VMA lock while it is copied; `anon_vma_fork` gives the child's vma
    /// an `anon_vma` where the parent's has one.
    pub fn fork(&self, cpu: usize, parent: MmId, child: MmId) -> Result<(), Errno> {
        if parent == child || child >= self.mms.len() {
            return Err(Errno::EINVAL);
        }
        let pv = self.mmap_write_lock(parent);
        if pv.dead {
            return Err(Errno::ESRCH);
        }
        let mut cv = self.mmap_write_lock(child);
        if !cv.dead {
            return Err(Errno::EBUSY);
        }
        tracing::trace!(target: "cowbreak::mm", cpu, mm = parent, func = "dup_mmap", child);
        self.oracle.on_fork_begin(parent);
        cv.list = pv.list.clone();
        cv.next_slot = pv.next_slot;
        cv.dead = false;
        self.mo.atomic_set(&self.mm(child).has_pinned, 0);
        // `mm_init`: atomic_set(&mm->mm_users, 1), and the child's further threads.
        self.mo
            .atomic_set(&self.mm(child).mm_users, self.threads[child]);
        let mut res = Ok(());
        for vma in &pv.list {
            if self.policy.fork_locks_parent_vmas() {
                self.vma_start_write(parent, vma);
            }
            self.vma_dup_state(parent, vma.slot, child, vma.slot);
            res = self.copy_page_range(parent, child, vma);
            if res.is_err() {
                break;
            }
        }
        self.flush_tlb(cpu, "dup_mmap");
        self.oracle.on_fork_end(parent);
        res
    }

    /// `copy_page_range`: copy the PTEs of `vma` from `src` to `dst`. Shared file
    /// mappings are skipped (the child refaults them); the model copies every private
    /// vma, as the kernel does for any vma with an anon_vma.
    /// `write_protect_seq` (v5.11, 57efa1fe5957): COW mappings are copied inside
    /// `raw_write_seqcount_begin/end(&src_mm->write_protect_seq)`.
    fn copy_page_range(&self, src: MmId, dst: MmId, vma: &Vma) -> Result<(), Errno> {
        if !vma.is_private() {
            return Ok(());
        }
        let cow = is_cow_mapping(vma.flags);
        let seq = &self.mm(src).write_protect_seq;
        if cow && self.policy.write_protect_seq() {
            self.mo.raw_write_seqcount_begin(seq);
        }
        let mut res = Ok(());
        let mut addr = vma.start;
        while addr < vma.end && res.is_ok() {
            let stop = vma.end.min(((addr / PMD_SIZE) + 1) * PMD_SIZE);
            if self.pmd_read(src, addr).is_huge() {
                self.copy_huge_pmd(src, dst, vma, addr);
            } else if let Some((id, src_table)) = self.pte_table(src, addr) {
                res = self.copy_pte_range(src, dst, vma, (id, src_table), addr, stop);
            }
            addr = stop;
        }
        if cow && self.policy.write_protect_seq() {
            self.mo.raw_write_seqcount_end(seq);
        }
        res
    }

    /// `copy_huge_pmd` as of v4.9: the huge zero page is mapped in the child as is;
    /// an anon huge page is shared, both PMDs write-protected in a COW mapping. (From
    /// v5.9 a maybe-pinned huge page is split and copied on PTEs, and from v5.19 its
    /// PG_anon_exclusive is handled by `page_try_dup_anon_rmap`: splitting is not
    /// modeled, so the huge page is shared and its exclusive bit cleared.)
    fn copy_huge_pmd(&self, src: MmId, dst: MmId, vma: &Vma, addr: Addr) {
        let _ptl = self.mo.spin_lock(&self.mm(src).page_table_lock);
        let pmd = self.pmd_read(src, addr);
        if !pmd.is_huge() {
            return;
        }
        let mut child = pmd.leaf();
        if !child.special() {
            let pfn = child.pfn();
            self.get_page(pfn, "copy_huge_pmd");
            self.page_dup_rmap(pfn);
            self.page_clear(pfn, pg::ANON_EXCLUSIVE);
        }
        if is_cow_mapping(vma.flags) && child.write() {
            self.pmdp_set_wrprotect(src, addr, "copy_huge_pmd");
            child = child.wrprotect();
        }
        self.set_pmd_at(dst, vma, addr, Pmd::huge(child.mkold()), "copy_huge_pmd");
    }

    /// `copy_pte_range`: allocate the child's table, then under the parent's page-table
    /// lock `copy_present_pte` each present entry.
    #[allow(clippy::too_many_arguments)]
    fn copy_pte_range(
        &self,
        src: MmId,
        dst: MmId,
        vma: &Vma,
        (src_id, src_table): (TableId, &PteTable),
        start: Addr,
        end: Addr,
    ) -> Result<(), Errno> {
        let (_, dst_table) = self.pte_alloc(dst, start)?;
        // The source table gone (retract_page_tables): nothing to copy, the child
        // faults the file pages in.
        let Some(_ptl) = self.pte_offset_map_lock(src, start, src_id, "copy_pte_range") else {
            return Ok(());
        };
        for addr in page_range(start, end) {
            let pte = self.ptep_get(src_table, addr);
            if pte.present() {
                self.copy_present_pte(src, dst, vma, src_table, dst_table, addr, pte)?;
            } else if pte.is_migration_entry() {
                // copy_nonpresent_pte: a writable migration entry of a COW mapping
                // becomes readable in both.
                let mut entry = pte;
                if pte.migration_writable() && is_cow_mapping(vma.flags) {
                    entry = pte.migration_readable();
                    self.set_pte(
                        src,
                        src_table,
                        addr,
                        pte,
                        entry,
                        true,
                        "copy_nonpresent_pte",
                    );
                }
                self.set_pte(
                    dst,
                    dst_table,
                    addr,
                    Pte::NONE,
                    entry,
                    true,
                    "copy_nonpresent_pte",
                );
            }
        }
        Ok(())
    }

    /// `copy_present_pte` (`copy_one_pte` before v5.9): share the page with the child,
    /// write-protecting both PTEs of a COW mapping (`ptep_set_wrprotect`).
    /// - `fork_copies_pinned_pages` (v5.9, 70e806e4e645 + 008cfe4418b3):
    ///   `copy_present_page` first: if is_cow_mapping and `src_mm->has_pinned` and
    ///   `page_maybe_dma_pinned` (anon or not: 5.9 has no PageAnon test), the child gets a
    ///   copy and the parent keeps its PTE as is.
    ///   The check precedes the write-protect (the window `write_protect_seq` closes).
    /// - `anon_exclusive` (v5.19, 6c287605fd56): `page_try_dup_anon_rmap`: an exclusive
    ///   anon page that may be pinned is copied; otherwise its PG_anon_exclusive is cleared.
    #[allow(clippy::too_many_arguments)]
    fn copy_present_pte(
        &self,
        src: MmId,
        dst: MmId,
        vma: &Vma,
        src_table: &PteTable,
        dst_table: &PteTable,
        addr: Addr,
        pte: Pte,
    ) -> Result<(), Errno> {
        let cow = is_cow_mapping(vma.flags);
        let needs_cow_for_dma = |pfn: Pfn| {
            cow && self.mo.atomic_read(&self.mm(src).has_pinned) != 0
                && self.page_maybe_dma_pinned(pfn)
        };
        if let Some(pfn) = self.vm_normal_page(pte) {
            let anon = self.page_anon(pfn);
            if self.policy.anon_exclusive() && anon {
                self.get_page(pfn, "copy_present_pte");
                if self.page_test(pfn, pg::ANON_EXCLUSIVE) {
                    if needs_cow_for_dma(pfn) {
                        self.put_page(pfn, "copy_present_pte");
                        return self.copy_present_page(dst, vma, dst_table, addr, pfn);
                    }
                    self.page_clear(pfn, pg::ANON_EXCLUSIVE);
                }
                self.page_dup_rmap(pfn);
            } else if self.policy.fork_copies_pinned_pages() && needs_cow_for_dma(pfn) {
                return self.copy_present_page(dst, vma, dst_table, addr, pfn);
            } else {
                self.get_page(pfn, "copy_present_pte");
                self.page_dup_rmap(pfn);
            }
        }
        let mut child = pte;
        if cow && pte.write() {
            self.ptep_set_wrprotect(src, src_table, addr, pte, "copy_present_pte");
            child = child.wrprotect();
        }
        if !vma.is_private() {
            child = child.mkclean();
        }
        child = child.mkold();
        self.set_pte_at(dst, dst_table, vma, addr, child, "copy_present_pte");
        Ok(())
    }

    /// `copy_present_page`: the child gets its own copy of a page that may be pinned,
    /// mapped writable (if the vma is) and dirty; the parent's PTE is untouched.
    fn copy_present_page(
        &self,
        dst: MmId,
        vma: &Vma,
        dst_table: &PteTable,
        addr: Addr,
        pfn: Pfn,
    ) -> Result<(), Errno> {
        let new = self.alloc_page(PageKind::Anon)?;
        self.copy_user_highpage(new, pfn);
        self.__SetPageUptodate(new);
        self.page_add_new_anon_rmap(new);
        let mut entry = Pte::mk(new, false).mkdirty();
        if vma.flags & vm::WRITE != 0 {
            entry = entry.mkwrite();
        }
        tracing::trace!(target: "cowbreak::mm", mm = dst, func = "copy_present_page", addr, from = pfn, to = new);
        self.set_pte_at(dst, dst_table, vma, addr, entry, "copy_present_page");
        Ok(())
    }
}
