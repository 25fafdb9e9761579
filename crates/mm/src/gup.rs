//! get_user_pages (mm/gup.c): slow GUP, fast GUP, unpin.

use crate::kernel::Kernel;
use crate::memory::{fault, VM_FAULT_WRITE};
use crate::mm_types::{is_cow_mapping, vm, MmId, Vma, Vmas};
use crate::oracle::{PinId, ViolationKind};
use crate::page::{flags as pg, is_zero_pfn, Pfn, GUP_PIN_COUNTING_BIAS, ZERO_PFN};
use crate::pgtable::{Addr, Pmd, Pte, PAGE_SIZE};
use crate::Errno;

/// `FOLL_*` flags (include/linux/mm.h), with the kernel's values.
pub mod foll {
    /// `FOLL_WRITE`: the caller will write to the page.
    pub const WRITE: u32 = 0x01;
    /// `FOLL_TOUCH`: mark the page accessed.
    pub const TOUCH: u32 = 0x02;
    /// `FOLL_GET`: take a reference (+1).
    pub const GET: u32 = 0x04;
    /// `FOLL_FORCE`: ptrace / `/proc/pid/mem`: may write through a read-only mapping by
    /// COW.
    pub const FORCE: u32 = 0x10;
    /// `FOLL_COW` (v4.9 19be0eaffa3a; removed v6.0 5535be309971): a COW already happened.
    pub const COW: u32 = 0x4000;
    /// `FOLL_LONGTERM`: the pin is held indefinitely (RDMA, vfio, io_uring buffers).
    pub const LONGTERM: u32 = 0x10000;
    /// `FOLL_PIN` (v5.6 eddb1c228f79): a DMA pin, +[`GUP_PIN_COUNTING_BIAS`](crate::page::GUP_PIN_COUNTING_BIAS).
    pub const PIN: u32 = 0x40000;

    /// The flags by name (`FOLL_GET|FOLL_WRITE`), for traces.
    pub fn names(flags: u32) -> String {
        let all = [
            (WRITE, "FOLL_WRITE"),
            (TOUCH, "FOLL_TOUCH"),
            (GET, "FOLL_GET"),
            (FORCE, "FOLL_FORCE"),
            (COW, "FOLL_COW"),
            (LONGTERM, "FOLL_LONGTERM"),
            (PIN, "FOLL_PIN"),
        ];
        crate::flag_names(flags as u64, &all.map(|(f, n)| (f as u64, n)))
    }
}

/// What `follow_page_pte` found.
enum Follow {
    /// The page, grabbed as the flags asked, with its ghost pin if one was wanted.
    Page(Pfn, Option<PinId>),
    /// No page, or not with the access asked: fault it in and retry.
    NoPage,
    /// v5.19 `gup_must_unshare` said -EMLINK: trigger an unshare fault and retry.
    Unshare,
}

/// A GUP call that leaves a long-lived reference behind (a pin, vmsplice's FOLL_GET):
/// the oracle tracks it from the moment the page is grabbed.
#[derive(Copy, Clone, Debug)]
pub struct PinIntent {
    /// The mm whose address was pinned.
    pub holder: MmId,
    /// Whether the caller asked for write access: the pin's nature, which a forced COW
    /// break adding FOLL_WRITE does not change.
    pub write: bool,
}

/// What a GUP call returns per page.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Grabbed {
    /// The page.
    pub pfn: Pfn,
    /// References taken (1 for FOLL_GET, the bias for FOLL_PIN).
    pub refs: i64,
    /// The oracle's record, for pins.
    pub pin: Option<PinId>,
}

/// References `try_grab_page` takes: the pin bias for FOLL_PIN, else 1.
fn grab_refs(flags: u32) -> i64 {
    if flags & foll::PIN != 0 {
        GUP_PIN_COUNTING_BIAS
    } else {
        1
    }
}

