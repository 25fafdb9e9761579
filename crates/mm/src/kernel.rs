//! The modeled kernel: frame and table pools, the mm table, CPUs, files, the policy and
//! the oracle; plus the page and PTE primitives every path is built from, each access
//! through [`primitives`](crate::primitives) under its kernel name.

use crate::arch::Arch;
use crate::era::{Era, Policy, ReadPolicy, SwitchReads};
use crate::irq::Cpu;
use crate::mm_types::{FileId, MmId, MmStruct, Vma};
use crate::oracle::{Oracle, UnmapCause, Violation, ViolationKind};
use crate::page::GUP_PIN_COUNTING_BIAS;
use crate::page::{flags, is_zero_pfn, writer, FramePool, Page, PageKind, Pfn, Stamp};
use crate::pgtable::{pmd_index, pte_index, Addr, Pmd, Pte, PteTable, TableId, TablePool};
use crate::primitives::MemoryModel;
use crate::Errno;
use cowbreak_sync::atomic::AtomicU64;
use cowbreak_sync::{Ghost, MutexGuard, RwLock, Snapshot};

/// Sizes and policy of one kernel instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelConfig {
    /// The behaviour switches (usually an [`Era`]'s preset on [`Self::arch`], maybe with
    /// flips).
    pub policy: Policy,
    /// The architecture: its own primitives (`ptep_get_and_clear`); its switches are in
    /// [`Self::policy`].
    pub arch: Arch,
    /// Frames in the pool, the zero page included.
    pub nr_frames: usize,
    /// PTE-table pages in the pool.
    pub nr_tables: usize,
    /// mm slots (processes). mm 0 is live at boot; fork fills the others.
    pub nr_mms: usize,
    /// The threads of each process (index: mm slot), its `mm_users` once it is alive:
    /// mm 0's at boot, a forked child's from `dup_mm` on (its first thread's
    /// `clone(CLONE_VM)`s counted at once). A slot not listed has one thread.
    pub threads: Vec<usize>,
    /// CPUs, one per model thread.
    pub nr_cpus: usize,
    /// Files, by size in pages, whose page cache is filled at boot.
    pub files: Vec<usize>,
    /// Bound on the `__get_user_pages` retry loop; past it the model reports `livelock`
    /// (the kernel would spin forever).
    pub gup_retries_max: usize,
    /// Whether the page cache can change (a scenario that collapses a file range): its
    /// entries are then shared memory that faults load and lock (`filemap_fault`'s
    /// lookup, `folio_try_get`, `lock_page` and the recheck), with scheduling points.
    /// Otherwise the page cache is fixed at boot and a lookup is a plain read of it.
    pub page_cache_mutable: bool,
    /// Where kernels built from this configuration (and its clones) note the switches
    /// they read ([`SwitchReads`]); not part of the configuration.
    pub reads: SwitchReads,
}

impl KernelConfig {
    /// The threads of process `mm` ([`Self::threads`]).
    pub fn users(&self, mm: usize) -> u64 {
        self.threads.get(mm).map_or(1, |&n| n.max(1) as u64)
    }

    /// A small kernel for `era` on x86: 16 frames, 8 tables, 3 mms, 3 CPUs, no files.
    pub fn new(era: Era) -> Self {
        KernelConfig::for_arch(era, Arch::X86)
    }

    /// A small kernel for `era` on `arch`: 16 frames, 8 tables, 3 mms, 3 CPUs, no files.
    pub fn for_arch(era: Era, arch: Arch) -> Self {
        KernelConfig {
            policy: Policy::preset(era, arch),
            arch,
            nr_frames: 16,
            nr_tables: 8,
            nr_mms: 3,
            threads: Vec::new(),
            nr_cpus: 3,
            files: Vec::new(),
            gup_retries_max: 16,
            page_cache_mutable: false,
            reads: SwitchReads::default(),
        }
    }
}

/// One file's page cache: its pages, filled at boot and never evicted (a collapse
/// replaces them with the subpages of a huge page).
#[derive(Debug)]
pub struct File {
    /// The page-cache page of each file page, as the model's bookkeeping sees it.
    pub pages: Ghost<Vec<Pfn>>,
    /// The xarray's entries (`mapping->i_pages`) where the page cache can change
    /// ([`KernelConfig::page_cache_mutable`]); empty otherwise.
    pub xa: Vec<AtomicU64>,
    /// Its length in pages.
    pub len: usize,
}

