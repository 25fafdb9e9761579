//! The oracle: checks the model's invariants at every state change.
//!
//! It keeps ghost state (who maps which frame, which pins exist, which frames and tables
//! are live) in a [`Ghost`] cell, which is never a scheduling point, and it never changes
//! model state. The model calls its `on_*` hooks right after the atomic operation each
//! one mirrors, with no scheduling point in between, so the ghost state is exactly the
//! model state in the order the scheduler ran it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use cowbreak_sync::Ghost;

use crate::page::{PageKind, Pfn, HUGE_ZERO_PFN, ZERO_PFN};
use crate::pgtable::{Addr, TableId};
use crate::MmId;

/// The stable names of everything the oracle can report.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ViolationKind {
    /// A pin's holder no longer maps the pinned page at the pinned address, and the holder
    /// did not unmap or discard it: COW broke the wrong way.
    PinCoherence,
    /// A private write by one mm landed on a page another mm holds a read pin on
    /// (CVE-2020-29374).
    PinIsolation,
    /// A private or forced write landed on a page-cache page, the zero page or a KSM page
    /// (Dirty COW).
    RoPageWritten,
    /// After fork, a private write by one mm became visible through another mm's mapping.
    CowIsolation,
    /// Refcount underflow, a page freed while mapped or pinned, an access to a freed page.
    PageLifetime,
    /// A page-table page freed while a fast-GUP walker could still read it.
    PgtableLifetime,
    /// A fault under the per-VMA lock acted on a vma's fields older than the change its
    /// writer had published (the vma was no longer write-locked).
    VmaCoherence,
    /// At the end: refcount / mapcount / pins disagree with the page tables.
    Accounting,
    /// Nobody runnable (from the backend).
    Deadlock,
    /// A retry loop or the step bound ran out.
    Livelock,
}

impl ViolationKind {
    /// Every kind.
    pub const ALL: [ViolationKind; 10] = [
        ViolationKind::PinCoherence,
        ViolationKind::PinIsolation,
        ViolationKind::RoPageWritten,
        ViolationKind::CowIsolation,
        ViolationKind::PageLifetime,
        ViolationKind::PgtableLifetime,
        ViolationKind::VmaCoherence,
        ViolationKind::Accounting,
        ViolationKind::Deadlock,
        ViolationKind::Livelock,
    ];

    /// The stable name (`pin-coherence`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ViolationKind::PinCoherence => "pin-coherence",
            ViolationKind::PinIsolation => "pin-isolation",
            ViolationKind::RoPageWritten => "ro-page-written",
            ViolationKind::CowIsolation => "cow-isolation",
            ViolationKind::PageLifetime => "page-lifetime",
            ViolationKind::PgtableLifetime => "pgtable-lifetime",
            ViolationKind::VmaCoherence => "vma-coherence",
            ViolationKind::Accounting => "accounting",
            ViolationKind::Deadlock => "deadlock",
            ViolationKind::Livelock => "livelock",
        }
    }

    /// One line on what broke.
    pub fn explain(self) -> &'static str {
        match self {
            ViolationKind::PinCoherence => {
                "a pinned page is no longer what its holder maps: COW broke the wrong way"
            }
            ViolationKind::PinIsolation => {
                "a write by one mm landed on a page another mm holds a read pin on"
            }
            ViolationKind::RoPageWritten => {
                "a private or forced write landed on a page-cache page, the zero page or a KSM page"
            }
            ViolationKind::CowIsolation => {
                "after fork, a private write became visible through another mm's mapping"
            }
            ViolationKind::PageLifetime => {
                "a page was used after free, freed while in use, or its refcount underflowed"
            }
            ViolationKind::PgtableLifetime => {
                "a page-table page was freed while a fast-GUP walker could still read it"
            }
            ViolationKind::VmaCoherence => {
                "a fault under the per-VMA lock used vma fields older than the vma's last published change"
            }
            ViolationKind::Accounting => {
                "refcount / mapcount / pins disagree with the page tables at the end"
            }
            ViolationKind::Deadlock => "no thread can run",
            ViolationKind::Livelock => "a retry loop or the step bound ran out",
        }
    }

    /// Look a kind up by its stable name.
    pub fn from_name(name: &str) -> Option<ViolationKind> {
        ViolationKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// What broke.
    pub kind: ViolationKind,
    /// The model function where it was detected (its signature together with `kind`).
    pub at: &'static str,
    /// What happened, naming the objects involved.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} in {}: {}", self.kind, self.at, self.message)
    }
}