impl Kernel {
    /// `can_follow_write_pte`: may a FOLL_WRITE lookup use this PTE?
    /// - always if the PTE is writable;
    /// - v4.8: never otherwise (FOLL_WRITE was dropped after the COW instead);
    /// - `foll_cow` (v4.9, 19be0eaffa3a): FOLL_FORCE and FOLL_COW and pte_dirty;
    ///   with `force_cow_break_on_gup` (v5.8, 4.4.289) FOLL_COW and pte_dirty;
    /// - `no_foll_cow` (v6.0, 5535be309971): FOLL_FORCE, a private VM_MAYWRITE !VM_WRITE
    ///   vma, and an anon page that is PG_anon_exclusive.
    fn can_follow_write_pte(&self, pte: Pte, pfn: Pfn, vma: &Vma, flags: u32) -> bool {
        if pte.write() {
            return true;
        }
        let p = &self.policy;
        if p.no_foll_cow() {
            flags & foll::FORCE != 0
                && vma.flags & (vm::SHARED | vm::MAYSHARE) == 0
                && vma.flags & vm::MAYWRITE != 0
                && vma.flags & vm::WRITE == 0
                && !is_zero_pfn(pfn)
                && self.page_anon(pfn)
                && self.page_test(pfn, pg::ANON_EXCLUSIVE)
        } else if p.foll_cow() {
            (p.force_cow_break_on_gup() || flags & foll::FORCE != 0)
                && flags & foll::COW != 0
                && pte.dirty()
        } else {
            false
        }
    }

    /// `gup_must_unshare` (v5.19, c89357e27f20 + a7f226604170): a R/O FOLL_PIN of an anon
    /// page that is not PG_anon_exclusive must unshare first. With
    /// `unshare_any_cow_mapping` (v6.2, 84209e87c696) a R/O longterm pin of any page in a
    /// COW mapping must; fast GUP, which has no vma, then always falls back (`None`).
    /// With `anon_exclusive_barriers` (v6.1, 088b8aa537c2) an `smp_rmb()` before the
    /// PG_anon_exclusive test pairs with the barrier in `page_try_share_anon_rmap`: GUP-fast
    /// that rechecked an unchanged PTE must not see the flag as it was before the PTE was
    /// cleared and restored.
    fn gup_must_unshare(&self, flags: u32, pfn: Pfn, vma: Option<&Vma>) -> bool {
        if self.policy.cor_unshare() {
            return self.cor_must_unshare(flags, pfn, vma);
        }
        if !self.policy.unshare_on_ro_pin() || flags & (foll::WRITE | foll::PIN) != foll::PIN {
            return false;
        }
        if is_zero_pfn(pfn) || !self.page_anon(pfn) {
            return self.policy.unshare_any_cow_mapping()
                && flags & foll::LONGTERM != 0
                && vma.is_none_or(|v| is_cow_mapping(v.flags));
        }
        if self.policy.anon_exclusive_barriers() {
            self.mo.smp_rmb();
        }
        !self.page_test(pfn, pg::ANON_EXCLUSIVE)
    }

    /// `gup_must_unshare` of the copy-on-read tree (aa.git, `cor_unshare`): any read GUP
    /// that takes a reference (FOLL_GET or FOLL_PIN, no FOLL_WRITE). An anon page is
    /// unshared if mapped more than once, or at mapcount 1 if `trylock_page` fails;
    /// otherwise `can_read_pin_swap_page` (mapcount + swapcount <= 1; no swap here) under
    /// the page lock. FOLL_LONGTERM implies FOLL_MM_SYNC: the zero page, KSM pages and
    /// page cache in a COW mapping are unshared too.
    fn cor_must_unshare(&self, flags: u32, pfn: Pfn, vma: Option<&Vma>) -> bool {
        if flags & foll::WRITE != 0 || flags & (foll::GET | foll::PIN) == 0 {
            return false;
        }
        if is_zero_pfn(pfn) || !self.page_anon(pfn) || self.page_test(pfn, pg::KSM) {
            return flags & foll::LONGTERM != 0 && vma.is_none_or(|v| is_cow_mapping(v.flags));
        }
        if self.page_mapcount(pfn) > 1 || !self.trylock_page(pfn) {
            return true;
        }
        let shared = self.page_mapcount(pfn) > 1;
        self.unlock_page(pfn);
        shared
    }

