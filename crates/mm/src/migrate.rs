//! Page migration (mm/migrate.c, mm/rmap.c `try_to_migrate_one`): one small anonymous
//! page moved to a new frame, as `move_pages(2)`, compaction or NUMA balancing do it.
//!
//! The unmap half is what 088b8aa537c2 (v6.1) is about: from v5.19 (`anon_exclusive`,
//! 6c287605fd56) `try_to_migrate_one` calls `page_try_share_anon_rmap` after clearing the
//! PTE, which must see a concurrent GUP-fast pin (and back off) or be seen by it (GUP-fast's
//! recheck of the PTE then fails). On x86 the TLB flush IPI gives that for free; with RCU
//! GUP-fast (arm64) only the barriers of `anon_exclusive_barriers` do.

use crate::gup::foll;
use crate::kernel::Kernel;
use crate::mm_types::{MmId, Vmas};
use crate::oracle::UnmapCause;
use crate::page::{flags, is_zero_pfn, PageKind, Pfn};
use crate::pgtable::{Addr, Pte, PteTable};
use crate::Errno;

/// `page_try_share_anon_rmap` failed: the page may be pinned (-EBUSY).
pub(crate) struct MaybePinned;

impl Kernel {
    /// `page_try_share_anon_rmap` (include/linux/rmap.h, v5.19 6c287605fd56): an
    /// exclusive anon page is about to be unmapped (its PTE was just cleared): refuse if it
    /// may be pinned, else clear PG_anon_exclusive. With `anon_exclusive_barriers` (v6.1,
    /// 088b8aa537c2): `smp_mb()` between the cleared PTE and the pin check (pairing with
    /// GUP-fast's `smp_mb__after_atomic()` after pinning: store buffering), and
    /// `smp_mb__after_atomic()` after clearing the flag (pairing with `gup_must_unshare`'s
    /// `smp_rmb()`: message passing, for a PTE that is restored unchanged).
    pub(crate) fn page_try_share_anon_rmap(&self, pfn: Pfn) -> Result<(), MaybePinned> {
        if self.policy.anon_exclusive_barriers() {
            self.mo.smp_mb();
        }
        if self.page_maybe_dma_pinned(pfn) {
            return Err(MaybePinned);
        }
        self.page_clear(pfn, flags::ANON_EXCLUSIVE);
        if self.policy.anon_exclusive_barriers() {
            self.mo.smp_mb__after_atomic();
        }
        Ok(())
    }

    /// `rmap_walk_anon` as far as the model needs it: every mm whose page tables map
    /// something at `addr` (anon pages keep their address across fork, and the model has
    /// no mremap), called with `f` until it returns false. The walk holds the anon_vma
    /// lock for read, so the tables it visits are not freed under it (`free_pgtables`
    /// takes it for write in `unlink_anon_vmas` first).
    pub(crate) fn rmap_walk_anon(&self, addr: Addr, mut f: impl FnMut(MmId, &PteTable) -> bool) {
        let _anon_vma = self.mo.down_read(&self.anon_vma_lock);
        for mm in 0..self.mms.len() {
            if let Some((_, table)) = self.pte_table(mm, addr) {
                if !f(mm, table) {
                    break;
                }
            }
        }
    }

    /// `follow_page(FOLL_GET)` of `addr` in `mm` (whose `mmap_lock` the caller holds, as
    /// `vmas`), kept only if it is an ordinary anon page: what migration and ksmd work on.
    /// `Ok(None)` for anything else (nothing mapped, the zero page, a page-cache or KSM
    /// page), whose reference `at` drops again.
    pub(crate) fn get_anon_page(
        &self,
        vmas: &Vmas,
        mm: MmId,
        addr: Addr,
        at: &'static str,
    ) -> Result<Option<Pfn>, Errno> {
        if vmas.dead {
            return Err(Errno::ESRCH);
        }
        let vma = vmas.lookup(addr).ok_or(Errno::EFAULT)?;
        let Some(pfn) = self.follow_page(mm, &vma, addr, foll::GET) else {
            return Ok(None);
        };
        if is_zero_pfn(pfn) || !self.page_anon(pfn) || self.page_test(pfn, flags::KSM) {
            self.put_page(pfn, at);
            return Ok(None);
        }
        Ok(Some(pfn))
    }

