//! Kernel eras: named presets of policy switches, one switch per kernel change.
//!
//! The model's code paths test these switches; an [`Era`] is only a preset. A user can
//! start from an era and flip any single switch ([`Policy::set`]), e.g. "v5.9 with
//! write_protect_seq". Every switch names the commit that introduced the behaviour.

use std::fmt;

use crate::arch::Arch;

macro_rules! policy {
    ($( $(#[doc = $doc:literal])* $name:ident = $commit:literal, $kernel:literal, $axis:ident; )*) => {
        /// The behaviour switches of the modeled kernel. `true` means the change is in.
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Default)]
        pub struct Policy {
            $( $(#[doc = $doc])* pub $name: bool, )*
        }

        /// One documented switch of [`Policy`].
        #[derive(Copy, Clone, Debug)]
        pub struct Switch {
            /// Its name, as used in [`Policy::set`] and on the command line.
            pub name: &'static str,
            /// The commit(s) that made the change.
            pub commit: &'static str,
            /// The first kernel release with the change.
            pub kernel: &'static str,
            /// What it changes, in one paragraph.
            pub doc: &'static str,
            /// Which preset sets it: the era's, the architecture's, or neither (a
            /// mechanism switch for experiments).
            pub axis: Axis,
        }

        /// Every switch, in kernel-history order.
        pub const SWITCHES: &[Switch] = &[
            $( Switch {
                name: stringify!($name),
                commit: $commit,
                kernel: $kernel,
                doc: concat!($($doc, "\n"),*),
                axis: Axis::$axis,
            }, )*
        ];

        impl Policy {
            /// The value of switch `name`, if it exists.
            pub fn get(&self, name: &str) -> Option<bool> {
                match name {
                    $( stringify!($name) => Some(self.$name), )*
                    _ => None,
                }
            }

            /// Flip switch `name` to `on`.
            pub fn set(&mut self, name: &str, on: bool) -> Result<(), UnknownSwitch> {
                match name {
                    $( stringify!($name) => { self.$name = on; Ok(()) } )*
                    _ => Err(UnknownSwitch { name: name.to_string() }),
                }
            }

            /// `(name, value)` of every switch, in [`SWITCHES`] order.
            pub fn iter(&self) -> impl Iterator<Item = (&'static str, bool)> {
                [$( (stringify!($name), self.$name), )*].into_iter()
            }

            /// The switches as a bit set, bit `i` for `SWITCHES[i]`.
            pub fn bits(&self) -> u64 {
                0 $( | (u64::from(self.$name) << Bit::$name as u32) )*
            }
        }

        // Each switch's bit in `Policy::bits` and `SwitchReads`.
        #[allow(non_camel_case_types)]
        #[derive(Copy, Clone)]
        enum Bit { $( $name, )* }

        const _: () = assert!(SWITCHES.len() <= 64, "SwitchReads holds 64 switches");

        /// The policy as the model reads it: each switch is read through a method that
        /// notes the read in [`SwitchReads`]. What an exploration read tells which
        /// switches its outcome depends on. A clone notes its reads in the same
        /// [`SwitchReads`].
        #[derive(Clone, Debug)]
        pub struct ReadPolicy {
            policy: Policy,
            reads: SwitchReads,
        }

        impl ReadPolicy {
            /// `policy`, noting reads in `reads`.
            pub fn new(policy: Policy, reads: SwitchReads) -> ReadPolicy {
                ReadPolicy { policy, reads }
            }

            /// Every switch at once, without noting a read: for display, not for
            /// deciding what the model does.
            pub fn unread(&self) -> &Policy {
                &self.policy
            }

            $(
                #[doc = concat!("Switch `", stringify!($name), "` (see [`Policy`]), noting the read.")]
                #[inline]
                pub fn $name(&self) -> bool {
                    self.reads.0.set(Bit::$name as u32);
                    self.policy.$name
                }
            )*
        }
    };
}

/// Which preset sets a switch.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Axis {
    /// A kernel change: the era's preset sets it.
    Era,
    /// An architecture's behaviour: the architecture's preset sets it (see
    /// [`Arch`](crate::Arch)).
    Arch,
    /// A mechanism every era and architecture has; off only in experiments.
    Mechanism,
}

impl Axis {
    /// `era`, `arch` or `mechanism`.
    pub fn name(self) -> &'static str {
        match self {
            Axis::Era => "era",
            Axis::Arch => "arch",
            Axis::Mechanism => "mechanism",
        }
    }
}