    /// `try_grab_page`: FOLL_GET `get_page` (+1), FOLL_PIN `page_ref_add` of the bias
    /// (`atomic_add`: unordered); the caller knows the page is live (it holds the
    /// page-table lock over a PTE mapping it).
    fn try_grab_page(&self, pfn: Pfn, flags: u32) -> i64 {
        let refs = grab_refs(flags);
        self.oracle.check_live(pfn, "try_grab_page");
        self.mo.atomic_add(refs, &self.page(pfn).refcount);
        refs
    }

    /// GUP-fast's speculative grab of `pfn` for `flags`, which fails on a page whose
    /// refcount is 0 (`try_grab_compound_head`, `try_grab_folio` from v5.18):
    /// - FOLL_GET: `try_get_compound_head` / `try_get_folio`, a fully ordered
    ///   `page_ref_add_unless(1, 0)`;
    /// - FOLL_PIN before `pin_folio_ref_add` (v5.7 - v5.13): one fully ordered
    ///   `page_ref_add_unless(GUP_PIN_COUNTING_BIAS, 0)`;
    /// - FOLL_PIN with `pin_folio_ref_add`: `try_get_folio` (+1, fully ordered), then
    ///   `folio_ref_add` of the rest of the bias (unordered), and with
    ///   `anon_exclusive_barriers` (v6.1, 088b8aa537c2) `smp_mb__after_atomic()`: the
    ///   pin is visible before GUP-fast rechecks the PTE.
    ///
    /// Returns the references taken, or `None`.
    fn try_grab_folio(&self, pfn: Pfn, flags: u32) -> Option<i64> {
        let refs = grab_refs(flags);
        if flags & foll::PIN == 0 || !self.policy.pin_folio_ref_add() {
            return self.page_ref_add_unless_zero(pfn, refs).then_some(refs);
        }
        if !self.page_ref_add_unless_zero(pfn, 1) {
            return None;
        }
        self.mo.atomic_add(refs - 1, &self.page(pfn).refcount);
        if self.policy.anon_exclusive_barriers() {
            self.mo.smp_mb__after_atomic();
        }
        Some(refs)
    }

    /// `follow_page_pte`: under the page-table lock, look `addr` up for the access in
    /// `flags` and grab the page (FOLL_GET / FOLL_PIN). No PTE, or a read-only PTE that
    /// `can_follow_write_pte` refuses for FOLL_WRITE, is "no page". From v5.19 a R/O pin
    /// that `gup_must_unshare` returns -EMLINK. The shared zero page is returned for
    /// reads (`is_zero_pfn`).
    fn follow_page_pte(
        &self,
        mm: MmId,
        vma: &Vma,
        addr: Addr,
        flags: u32,
        intent: Option<PinIntent>,
    ) -> Follow {
        let Some((id, table)) = self.pte_table(mm, addr) else {
            return Follow::NoPage;
        };
        // pte_offset_map_lock failing is `no_page_table`: the caller faults and retries.
        let Some(_ptl) = self.pte_offset_map_lock(mm, addr, id, "follow_page_pte") else {
            return Follow::NoPage;
        };
        let pte = self.ptep_get(table, addr);
        if !pte.present() {
            return Follow::NoPage;
        }
        let pfn = self.vm_normal_page(pte).unwrap_or(ZERO_PFN);
        let pin = match self.follow_leaf(pte, pfn, vma, addr, flags, intent, "follow_page_pte") {
            Ok(pin) => pin,
            Err(no) => return no,
        };
        tracing::trace!(target: "cowbreak::mm", mm, func = "follow_page_pte", addr, pte = ?pte, pfn, flags = %foll::names(flags));
        Follow::Page(pfn, pin)
    }