/// Why a PTE stopped mapping a page.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum UnmapCause {
    /// munmap, MADV_DONTNEED or exit by the mm itself: its pins are detached, no longer
    /// expected to match what it maps.
    Discard,
    /// The PTE is about to be replaced (COW, unshare): pins stay attached and must match
    /// the new page.
    Replace,
}

/// A pin (or a FOLL_GET reference held like one: vmsplice, get_user_pages).
#[derive(Clone, Debug)]
struct PinGhost {
    holder: MmId,
    addr: Addr,
    pfn: Pfn,
    write: bool,
    /// Taken through a private mapping.
    private: bool,
    /// The holder has not discarded the mapping since it pinned.
    attached: bool,
    refs: i64,
}

/// Ghost state of one frame.
#[derive(Copy, Clone, Debug)]
struct FrameGhost {
    live: bool,
    kind: PageKind,
    /// Stores that landed on it since it was allocated, and the last one's mm and
    /// address (for [`Oracle::on_cow_commit`]).
    stores: u64,
    last_store: (MmId, Addr),
}

impl FrameGhost {
    fn new(live: bool, kind: PageKind) -> Self {
        FrameGhost {
            live,
            kind,
            stores: 0,
            last_store: (0, 0),
        }
    }
}

#[derive(Clone, Debug, Default)]
struct State {
    frames: Vec<FrameGhost>,
    tables_live: Vec<bool>,
    /// (mm, addr) -> the frame its PTE maps (zero page included).
    rmap: BTreeMap<(MmId, Addr), (Pfn, bool)>,
    /// The rmap entries that are huge PMDs, keyed by the PMD's start: they stand for
    /// every address of the PMD range.
    huge: BTreeSet<(MmId, Addr)>,
    pins: BTreeMap<u64, PinGhost>,
    next_pin: u64,
    /// The (mm, addr) keys whose last unmap was the mm discarding its own mapping
    /// (munmap, MADV_DONTNEED, exit), until something is mapped there again.
    discarded: BTreeSet<(MmId, Addr)>,
    /// mms inside fork: their writes may still land on pages being shared with the child.
    forking: Vec<MmId>,
    violations: Vec<Violation>,
}

impl State {
    fn report(&mut self, kind: ViolationKind, at: &'static str, message: String) {
        // One report per (kind, place) per execution: the first is the interesting one.
        if self.violations.iter().any(|v| v.kind == kind && v.at == at) {
            return;
        }
        tracing::warn!(target: "cowbreak::oracle", kind = kind.name(), at, %message, "violation");
        self.violations.push(Violation { kind, at, message });
    }

    /// The rmap key for `addr` of `mm`: the PMD's start if a huge PMD maps it.
    fn key(&self, mm: MmId, addr: Addr) -> (MmId, Addr) {
        let base = crate::pgtable::pmd_start(addr);
        if self.huge.contains(&(mm, base)) {
            (mm, base)
        } else {
            (mm, addr)
        }
    }

    fn mapped_by_other(&self, pfn: Pfn, mm: MmId) -> Option<(MmId, Addr)> {
        self.rmap
            .iter()
            .find(|(&(m, _), &(p, private))| p == pfn && m != mm && private)
            .map(|(&k, _)| k)
    }
}

/// The oracle of one execution.
#[derive(Debug, Default)]
pub struct Oracle {
    st: Ghost<State>,
}

/// A pin's ghost id: the oracle tracks each pin from the grab to the unpin.
pub type PinId = u64;

impl cowbreak_sync::Snapshot for Oracle {
    fn snapshot(&mut self) -> Self {
        Oracle {
            st: self.st.snapshot(),
        }
    }
}