/// The modeled kernel.
#[derive(Debug)]
pub struct Kernel {
    /// The behaviour switches, read through methods that note each read in
    /// [`KernelConfig::reads`].
    pub policy: ReadPolicy,
    /// The architecture.
    pub arch: Arch,
    /// How accesses are ordered (from the `tso` switch).
    pub mo: MemoryModel,
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
    /// The anon_vma lock (`anon_vma_lock_read` / `_write`), reduced to one for the whole
    /// kernel: rmap walks (migration, KSM) hold it for read, `free_pgtables`
    /// (`unlink_anon_vmas`) takes it for write before page tables are freed.
    pub anon_vma_lock: RwLock<()>,
    pub(crate) gup_retries_max: usize,
    /// The threads of each process ([`KernelConfig::threads`]).
    pub(crate) threads: Vec<u64>,
    /// [`KernelConfig::page_cache_mutable`].
    pub(crate) page_cache_mutable: bool,
}

impl Kernel {
    /// The memory this kernel's objects live in, in the same order for every kernel
    /// with the same configuration: the kernel itself, its frames, tables, mms, CPUs,
    /// files and each file's page-cache array. For [`cowbreak_sync::set_regions`].
    pub fn regions(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        use cowbreak_sync::region_of;
        [
            region_of(std::slice::from_ref(self)),
            self.frames.region(),
            self.tables.region(),
            region_of(&self.mms),
            region_of(&self.cpus),
            region_of(&self.files),
        ]
        .into_iter()
        .chain(self.files.iter().map(|f| region_of(&f.xa)))
    }

    /// Boot: pools, mm 0 with an empty address space, files read into the page cache.
    ///
    /// Panics if the page cache does not fit in the frame pool: that is a configuration
    /// error of the caller, not a model state.
    pub fn new(config: &KernelConfig) -> Kernel {
        let policy = ReadPolicy::new(config.policy, config.reads.clone());
        let mo = if policy.sequential_consistency() {
            MemoryModel::Sc
        } else if policy.tso() {
            MemoryModel::Tso
        } else {
            MemoryModel::Lkmm
        };
        let per_vma_lock = policy.per_vma_lock();
        let mut k = Kernel {
            policy,
            arch: config.arch,
            mo,
            frames: FramePool::new(config.nr_frames),
            tables: TablePool::new(config.nr_tables),
            mms: (0..config.nr_mms)
                .map(|id| {
                    let users = if id == 0 { config.users(0) } else { 0 };
                    MmStruct::new(id, users, per_vma_lock)
                })
                .collect(),
            threads: (0..config.nr_mms).map(|id| config.users(id)).collect(),
            cpus: (0..config.nr_cpus).map(|_| Cpu::default()).collect(),
            files: Vec::new(),
            oracle: Oracle::new(config.nr_frames, config.nr_tables),
            anon_vma_lock: RwLock::new(()),
            gup_retries_max: config.gup_retries_max,
            page_cache_mutable: config.page_cache_mutable,
        };
        if crate::record::on() {
            k.name_locations();
        }
        for &n in &config.files {
            let pages: Vec<Pfn> = (0..n)
                .map(|i| {
                    let pfn = k
                        .alloc_page(PageKind::PageCache)
                        .expect("page cache larger than the frame pool");
                    // Read from disk at boot, before any model thread exists.
                    k.mo.write_once(&k.page(pfn).data, Stamp::new(writer::FILE, i as u32 + 1).0);
                    k.__SetPageUptodate(pfn);
                    pfn
                })
                .collect();
            let xa = if config.page_cache_mutable {
                pages.iter().map(|&p| AtomicU64::new(p as u64)).collect()
            } else {
                Vec::new()
            };
            k.files.push(File {
                len: pages.len(),
                pages: Ghost::new(pages),
                xa,
            });
        }
        // Every mm slot but 0 is dead until fork fills it.
        for mm in &k.mms[1..] {
            mm.mmap_lock.write().dead = true;
        }
        k
    }

    /// A copy of this kernel, for a later execution to start from: every page, table,
    /// mm, CPU, file and the oracle's state as they are now, with fresh locks and atomics
    /// (see [`Snapshot`]). Taken after a scenario's setup, it spares each execution the
    /// boot and the setup, which are the same every time. Not while accesses are being
    /// recorded: the record names the locations of the kernel it was made for.
    pub fn snapshot(&mut self) -> Kernel {
        debug_assert!(!crate::record::on(), "a snapshot of a recorded kernel");
        Kernel {
            policy: self.policy.clone(),
            arch: self.arch,
            mo: self.mo,
            frames: self.frames.snapshot(),
            tables: self.tables.snapshot(),
            mms: self.mms.snapshot(),
            cpus: self.cpus.snapshot(),
            files: self
                .files
                .iter_mut()
                .map(|f| File {
                    pages: f.pages.snapshot(),
                    xa: f.xa.snapshot(),
                    len: f.len,
                })
                .collect(),
            oracle: self.oracle.snapshot(),
            anon_vma_lock: self.anon_vma_lock.snapshot(),
            gup_retries_max: self.gup_retries_max,
            threads: self.threads.clone(),
            page_cache_mutable: self.page_cache_mutable,
        }
    }