    /// What `follow_page_pte` and `follow_trans_huge_pmd` share once they hold the
    /// entry (`leaf`, mapping `pfn`) under the lock: FOLL_WRITE needs
    /// `can_follow_write_pte` / `can_follow_write_pmd`; from v5.19 a R/O pin that
    /// `gup_must_unshare` is -EMLINK; then `try_grab_page`, recorded by the oracle for a
    /// pin.
    #[allow(clippy::too_many_arguments)]
    fn follow_leaf(
        &self,
        leaf: Pte,
        pfn: Pfn,
        vma: &Vma,
        addr: Addr,
        flags: u32,
        intent: Option<PinIntent>,
        at: &'static str,
    ) -> Result<Option<PinId>, Follow> {
        if flags & foll::WRITE != 0 && !self.can_follow_write_pte(leaf, pfn, vma, flags) {
            return Err(Follow::NoPage);
        }
        if !leaf.write() && self.gup_must_unshare(flags, pfn, Some(vma)) {
            return Err(Follow::Unshare);
        }
        if flags & (foll::GET | foll::PIN) == 0 {
            return Ok(None);
        }
        let refs = self.try_grab_page(pfn, flags);
        Ok(intent.map(|i| self.oracle.on_pin(i.holder, addr, pfn, i.write, refs, at)))
    }

    /// `follow_page_mask`: a huge PMD goes to `follow_trans_huge_pmd`, anything else to
    /// `follow_page_pte`.
    fn follow_page_mask(
        &self,
        mm: MmId,
        vma: &Vma,
        addr: Addr,
        flags: u32,
        intent: Option<PinIntent>,
    ) -> Follow {
        if self.pmd_read(mm, addr).is_huge() {
            self.follow_trans_huge_pmd(mm, vma, addr, flags, intent)
        } else {
            self.follow_page_pte(mm, vma, addr, flags, intent)
        }
    }

    /// `follow_trans_huge_pmd`, under the PMD lock (rechecking that the PMD is still
    /// huge): FOLL_WRITE needs `can_follow_write_pmd` (v4.9 8310d48b125d: the same rule
    /// as `can_follow_write_pte`, on the PMD); the huge zero page is returned like any
    /// page; then the grab, and `touch_pmd` for FOLL_TOUCH: young, and dirty, which
    /// before `touch_pmd_dirty_only_on_write` (v4.15, a8f97366452e) happened for reads
    /// too.
    fn follow_trans_huge_pmd(
        &self,
        mm: MmId,
        vma: &Vma,
        addr: Addr,
        flags: u32,
        intent: Option<PinIntent>,
    ) -> Follow {
        let ptl = self.mo.spin_lock(&self.mm(mm).page_table_lock);
        let pmd = self.pmd_read(mm, addr);
        if !pmd.is_huge() {
            drop(ptl);
            return self.follow_page_pte(mm, vma, addr, flags, intent);
        }
        let leaf = pmd.leaf();
        let pfn = leaf.pfn();
        let pin =
            match self.follow_leaf(leaf, pfn, vma, addr, flags, intent, "follow_trans_huge_pmd") {
                Ok(pin) => pin,
                Err(no) => return no,
            };
        if flags & foll::TOUCH != 0 {
            let mut entry = leaf.mkyoung();
            if flags & foll::WRITE != 0 || !self.policy.touch_pmd_dirty_only_on_write() {
                entry = entry.mkdirty();
            }
            if entry != leaf {
                self.pmdp_set_access_flags(mm, addr, pmd, Pmd::huge(entry), "touch_pmd");
            }
        }
        tracing::trace!(target: "cowbreak::mm", mm, func = "follow_trans_huge_pmd", addr, pmd = ?pmd, pfn, flags = %foll::names(flags));
        Follow::Page(pfn, pin)
    }

    /// `follow_page`: look `addr` up without faulting (the caller holds `mmap_lock`),
    /// taking a reference for FOLL_GET. `None` when nothing is mapped (or, from v5.19, a
    /// R/O pin would have to unshare).
    pub(crate) fn follow_page(&self, mm: MmId, vma: &Vma, addr: Addr, flags: u32) -> Option<Pfn> {
        match self.follow_page_mask(mm, vma, addr, flags, None) {
            Follow::Page(pfn, _) => Some(pfn),
            Follow::NoPage | Follow::Unshare => None,
        }
    }