impl Oracle {
    pub(crate) fn new(nr_frames: usize, nr_tables: usize) -> Self {
        let mut frames = vec![FrameGhost::new(false, PageKind::Anon); nr_frames];
        for zero in [ZERO_PFN, HUGE_ZERO_PFN] {
            frames[zero as usize] = FrameGhost::new(true, PageKind::Zero);
        }
        Oracle {
            st: Ghost::new(State {
                frames,
                tables_live: vec![false; nr_tables],
                ..State::default()
            }),
        }
    }

    /// Everything reported so far in this execution.
    pub fn violations(&self) -> Vec<Violation> {
        self.st.with(|s| s.violations.clone())
    }

    /// Report a violation found by the model itself (retry bound, underflow).
    pub(crate) fn report(&self, kind: ViolationKind, at: &'static str, message: String) {
        self.st.with(|s| s.report(kind, at, message));
    }

    /// A frame was allocated (`alloc_page`, the page cache at boot).
    pub(crate) fn on_page_alloc(&self, pfn: Pfn, kind: PageKind) {
        self.st
            .with(|s| s.frames[pfn as usize] = FrameGhost::new(true, kind));
    }

    /// A frame goes back to the pool (`__free_pages`): it must be neither mapped nor pinned.
    pub(crate) fn on_page_free(&self, pfn: Pfn) {
        self.st.with(|s| {
            if let Some((&(mm, addr), _)) = s.rmap.iter().find(|(_, &(p, _))| p == pfn) {
                s.report(
                    ViolationKind::PageLifetime,
                    "__free_pages",
                    format!("pfn {pfn} freed while mm{mm} still maps it at {addr:#x}"),
                );
            }
            if let Some(pin) = s.pins.values().find(|p| p.pfn == pfn) {
                let holder = pin.holder;
                s.report(
                    ViolationKind::PageLifetime,
                    "__free_pages",
                    format!("pfn {pfn} freed while mm{holder} holds a pin on it"),
                );
            }
            s.frames[pfn as usize].live = false;
        });
    }

    /// A use of frame `pfn` by `what`: report if it is free.
    pub(crate) fn check_live(&self, pfn: Pfn, at: &'static str) {
        self.st.with(|s| {
            if !s.frames[pfn as usize].live {
                s.report(
                    ViolationKind::PageLifetime,
                    at,
                    format!("pfn {pfn} used after it was freed"),
                );
            }
        });
    }

    /// A PTE table was allocated (`pte_alloc_one`).
    pub(crate) fn on_table_alloc(&self, table: TableId) {
        self.st.with(|s| s.tables_live[table] = true);
    }

    /// A PTE table was freed (`pte_free`, after the IPI).
    pub(crate) fn on_table_free(&self, table: TableId) {
        self.st.with(|s| s.tables_live[table] = false);
    }

    /// A lockless walker on `cpu` just read an entry of `table`.
    pub(crate) fn check_table_read(&self, table: TableId, mm: MmId, at: &'static str) {
        self.st.with(|s| {
            if !s.tables_live[table] {
                s.report(
                    ViolationKind::PgtableLifetime,
                    at,
                    format!("walker of mm{mm} read PTE table {table} after it was freed"),
                );
            }
        });
    }

    /// mm `mm`'s PTE at `addr` now maps `pfn` (`set_pte_at` of a present entry).
    pub(crate) fn on_map(&self, mm: MmId, addr: Addr, pfn: Pfn, private: bool, at: &'static str) {
        self.map(mm, addr, pfn, private, false, at)
    }

    /// mm `mm`'s PMD at `addr` (its start) now maps huge page `pfn` (`set_pmd_at`).
    pub(crate) fn on_map_huge(
        &self,
        mm: MmId,
        addr: Addr,
        pfn: Pfn,
        private: bool,
        at: &'static str,
    ) {
        self.map(mm, addr, pfn, private, true, at)
    }

