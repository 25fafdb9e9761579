//! Faults (mm/memory.c): `handle_mm_fault` and the handlers it dispatches to.

use crate::kernel::Kernel;
use crate::mm_types::{vm, MmId, Vma};
use crate::oracle::UnmapCause;
use crate::page::{flags, PageKind, Pfn, HUGE_ZERO_PFN, ZERO_PFN};
use crate::pgtable::{Addr, Pmd, Pte, PteTable, TableId};
use crate::Errno;

/// `FAULT_FLAG_*` bits the model uses.
pub mod fault {
    /// `FAULT_FLAG_WRITE`.
    pub const WRITE: u32 = 1 << 0;
    /// `FAULT_FLAG_UNSHARE` (v5.19, c89357e27f20): break COW for a R/O pin without
    /// making the PTE writable.
    pub const UNSHARE: u32 = 1 << 1;
    /// `FAULT_FLAG_VMA_LOCK` (v6.4): the fault holds the vma's lock, not the mmap lock.
    pub const VMA_LOCK: u32 = 1 << 2;
}

/// `VM_FAULT_WRITE`: the fault broke COW (copied or reused) for a write. `faultin_page`
/// reads it to decide about FOLL_WRITE / FOLL_COW.
pub const VM_FAULT_WRITE: u32 = 1 << 0;
/// `VM_FAULT_RETRY`: give up and retry the fault under the mmap lock.
pub const VM_FAULT_RETRY: u32 = 1 << 1;

/// Everything a fault handler works on (`struct vm_fault`).
struct VmFault<'k> {
    cpu: usize,
    mm: MmId,
    vma: Vma,
    addr: Addr,
    flags: u32,
    table: &'k PteTable,
    /// The table's id, for `pte_offset_map_lock`'s recheck of the PMD.
    table_id: TableId,
    /// `orig_pte`: the entry read without the lock when the fault began.
    orig: Pte,
}

impl VmFault<'_> {
    fn write(&self) -> bool {
        self.flags & fault::WRITE != 0
    }
    fn unshare(&self) -> bool {
        self.flags & fault::UNSHARE != 0
    }
}

/// `maybe_mkwrite`: writable only if the vma is.
pub(crate) fn maybe_mkwrite(pte: Pte, vma: &Vma) -> Pte {
    if vma.flags & vm::WRITE != 0 {
        pte.mkwrite()
    } else {
        pte
    }
}