policy! {
    /// `faultin_page` no longer drops FOLL_WRITE after a COW on a !VM_WRITE vma; it sets
    /// FOLL_COW and `can_follow_write_pte` accepts a read-only PTE when FOLL_FORCE,
    /// FOLL_COW and pte_dirty (the Dirty COW fix); `can_follow_write_pmd` (8310d48b125d)
    /// applies the same rule to huge PMDs. Before: the retried lookup is a read.
    foll_cow = "19be0eaffa3a 8310d48b125d", "v4.9", Era;
    /// khugepaged collapses file (shmem / tmpfs) pages too: `collapse_file` puts a huge
    /// page in the page cache in place of the small ones (unmapping them first and
    /// refusing a page with any other reference), and `retract_page_tables` takes the PTE
    /// table away from every mm that maps the range (under `mmap_write_trylock`, skipping
    /// an mm it cannot lock and a vma with an `anon_vma`), so that it can be faulted in
    /// again as huge. Before (v4.4), `collapse` of a file range is refused (EINVAL).
    khugepaged_file_collapse = "f3f0e1d2150b", "v4.8", Era;
    /// `touch_pmd` (FOLL_TOUCH on a huge PMD in `follow_trans_huge_pmd`) marks the PMD
    /// dirty only for FOLL_WRITE; before, any lookup dirtied it, and `can_follow_write_pmd`
    /// then let a forced write through a read-only huge zero page (CVE-2017-1000405,
    /// "huge Dirty COW"). Backported to 4.4.103 and 4.9.66.
    touch_pmd_dirty_only_on_write = "a8f97366452e", "v4.15", Era;
    /// GUP (FOLL_GET, and FOLL_PIN where it exists) on a COW mapping adds FOLL_WRITE, so
    /// the page is COW-broken at GUP time; `can_follow_write_pte` drops the FOLL_FORCE
    /// requirement; the generic fast GUP walks with write=1 so read-only PTEs fall back to
    /// slow GUP (x86's own fast GUP of 4.4.289 / 4.9.287 was not changed: see
    /// `x86_gup_fast`). In v5.8 (17839856fd58) and backported to 4.4.289 / 4.9.287;
    /// removed in v5.9 (a308c71bf1e6).
    force_cow_break_on_gup = "17839856fd58", "v5.8", Era;
    /// x86's own fast GUP (`x86_gup_fast`) walks with write=1 as well, so the forced COW
    /// break of `force_cow_break_on_gup` reaches it: Ben Hutchings' rework of the 4.9
    /// backport of 17839856fd58 (stable 4.9.y, January 2022; the same for mips, s390, sh
    /// and sparc in 4.14 / 4.19). The October 2021 backports in 4.4.289 and 4.9.287 changed
    /// `mm/gup.c` only, so the `v4.4.289` preset leaves it off.
    x86_gup_fast_cow_break = "17839856fd58 (4.9.y rework)", "4.9.y 2022-01", Era;
    /// Pins are FOLL_PIN references of `GUP_PIN_COUNTING_BIAS` (1024) rather than
    /// FOLL_GET references of 1, so `page_maybe_dma_pinned` can see them (FOLL_PIN
    /// eddb1c228f79 in v5.6, the bias 3faa52c03f44 in v5.7); `mm->has_pinned` is set.
    foll_pin = "eddb1c228f79 3faa52c03f44", "v5.7", Era;
    /// `do_wp_page` reuses an anon page only if !KSM and page_count == 1, then trylock_page
    /// and recheck mapcount == 1 and count == 1; before, reuse when the mapcount is 1
    /// (`reuse_swap_page`).
    reuse_only_if_refcount_one = "09854ba94c6a", "v5.9", Era;
    /// fork's `copy_present_pte` gives the child a copy of a page that may be DMA-pinned
    /// (is_cow_mapping, mm->has_pinned, page_maybe_dma_pinned) instead of sharing it; the
    /// parent keeps its writable PTE (70e806e4e645, 008cfe4418b3).
    fork_copies_pinned_pages = "70e806e4e645 008cfe4418b3", "v5.9", Era;
    /// fork wraps `copy_page_range` of COW mappings in `write_protect_seq`; fast GUP with
    /// FOLL_PIN samples it before the walk (odd: slow path) and rechecks it after,
    /// unpinning and falling back to slow GUP if it moved.
    write_protect_seq = "57efa1fe5957", "v5.11", Era;
    /// GUP-fast's FOLL_PIN takes the pin in two steps: a speculative reference of one
    /// (`try_get_compound_head`, later `try_get_folio`: a fully ordered
    /// `page_ref_add_unless`), then `page_ref_add` / `folio_ref_add` of the rest of
    /// `GUP_PIN_COUNTING_BIAS` (unordered), so that a split of the compound page can be
    /// checked in between; before, one fully ordered `page_ref_add_unless` of the whole
    /// bias. In v5.14 (Cc stable); the `v5.11` preset stands for 5.11 - 5.13 and leaves it
    /// off.
    pin_folio_ref_add = "c24d37322548", "v5.14", Era;
    /// `do_huge_pmd_wp_page` reuses a THP only if page_count == 1, not merely mapcount
    /// == 1, closing CVE-2020-29374 for THP ("mm: COW fixes part 1", with 3bff7e3f1f16
    /// and 53a05ad9f21d for swap, which is not modeled).
    thp_reuse_only_if_refcount_one = "c145e0b47c77", "v5.18", Era;
    /// PG_anon_exclusive: set on exclusively mapped anon pages; fork
    /// (`page_try_dup_anon_rmap`) copies a maybe-pinned exclusive page, else clears the
    /// flag; `do_wp_page` reuses an exclusive page, else refcount checks and
    /// `page_move_anon_rmap`; the unmap paths that install a migration entry or let KSM
    /// merge (`try_to_migrate_one`, `write_protect_page`) call `page_try_share_anon_rmap`,
    /// which backs off from a maybe-pinned page and clears the flag otherwise.
    anon_exclusive = "6c287605fd56", "v5.19", Era;
    /// `gup_must_unshare`: a R/O FOLL_PIN of an anon page that is not exclusive triggers a
    /// FAULT_FLAG_UNSHARE fault in slow GUP (copy, or mark exclusive; the PTE stays
    /// read-only); fast GUP bails to slow GUP (c89357e27f20, a7f226604170).
    unshare_on_ro_pin = "c89357e27f20 a7f226604170", "v5.19", Era;
    /// FOLL_COW is gone: a forced write through a read-only PTE is allowed only with
    /// FOLL_FORCE on a private, VM_MAYWRITE, !VM_WRITE vma whose page is anon and
    /// exclusive.
    no_foll_cow = "5535be309971", "v6.0", Era;
    /// Fast GUP rechecks the PMD as well as the PTE after grabbing the page.
    gup_fast_recheck_pmd = "70cbc3cc78a9", "v6.0", Era;
    /// khugepaged's `collapse_huge_page` (and `collapse_and_free_pmd`) calls
    /// `tlb_remove_table_sync_one()` after `pmdp_collapse_flush`: an IPI that waits for
    /// every interrupts-off GUP-fast, so that the PTE table it takes away (deposited with
    /// the huge PMD, freed by a later zap, or freed at once) is not freed or reused
    /// under a walker. Before the refcount check, it also closes 70cbc3cc78a9's race on
    /// architectures whose TLB flush waits for nobody (arm64). Cc stable (4.14 - 6.0).
    khugepaged_ipi_before_table_free = "2ba99c5e0881", "v6.1", Era;
    /// The barriers between clearing PG_anon_exclusive and RCU GUP-fast:
    /// `page_try_share_anon_rmap` has `smp_mb()` before its `page_maybe_dma_pinned`
    /// check and `smp_mb__after_atomic()` after clearing the flag; `try_grab_folio` has
    /// `smp_mb__after_atomic()` after the FOLL_PIN reference; `gup_must_unshare` has
    /// `smp_rmb()` before testing the flag. Without them, on an architecture whose TLB
    /// flush does not wait for GUP-fast (arm64), migration or KSM and GUP-fast can each
    /// miss the other (store buffering), or GUP-fast can see a restored PTE and a stale
    /// flag (message passing).
    anon_exclusive_barriers = "088b8aa537c2", "v6.1", Era;
    /// R/O longterm pins in any COW mapping unshare whatever is mapped (the shared zero
    /// page, page-cache pages), not only anon pages (84209e87c696, 8d6a0ac09a16).
    unshare_any_cow_mapping = "84209e87c696 8d6a0ac09a16", "v6.2", Era;
    /// `migrate_pages` batches the TLB flushes of the pages it unmaps:
    /// `try_to_migrate_one` clears the PTE without flushing (`set_tlb_ubc_flush_pending`)
    /// and calls `page_try_share_anon_rmap` before any flush; one `try_to_unmap_flush`
    /// follows the unmapping, before the pages move. On x86 the flush IPI that used to
    /// wait for GUP-fast before the pinned check no longer does: the check rests on
    /// 088b8aa537c2's barriers alone, as on arm64 (whose batched flush came in v6.5,
    /// 43b3dfdd0455; its flush waits for no GUP-fast anyway).
    migrate_batched_flush = "7e12beb8ca2a", "v6.3", Era;
    /// Per-VMA locks: a user page fault on an anonymous vma that has an `anon_vma`
    /// first tries `lock_vma_under_rcu` (the vma's `vm_lock_seq` against the mm's
    /// `mm_lock_seq`, then `down_read_trylock` of the vma's lock) and runs
    /// `handle_mm_fault` without the mmap lock, falling back to it when the vma is
    /// write-locked (x86 0bff0aaea03e, arm64 cd7f176aea5f). Writers of a vma (mprotect,
    /// munmap, MADV_HUGEPAGE, collapse) `vma_start_write` it under the mmap write lock;
    /// `mmap_write_unlock` releases every vma at once (`mm_lock_seq++`).
    per_vma_lock = "5e31275cc997 0bff0aaea03e cd7f176aea5f", "v6.4", Era;
    /// `dup_mmap` write-locks every parent vma before copying it: before, a fault under
    /// the vma lock could run in the middle of `copy_page_range`, COW-copying a page whose
    /// PTE fork has write-protected but not yet flushed, while a sibling thread's write
    /// through the stale writable translation lands in the page the child keeps.
    /// Backported to 6.4.3 (with 2b4f3b4987b5).
    fork_locks_parent_vmas = "fb49c455323f", "v6.5", Era;
    /// `vma_end_write_all` publishes `mm_lock_seq` with `smp_store_release` and
    /// `vma_start_read` rereads it with `smp_load_acquire` after taking the vma lock
    /// (`vm_lock_seq` with `READ_ONCE` / `WRITE_ONCE`): before, a fault could see the
    /// vma unlocked yet read fields its writer stored before unlocking, stale (message
    /// passing, on a weakly ordered machine). Backported to 6.4.8.
    vma_lock_seq_ordering = "b1f02b95758d", "v6.5", Era;
    /// `lock_vma_under_rcu` checks `vma->anon_vma` after `vma_start_read`, not before
    /// (the unlocked check raced `mremap(MREMAP_DONTUNMAP)` clearing it: a
    /// use-after-free in `__anon_vma_prepare`, which the model has no path to; the
    /// switch only moves the check). Backported to 6.4.10.
    vma_anon_vma_check_under_lock = "657b5146955e", "v6.5", Era;
    /// `pte_offset_map` / `pte_offset_map_lock` may fail: a walker maps a PTE table under
    /// `rcu_read_lock` and, once it holds the PTE lock, rechecks that the PMD still points
    /// at that table (`pmd_same`), failing (the fault retries, slow GUP sees no page, zap
    /// and mprotect redo the PMD) if it does not. Before, a walker holding the mmap lock
    /// knew the table would stay. Hugh Dickins' series, what lets `retract_page_tables`
    /// drop the mmap lock (`retract_without_mmap_lock`).
    pte_offset_map_recheck = "0d940a9b270b", "v6.5", Era;
    /// `retract_page_tables` takes a file range's PTE table away without the mmap lock
    /// (only the file's i_mmap lock; the PMD lock and PTE lock, with the `anon_vma` check
    /// repeated under them) and frees it with `pte_free_defer`, after an RCU grace period
    /// (which waits for interrupts-off GUP-fast). Before, it needed `mmap_write_trylock` and
    /// freed the table at once (`pte_free`, after 2ba99c5e0881's IPI).
    retract_without_mmap_lock = "1d65b771bc08", "v6.6", Era;
    /// Andrea Arcangeli's copy-on-read (aa.git `main-5.15.y`, never merged: d2c2cd14f12d
    /// "gup: COR: copy-on-read fault", 47e416ee265b / 639ab322c8a7 `gup_must_unshare()`,
    /// c8c1bfc161c8): any read GUP (FOLL_GET or FOLL_PIN without FOLL_WRITE) of an anon
    /// page that is mapped more than once (`page_mapcount > 1`; at mapcount 1 a
    /// `trylock_page` that fails counts as shared, else `can_read_pin_swap_page`) takes a
    /// FAULT_FLAG_UNSHARE fault first, in slow GUP (-EMLINK) and fast GUP (bail); the
    /// unshare fault copies a page mapped more than once into a read-only PTE and leaves
    /// one mapped once alone. FOLL_LONGTERM implies FOLL_MM_SYNC (05e33738c1fd): the
    /// zero page, KSM pages and MAP_PRIVATE page cache are unshared too. The tree's COW
    /// reuse is mapcount-based again (f1c10f2e65f7 reverts 09854ba94c6a): leave
    /// `reuse_only_if_refcount_one` off with it.
    cor_unshare = "d2c2cd14f12d 47e416ee265b c8c1bfc161c8", "aa-cor", Era;
    /// The copy-on-read fault keeps concurrent R/O long-term pins in sync (58ca07be9de2,
    /// aa.git 2023): it locks the old page, clears the PTE, and if the page is no longer
    /// shared (`can_read_pin_swap_page`: the other mapping went away meanwhile, a child
    /// exiting) puts the old PTE back instead of the copy, so that a second pin that saw
    /// mapcount 1 and pinned the old page stays coherent. Before, the copy went in
    /// regardless (and 1161e12766ba had dropped the page lock from the copy path).
    cor_unshare_keeps_pin_sync = "58ca07be9de2", "aa-cor (2023)", Era;
    /// x86-TSO under loom: plain loads are acquire, plain stores release, every locked
    /// instruction (atomic RMW, lock acquisition) a full barrier. Off: the Linux kernel
    /// memory model as a weakly ordered machine (arm64) gives it. Shuttle is sequentially
    /// consistent either way.
    tso = "(arch)", "x86", Arch;
    /// The TLB shootdown is an IPI that waits for every target CPU to take it
    /// (`flush_tlb_mm_range` -> `smp_call_function_many(..., wait = 1)`), so it waits for
    /// CPUs with interrupts off: GUP-fast holds it off. Off: a broadcast TLBI (arm64),
    /// which waits only for accesses in flight; native x86 then has nothing to keep page
    /// tables alive under GUP-fast (the `fast-gup-vs-munmap-without-ipi` control).
    tlb_flush_ipi = "(arch)", "x86", Arch;
    /// `MMU_GATHER_RCU_TABLE_FREE` (`HAVE_RCU_TABLE_FREE` before v5.3): page tables are
    /// freed by `tlb_remove_table` after an RCU-sched grace period (or after
    /// `tlb_remove_table_sync_one`), which waits for interrupts-off sections, whatever the
    /// TLB flush does. arm64; on x86 only under paravirt.
    rcu_table_free = "(arch)", "arm64", Arch;
    /// x86's own fast GUP, `arch/x86/mm/gup.c`, until e585513b76f7 (v4.13) moved x86 to
    /// `mm/gup.c`: `gup_pte_range` takes a plain `get_page` (the flush IPI, not a
    /// speculative reference, keeps the page alive) and does not recheck the PTE; it
    /// walks with the caller's `write`, so the 4.4.289 / 4.9.287 backport of the forced
    /// COW break (which changed `mm/gup.c` only) does not apply to it.
    x86_gup_fast = "e585513b76f7 (removed)", "x86 < 4.13", Arch;
    /// Every access sequentially consistent under loom (a full barrier before and after
    /// each): the baseline that tells whether a violation needs weak memory at all. A test
    /// switch, off everywhere; shuttle is sequentially consistent anyway.
    sequential_consistency = "(mechanism)", "none", Mechanism;
}