    fn map(&self, mm: MmId, addr: Addr, pfn: Pfn, private: bool, huge: bool, at: &'static str) {
        self.st.with(|s| {
            if huge {
                s.huge.insert((mm, addr));
            }
            if !s.frames[pfn as usize].live {
                s.report(ViolationKind::PageLifetime, at, format!("mm{mm} maps freed pfn {pfn} at {addr:#x}"));
            }
            s.rmap.insert((mm, addr), (pfn, private));
            s.discarded.remove(&(mm, addr));
            // A huge mapping covers pins taken on the small pages it replaces (collapse).
            let covers = |a: Addr| {
                a == addr || (huge && addr <= a && a < addr + crate::pgtable::PMD_SIZE)
            };
            let stale: Vec<(Pfn, bool)> = s
                .pins
                .values()
                .filter(|p| p.holder == mm && covers(p.addr) && p.attached && p.pfn != pfn)
                .map(|p| (p.pfn, p.write))
                .collect();
            for (pinned, write) in stale {
                let rw = if write { "R/W" } else { "R/O" };
                s.report(
                    ViolationKind::PinCoherence,
                    at,
                    format!(
                        "mm{mm} now maps pfn {pfn} at {addr:#x} but holds a {rw} pin on pfn {pinned} there"
                    ),
                );
            }
        });
    }

    /// mm `mm`'s PTE (or huge PMD, by its start) at `addr` no longer maps anything.
    pub(crate) fn on_unmap(&self, mm: MmId, addr: Addr, cause: UnmapCause) {
        self.st.with(|s| {
            s.rmap.remove(&(mm, addr));
            s.huge.remove(&(mm, addr));
            if cause == UnmapCause::Discard {
                s.discarded.insert((mm, addr));
                for p in s
                    .pins
                    .values_mut()
                    .filter(|p| p.holder == mm && p.addr == addr)
                {
                    p.attached = false;
                }
            }
        });
    }

    /// mm `mm` (or a forced access on its behalf) stored into frame `pfn` at `addr`.
    pub(crate) fn on_write(&self, mm: MmId, addr: Addr, pfn: Pfn, private: bool, at: &'static str) {
        self.st.with(|s| {
            let f = &mut s.frames[pfn as usize];
            f.stores += 1;
            f.last_store = (mm, addr);
            let frame = s.frames[pfn as usize];
            if !frame.live {
                s.report(ViolationKind::PageLifetime, at, format!("mm{mm} wrote freed pfn {pfn} at {addr:#x}"));
                return;
            }
            if !private {
                return;
            }
            match frame.kind {
                PageKind::PageCache | PageKind::Zero | PageKind::Ksm => {
                    let what = match (frame.kind, pfn) {
                        (PageKind::Zero, HUGE_ZERO_PFN) => "the huge zero page",
                        (PageKind::Zero, _) => "the shared zero page",
                        (PageKind::Ksm, _) => "a KSM page",
                        _ => "a page-cache page",
                    };
                    s.report(
                        ViolationKind::RoPageWritten,
                        at,
                        format!("mm{mm}'s private write at {addr:#x} landed on pfn {pfn}, {what}"),
                    );
                }
                PageKind::Anon => {}
            }
            let foreign_pin = s
                .pins
                .values()
                .find(|p| p.pfn == pfn && p.holder != mm && !p.write && p.private)
                .map(|p| (p.holder, p.addr));
            if let Some((holder, paddr)) = foreign_pin {
                s.report(
                    ViolationKind::PinIsolation,
                    at,
                    format!(
                        "mm{mm}'s write at {addr:#x} landed on pfn {pfn}, read-pinned by mm{holder} at {paddr:#x}"
                    ),
                );
            }
            if !s.forking.contains(&mm) {
                if let Some((other, oaddr)) = s.mapped_by_other(pfn, mm) {
                    s.report(
                        ViolationKind::CowIsolation,
                        at,
                        format!(
                            "mm{mm}'s private write at {addr:#x} landed on pfn {pfn}, mapped by mm{other} at {oaddr:#x}"
                        ),
                    );
                }
            }
        });
    }

    /// How many stores have landed on `pfn` so far (for [`Oracle::on_cow_commit`]).
    pub(crate) fn stores(&self, pfn: Pfn) -> u64 {
        self.st.with(|s| s.frames[pfn as usize].stores)
    }