    /// Give every shared location its name (and its value at boot) for the record of
    /// accesses ([`crate::record`]). Boot values are known, not loaded: a load would be a
    /// scheduling point that only recorded runs have.
    fn name_locations(&self) {
        use crate::record::name;
        fn at<T>(x: &T) -> usize {
            x as *const T as usize
        }
        for pfn in 0..self.frames.len() as Pfn {
            let p = self.page(pfn);
            let zero = is_zero_pfn(pfn);
            name(at(&p.refcount), u64::from(zero), || {
                format!("page{pfn}._refcount")
            });
            name(at(&p.mapcount), 0, || format!("page{pfn}._mapcount"));
            let f = if zero {
                flags::ZERO | flags::UPTODATE
            } else {
                0
            };
            name(at(&p.flags), f, || format!("page{pfn}.flags"));
            name(at(&p.data), 0, || format!("page{pfn}.data"));
        }
        for t in 0..self.tables.len() {
            for (i, e) in self.tables.table(t).entries.iter().enumerate() {
                name(at(e), 0, || format!("table{t}[{i}] (pte)"));
            }
        }
        for m in &self.mms {
            let id = m.id;
            for (i, e) in m.pmd.iter().enumerate() {
                name(at(e), 0, || format!("mm{id}.pmd[{i}]"));
            }
            name(at(&m.write_protect_seq), 0, || {
                format!("mm{id}.write_protect_seq")
            });
            name(at(&m.has_pinned), 0, || format!("mm{id}.has_pinned"));
            name(
                at(&m.mm_users),
                u64::from(id == 0) * self.threads[0],
                || format!("mm{id}.mm_users"),
            );
            // The per-VMA locks (v6.4): unnamed, a trace would carry their addresses,
            // which differ from process to process, and never replay.
            name(at(&m.mm_lock_seq), 0, || format!("mm{id}.mm_lock_seq"));
            for (v, l) in m.vma_locks.iter().enumerate() {
                name(at(&l.lock), 0, || format!("mm{id}.vma{v}.vm_lock"));
                name(at(&l.vm_lock_seq), u64::MAX, || {
                    format!("mm{id}.vma{v}.vm_lock_seq")
                });
                name(at(&l.anon_vma), 0, || format!("mm{id}.vma{v}.anon_vma"));
                name(at(&l.vm_flags), 0, || format!("mm{id}.vma{v}.vm_flags"));
            }
        }
        for (c, cpu) in self.cpus.iter().enumerate() {
            name(at(&cpu.epoch), 0, || format!("cpu{c}.epoch"));
        }
        for (f, file) in self.files.iter().enumerate() {
            let pages = file.pages.with(|p| p.clone());
            for (i, e) in file.xa.iter().enumerate() {
                name(at(e), pages[i] as u64, || format!("file{f}.i_pages[{i}]"));
            }
        }
    }

    /// The mm in slot `mm`.
    pub fn mm(&self, mm: MmId) -> &MmStruct {
        &self.mms[mm]
    }

    /// The page of frame `pfn`.
    pub fn page(&self, pfn: Pfn) -> &Page {
        self.frames.page(pfn)
    }

    /// The page-cache page of file page `index`, if the file has one: where the page
    /// cache can change, `xas_load` under RCU (an address dependency to the page).
    pub fn file_page(&self, file: FileId, index: usize) -> Option<Pfn> {
        let f = self.files.get(file)?;
        if self.page_cache_mutable {
            let e = f.xa.get(index)?;
            return Some(self.mo.read_once_dep(e) as Pfn);
        }
        f.pages.with(|p| p.get(index).copied())
    }

    /// `xas_store` of `pfn` as file page `index` (under the xarray lock in the kernel;
    /// a release store here: the page's contents before its publication).
    pub(crate) fn file_page_set(&self, file: FileId, index: usize, pfn: Pfn) {
        let f = &self.files[file];
        f.pages.with(|p| p[index] = pfn);
        self.mo.smp_store_release(&f.xa[index], pfn as u64);
    }