impl Kernel {
    /// `handle_mm_fault` -> `__handle_mm_fault` -> `handle_pte_fault`, for a fault on
    /// `addr` in `vma` of `mm`, raised on `cpu`. The caller holds `mmap_lock` for read and
    /// has checked the access against the vma (`access_error` / `check_vma_flags`).
    ///
    /// `handle_pte_fault` reads the PTE without the lock; a missing PTE goes to
    /// `do_anonymous_page`, `do_read_fault`, `do_cow_fault` or `do_shared_fault`; a
    /// migration entry to `do_swap_page`, which waits for the migration
    /// (`migration_entry_wait`) and lets the access retry; a
    /// write (or, from v5.19, unshare) fault on a read-only PTE goes to `do_wp_page`;
    /// otherwise the PTE is marked young (and dirty for a write).
    pub fn handle_mm_fault(
        &self,
        cpu: usize,
        mm: MmId,
        vma: &Vma,
        addr: Addr,
        flags: u32,
    ) -> Result<u32, Errno> {
        tracing::trace!(target: "cowbreak::mm", cpu, mm, func = "handle_mm_fault", addr, write = flags & fault::WRITE != 0, unshare = flags & fault::UNSHARE != 0);
        // __handle_mm_fault, at the PMD: a THP-enabled range faults in a huge page (or the
        // huge zero page); a huge PMD is handled whole.
        let pmd = self.pmd_read(mm, addr);
        if pmd.is_none() && vma.thp_suitable(addr) {
            return self.do_huge_pmd_anonymous_page(mm, vma, addr, flags);
        }
        if pmd.is_huge() {
            if flags & (fault::WRITE | fault::UNSHARE) != 0 && !pmd.leaf().write() {
                return self.do_huge_pmd_wp_page(cpu, mm, vma, addr, flags, pmd);
            }
            self.huge_pmd_set_accessed(mm, addr, pmd, flags & fault::WRITE != 0);
            return Ok(0);
        }
        let (table_id, table) = match self.pte_alloc(mm, addr) {
            Ok(t) => t,
            // A huge PMD appeared meanwhile: the caller retries the access.
            Err(Errno::EAGAIN) => return Ok(0),
            Err(e) => return Err(e),
        };
        let orig = self.ptep_get(table, addr);
        let vmf = VmFault {
            cpu,
            mm,
            vma: *vma,
            addr,
            flags,
            table,
            table_id,
            orig,
        };
        if orig.is_migration_entry() {
            // do_swap_page on a migration entry; under the vma lock (v6.4) it returns
            // VM_FAULT_RETRY before looking at the entry.
            if flags & fault::VMA_LOCK != 0 {
                return Ok(VM_FAULT_RETRY);
            }
            self.migration_entry_wait(mm, table, addr);
            return Ok(0);
        }
        if !orig.present() {
            return if vma.is_anonymous() {
                self.do_anonymous_page(&vmf)
            } else if !vmf.write() {
                self.do_read_fault(&vmf)
            } else if vma.is_private() {
                self.do_cow_fault(&vmf)
            } else {
                self.do_shared_fault(&vmf)
            };
        }
        if vmf.write() || vmf.unshare() {
            if !orig.write() {
                return self.do_wp_page(&vmf);
            }
            if vmf.unshare() && !vmf.write() {
                // Writable PTE: the page is exclusive already, nothing to unshare.
                return Ok(0);
            }
        }
        let Some(_ptl) = self.pte_offset_map_lock(mm, addr, table_id, "handle_pte_fault") else {
            return Ok(0);
        };
        let cur = self.ptep_get(table, addr);
        if cur == orig {
            let mut entry = cur.mkyoung();
            if vmf.write() {
                entry = entry.mkdirty();
            }
            if entry != cur {
                self.ptep_set_access_flags(mm, table, addr, cur, entry, "handle_pte_fault");
            }
        }
        Ok(0)
    }

    /// `do_huge_pmd_anonymous_page`: a read (or unshare) fault maps the huge zero page
    /// (`set_huge_zero_page`, read-only); a write allocates a huge anon page, mapped
    /// writable and dirty if the vma is.
    fn do_huge_pmd_anonymous_page(
        &self,
        mm: MmId,
        vma: &Vma,
        addr: Addr,
        flags: u32,
    ) -> Result<u32, Errno> {
        self.anon_vma_prepare(mm, vma);
        let none = |k: &Kernel| k.pmd_read(mm, addr).is_none();
        if flags & fault::WRITE == 0 {
            let _ptl = self.mo.spin_lock(&self.mm(mm).page_table_lock);
            if none(self) {
                let entry = Pmd::huge(Pte::mk(HUGE_ZERO_PFN, false).mkspecial());
                self.set_pmd_at(mm, vma, addr, entry, "do_huge_pmd_anonymous_page");
            }
            return Ok(0);
        }
        let pfn = self.alloc_page(PageKind::Anon)?;
        self.__SetPageUptodate(pfn);
        let entry = Pmd::huge(maybe_mkwrite(Pte::mk(pfn, false).mkdirty(), vma));
        let ptl = self.mo.spin_lock(&self.mm(mm).page_table_lock);
        if !none(self) {
            drop(ptl);
            self.put_page(pfn, "do_huge_pmd_anonymous_page");
            return Ok(0);
        }
        self.page_add_new_anon_rmap(pfn);
        self.set_pmd_at(mm, vma, addr, entry, "do_huge_pmd_anonymous_page");
        Ok(0)
    }

    /// `huge_pmd_set_accessed`: mark a huge PMD young (and dirty for a write).
    fn huge_pmd_set_accessed(&self, mm: MmId, addr: Addr, orig: Pmd, write: bool) {
        let _ptl = self.mo.spin_lock(&self.mm(mm).page_table_lock);
        if self.pmd_read(mm, addr) == orig {
            let mut entry = orig.leaf().mkyoung();
            if write {
                entry = entry.mkdirty();
            }
            if entry != orig.leaf() {
                self.pmdp_set_access_flags(
                    mm,
                    addr,
                    orig,
                    Pmd::huge(entry),
                    "huge_pmd_set_accessed",
                );
            }
        }
    }