    /// `migrate LOC`: `move_pages(2)` of the page `mm` maps at `addr` (`do_pages_move` ->
    /// `add_page_for_migration`: under `mmap_read_lock`, `follow_page(FOLL_GET)` and
    /// `isolate_lru_page`; the follow reference stands for the isolation's), then
    /// `migrate_pages` of it. Only anonymous pages are modeled; anything else (nothing
    /// mapped, the zero page, a page-cache or KSM page) is left where it is, as
    /// `add_page_for_migration` skips it.
    pub fn migrate(&self, cpu: usize, mm: MmId, addr: Addr) -> Result<(), Errno> {
        let vmas = self.mo.down_read(&self.mm(mm).mmap_lock);
        let found = self.get_anon_page(&vmas, mm, addr, "add_page_for_migration");
        drop(vmas);
        let Some(pfn) = found? else {
            return Ok(());
        };
        tracing::trace!(target: "cowbreak::mm", cpu, mm, func = "migrate_pages", addr, pfn);
        self.unmap_and_move(cpu, pfn, addr)
    }

    /// `unmap_and_move` -> `__unmap_and_move` for an isolated anon page `old` (the caller's
    /// reference is the isolation's): if that is the only reference left, the page was
    /// unmapped and freed under us and there is nothing to do; else allocate the new page,
    /// `lock_page`, `try_to_migrate`
    /// (every mapping becomes a migration entry), then if nothing maps the page any more
    /// `move_to_new_page`, and `remove_migration_ptes` to the new page (or back to the old
    /// one if anything failed); unlock; drop the isolation's and the allocation's
    /// references. `migrate_pages` retries -EAGAIN up to ten times; the model tries once.
    fn unmap_and_move(&self, cpu: usize, old: Pfn, addr: Addr) -> Result<(), Errno> {
        if self.page_count(old) == 1 {
            self.put_page(old, "unmap_and_move");
            return Ok(());
        }
        let new = match self.alloc_page(PageKind::Anon) {
            Ok(new) => new,
            Err(e) => {
                self.put_page(old, "unmap_and_move");
                return Err(e);
            }
        };
        self.lock_page(old);
        if self.page_mapcount(old) > 0 {
            self.try_to_migrate(cpu, old, addr);
        }
        let moved = self.page_mapcount(old) == 0 && self.move_to_new_page(new, old).is_ok();
        self.remove_migration_ptes(old, if moved { new } else { old }, addr);
        tracing::trace!(target: "cowbreak::mm", cpu, func = "unmap_and_move", old, new, moved);
        self.unlock_page(old);
        // putback: the isolation's reference on the old page (the last one if it moved),
        // and the new page's own (the mappings hold theirs).
        self.put_page(old, "unmap_and_move");
        self.put_page(new, "unmap_and_move");
        Ok(())
    }

    /// `try_to_migrate` -> `try_to_migrate_one` for every mapping of `pfn`, under each
    /// page-table lock: from v5.19 note whether the page is exclusive (before the PTE is
    /// cleared); `ptep_clear_flush` (the architecture's `ptep_get_and_clear`, then the TLB
    /// flush; with `migrate_batched_flush`, v6.3 7e12beb8ca2a, only `ptep_get_and_clear`
    /// and `set_tlb_ubc_flush_pending`: the flush comes once after the walk,
    /// `try_to_unmap_flush`, before the page is moved); if the page was exclusive,
    /// `page_try_share_anon_rmap`, and if it refuses, the PTE is put back as it was and the
    /// walk stops; then the migration entry (writable if the PTE was, readable-exclusive if
    /// the page was exclusive, readable otherwise), `page_remove_rmap` and `folio_put` of
    /// the mapping's reference. There is no pin check of its own: before v5.19 a pinned
    /// page is unmapped anyway and the refcount check of `move_to_new_page` refuses it.
    fn try_to_migrate(&self, cpu: usize, pfn: Pfn, addr: Addr) {
        self.rmap_walk_anon(addr, |mm, table| {
            let _ptl = self.mo.spin_lock(&self.mm(mm).page_table_lock);
            let pte = self.ptep_get(table, addr);
            if !pte.present() || pte.special() || pte.pfn() != pfn {
                return true;
            }
            let anon_exclusive =
                self.policy.anon_exclusive() && self.page_test(pfn, flags::ANON_EXCLUSIVE);
            let old = self.ptep_get_and_clear(mm, table, addr, UnmapCause::Replace, "try_to_migrate_one");
            if !self.policy.migrate_batched_flush() {
                self.flush_tlb(cpu, "ptep_clear_flush");
            }
            if anon_exclusive && self.page_try_share_anon_rmap(pfn).is_err() {
                tracing::trace!(target: "cowbreak::mm", cpu, mm, func = "try_to_migrate_one", addr, pfn, "page_try_share_anon_rmap: maybe pinned, restore");
                self.set_pte(mm, table, addr, Pte::NONE, old, true, "try_to_migrate_one");
                return false;
            }
            let entry = Pte::migration(pfn, old.write(), anon_exclusive);
            self.set_pte(mm, table, addr, Pte::NONE, entry, true, "try_to_migrate_one");
            self.page_remove_rmap(pfn, "try_to_migrate_one");
            self.put_page(pfn, "try_to_migrate_one");
            true
        });
        if self.policy.migrate_batched_flush() {
            self.flush_tlb(cpu, "try_to_unmap_flush");
        }
    }