    /// The pages in `file`'s page cache now (the bookkeeping's view, no access).
    pub fn file_pages(&self, file: FileId) -> Vec<Pfn> {
        self.files
            .get(file)
            .map_or_else(Vec::new, |f| f.pages.with(|p| p.clone()))
    }

    /// Everything the oracle reported in this execution.
    pub fn violations(&self) -> Vec<Violation> {
        self.oracle.violations()
    }

    // ---- struct page: include/linux/page_ref.h, page-flags.h, mm.h -------------------

    /// `page_count` / `page_ref_count`: `atomic_read(&page->_refcount)`.
    pub(crate) fn page_count(&self, pfn: Pfn) -> i64 {
        self.mo.atomic_read(&self.page(pfn).refcount)
    }

    /// `page_mapcount`: `atomic_read(&page->_mapcount) + 1`.
    pub(crate) fn page_mapcount(&self, pfn: Pfn) -> i64 {
        self.mo.atomic_read(&self.page(pfn).mapcount)
    }

    /// `page_maybe_dma_pinned` (v5.7 3faa52c03f44): `page_ref_count(page) >=
    /// GUP_PIN_COUNTING_BIAS`. False positives (1024 plain references) are allowed, false
    /// negatives are not.
    pub(crate) fn page_maybe_dma_pinned(&self, pfn: Pfn) -> bool {
        self.page_count(pfn) >= GUP_PIN_COUNTING_BIAS
    }

    /// `PageXxx(page)`: `test_bit`.
    pub(crate) fn page_test(&self, pfn: Pfn, flag: u64) -> bool {
        self.mo.test_bit(flag, &self.page(pfn).flags)
    }

    /// `SetPageXxx(page)`: `set_bit`.
    pub(crate) fn page_set(&self, pfn: Pfn, flag: u64) {
        self.mo.set_bit(flag, &self.page(pfn).flags)
    }

    /// `ClearPageXxx(page)`: `clear_bit`.
    pub(crate) fn page_clear(&self, pfn: Pfn, flag: u64) {
        self.mo.clear_bit(flag, &self.page(pfn).flags)
    }

    /// `PageAnon`.
    pub(crate) fn page_anon(&self, pfn: Pfn) -> bool {
        self.page_test(pfn, flags::ANON)
    }

    /// `__SetPageUptodate`: `smp_wmb()` ("the page's contents are visible before its
    /// PTE"), then the non-atomic `__set_bit(PG_uptodate)`. Every path that maps a page it
    /// just filled calls it before `set_pte_at`.
    #[allow(non_snake_case)]
    pub(crate) fn __SetPageUptodate(&self, pfn: Pfn) {
        self.mo.smp_wmb();
        self.mo.__set_bit(flags::UPTODATE, &self.page(pfn).flags);
    }

    /// `alloc_page` (`prep_new_page`): a zero-filled frame with refcount 1
    /// (`set_page_count`), no mappings, fresh flags. Nobody else can reach the frame yet,
    /// so every store is a plain one.
    pub(crate) fn alloc_page(&self, kind: PageKind) -> Result<Pfn, Errno> {
        let pfn = self.frames.pop_free().ok_or(Errno::ENOMEM)?;
        let page = self.page(pfn);
        // clear_user_highpage: the zeroed contents.
        self.mo.write_once(&page.data, Stamp::ZERO.0);
        // page_mapcount_reset: atomic_set(&page->_mapcount, -1).
        self.mo.atomic_set(&page.mapcount, 0);
        let f = if kind == PageKind::PageCache {
            flags::PAGECACHE
        } else {
            0
        };
        self.mo.write_once(&page.flags, f);
        // set_page_refcounted: set_page_count(page, 1) = atomic_set.
        self.mo.atomic_set(&page.refcount, 1);
        self.oracle.on_page_alloc(pfn, kind);
        tracing::trace!(target: "cowbreak::mm", func = "alloc_page", pfn, ?kind);
        Ok(pfn)
    }

    /// `get_page` (`page_ref_inc`: `atomic_inc`): take a reference on a page the caller
    /// knows is live.
    pub(crate) fn get_page(&self, pfn: Pfn, at: &'static str) {
        self.oracle.check_live(pfn, at);
        self.mo.atomic_add(1, &self.page(pfn).refcount);
    }