    /// `check_vma_flags`: may GUP with `flags` touch this vma? A write to a !VM_WRITE vma
    /// needs FOLL_FORCE and a COW mapping; a read of a !VM_READ vma needs FOLL_FORCE and
    /// VM_MAYREAD.
    fn check_vma_flags(vma: &Vma, flags: u32) -> Result<(), Errno> {
        if flags & foll::WRITE != 0 {
            if vma.flags & vm::WRITE == 0
                && (flags & foll::FORCE == 0 || !is_cow_mapping(vma.flags))
            {
                return Err(Errno::EFAULT);
            }
        } else if vma.flags & vm::READ == 0
            && (flags & foll::FORCE == 0 || vma.flags & vm::MAYREAD == 0)
        {
            return Err(Errno::EFAULT);
        }
        Ok(())
    }

    /// `faultin_page`: fault the page in for the access in `flags` (or unshare it), then
    /// adjust the flags for the retried lookup after a COW on a !VM_WRITE vma
    /// (VM_FAULT_WRITE):
    /// - v4.8: drop FOLL_WRITE, the retry is a read (the Dirty COW bug);
    /// - `foll_cow` (v4.9, 19be0eaffa3a): set FOLL_COW instead;
    /// - `no_foll_cow` (v6.0, 5535be309971): nothing.
    fn faultin_page(
        &self,
        cpu: usize,
        mm: MmId,
        vma: &Vma,
        addr: Addr,
        flags: &mut u32,
        unshare: bool,
    ) -> Result<(), Errno> {
        let fault_flags = if unshare {
            fault::UNSHARE
        } else if *flags & foll::WRITE != 0 {
            fault::WRITE
        } else {
            0
        };
        let ret = self.handle_mm_fault(cpu, mm, vma, addr, fault_flags)?;
        if ret & VM_FAULT_WRITE != 0 && vma.flags & vm::WRITE == 0 {
            if self.policy.no_foll_cow() {
            } else if self.policy.foll_cow() {
                *flags |= foll::COW;
            } else {
                *flags &= !foll::WRITE;
            }
        }
        Ok(())
    }

    /// `__get_user_pages`: for each page, `check_vma_flags`, then the retry loop of
    /// `follow_page_mask` (-> [`follow_page_pte`](Self)) and `faultin_page`. The caller
    /// holds `mmap_lock` for read (`vmas` is its guard).
    ///
    /// `force_cow_break_on_gup` (v5.8 17839856fd58, 4.4.289): `should_force_cow_break`
    /// (a COW mapping and FOLL_GET or FOLL_PIN) adds FOLL_WRITE after the vma check.
    /// The kernel's loop is unbounded; the model reports `livelock` past
    /// `gup_retries_max` rounds for one page.
    #[allow(clippy::too_many_arguments)]
    pub fn __get_user_pages(
        &self,
        cpu: usize,
        mm: MmId,
        vmas: &Vmas,
        start: Addr,
        nr: usize,
        gup_flags: u32,
        intent: Option<PinIntent>,
    ) -> Result<Vec<Grabbed>, Errno> {
        let mut got = Vec::with_capacity(nr);
        for i in 0..nr {
            let addr = start + i as u64 * PAGE_SIZE;
            let res = self.get_one_page(cpu, mm, vmas, addr, gup_flags, intent);
            match res {
                Ok(g) => got.push(g),
                Err(e) => {
                    self.release_grabbed(&got);
                    return Err(e);
                }
            }
        }
        Ok(got)
    }