    /// A COW fault of `mm` at `addr` copied `old` into `new` when `old` had seen `seen`
    /// stores, and has now mapped `new`. A store of `mm`'s own at `addr` that landed on
    /// `old` since the copy is lost to `mm` (its mapping now shows `new` without it) and
    /// left in `old`, which the other mms sharing it see: only a writable translation
    /// that outlived the PTE's write-protection (fork's deferred TLB flush) lets one in.
    pub(crate) fn on_cow_commit(
        &self,
        mm: MmId,
        addr: Addr,
        old: Pfn,
        new: Pfn,
        seen: u64,
        at: &'static str,
    ) {
        self.st.with(|s| {
            let FrameGhost {
                stores: n,
                last_store: (by, waddr),
                ..
            } = s.frames[old as usize];
            if n != seen && by == mm && waddr == addr {
                s.report(
                    ViolationKind::CowIsolation,
                    at,
                    format!(
                        "mm{mm}'s write at {addr:#x} landed on pfn {old} after the COW fault copied it into pfn {new}: mm{mm} lost it, and pfn {old} keeps it for whoever else maps it"
                    ),
                );
            }
        });
    }

    /// `dup_mmap` of `mm` began: writes by `mm` may reach the child until it ends.
    pub(crate) fn on_fork_begin(&self, mm: MmId) {
        self.st.with(|s| s.forking.push(mm));
    }

    /// `dup_mmap` of `mm` ended (after its TLB flush).
    pub(crate) fn on_fork_end(&self, mm: MmId) {
        self.st.with(|s| s.forking.retain(|&m| m != mm));
    }

    /// A pin (or long-held GUP reference) of `refs` on `pfn` by `holder` at `addr`, taken
    /// by a GUP walk that has just seen `holder`'s entry map `pfn` (under the page-table
    /// lock, or by fast GUP's recheck). What the ghost state says of the holder's mapping
    /// now decides:
    /// - it maps `pfn`: the pin is attached (it must keep matching what the holder maps);
    /// - it maps another page: the walk took a page the holder had already replaced (COW
    ///   broke away from it while the walk ran): reported as `pin-coherence`;
    /// - nothing, because the holder discarded the mapping itself (munmap, MADV_DONTNEED,
    ///   exit) after the walk read it: the pin is detached, as if taken just before;
    /// - nothing, because the entry is being replaced (migration or KSM cleared it and
    ///   will put a page back): attached, so that whatever is mapped next must match. Under
    ///   weak memory a walk's recheck may still read the entry from before it was cleared;
    ///   when the clearer then sees the pin and restores the same page, nothing is wrong.
    pub(crate) fn on_pin(
        &self,
        holder: MmId,
        addr: Addr,
        pfn: Pfn,
        write: bool,
        refs: i64,
        at: &'static str,
    ) -> PinId {
        self.st.with(|s| {
            let key = s.key(holder, addr);
            let addr = key.1;
            let mapped = s.rmap.get(&key).copied();
            let attached = match mapped {
                Some((p, _)) if p != pfn => {
                    s.report(
                        ViolationKind::PinCoherence,
                        at,
                        format!("mm{holder} pinned pfn {pfn} at {addr:#x}, which it no longer maps (it maps pfn {p})"),
                    );
                    false
                }
                Some(_) => true,
                None => !s.discarded.contains(&key),
            };
            let private = mapped.is_none_or(|(_, private)| private);
            let id = s.next_pin;
            s.next_pin += 1;
            s.pins.insert(
                id,
                PinGhost {
                    holder,
                    addr,
                    pfn,
                    write,
                    private,
                    attached,
                    refs,
                },
            );
            id
        })
    }

    /// Whether mm `mm`'s mapping at `addr` is private, as far as the ghost rmap knows
    /// (true when nothing is mapped there).
    pub(crate) fn is_private_mapping(&self, mm: MmId, addr: Addr) -> bool {
        self.st.with(|s| {
            let key = s.key(mm, addr);
            s.rmap.get(&key).is_none_or(|&(_, private)| private)
        })
    }

    pub(crate) fn on_unpin(&self, pin: PinId) {
        self.st.with(|s| s.pins.remove(&pin));
    }

    /// Expected `(refcount, mapcount)` contributions of the ghost state for `pfn`:
    /// (number of PTEs mapping it, pin references).
    pub(crate) fn expected_refs(&self, pfn: Pfn) -> (i64, i64) {
        self.st.with(|s| {
            let maps = s.rmap.values().filter(|&&(p, _)| p == pfn).count() as i64;
            let pins: i64 = s
                .pins
                .values()
                .filter(|p| p.pfn == pfn)
                .map(|p| p.refs)
                .sum();
            (maps, pins)
        })
    }