impl Policy {
    /// The preset of `era` on `arch`: the era's switches, then the architecture's.
    pub fn preset(era: Era, arch: Arch) -> Policy {
        let mut p = era.era_switches();
        arch.preset(era, &mut p);
        p
    }

    /// The switches that differ from `base` (a preset), by name and value.
    pub fn diff(&self, base: &Policy) -> Vec<(&'static str, bool)> {
        self.iter()
            .zip(base.iter())
            .filter(|((_, a), (_, b))| a != b)
            .map(|((n, v), _)| (n, v))
            .collect()
    }
}

/// Which switches the model has read, shared by every kernel built from one
/// [`KernelConfig`](crate::KernelConfig) and its clones: bit `i` for `SWITCHES[i]`.
///
/// An exploration is a function of the switches it reads: every branch on the policy
/// goes through [`ReadPolicy`], and an execution that reads the same values takes the
/// same path. So two configurations that agree on every switch one exhaustive (or
/// seeded) exploration read give the same exploration; the matrix uses this to check
/// each class of eras once. Noting a read is not part of the model
/// ([`cowbreak_sync::GhostBits`]).
#[derive(Clone, Debug, Default)]
pub struct SwitchReads(cowbreak_sync::GhostBits);

impl SwitchReads {
    /// The switches read so far.
    pub fn get(&self) -> u64 {
        self.0.get()
    }