    /// One page of `__get_user_pages`: `check_vma_flags`, `should_force_cow_break`
    /// (`force_cow_break_on_gup`), then the `follow_page_mask` / `faultin_page` retry loop.
    fn get_one_page(
        &self,
        cpu: usize,
        mm: MmId,
        vmas: &Vmas,
        addr: Addr,
        gup_flags: u32,
        intent: Option<PinIntent>,
    ) -> Result<Grabbed, Errno> {
        if vmas.dead {
            return Err(Errno::EFAULT);
        }
        let vma = vmas.lookup(addr).ok_or(Errno::EFAULT)?;
        Self::check_vma_flags(&vma, gup_flags)?;
        let mut flags = gup_flags;
        if self.policy.force_cow_break_on_gup()
            && is_cow_mapping(vma.flags)
            && flags & (foll::GET | foll::PIN) != 0
        {
            flags |= foll::WRITE;
        }
        for _ in 0..self.gup_retries_max {
            match self.follow_page_mask(mm, &vma, addr, flags, intent) {
                Follow::Page(pfn, pin) => {
                    let refs = if flags & (foll::GET | foll::PIN) != 0 {
                        grab_refs(flags)
                    } else {
                        0
                    };
                    return Ok(Grabbed { pfn, refs, pin });
                }
                Follow::NoPage => self.faultin_page(cpu, mm, &vma, addr, &mut flags, false)?,
                Follow::Unshare => self.faultin_page(cpu, mm, &vma, addr, &mut flags, true)?,
            }
        }
        self.oracle.report(
            ViolationKind::Livelock,
            "__get_user_pages",
            format!(
                "mm{mm}: no page at {addr:#x} after {} fault-and-retry rounds",
                self.gup_retries_max
            ),
        );
        Err(Errno::EFAULT)
    }

    /// Drop what a GUP call grabbed (its error path, or the caller's release).
    pub(crate) fn release_grabbed(&self, got: &[Grabbed]) {
        for g in got {
            if let Some(pin) = g.pin {
                self.oracle.on_unpin(pin);
            }
            if g.refs > 0 {
                self.put_page_refs(g.pfn, g.refs, "unpin_user_page");
            }
        }
    }

    /// `get_user_pages_remote` / `pin_user_pages` / `get_user_pages`: slow GUP on
    /// another (or the same) mm: `mmap_read_lock`, `__get_user_pages`, unlock. Sets
    /// `has_pinned` for FOLL_PIN (v5.9, 008cfe4418b3: `atomic_set`).
    pub fn get_user_pages(
        &self,
        cpu: usize,
        mm: MmId,
        start: Addr,
        nr: usize,
        gup_flags: u32,
        intent: Option<PinIntent>,
    ) -> Result<Vec<Grabbed>, Errno> {
        if gup_flags & foll::PIN != 0 {
            self.mo.atomic_set(&self.mm(mm).has_pinned, 1);
        }
        let vmas = self.mo.down_read(&self.mm(mm).mmap_lock);
        self.__get_user_pages(cpu, mm, &vmas, start, nr, gup_flags, intent)
    }

    /// `gup_pte_range` for one PTE, interrupts off: read the PMD and the PTE
    /// (`ptep_get_lockless`), check it (present; writable for FOLL_WRITE; not special),
    /// then take the page:
    /// - with `x86_gup_fast` (x86 before v4.13, `arch/x86/mm/gup.c`): a plain `get_page`
    ///   and no recheck: the flush IPI, which cannot complete while interrupts are off,
    ///   keeps the page and the table alive;
    /// - otherwise the speculative grab ([`try_grab_folio`](Self)), then the recheck of
    ///   the PTE (and, with `gup_fast_recheck_pmd`, v6.0 70cbc3cc78a9, of the PMD), which
    ///   drops the page if anything moved; then, with `unshare_on_ro_pin` (v5.19), a R/O
    ///   pin that `gup_must_unshare` is dropped too.
    ///
    /// `None`: fall back to slow GUP.
    fn gup_pte_range(
        &self,
        mm: MmId,
        addr: Addr,
        flags: u32,
        intent: Option<PinIntent>,
    ) -> Option<Grabbed> {
        let pmd = self.pmd_read(mm, addr);
        // gup_huge_pmd is not modeled: a huge PMD goes to slow GUP.
        if pmd.is_none() || pmd.is_huge() {
            return None;
        }
        let table = self.tables.table(pmd.table_id());
        let pte = self.ptep_get_lockless(table, addr);
        self.oracle
            .check_table_read(pmd.table_id(), mm, "gup_pte_range");
        if !pte.present() || (flags & foll::WRITE != 0 && !pte.write()) || pte.special() {
            return None;
        }
        let pfn = pte.pfn();
        let refs = if self.policy.x86_gup_fast() {
            // get_page(page); SetPageReferenced(page).
            self.get_page(pfn, "gup_pte_range");
            grab_refs(flags)
        } else {
            let refs = self.try_grab_folio(pfn, flags)?;
            let pmd_moved = self.policy.gup_fast_recheck_pmd() && self.pmd_recheck(mm, addr) != pmd;
            if pmd_moved || self.ptep_get(table, addr) != pte {
                self.put_page_refs(pfn, refs, "gup_pte_range");
                return None;
            }
            if !pte.write() && self.gup_must_unshare(flags, pfn, None) {
                self.put_page_refs(pfn, refs, "gup_pte_range");
                return None;
            }
            refs
        };
        let pin = intent.map(|i| {
            self.oracle
                .on_pin(i.holder, addr, pfn, i.write, refs, "gup_pte_range")
        });
        tracing::trace!(target: "cowbreak::mm", mm, func = "gup_pte_range", addr, pte = ?pte, pfn, flags = %foll::names(flags));
        Some(Grabbed { pfn, refs, pin })
    }