    pub(crate) fn frame_live(&self, pfn: Pfn) -> Option<PageKind> {
        self.st.with(|s| {
            s.frames[pfn as usize]
                .live
                .then_some(s.frames[pfn as usize].kind)
        })
    }
}

#[cfg(test)]
mod tests {
    //! The oracle alone, on ghost state (no backend needed): each kind fires on the
    //! situation it names and stays quiet on its legitimate neighbour.

    use super::*;

    fn oracle() -> Oracle {
        let o = Oracle::new(8, 2);
        for pfn in 1..4 {
            o.on_page_alloc(pfn, PageKind::Anon);
        }
        o.on_page_alloc(4, PageKind::PageCache);
        o
    }

    fn kinds(o: &Oracle) -> Vec<ViolationKind> {
        o.violations().iter().map(|v| v.kind).collect()
    }

    #[test]
    fn cow_isolation_fires_on_a_write_to_a_page_another_mm_maps() {
        let o = oracle();
        o.on_map(0, 0x8000, 1, true, "t");
        o.on_map(1, 0x8000, 1, true, "t");
        o.on_write(0, 0x8000, 1, true, "t");
        assert_eq!(kinds(&o), [ViolationKind::CowIsolation]);
    }

    #[test]
    fn a_cow_copy_that_misses_its_own_mms_later_store_is_cow_isolation() {
        let o = oracle();
        o.on_map(0, 0x8000, 1, true, "t");
        // A store before the copy is in the copy: nothing lost.
        o.on_write(0, 0x8000, 1, true, "t");
        let seen = o.stores(1);
        o.on_cow_commit(0, 0x8000, 1, 2, seen, "wp_page_copy");
        assert_eq!(kinds(&o), []);
        // A store of mm0's own at that address after the copy is lost to mm0.
        o.on_write(0, 0x8000, 1, true, "t");
        o.on_cow_commit(0, 0x8000, 1, 2, seen, "wp_page_copy");
        assert_eq!(kinds(&o), [ViolationKind::CowIsolation]);
        // One at another address is not.
        let o = oracle();
        o.on_map(0, 0x8000, 1, true, "t");
        let seen = o.stores(1);
        o.on_write(0, 0x9000, 1, true, "t");
        o.on_cow_commit(0, 0x8000, 1, 2, seen, "wp_page_copy");
        assert_eq!(kinds(&o), []);
    }

    #[test]
    fn a_write_during_fork_may_reach_the_child() {
        let o = oracle();
        o.on_map(0, 0x8000, 1, true, "t");
        o.on_fork_begin(0);
        o.on_map(1, 0x8000, 1, true, "t");
        o.on_write(0, 0x8000, 1, true, "t");
        o.on_fork_end(0);
        assert!(kinds(&o).is_empty());
    }

    #[test]
    fn shared_mappings_may_write_shared_pages_and_page_cache() {
        let o = oracle();
        o.on_map(0, 0x8000, 4, false, "t");
        o.on_map(1, 0x8000, 4, false, "t");
        o.on_write(0, 0x8000, 4, false, "t");
        assert!(kinds(&o).is_empty());
        // A private write to the page cache is Dirty COW's kind; mm1's shared mapping of
        // it is no COW isolation to break.
        o.on_write(0, 0x8000, 4, true, "private");
        assert_eq!(kinds(&o), [ViolationKind::RoPageWritten]);
    }

    #[test]
    fn pin_isolation_needs_a_foreign_read_pin() {
        let o = oracle();
        o.on_map(1, 0x8000, 2, true, "t");
        let own = o.on_pin(1, 0x8000, 2, false, 1, "t");
        o.on_unmap(1, 0x8000, UnmapCause::Discard);
        o.on_map(0, 0x9000, 2, true, "t");
        o.on_write(0, 0x9000, 2, true, "t");
        assert_eq!(kinds(&o), [ViolationKind::PinIsolation]);
        o.on_unpin(own);
    }