    /// The names of the switches in `bits`, in [`SWITCHES`] order.
    pub fn names(bits: u64) -> Vec<&'static str> {
        SWITCHES
            .iter()
            .enumerate()
            .filter(|(i, _)| bits & (1 << i) != 0)
            .map(|(_, s)| s.name)
            .collect()
    }

    /// The bits of the switches named `names`; `None` if one does not exist.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<u64> {
        names.into_iter().try_fold(0, |bits, n| {
            SWITCHES
                .iter()
                .position(|s| s.name == n)
                .map(|i| bits | 1 << i)
        })
    }
}

/// What was read is a note, not part of the configuration: any two are equal.
impl PartialEq for SwitchReads {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for SwitchReads {}

/// A switch name that does not exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownSwitch {
    /// The name given.
    pub name: String,
}

impl fmt::Display for UnknownSwitch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown switch `{}`", self.name)?;
        if let Some(s) = crate::suggest(&self.name, SWITCHES.iter().map(|s| s.name)) {
            write!(f, " (did you mean `{s}`?)")?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownSwitch {}

/// A named kernel era: a preset of [`Policy`] switches.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Era {
    /// Linux < 4.9: before the Dirty COW fix.
    V4_8,
    /// 4.9 - 4.14: FOLL_COW.
    V4_9,
    /// 4.15 - 5.7.
    V4_15,
    /// 4.4.289 / 4.9.287: the backport this project started from.
    V4_4_289,
    /// 5.8: the forced COW break at GUP time.
    V5_8,
    /// 5.9 - 5.10: refcount-based reuse, fork copies pinned pages.
    V5_9,
    /// 5.11 - 5.17: write_protect_seq.
    V5_11,
    /// 5.18.
    V5_18,
    /// 5.19: PG_anon_exclusive and unsharing R/O pins.
    V5_19,
    /// 6.0: FOLL_COW removed.
    V6_0,
    /// 6.1.
    V6_1,
    /// 6.2 - 6.3.
    V6_2,
    /// 6.4: per-VMA locks, before their fixes (6.4.0; 6.4.y took them).
    V6_4,
    /// 6.5: the per-VMA lock fixes.
    V6_5,
    /// 6.6 - 6.9.
    V6_6,
    /// 6.10 - 6.11.
    V6_10,
    /// 6.12 and later.
    V6_12,
    /// Hypothetical: Andrea Arcangeli's copy-on-read tree (aa.git `main-5.15.y`), never
    /// merged: 5.15 with `cor_unshare` and mapcount-based COW reuse.
    AaCor,
}