    /// `do_huge_pmd_wp_page`: a write (or unshare) fault on a read-only huge PMD. The
    /// huge zero page is always copied (`goto alloc`: a fresh zeroed huge page). An anon
    /// huge page is reused when mapped once (`page_trans_huge_mapcount == 1`, i.e.
    /// `reuse_swap_page`), from `thp_reuse_only_if_refcount_one` (v5.18, c145e0b47c77)
    /// only if also page_count == 1, and from `anon_exclusive` (v5.19) whenever it is
    /// PG_anon_exclusive; otherwise it is copied. The copy is of the whole huge page as in
    /// v4.x: from v5.8 (3917c80280c9) the kernel splits the PMD and copies one small page
    /// instead, which the model does not do (the verdicts are the same: the writer moves
    /// off the shared page either way).
    fn do_huge_pmd_wp_page(
        &self,
        cpu: usize,
        mm: MmId,
        vma: &Vma,
        addr: Addr,
        flags: u32,
        orig: Pmd,
    ) -> Result<u32, Errno> {
        let unshare = flags & fault::UNSHARE != 0 && flags & fault::WRITE == 0;
        let ptl = self.mo.spin_lock(&self.mm(mm).page_table_lock);
        if self.pmd_read(mm, addr) != orig {
            return Ok(0);
        }
        let leaf = orig.leaf();
        let old = (!leaf.special()).then(|| leaf.pfn());
        if let Some(pfn) = old {
            let reuse =
                if self.policy.anon_exclusive() && self.page_test(pfn, flags::ANON_EXCLUSIVE) {
                    true
                } else {
                    let by_refcount = self.policy.thp_reuse_only_if_refcount_one()
                        || self.policy.anon_exclusive();
                    self.page_mapcount(pfn) == 1 && (!by_refcount || self.page_count(pfn) == 1)
                };
            if reuse {
                if self.policy.anon_exclusive() {
                    self.page_set(pfn, flags::ANON_EXCLUSIVE);
                }
                if unshare {
                    return Ok(0);
                }
                let entry = maybe_mkwrite(leaf.mkyoung().mkdirty(), vma);
                self.pmdp_set_access_flags(mm, addr, orig, Pmd::huge(entry), "do_huge_pmd_wp_page");
                return Ok(VM_FAULT_WRITE);
            }
            self.get_page(pfn, "do_huge_pmd_wp_page");
        } else if unshare && !self.unshares_any_cow_mapping() {
            return Ok(0);
        }
        drop(ptl);
        let new = match self.alloc_page(PageKind::Anon) {
            Ok(new) => new,
            Err(e) => {
                if let Some(old) = old {
                    self.put_page(old, "do_huge_pmd_wp_page");
                }
                return Err(e);
            }
        };
        if let Some(old) = old {
            self.copy_user_highpage(new, old);
        }
        self.__SetPageUptodate(new);
        let ptl = self.mo.spin_lock(&self.mm(mm).page_table_lock);
        let mut ret = 0;
        let mut release = Some(new);
        if self.pmd_read(mm, addr) == orig {
            let entry = if unshare {
                Pte::mk(new, false)
            } else {
                maybe_mkwrite(Pte::mk(new, false).mkdirty(), vma)
            };
            self.pmdp_huge_get_and_clear(mm, addr, UnmapCause::Replace, "do_huge_pmd_wp_page");
            self.flush_tlb(cpu, "pmdp_huge_clear_flush");
            self.page_add_new_anon_rmap(new);
            self.set_pmd_at(mm, vma, addr, Pmd::huge(entry), "do_huge_pmd_wp_page");
            release = None;
            if let Some(old) = old {
                self.page_remove_rmap(old, "do_huge_pmd_wp_page");
                release = Some(old);
            }
            ret = VM_FAULT_WRITE;
        }
        drop(ptl);
        if let Some(pfn) = release {
            self.put_page(pfn, "do_huge_pmd_wp_page");
        }
        if let Some(old) = old {
            self.put_page(old, "do_huge_pmd_wp_page");
        }
        Ok(ret)
    }