    /// `put_page_refs`: `page_ref_sub_and_test` (`atomic_sub_and_test`, fully ordered;
    /// `folio_put_refs` from v6.0; before, `put_compound_head` did a `page_ref_sub` of
    /// all but one and a `put_page`, which ends in the same full barrier), freeing the page
    /// when the last reference goes.
    pub(crate) fn put_page_refs(&self, pfn: Pfn, refs: i64, at: &'static str) {
        let old = self.mo.atomic_fetch_sub(refs, &self.page(pfn).refcount);
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

    /// `put_page` (`put_page_testzero` = `page_ref_dec_and_test`: `atomic_dec_and_test`,
    /// fully ordered).
    pub(crate) fn put_page(&self, pfn: Pfn, at: &'static str) {
        self.put_page_refs(pfn, 1, at)
    }

    /// `__free_pages` (`free_pages_prepare` resets the flags): back to the pool.
    fn free_page(&self, pfn: Pfn) {
        tracing::trace!(target: "cowbreak::mm", func = "__free_pages", pfn);
        self.oracle.on_page_free(pfn);
        self.mo.write_once(&self.page(pfn).flags, 0);
        self.frames.push_free(pfn);
    }

    /// `page_ref_add_unless(page, refs, 0)` (`try_get_page`, `try_grab_compound_head`,
    /// `folio_ref_try_add_rcu`): the speculative reference of fast GUP, which fails on a
    /// page whose refcount is 0 (free, or being freed). `atomic_add_unless`: fully
    /// ordered when it succeeds.
    pub(crate) fn page_ref_add_unless_zero(&self, pfn: Pfn, refs: i64) -> bool {
        self.mo
            .atomic_fetch_add_unless(&self.page(pfn).refcount, refs, 0)
            != 0
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

    /// `page_add_new_anon_rmap`: the first mapping of a new anon page
    /// (`atomic_set(&page->_mapcount, 0)`, `__page_set_anon_rmap`); from v5.19
    /// (`anon_exclusive`, 6c287605fd56) the page is marked PG_anon_exclusive
    /// (`SetPageAnonExclusive`: `set_bit`).
    pub(crate) fn page_add_new_anon_rmap(&self, pfn: Pfn) {
        let page = self.page(pfn);
        self.mo.atomic_set(&page.mapcount, 1);
        self.page_set(pfn, flags::ANON);
        if self.policy.anon_exclusive() {
            self.page_set(pfn, flags::ANON_EXCLUSIVE);
        }
    }

    /// `page_dup_rmap` / `page_add_file_rmap`: one more mapping
    /// (`atomic_inc(&page->_mapcount)`).
    pub(crate) fn page_dup_rmap(&self, pfn: Pfn) {
        self.mo.atomic_add(1, &self.page(pfn).mapcount);
    }

    /// `page_remove_rmap`: one mapping fewer (`atomic_add_negative(-1,
    /// &page->_mapcount)`: value-returning, fully ordered).
    pub(crate) fn page_remove_rmap(&self, pfn: Pfn, at: &'static str) {
        let old = self.mo.atomic_fetch_sub(1, &self.page(pfn).mapcount);
        if old <= 0 {
            self.oracle.report(
                ViolationKind::PageLifetime,
                at,
                format!("mapcount of pfn {pfn} underflowed"),
            );
        }
    }

    /// `trylock_page`: `test_and_set_bit_lock(PG_locked)`, acquire.
    pub(crate) fn trylock_page(&self, pfn: Pfn) -> bool {
        !self
            .mo
            .test_and_set_bit_lock(flags::LOCKED, &self.page(pfn).flags)
    }

    /// `lock_page`: sleeps until the page lock is free.
    pub(crate) fn lock_page(&self, pfn: Pfn) {
        while !self.trylock_page(pfn) {
            cowbreak_sync::spin_wait();
        }
    }

    /// `unlock_page`: `clear_bit_unlock(PG_locked)`, release (and wake the waiters).
    pub(crate) fn unlock_page(&self, pfn: Pfn) {
        self.mo
            .clear_bit_unlock(flags::LOCKED, &self.page(pfn).flags);
    }

    /// `copy_user_highpage`: copy the contents of `from` into `to` (a `memcpy`: plain
    /// loads and stores).
    pub(crate) fn copy_user_highpage(&self, to: Pfn, from: Pfn) {
        self.oracle.check_live(from, "copy_user_highpage");
        let data = self.mo.read_once(&self.page(from).data);
        self.mo.write_once(&self.page(to).data, data);
    }

    // ---- page tables -------------------------------------------------------------

    /// `pmd_offset` + `READ_ONCE(*pmd)` (`pmdp_get_lockless` for GUP-fast): the PMD
    /// entry covering `addr`, read by a walker that goes on through it (an address
    /// dependency: see [`MemoryModel::read_once_dep`]).
    pub(crate) fn pmd_read(&self, mm: MmId, addr: Addr) -> Pmd {
        Pmd(self.mo.read_once_dep(&self.mm(mm).pmd[pmd_index(addr)]))
    }

    /// `READ_ONCE(*pmd)` for a comparison only (GUP-fast's recheck
    /// `pmd_val(pmd) != pmd_val(*pmdp)`).
    pub(crate) fn pmd_recheck(&self, mm: MmId, addr: Addr) -> Pmd {
        Pmd(self.mo.read_once(&self.mm(mm).pmd[pmd_index(addr)]))
    }

    /// `ptep_get` (`READ_ONCE(*ptep)`): under the page-table lock, or GUP-fast's recheck.
    pub(crate) fn ptep_get(&self, table: &PteTable, addr: Addr) -> Pte {
        Pte(self.mo.read_once(&table.entries[pte_index(addr)]))
    }

    /// `ptep_get_lockless` (`gup_get_pte` before v5.16): GUP-fast's and the hardware
    /// walker's read of a PTE they go on through (an address dependency).
    pub(crate) fn ptep_get_lockless(&self, table: &PteTable, addr: Addr) -> Pte {
        Pte(self.mo.read_once_dep(&table.entries[pte_index(addr)]))
    }

    /// The PTE table covering `addr`, if one is installed.
    pub(crate) fn pte_table(&self, mm: MmId, addr: Addr) -> Option<(TableId, &PteTable)> {
        let pmd = self.pmd_read(mm, addr);
        if pmd.is_huge() {
            return None;
        }
        (!pmd.is_none()).then(|| (pmd.table_id(), self.tables.table(pmd.table_id())))
    }

    /// `pte_offset_map_lock` of the table `id` that the caller found under the PMD of
    /// `addr` (the model's PTE lock is the mm's `page_table_lock`, which is also its PMD
    /// lock). With `pte_offset_map_recheck` (0d940a9b270b, v6.5) it rechecks, under the
    /// lock, that the PMD still points at that table (`pmd_same`) and fails (`None`, lock
    /// dropped) if not: `retract_page_tables` may have taken the table away. Before, a
    /// walker holding the mmap lock takes the table as it found it. The oracle reports a
    /// walker that goes on into a table already freed.
    pub(crate) fn pte_offset_map_lock(
        &self,
        mm: MmId,
        addr: Addr,
        id: TableId,
        at: &'static str,
    ) -> Option<MutexGuard<'_, ()>> {
        let ptl = self.mo.spin_lock(&self.mm(mm).page_table_lock);
        if self.policy.pte_offset_map_recheck() && self.pmd_recheck(mm, addr) != Pmd::table(id) {
            tracing::trace!(target: "cowbreak::mm", mm, func = at, addr, table = id, "pte_offset_map_lock failed: the PMD changed");
            return None;
        }
        self.oracle.check_table_read(id, mm, at);
        Some(ptl)
    }

    /// `__pte_alloc`: install a PTE table under the PMD entry of `addr` if there is none.
    /// Called with `mmap_lock` held. The table is zeroed (`pte_alloc_one`); `smp_wmb()`
    /// makes that visible before the PMD ("see comment in __pte_alloc": the lockless
    /// walker's address dependency pairs with it); then under the page-table lock, if the
    /// PMD is still none, `pmd_populate`.
    pub(crate) fn pte_alloc(&self, mm: MmId, addr: Addr) -> Result<(TableId, &PteTable), Errno> {
        if let Some(t) = self.pte_table(mm, addr) {
            return Ok(t);
        }
        let new = self.tables.alloc().ok_or(Errno::ENOMEM)?;
        self.oracle.on_table_alloc(new);
        self.mo.smp_wmb();
        let ptl = self.mo.spin_lock(&self.mm(mm).page_table_lock);
        let slot = &self.mm(mm).pmd[pmd_index(addr)];
        if Pmd(self.mo.read_once(slot)).is_none() {
            // pmd_populate -> set_pmd: WRITE_ONCE.
            self.mo.write_once(slot, Pmd::table(new).0);
            tracing::trace!(target: "cowbreak::mm", func = "__pte_alloc", mm, addr, table = new);
        } else {
            self.oracle.on_table_free(new);
            self.tables.free(new);
        }
        drop(ptl);
        // A THP fault may have installed a huge PMD meanwhile (`pmd_trans_unstable`):
        // the caller retries the fault.
        self.pte_table(mm, addr).ok_or(Errno::EAGAIN)
    }

    /// `set_pte_at` (`native_set_pte`: `WRITE_ONCE`) of an entry where there was none
    /// (every caller has checked or cleared the slot under the page-table lock), and tell
    /// the oracle.
    pub(crate) fn set_pte_at(
        &self,
        mm: MmId,
        table: &PteTable,
        vma: &Vma,
        addr: Addr,
        pte: Pte,
        at: &'static str,
    ) {
        self.set_pte(mm, table, addr, Pte::NONE, pte, vma.is_private(), at)
    }

    /// `set_pte_at` over `old` (none, or a non-present entry such as a migration entry),
    /// in a `private` or shared mapping.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn set_pte(
        &self,
        mm: MmId,
        table: &PteTable,
        addr: Addr,
        old: Pte,
        pte: Pte,
        private: bool,
        at: &'static str,
    ) {
        self.mo.write_once(&table.entries[pte_index(addr)], pte.0);
        tracing::trace!(target: "cowbreak::mm", func = at, mm, addr, old = ?old, new = ?pte, "set_pte_at");
        if pte.present() {
            self.oracle.on_map(mm, addr, pte.pfn(), private, at);
        }
    }