    /// `internal_get_user_pages_fast` (`get_user_pages_fast`, `pin_user_pages_fast`): the
    /// lockless walk with interrupts off on `cpu`, then slow GUP for whatever it could not
    /// take.
    /// - `force_cow_break_on_gup` (v5.8, 4.4.289): the walk adds FOLL_WRITE, so only
    ///   writable PTEs are taken locklessly; not in x86's own fast GUP (`x86_gup_fast`),
    ///   which the 4.4.289 / 4.9.287 backport did not touch (it walks with the caller's
    ///   `write`) until the 4.9.y rework of January 2022 (`x86_gup_fast_cow_break`).
    /// - `write_protect_seq` (v5.11, 57efa1fe5957): FOLL_PIN samples
    ///   `mm->write_protect_seq` first (odd: fork is copying, go slow) and after the walk
    ///   `read_seqcount_retry` unpins everything and goes slow.
    pub fn get_user_pages_fast(
        &self,
        cpu: usize,
        mm: MmId,
        start: Addr,
        nr: usize,
        gup_flags: u32,
        intent: Option<PinIntent>,
    ) -> Result<Vec<Grabbed>, Errno> {
        let mut got: Vec<Grabbed> = Vec::with_capacity(nr);
        if gup_flags & foll::PIN != 0 {
            self.mo.atomic_set(&self.mm(mm).has_pinned, 1);
        }
        let seq = &self.mm(mm).write_protect_seq;
        let sample = (self.policy.write_protect_seq() && gup_flags & foll::PIN != 0)
            .then(|| self.mo.raw_read_seqcount(seq));
        if sample.is_none_or(|s| s % 2 == 0) {
            let mut walk_flags = gup_flags;
            if self.policy.force_cow_break_on_gup()
                && (!self.policy.x86_gup_fast() || self.policy.x86_gup_fast_cow_break())
            {
                walk_flags |= foll::WRITE;
            }
            self.local_irq_disable(cpu);
            for i in 0..nr {
                match self.gup_pte_range(mm, start + i as u64 * PAGE_SIZE, walk_flags, intent) {
                    Some(g) => got.push(g),
                    None => break,
                }
            }
            self.local_irq_enable(cpu);
            if let Some(s) = sample {
                if self.mo.read_seqcount_retry(seq, s) {
                    tracing::trace!(target: "cowbreak::mm", cpu, mm, func = "lockless_pages_from_mm", "write_protect_seq moved: unpin, go slow");
                    self.release_grabbed(&got);
                    got.clear();
                }
            }
        }
        if got.len() < nr {
            let rest = start + got.len() as u64 * PAGE_SIZE;
            let more = self.get_user_pages(cpu, mm, rest, nr - got.len(), gup_flags, intent);
            match more {
                Ok(more) => got.extend(more),
                Err(e) => {
                    self.release_grabbed(&got);
                    return Err(e);
                }
            }
        }
        Ok(got)
    }
}