    #[test]
    fn pin_coherence_fires_on_replace_but_not_after_discard() {
        let o = oracle();
        o.on_map(0, 0x8000, 1, true, "t");
        o.on_pin(0, 0x8000, 1, true, 1024, "t");
        o.on_unmap(0, 0x8000, UnmapCause::Discard);
        o.on_map(0, 0x8000, 2, true, "refault");
        assert!(kinds(&o).is_empty(), "the holder discarded its own mapping");
        let o = oracle();
        o.on_map(0, 0x8000, 1, true, "t");
        o.on_pin(0, 0x8000, 1, true, 1024, "t");
        o.on_unmap(0, 0x8000, UnmapCause::Replace);
        o.on_map(0, 0x8000, 2, true, "wp_page_copy");
        assert_eq!(kinds(&o), [ViolationKind::PinCoherence]);
    }

    #[test]
    fn a_pin_taken_through_a_stale_entry_is_judged_by_what_the_holder_maps_now() {
        // The holder replaced the page while the walk ran: COW broke away from it.
        let o = oracle();
        o.on_map(0, 0x8000, 1, true, "t");
        o.on_unmap(0, 0x8000, UnmapCause::Replace);
        o.on_map(0, 0x8000, 2, true, "wp_page_copy");
        o.on_pin(0, 0x8000, 1, false, 1024, "gup_pte_range");
        assert_eq!(kinds(&o), [ViolationKind::PinCoherence]);
        // The entry is cleared for a migration or a KSM merge that puts the same page
        // back: the pin stays attached and the restore is no violation.
        let o = oracle();
        o.on_map(0, 0x8000, 1, true, "t");
        o.on_unmap(0, 0x8000, UnmapCause::Replace);
        o.on_pin(0, 0x8000, 1, false, 1024, "gup_pte_range");
        o.on_map(0, 0x8000, 1, true, "remove_migration_pte");
        assert!(kinds(&o).is_empty(), "{:?}", o.violations());
        // ... but a different page put there is.
        o.on_unmap(0, 0x8000, UnmapCause::Replace);
        o.on_map(0, 0x8000, 3, true, "replace_page");
        assert_eq!(kinds(&o), [ViolationKind::PinCoherence]);
        // The holder discarded the mapping itself: the pin is detached, whatever is
        // mapped there later.
        let o = oracle();
        o.on_map(0, 0x8000, 1, true, "t");
        o.on_unmap(0, 0x8000, UnmapCause::Discard);
        o.on_pin(0, 0x8000, 1, false, 1, "gup_pte_range");
        o.on_map(0, 0x8000, 2, true, "do_anonymous_page");
        assert!(kinds(&o).is_empty(), "{:?}", o.violations());
    }

    #[test]
    fn page_lifetime_fires_on_freeing_a_mapped_or_pinned_page_and_on_use_after_free() {
        let o = oracle();
        o.on_map(0, 0x8000, 1, true, "t");
        o.on_page_free(1);
        assert_eq!(kinds(&o), [ViolationKind::PageLifetime]);
        let o = oracle();
        o.on_page_free(3);
        assert!(kinds(&o).is_empty(), "freeing an unused page is fine");
        o.check_live(3, "user_access");
        assert_eq!(kinds(&o), [ViolationKind::PageLifetime]);
    }

    #[test]
    fn pgtable_lifetime_fires_on_reading_a_freed_table() {
        let o = oracle();
        o.on_table_alloc(1);
        o.check_table_read(1, 0, "gup_pte_range");
        assert!(kinds(&o).is_empty());
        o.on_table_free(1);
        o.check_table_read(1, 0, "gup_pte_range");
        assert_eq!(kinds(&o), [ViolationKind::PgtableLifetime]);
    }

    #[test]
    fn each_place_reports_a_kind_once_per_execution() {
        let o = oracle();
        o.on_table_free(0);
        o.check_table_read(0, 0, "here");
        o.check_table_read(0, 0, "here");
        o.check_table_read(0, 0, "there");
        assert_eq!(o.violations().len(), 2);
    }

    #[test]
    fn kinds_have_stable_names() {
        for k in ViolationKind::ALL {
            assert_eq!(ViolationKind::from_name(k.name()), Some(k));
            assert!(!k.explain().is_empty());
        }
        assert_eq!(ViolationKind::PinCoherence.name(), "pin-coherence");
    }
}