    /// `ptep_get_and_clear` (the architecture's: `xchg` on x86, `xchg_relaxed` on arm64)
    /// and tell the oracle.
    pub(crate) fn ptep_get_and_clear(
        &self,
        mm: MmId,
        table: &PteTable,
        addr: Addr,
        cause: UnmapCause,
        at: &'static str,
    ) -> Pte {
        let old = Pte(self
            .arch
            .ptep_get_and_clear(self.mo, &table.entries[pte_index(addr)]));
        if old.present() {
            tracing::trace!(target: "cowbreak::mm", func = at, mm, addr, old = ?old, new = ?Pte::NONE, "ptep_get_and_clear");
            self.oracle.on_unmap(mm, addr, cause);
        }
        old
    }

    /// `ptep_set_wrprotect`: clear the write bit in place (x86 `clear_bit` on the entry;
    /// arm64 a `cmpxchg_relaxed` loop: unordered either way).
    pub(crate) fn ptep_set_wrprotect(
        &self,
        mm: MmId,
        table: &PteTable,
        addr: Addr,
        old: Pte,
        at: &'static str,
    ) {
        self.mo
            .clear_bit(Pte::WRITE_BIT, &table.entries[pte_index(addr)]);
        tracing::trace!(target: "cowbreak::mm", func = at, mm, addr, old = ?old, new = ?old.wrprotect(), "ptep_set_wrprotect");
    }