    /// `move_to_new_page` -> `migrate_page` -> `migrate_page_move_mapping`
    /// (`folio_migrate_mapping` from v5.16): an anon page without a mapping may move only
    /// if its refcount is exactly what the migration itself holds (1, the isolation's):
    /// any other reference (a pin, a GUP reference, a speculative grab) is -EAGAIN. Then
    /// `migrate_page_copy`: the contents, PageAnon and PageUptodate (`SetPageUptodate`,
    /// with its `smp_wmb`).
    fn move_to_new_page(&self, new: Pfn, old: Pfn) -> Result<(), Errno> {
        if self.page_count(old) != 1 {
            tracing::trace!(target: "cowbreak::mm", func = "migrate_page_move_mapping", pfn = old, count = self.page_count(old), "refcount is not what migration holds: -EAGAIN");
            return Err(Errno::EAGAIN);
        }
        self.copy_user_highpage(new, old);
        self.page_set(new, flags::ANON);
        self.__SetPageUptodate(new);
        Ok(())
    }

    /// `remove_migration_ptes` -> `remove_migration_pte` for every migration entry of
    /// `old`: map `new` (which is `old` when migration failed), young-cleared, writable if
    /// the entry was; `get_page`; `page_add_anon_rmap`, with `RMAP_EXCLUSIVE` (v5.19) unless
    /// the entry was a readable one.
    fn remove_migration_ptes(&self, old: Pfn, new: Pfn, addr: Addr) {
        self.rmap_walk_anon(addr, |mm, table| {
            let _ptl = self.mo.spin_lock(&self.mm(mm).page_table_lock);
            let entry = self.ptep_get(table, addr);
            if !entry.is_migration_entry() || entry.pfn() != old {
                return true;
            }
            self.get_page(new, "remove_migration_pte");
            let mut pte = Pte::mk(new, false).mkold();
            if entry.migration_writable() {
                // maybe_mkwrite: mprotect turns writable entries readable when it removes
                // write, so a writable entry means a writable vma.
                pte = pte.mkwrite();
            }
            self.page_add_anon_rmap(
                new,
                self.policy.anon_exclusive() && entry.migration_exclusive(),
            );
            self.set_pte(mm, table, addr, entry, pte, true, "remove_migration_pte");
            true
        });
    }

    /// `page_add_anon_rmap`: one more mapping of an anon page that already exists
    /// (`atomic_inc_and_test(&page->_mapcount)`: value-returning), marked exclusive for
    /// `RMAP_EXCLUSIVE` (v5.19).
    pub(crate) fn page_add_anon_rmap(&self, pfn: Pfn, exclusive: bool) {
        self.mo.atomic_fetch_add(1, &self.page(pfn).mapcount);
        if exclusive {
            self.page_set(pfn, flags::ANON_EXCLUSIVE);
        }
    }

    /// `migration_entry_wait` (a fault, or slow GUP through one, on a migration entry):
    /// under the page-table lock, if the entry is still there, take a reference on its
    /// page (`get_page_unless_zero`), unlock, and wait for the page lock that migration
    /// holds (`put_and_wait_on_page_locked`). The caller retries.
    pub(crate) fn migration_entry_wait(&self, mm: MmId, table: &PteTable, addr: Addr) {
        let ptl = self.mo.spin_lock(&self.mm(mm).page_table_lock);
        let entry = self.ptep_get(table, addr);
        if !entry.is_migration_entry() || !self.page_ref_add_unless_zero(entry.pfn(), 1) {
            return;
        }
        drop(ptl);
        let pfn = entry.pfn();
        tracing::trace!(target: "cowbreak::mm", mm, func = "migration_entry_wait", addr, pfn);
        while self.page_test(pfn, flags::LOCKED) {
            cowbreak_sync::spin_wait();
        }
        self.put_page(pfn, "migration_entry_wait");
    }
}