    /// `pte_offset_map_lock` of the fault's table ([`Kernel::pte_offset_map_lock`]):
    /// `None` when the table was taken away, and the fault returns to be retried.
    fn vmf_pte_lock<'a>(
        &'a self,
        vmf: &VmFault<'_>,
        at: &'static str,
    ) -> Option<cowbreak_sync::MutexGuard<'a, ()>> {
        self.pte_offset_map_lock(vmf.mm, vmf.addr, vmf.table_id, at)
    }

    /// `do_anonymous_page`: a read maps the shared zero page (special, read-only); a write
    /// allocates a zeroed anon page, mapped writable and dirty if the vma is writable.
    fn do_anonymous_page(&self, vmf: &VmFault<'_>) -> Result<u32, Errno> {
        if !vmf.write() {
            let entry = Pte::mk(ZERO_PFN, false).mkspecial();
            let Some(_ptl) = self.vmf_pte_lock(vmf, "do_anonymous_page") else {
                return Ok(0);
            };
            if self.ptep_get(vmf.table, vmf.addr).is_none() {
                self.set_pte_at(
                    vmf.mm,
                    vmf.table,
                    &vmf.vma,
                    vmf.addr,
                    entry,
                    "do_anonymous_page",
                );
            }
            return Ok(0);
        }
        self.anon_vma_prepare(vmf.mm, &vmf.vma);
        let pfn = self.alloc_page(PageKind::Anon)?;
        self.__SetPageUptodate(pfn);
        let entry = maybe_mkwrite(Pte::mk(pfn, false).mkdirty(), &vmf.vma);
        let ptl = self.vmf_pte_lock(vmf, "do_anonymous_page");
        if ptl.is_none() || !self.ptep_get(vmf.table, vmf.addr).is_none() {
            drop(ptl);
            self.put_page(pfn, "do_anonymous_page");
            return Ok(0);
        }
        self.page_add_new_anon_rmap(pfn);
        self.set_pte_at(
            vmf.mm,
            vmf.table,
            &vmf.vma,
            vmf.addr,
            entry,
            "do_anonymous_page",
        );
        Ok(0)
    }

    /// The page-cache page behind a file vma at `addr` (`filemap_fault`), referenced.
    ///
    /// Where the page cache can change (a collapse), as the kernel does it:
    /// `filemap_get_folio` (`xas_load`, `folio_try_get_rcu`, which fails on a page whose
    /// refcount a collapse froze, and the lookup is retried), `lock_folio`, and the
    /// recheck that the page is still the page cache's (`folio->mapping`), else unlock,
    /// put and retry. The page comes back locked (`VM_FAULT_LOCKED`); the caller unlocks
    /// it once it is mapped ([`Self::filemap_unlock`]). A collapse holds its new huge page
    /// locked until it has retracted the page tables, so no fault maps it into a table
    /// being taken away. Elsewhere the page cache is fixed and the lookup is a plain
    /// reference.
    fn filemap_fault(&self, vma: &Vma, addr: Addr) -> Result<Pfn, Errno> {
        let (file, index) = vma.file_page(addr).ok_or(Errno::EFAULT)?;
        if !self.page_cache_mutable {
            let pfn = self.file_page(file, index).ok_or(Errno::SIGBUS)?;
            self.get_page(pfn, "filemap_fault");
            return Ok(pfn);
        }
        loop {
            let pfn = self.file_page(file, index).ok_or(Errno::SIGBUS)?;
            if !self.page_ref_add_unless_zero(pfn, 1) {
                cowbreak_sync::spin_wait();
                continue;
            }
            self.lock_page(pfn);
            if self.file_page(file, index) == Some(pfn) {
                return Ok(pfn);
            }
            self.unlock_page(pfn);
            self.put_page(pfn, "filemap_fault");
        }
    }

    /// `unlock_page` of the page [`Self::filemap_fault`] returned (locked only where the
    /// page cache can change).
    fn filemap_unlock(&self, pfn: Pfn) {
        if self.page_cache_mutable {
            self.unlock_page(pfn);
        }
    }

    /// `finish_fault` for a page-cache page: map it if the PTE is still empty.
    fn finish_fault_file(&self, vmf: &VmFault<'_>, pfn: Pfn, entry: Pte, at: &'static str) {
        let ptl = self.vmf_pte_lock(vmf, at);
        if ptl.is_none() || !self.ptep_get(vmf.table, vmf.addr).is_none() {
            drop(ptl);
            self.put_page(pfn, at);
            return;
        }
        self.page_dup_rmap(pfn);
        self.set_pte_at(vmf.mm, vmf.table, &vmf.vma, vmf.addr, entry, at);
    }

    /// `do_read_fault`: map the page-cache page with the vma's protection: read-only in
    /// a private mapping, writable only in a shared writable one.
    fn do_read_fault(&self, vmf: &VmFault<'_>) -> Result<u32, Errno> {
        let pfn = self.filemap_fault(&vmf.vma, vmf.addr)?;
        let write = !vmf.vma.is_private() && vmf.vma.flags & vm::WRITE != 0;
        self.finish_fault_file(vmf, pfn, Pte::mk(pfn, write), "do_read_fault");
        self.filemap_unlock(pfn);
        Ok(0)
    }

    /// `do_cow_fault`: a write fault on a missing PTE of a private file mapping copies
    /// the page-cache page into a new anon page, mapped `maybe_mkwrite(pte_mkdirty())`:
    /// dirty but read-only in a !VM_WRITE vma (the FOLL_FORCE case). It does not
    /// return VM_FAULT_WRITE.
    fn do_cow_fault(&self, vmf: &VmFault<'_>) -> Result<u32, Errno> {
        self.anon_vma_prepare(vmf.mm, &vmf.vma);
        let new = self.alloc_page(PageKind::Anon)?;
        let src = match self.filemap_fault(&vmf.vma, vmf.addr) {
            Ok(src) => src,
            Err(e) => {
                self.put_page(new, "do_cow_fault");
                return Err(e);
            }
        };
        self.copy_user_highpage(new, src);
        self.filemap_unlock(src);
        self.put_page(src, "do_cow_fault");
        self.__SetPageUptodate(new);
        let entry = maybe_mkwrite(Pte::mk(new, false).mkdirty(), &vmf.vma);
        let ptl = self.vmf_pte_lock(vmf, "do_cow_fault");
        if ptl.is_none() || !self.ptep_get(vmf.table, vmf.addr).is_none() {
            drop(ptl);
            self.put_page(new, "do_cow_fault");
            return Ok(0);
        }
        self.page_add_new_anon_rmap(new);
        self.set_pte_at(vmf.mm, vmf.table, &vmf.vma, vmf.addr, entry, "do_cow_fault");
        Ok(0)
    }

    /// `do_shared_fault`: a write fault on a shared file mapping maps the page-cache page
    /// writable and dirty.
    fn do_shared_fault(&self, vmf: &VmFault<'_>) -> Result<u32, Errno> {
        let pfn = self.filemap_fault(&vmf.vma, vmf.addr)?;
        let entry = maybe_mkwrite(Pte::mk(pfn, false).mkdirty(), &vmf.vma);
        self.finish_fault_file(vmf, pfn, entry, "do_shared_fault");
        self.filemap_unlock(pfn);
        Ok(0)
    }

    /// `do_wp_page`: a write (or unshare) fault on a present, read-only PTE.
    ///
    /// A KSM page is never reused (`PageKsm`): it is copied.
    /// Takes the page-table lock and bails if the PTE changed since the fault began.
    /// The shared zero page, and from v6.2 any non-anon page being unshared, are copied
    /// (`wp_page_copy`). Shared writable mappings reuse (`wp_page_shared`). For an anon
    /// page the reuse rule is the era's:
    /// - before v5.9: `reuse_swap_page`, i.e. mapcount == 1, under the page lock
    ///   (`lock_page` after dropping the PTL if the trylock fails, then recheck the PTE);
    /// - `reuse_only_if_refcount_one` (v5.9, 09854ba94c6a): !KSM and page_count == 1,
    ///   trylock_page, recheck mapcount == 1 and page_count == 1, else copy;
    /// - `anon_exclusive` (v5.19, 6c287605fd56): PG_anon_exclusive -> reuse; else
    ///   page_count == 1 under trylock_page, then `page_move_anon_rmap` (set exclusive).
    ///   An unshare fault (c89357e27f20) that can reuse only marks the page exclusive and
    ///   leaves the PTE read-only.
    fn do_wp_page(&self, vmf: &VmFault<'_>) -> Result<u32, Errno> {
        let Some(ptl) = self.vmf_pte_lock(vmf, "do_wp_page") else {
            return Ok(0);
        };
        if self.ptep_get(vmf.table, vmf.addr) != vmf.orig {
            return Ok(0);
        }
        let page = self.vm_normal_page(vmf.orig);
        let Some(pfn) = page else {
            // The shared zero page: copy on write; unshare it only from v6.2.
            if vmf.unshare() && !vmf.write() && !self.unshares_any_cow_mapping() {
                return Ok(0);
            }
            drop(ptl);
            return self.wp_page_copy(vmf, None);
        };
        if self.page_anon(pfn) && !self.page_test(pfn, flags::KSM) {
            let reuse = if self.policy.anon_exclusive() {
                if self.page_test(pfn, flags::ANON_EXCLUSIVE) {
                    true
                } else if self.page_count(pfn) != 1 || !self.trylock_page(pfn) {
                    false
                } else {
                    let ok = self.page_count(pfn) == 1;
                    if ok {
                        // page_move_anon_rmap: the page is ours alone now.
                        self.page_set(pfn, flags::ANON_EXCLUSIVE);
                    }
                    self.unlock_page(pfn);
                    ok
                }
            } else if self.policy.reuse_only_if_refcount_one() {
                if self.page_count(pfn) != 1 || !self.trylock_page(pfn) {
                    false
                } else {
                    let ok = self.page_mapcount(pfn) == 1 && self.page_count(pfn) == 1;
                    self.unlock_page(pfn);
                    ok
                }
            } else {
                if !self.trylock_page(pfn) {
                    self.get_page(pfn, "do_wp_page");
                    drop(ptl);
                    self.lock_page(pfn);
                    let _ptl = self.vmf_pte_lock(vmf, "do_wp_page");
                    let same = _ptl.is_some() && self.ptep_get(vmf.table, vmf.addr) == vmf.orig;
                    if !same {
                        self.unlock_page(pfn);
                        drop(_ptl);
                        self.put_page(pfn, "do_wp_page");
                        return Ok(0);
                    }
                    self.put_page(pfn, "do_wp_page");
                    // reuse_swap_page: no swap in the model, so mapcount <= 1.
                    let ok = self.page_mapcount(pfn) <= 1;
                    self.unlock_page(pfn);
                    if ok {
                        return Ok(self.wp_page_reuse(vmf));
                    }
                    drop(_ptl);
                    self.get_page(pfn, "do_wp_page");
                    return self.wp_page_copy(vmf, Some(pfn));
                }
                let ok = self.page_mapcount(pfn) <= 1;
                self.unlock_page(pfn);
                ok
            };
            if reuse {
                if vmf.unshare() && !vmf.write() {
                    tracing::trace!(target: "cowbreak::mm", cpu = vmf.cpu, mm = vmf.mm, func = "do_wp_page", addr = vmf.addr, pfn, "unshare: page is exclusive");
                    return Ok(0);
                }
                return Ok(self.wp_page_reuse(vmf));
            }
        } else if !vmf.vma.is_private() && vmf.vma.flags & vm::WRITE != 0 {
            // wp_page_shared: a shared writable mapping writes the page-cache page.
            return Ok(self.wp_page_reuse(vmf));
        } else if vmf.unshare() && !vmf.write() && !self.unshares_any_cow_mapping() {
            // Before v6.2 an unshare fault only ever concerns anon pages.
            return Ok(0);
        }
        self.get_page(pfn, "do_wp_page");
        drop(ptl);
        self.wp_page_copy(vmf, Some(pfn))
    }

    /// Whether an unshare fault concerns more than anon pages: R/O longterm pins in any
    /// COW mapping (v6.2, `unshare_any_cow_mapping`), or copy-on-read's FOLL_MM_SYNC.
    fn unshares_any_cow_mapping(&self) -> bool {
        self.policy.unshare_any_cow_mapping() || self.policy.cor_unshare()
    }

    /// `wp_page_reuse`: keep the page, make the PTE young, dirty and (if the vma is
    /// writable) writable. Returns VM_FAULT_WRITE. The page-table lock is held.
    fn wp_page_reuse(&self, vmf: &VmFault<'_>) -> u32 {
        let entry = maybe_mkwrite(vmf.orig.mkyoung().mkdirty(), &vmf.vma);
        self.ptep_set_access_flags(
            vmf.mm,
            vmf.table,
            vmf.addr,
            vmf.orig,
            entry,
            "wp_page_reuse",
        );
        VM_FAULT_WRITE
    }

    /// `wp_page_copy`: allocate a new anon page, copy the old one (or zero-fill for the
    /// zero page), then under the page-table lock, if the PTE is unchanged:
    /// `ptep_clear_flush` (clear + TLB-shootdown IPI), `page_add_new_anon_rmap`,
    /// `set_pte_at` of the new page (writable and dirty; read-only for an unshare fault),
    /// `page_remove_rmap` of the old one, whose mapping reference is dropped. The caller's
    /// reference on `old` is dropped at the end. Returns VM_FAULT_WRITE.
    fn wp_page_copy(&self, vmf: &VmFault<'_>, old: Option<Pfn>) -> Result<u32, Errno> {
        self.anon_vma_prepare(vmf.mm, &vmf.vma);
        let new = match self.alloc_page(PageKind::Anon) {
            Ok(new) => new,
            Err(e) => {
                if let Some(old) = old {
                    self.put_page(old, "wp_page_copy");
                }
                return Err(e);
            }
        };
        let seen = old.map(|old| {
            let seen = self.oracle.stores(old);
            self.copy_user_highpage(new, old);
            seen
        });
        self.__SetPageUptodate(new);
        // Copy-on-read kept in sync with concurrent pins (58ca07be9de2): the old page is
        // locked (a pin's gup_must_unshare trylock fails meanwhile) and rechecked below.
        let cor_sync = vmf.unshare()
            && !vmf.write()
            && self.policy.cor_unshare_keeps_pin_sync()
            && old.is_some_and(|p| p != ZERO_PFN && self.page_anon(p));
        if cor_sync {
            self.lock_page(old.expect("checked"));
        }
        let ptl = self.vmf_pte_lock(vmf, "wp_page_copy");
        let mut ret = 0;
        let mut release = Some(new);
        if ptl.is_some() && self.ptep_get(vmf.table, vmf.addr) == vmf.orig {
            let entry = if vmf.unshare() && !vmf.write() {
                Pte::mk(new, false)
            } else {
                maybe_mkwrite(Pte::mk(new, false).mkdirty(), &vmf.vma)
            };
            self.ptep_get_and_clear(
                vmf.mm,
                vmf.table,
                vmf.addr,
                UnmapCause::Replace,
                "wp_page_copy",
            );
            self.flush_tlb(vmf.cpu, "ptep_clear_flush");
            if cor_sync && self.page_mapcount(old.expect("checked")) <= 1 {
                // can_read_pin_swap_page: the page is no longer shared; put it back and
                // let GUP retry (it pins the old page, as any pin that saw it alone did).
                tracing::trace!(target: "cowbreak::mm", cpu = vmf.cpu, mm = vmf.mm, func = "wp_page_copy", addr = vmf.addr, "COR: no longer shared, old PTE restored");
                self.set_pte(
                    vmf.mm,
                    vmf.table,
                    vmf.addr,
                    Pte::NONE,
                    vmf.orig,
                    vmf.vma.is_private(),
                    "wp_page_copy",
                );
                drop(ptl);
                self.unlock_page(old.expect("checked"));
                self.put_page(new, "wp_page_copy");
                if let Some(old) = old {
                    self.put_page(old, "wp_page_copy");
                }
                return Ok(0);
            }
            self.page_add_new_anon_rmap(new);
            self.set_pte_at(vmf.mm, vmf.table, &vmf.vma, vmf.addr, entry, "wp_page_copy");
            if let (Some(old), Some(seen)) = (old, seen) {
                self.oracle
                    .on_cow_commit(vmf.mm, vmf.addr, old, new, seen, "wp_page_copy");
            }
            release = None;
            if let Some(old) = old {
                if old != ZERO_PFN && self.vm_normal_page(vmf.orig).is_some() {
                    self.page_remove_rmap(old, "wp_page_copy");
                    // The old mapping's reference goes with it.
                    release = Some(old);
                }
            }
            ret = VM_FAULT_WRITE;
        }
        drop(ptl);
        if cor_sync {
            self.unlock_page(old.expect("checked"));
        }
        if let Some(pfn) = release {
            self.put_page(pfn, "wp_page_copy");
        }
        if let Some(old) = old {
            self.put_page(old, "wp_page_copy");
        }
        Ok(ret)
    }
}
