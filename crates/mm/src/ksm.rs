//! KSM merging one page (mm/ksm.c `try_to_merge_one_page`: `write_protect_page`, then
//! `replace_page`).
//!
//! `write_protect_page` is the other unmap path of 088b8aa537c2 (v6.1): it clears the PTE,
//! checks that nobody holds an extra reference (a pin, O_DIRECT), from v5.19 calls
//! `page_try_share_anon_rmap`, and puts the *same* page back read-only. A GUP-fast that
//! read the PTE before and rechecks it after sees it unchanged: only the barriers of
//! `anon_exclusive_barriers` make it see PG_anon_exclusive cleared as well (message
//! passing).

use crate::kernel::Kernel;
use crate::mm_types::MmId;
use crate::oracle::UnmapCause;
use crate::page::{flags, PageKind, Pfn};
use crate::pgtable::{Addr, Pte, PteTable};
use crate::Errno;

impl Kernel {
    /// `ksm-merge LOC`: ksmd merges the page `mm` maps at `addr` into a KSM page of the
    /// same contents from the stable tree (`cmp_and_merge_page` ->
    /// `try_to_merge_with_ksm_page`, under `mmap_read_lock`): `follow_page(FOLL_GET)`, then
    /// `try_to_merge_one_page`. The stable tree's page is modeled as a KSM page made for
    /// the occasion with the page's contents at the start; a page whose contents change
    /// before `write_protect_page` is not merged (`pages_identical`). Only anonymous
    /// pages are merged; anything else is left alone, as ksmd does.
    pub fn ksm_merge(&self, cpu: usize, mm: MmId, addr: Addr) -> Result<(), Errno> {
        let vmas = self.mo.down_read(&self.mm(mm).mmap_lock);
        let Some(page) = self.get_anon_page(&vmas, mm, addr, "cmp_and_merge_page")? else {
            return Ok(());
        };
        // The stable tree's KSM page with the same contents.
        let kpage = match self.alloc_page(PageKind::Ksm) {
            Ok(k) => k,
            Err(e) => {
                self.put_page(page, "cmp_and_merge_page");
                return Err(e);
            }
        };
        self.copy_user_highpage(kpage, page);
        self.page_set(kpage, flags::ANON | flags::KSM);
        self.__SetPageUptodate(kpage);
        tracing::trace!(target: "cowbreak::mm", cpu, mm, func = "try_to_merge_one_page", addr, page, kpage);
        self.try_to_merge_one_page(cpu, mm, addr, page, kpage);
        self.put_page(page, "cmp_and_merge_page");
        self.put_page(kpage, "cmp_and_merge_page");
        Ok(())
    }

    /// `try_to_merge_one_page`: `trylock_page` (give up if it is locked), then
    /// `write_protect_page`, and if that succeeded and the contents still match,
    /// `replace_page`.
    fn try_to_merge_one_page(&self, cpu: usize, mm: MmId, addr: Addr, page: Pfn, kpage: Pfn) {
        if !self.trylock_page(page) {
            return;
        }
        let Some((_, table)) = self.pte_table(mm, addr) else {
            self.unlock_page(page);
            return;
        };
        if let Some(orig) = self.write_protect_page(cpu, mm, table, addr, page) {
            // pages_identical: memcmp of the two pages.
            let same = self.mo.read_once(&self.page(page).data)
                == self.mo.read_once(&self.page(kpage).data);
            if same {
                self.replace_page(cpu, mm, table, addr, page, kpage, orig);
            }
        }
        self.unlock_page(page);
    }

    /// `write_protect_page`: under the page-table lock, if the PTE still maps `page`:
    /// when it is writable or dirty (or, from v5.19, the page is exclusive), clear it and
    /// flush (`ptep_clear_flush`), refuse if someone holds a reference the mappings and
    /// ksmd's own do not explain (`page_mapcount + 1 + swapped != page_count`: a pin, a GUP
    /// reference), from v5.19 refuse if `page_try_share_anon_rmap` does (putting the PTE
    /// back either way), then set it back clean and write-protected. Returns the PTE
    /// (`orig_pte`), or `None` if the page cannot be merged.
    fn write_protect_page(
        &self,
        cpu: usize,
        mm: MmId,
        table: &PteTable,
        addr: Addr,
        page: Pfn,
    ) -> Option<Pte> {
        let _ptl = self.mo.spin_lock(&self.mm(mm).page_table_lock);
        let pte = self.ptep_get(table, addr);
        if !pte.present() || pte.special() || pte.pfn() != page {
            return None;
        }
        let anon_exclusive =
            self.policy.anon_exclusive() && self.page_test(page, flags::ANON_EXCLUSIVE);
        if pte.write() || pte.dirty() || anon_exclusive {
            let entry =
                self.ptep_get_and_clear(mm, table, addr, UnmapCause::Replace, "write_protect_page");
            self.flush_tlb(cpu, "ptep_clear_flush");
            let restore = |why: &str| {
                tracing::trace!(target: "cowbreak::mm", cpu, mm, func = "write_protect_page", addr, page, why, "restore the PTE");
                self.set_pte(
                    mm,
                    table,
                    addr,
                    Pte::NONE,
                    entry,
                    true,
                    "write_protect_page",
                );
            };
            if self.page_mapcount(page) + 1 != self.page_count(page) {
                restore("page_mapcount + 1 != page_count");
                return None;
            }
            if anon_exclusive && self.page_try_share_anon_rmap(page).is_err() {
                restore("page_try_share_anon_rmap: maybe pinned");
                return None;
            }
            let wp = entry.wrprotect().mkclean();
            self.set_pte(mm, table, addr, Pte::NONE, wp, true, "write_protect_page");
        }
        Some(self.ptep_get(table, addr))
    }

    /// `replace_page`: under the page-table lock, if the PTE is still `orig`, map the KSM
    /// page instead (`get_page`, `page_add_anon_rmap`, read-only: `mk_pte` with the vma's
    /// COW protection), `ptep_clear_flush` the old entry first, then `page_remove_rmap` and
    /// `put_page` of the old page.
    #[allow(clippy::too_many_arguments)]
    fn replace_page(
        &self,
        cpu: usize,
        mm: MmId,
        table: &PteTable,
        addr: Addr,
        page: Pfn,
        kpage: Pfn,
        orig: Pte,
    ) {
        let _ptl = self.mo.spin_lock(&self.mm(mm).page_table_lock);
        if self.ptep_get(table, addr) != orig {
            return;
        }
        self.get_page(kpage, "replace_page");
        self.page_add_anon_rmap(kpage, false);
        let newpte = Pte::mk(kpage, false);
        self.ptep_get_and_clear(mm, table, addr, UnmapCause::Replace, "replace_page");
        self.flush_tlb(cpu, "ptep_clear_flush");
        self.set_pte(mm, table, addr, Pte::NONE, newpte, true, "replace_page");
        self.page_remove_rmap(page, "replace_page");
        self.put_page(page, "replace_page");
    }
}