    /// `ptep_set_access_flags`: new young / dirty / write bits on a PTE whose page does
    /// not change (page-table lock held; x86 `set_pte`, arm64 a `cmpxchg_relaxed` loop).
    pub(crate) fn ptep_set_access_flags(
        &self,
        mm: MmId,
        table: &PteTable,
        addr: Addr,
        old: Pte,
        pte: Pte,
        at: &'static str,
    ) {
        debug_assert_eq!(
            old.pfn(),
            pte.pfn(),
            "ptep_set_access_flags changed the page"
        );
        self.mo.write_once(&table.entries[pte_index(addr)], pte.0);
        tracing::trace!(target: "cowbreak::mm", func = at, mm, addr, old = ?old, new = ?pte, "ptep_set_access_flags");
    }

    /// `set_pmd_at` of a huge entry where there was none (PMD lock held; `WRITE_ONCE`)
    /// and tell the oracle.
    pub(crate) fn set_pmd_at(&self, mm: MmId, vma: &Vma, addr: Addr, pmd: Pmd, at: &'static str) {
        self.mo.write_once(&self.mm(mm).pmd[pmd_index(addr)], pmd.0);
        tracing::trace!(target: "cowbreak::mm", func = at, mm, addr, old = ?Pmd::NONE, new = ?pmd, "set_pmd_at");
        let base = crate::pgtable::pmd_start(addr);
        self.oracle
            .on_map_huge(mm, base, pmd.leaf().pfn(), vma.is_private(), at);
    }

    /// `pmdp_huge_get_and_clear` (the architecture's `xchg` / `xchg_relaxed`) and tell
    /// the oracle.
    pub(crate) fn pmdp_huge_get_and_clear(
        &self,
        mm: MmId,
        addr: Addr,
        cause: UnmapCause,
        at: &'static str,
    ) -> Pmd {
        let old = Pmd(self
            .arch
            .ptep_get_and_clear(self.mo, &self.mm(mm).pmd[pmd_index(addr)]));
        if old.is_huge() {
            tracing::trace!(target: "cowbreak::mm", func = at, mm, addr, old = ?old, new = ?Pmd::NONE, "pmdp_huge_get_and_clear");
            self.oracle
                .on_unmap(mm, crate::pgtable::pmd_start(addr), cause);
        }
        old
    }