impl Era {
    /// Every era, in table order.
    pub const ALL: [Era; 18] = [
        Era::V4_8,
        Era::V4_9,
        Era::V4_15,
        Era::V4_4_289,
        Era::V5_8,
        Era::V5_9,
        Era::V5_11,
        Era::V5_18,
        Era::V5_19,
        Era::V6_0,
        Era::V6_1,
        Era::V6_2,
        Era::V6_4,
        Era::V6_5,
        Era::V6_6,
        Era::V6_10,
        Era::V6_12,
        Era::AaCor,
    ];

    /// The era's name, as on the command line (`v5.9`).
    pub fn name(self) -> &'static str {
        match self {
            Era::V4_8 => "v4.8",
            Era::V4_9 => "v4.9",
            Era::V4_15 => "v4.15",
            Era::V4_4_289 => "v4.4.289",
            Era::V5_8 => "v5.8",
            Era::V5_9 => "v5.9",
            Era::V5_11 => "v5.11",
            Era::V5_18 => "v5.18",
            Era::V5_19 => "v5.19",
            Era::V6_0 => "v6.0",
            Era::V6_1 => "v6.1",
            Era::V6_2 => "v6.2",
            Era::V6_4 => "v6.4",
            Era::V6_5 => "v6.5",
            Era::V6_6 => "v6.6",
            Era::V6_10 => "v6.10",
            Era::V6_12 => "v6.12",
            Era::AaCor => "aa-cor",
        }
    }

    /// The kernels the era stands for.
    pub fn kernels(self) -> &'static str {
        match self {
            Era::V4_8 => "< 4.9",
            Era::V4_9 => "4.9 - 4.14",
            Era::V4_15 => "4.15 - 5.7",
            Era::V4_4_289 => "4.4.289, 4.9.287",
            Era::V5_8 => "5.8",
            Era::V5_9 => "5.9 - 5.10",
            Era::V5_11 => "5.11 - 5.17",
            Era::V5_18 => "5.18",
            Era::V5_19 => "5.19",
            Era::V6_0 => "6.0",
            Era::V6_1 => "6.1",
            Era::V6_2 => "6.2 - 6.3",
            Era::V6_4 => "6.4",
            Era::V6_5 => "6.5",
            Era::V6_6 => "6.6 - 6.9",
            Era::V6_10 => "6.10 - 6.11",
            Era::V6_12 => "6.12 +",
            Era::AaCor => "aa.git main-5.15.y (not merged)",
        }
    }

    /// Whether the era is no kernel that was released (`aa-cor`).
    pub fn hypothetical(self) -> bool {
        self == Era::AaCor
    }

    /// What the model does not capture of the era's change, if anything.
    ///
    /// v5.18's swap COW refcounting changes a path the model does not have (swap); so do
    /// v6.1's barriers on the swap-out path (`try_to_unmap_one`), whose migration and KSM
    /// halves are modeled.
    pub fn unmodeled(self) -> Option<&'static str> {
        match self {
            Era::V5_18 => Some("3bff7e3f1f16 53a05ad9f21d swap COW: swap is not modeled"),
            Era::V6_1 => Some("088b8aa537c2 on try_to_unmap_one (swap-out): swap is not modeled"),
            Era::V6_6 => Some("57edfcfd3419 THP slow-GUP batching: no behaviour change for one page"),
            Era::V6_10 => Some("3a5a8d343e1c split of a PMD migration entry vs GUP-fast: THP migration and PMD splitting are not modeled; v6.8/v6.9 mTHP (19eaf44954df, f8d937761d65): large folios on PTEs are not modeled"),
            Era::AaCor => Some("a4f02537f363 (GUP-fast checks gup_must_unshare before its PTE/PMD recheck, with smp_rmb) and the THP mapcount seqlock (4ed60a2853f5): huge pages are unshared whole, not split; swap counts (can_read_pin_swap_page's swapcount) and SWP_STABLE_WRITE (d8dab2c6f2f8): swap is not modeled"),
            Era::V6_12 => Some("1013af4f585f (CVE-2025-38085, fixed in 6.16 and 6.12.35): hugetlb shared PMD tables are not modeled; the rest of 6.11 - 6.12 is hugetlb, pfnmap and refactoring"),
            _ => None,
        }
    }

    /// Look an era up by name (`v5.9`, also without the `v`; `aa-cor`).
    pub fn from_name(name: &str) -> Result<Era, UnknownEra> {
        let want = name.strip_prefix('v').unwrap_or(name);
        Era::ALL
            .into_iter()
            .find(|e| e.name().strip_prefix('v').unwrap_or(e.name()) == want)
            .ok_or_else(|| UnknownEra {
                name: name.to_string(),
            })
    }

    /// The era's preset on x86 (the default architecture): [`Policy::preset`].
    pub fn policy(self) -> Policy {
        Policy::preset(self, Arch::X86)
    }

    /// The era's own switches, before the architecture's.
    fn era_switches(self) -> Policy {
        let mut p = Policy::default();
        match self {
            Era::V4_8 => p.khugepaged_file_collapse = true,
            Era::V4_9 => {
                p.foll_cow = true;
                p.khugepaged_file_collapse = true;
            }
            Era::V4_15 => {
                p.foll_cow = true;
                p.khugepaged_file_collapse = true;
                p.touch_pmd_dirty_only_on_write = true;
            }
            Era::V4_4_289 => {
                p.foll_cow = true;
                p.touch_pmd_dirty_only_on_write = true;
                p.force_cow_break_on_gup = true;
            }
            Era::V5_8 => {
                p.foll_cow = true;
                p.khugepaged_file_collapse = true;
                p.touch_pmd_dirty_only_on_write = true;
                p.force_cow_break_on_gup = true;
                p.foll_pin = true;
            }
            // 5.15 (the v5.11 preset with the two-step pin of 5.14), COW reuse decided by
            // mapcount again, and copy-on-read with its later fix.
            Era::AaCor => {
                p.foll_cow = true;
                p.khugepaged_file_collapse = true;
                p.touch_pmd_dirty_only_on_write = true;
                p.foll_pin = true;
                p.fork_copies_pinned_pages = true;
                p.write_protect_seq = true;
                p.pin_folio_ref_add = true;
                p.cor_unshare = true;
                p.cor_unshare_keeps_pin_sync = true;
            }
            _ => {
                p.foll_cow = true;
                p.khugepaged_file_collapse = true;
                p.touch_pmd_dirty_only_on_write = true;
                p.foll_pin = true;
                p.reuse_only_if_refcount_one = true;
                p.fork_copies_pinned_pages = true;
                if self >= Era::V5_11 {
                    p.write_protect_seq = true;
                }
                if self >= Era::V5_18 {
                    p.thp_reuse_only_if_refcount_one = true;
                    p.pin_folio_ref_add = true;
                }
                if self >= Era::V5_19 {
                    p.anon_exclusive = true;
                    p.unshare_on_ro_pin = true;
                }
                if self >= Era::V6_0 {
                    p.foll_cow = false;
                    p.no_foll_cow = true;
                    p.gup_fast_recheck_pmd = true;
                }
                if self >= Era::V6_1 {
                    p.anon_exclusive_barriers = true;
                    p.khugepaged_ipi_before_table_free = true;
                }
                if self >= Era::V6_2 {
                    p.unshare_any_cow_mapping = true;
                }
                if self >= Era::V6_4 {
                    p.migrate_batched_flush = true;
                    p.per_vma_lock = true;
                }
                if self >= Era::V6_5 {
                    p.fork_locks_parent_vmas = true;
                    p.vma_lock_seq_ordering = true;
                    p.vma_anon_vma_check_under_lock = true;
                    p.pte_offset_map_recheck = true;
                }
                if self >= Era::V6_6 {
                    p.retract_without_mmap_lock = true;
                }
            }
        }
        p
    }
}

impl fmt::Display for Era {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Era {
    type Err = UnknownEra;
    fn from_str(s: &str) -> Result<Era, UnknownEra> {
        Era::from_name(s)
    }
}

/// An era name that does not exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownEra {
    /// The name given.
    pub name: String,
}

impl fmt::Display for UnknownEra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown era `{}`", self.name)?;
        if let Some(s) = crate::suggest(&self.name, Era::ALL.iter().map(|e| e.name())) {
            write!(f, " (did you mean `{s}`?)")?;
        }
        let all: Vec<_> = Era::ALL.iter().map(|e| e.name()).collect();
        write!(f, "; eras are {}", all.join(", "))
    }
}

impl std::error::Error for UnknownEra {}