    /// `pmdp_set_access_flags` / `touch_pmd`: new young / dirty / write bits on a huge
    /// PMD whose page does not change (PMD lock held).
    pub(crate) fn pmdp_set_access_flags(
        &self,
        mm: MmId,
        addr: Addr,
        old: Pmd,
        pmd: Pmd,
        at: &'static str,
    ) {
        debug_assert_eq!(
            old.leaf().pfn(),
            pmd.leaf().pfn(),
            "pmdp_set_access_flags changed the page"
        );
        self.mo.write_once(&self.mm(mm).pmd[pmd_index(addr)], pmd.0);
        tracing::trace!(target: "cowbreak::mm", func = at, mm, addr, old = ?old, new = ?pmd, "pmdp_set_access_flags");
    }

    /// `pmdp_set_wrprotect` (`clear_bit` on x86; unordered).
    pub(crate) fn pmdp_set_wrprotect(&self, mm: MmId, addr: Addr, at: &'static str) {
        self.mo
            .clear_bit(Pte::WRITE_BIT, &self.mm(mm).pmd[pmd_index(addr)]);
        tracing::trace!(target: "cowbreak::mm", mm, func = at, addr, "pmdp_set_wrprotect");
    }

    // ---- end-of-execution accounting ----------------------------------------------

    /// Where the model tracks `anon_vma` (per-VMA locks): every anonymous page a
    /// process maps must be reachable through its vma's `anon_vma` (rmap walks,
    /// migration, KSM find it there), so the vma must have one. `vmas` is the mm's
    /// published tree, `reported` the vmas already reported.
    fn check_anon_vma(
        &self,
        mm: &MmStruct,
        vmas: &[Vma],
        reported: &mut Vec<usize>,
        addr: Addr,
        pfn: Pfn,
    ) {
        let Some(vma) = vmas.iter().find(|v| v.contains(addr)) else {
            return;
        };
        let Some(l) = mm.vma_locks.get(vma.slot) else {
            return;
        };
        if reported.contains(&vma.slot)
            || !self.page_anon(pfn)
            || self.mo.read_once(&l.anon_vma) != 0
        {
            return;
        }
        reported.push(vma.slot);
        self.oracle.report(
            ViolationKind::Accounting,
            "check_anon_vmas",
            format!(
                "mm{} maps an anonymous page at {addr:#x} in a vma without an anon_vma",
                mm.id
            ),
        );
    }

    /// The oracle's end-of-execution check: for every live frame, its refcount and
    /// mapcount against the page tables (walked for real) and the pins the ghost state
    /// knows of. Call it after every model thread has been joined.
    pub fn check_accounting(&self) {
        let mut maps = vec![0i64; self.frames.len()];
        for mm in &self.mms {
            // The anon_vma check rides on the same walk, where the model tracks it.
            let vmas = if mm.vma_locks.is_empty() {
                Vec::new()
            } else {
                mm.tree.with(|t| t.clone())
            };
            let mut reported = Vec::new();
            let mut mapped = |addr: Addr, pfn: Pfn| {
                maps[pfn as usize] += 1;
                if !vmas.is_empty() {
                    self.check_anon_vma(mm, &vmas, &mut reported, addr, pfn);
                }
            };
            for (i, slot) in mm.pmd.iter().enumerate() {
                let pmd = Pmd(self.mo.read_once(slot));
                let base = i as Addr * crate::pgtable::PMD_SIZE;
                if pmd.is_none() {
                    continue;
                }
                if pmd.is_huge() {
                    if !pmd.leaf().special() {
                        mapped(base, pmd.leaf().pfn());
                    }
                    continue;
                }
                for (j, e) in self.tables.table(pmd.table_id()).entries.iter().enumerate() {
                    let pte = Pte(self.mo.read_once(e));
                    if pte.present() && !pte.special() {
                        mapped(base + j as Addr * crate::pgtable::PAGE_SIZE, pte.pfn());
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
            let (ghost_maps, pins) = self.oracle.expected_refs(pfn);
            let cache_ref = i64::from(kind == PageKind::PageCache);
            let want_count = maps[pfn as usize] + pins + cache_ref;
            let (count, mapcount) = (self.page_count(pfn), self.page_mapcount(pfn));
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
