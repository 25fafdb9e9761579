//! `struct page` and the frame pool.
//!
//! Models the fields of `include/linux/mm_types.h` `struct page` that GUP and COW read:
//! `_refcount` (`page_count`, `page_ref_add_unless`, `put_page`), `_mapcount`
//! (`page_mapcount`, `page_dup_rmap`, `page_remove_rmap`), the flags GUP/COW test
//! (`PageAnon`, `PageAnonExclusive` from v5.19 6c287605fd56, `PG_locked`), and a data
//! word standing for the page's contents.

use cowbreak_sync::atomic::{AtomicI64, AtomicU64};
use cowbreak_sync::{Mutex, Snapshot};

/// Index of a frame in the [`FramePool`] (`page_to_pfn`).
pub type Pfn = u32;

/// The shared zero page (`ZERO_PAGE(0)`): always frame 0, never freed.
pub const ZERO_PFN: Pfn = 0;

/// The huge zero page (`mm_get_huge_zero_page`), mapped by a PMD on a read fault in a
/// THP-enabled vma: always frame 1, never freed. A huge page is one frame in the
/// model (one data word for all its subpages).
pub const HUGE_ZERO_PFN: Pfn = 1;

/// `is_zero_pfn` or `is_huge_zero_page`.
pub fn is_zero_pfn(pfn: Pfn) -> bool {
    pfn == ZERO_PFN || pfn == HUGE_ZERO_PFN
}

/// `GUP_PIN_COUNTING_BIAS` (v5.7 3faa52c03f44): what FOLL_PIN adds to the refcount of a
/// small page.
pub const GUP_PIN_COUNTING_BIAS: i64 = 1024;

/// What kind of memory a frame holds.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum PageKind {
    /// An anonymous page (`PageAnon`).
    Anon,
    /// A page-cache page of a file.
    PageCache,
    /// The shared zero page.
    Zero,
    /// A KSM page (`PageKsm`): anonymous, shared by content, never written in place.
    Ksm,
}

/// Page flags (`PG_*`) the model uses.
pub mod flags {
    /// `PageAnon` (really `page->mapping & PAGE_MAPPING_ANON`).
    pub const ANON: u64 = 1 << 0;
    /// `PG_anon_exclusive` (v5.19, 6c287605fd56).
    pub const ANON_EXCLUSIVE: u64 = 1 << 1;
    /// `PG_locked` (`trylock_page`, `lock_page`, `unlock_page`).
    pub const LOCKED: u64 = 1 << 2;
    /// A page-cache page (`page->mapping` is a file).
    pub const PAGECACHE: u64 = 1 << 3;
    /// The shared zero page.
    pub const ZERO: u64 = 1 << 4;
    /// `PG_uptodate`: the contents are valid (`__SetPageUptodate`, with its `smp_wmb`).
    pub const UPTODATE: u64 = 1 << 5;
    /// `PageKsm` (`page->mapping & PAGE_MAPPING_KSM`).
    pub const KSM: u64 = 1 << 6;
}

/// Who wrote a page's data: the id of the mm that wrote it plus one, or one of these.
pub mod writer {
    /// Freshly zeroed memory.
    pub const NOBODY: u32 = 0;
    /// The file's contents, as read from disk into the page cache.
    pub const FILE: u32 = u32::MAX;
}

/// A page's contents: who wrote it last and what.
#[derive(Copy, Clone, PartialEq, Eq, Hash, Default)]
pub struct Stamp(pub u64);

impl Stamp {
    /// Zero-filled memory.
    pub const ZERO: Stamp = Stamp(0);
    /// `value` written by `writer` (see [`writer`]).
    pub fn new(writer: u32, value: u32) -> Stamp {
        Stamp(((writer as u64) << 32) | value as u64)
    }
    /// Written by mm `mm`.
    pub fn by_mm(mm: usize, value: u32) -> Stamp {
        Stamp::new(mm as u32 + 1, value)
    }
    /// The writer (see [`writer`]).
    pub fn writer(self) -> u32 {
        (self.0 >> 32) as u32
    }
    /// The mm that wrote it, if an mm did.
    pub fn writer_mm(self) -> Option<usize> {
        match self.writer() {
            writer::NOBODY | writer::FILE => None,
            w => Some(w as usize - 1),
        }
    }
    /// The value written.
    pub fn value(self) -> u32 {
        self.0 as u32
    }
}

impl std::fmt::Debug for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.writer() {
            writer::NOBODY => write!(f, "zero"),
            writer::FILE => write!(f, "file:{}", self.value()),
            w => write!(f, "mm{}:{}", w - 1, self.value()),
        }
    }
}

/// `struct page`.
#[derive(Debug)]
pub struct Page {
    /// `_refcount`. Invariant: equals the mappings plus the GUP references (1 per FOLL_GET,
    /// [`GUP_PIN_COUNTING_BIAS`] per FOLL_PIN) plus transient kernel references plus the
    /// page cache's own reference; 0 exactly when the frame is free.
    pub refcount: AtomicI64,
    /// `_mapcount + 1`: the number of page-table entries mapping the page.
    pub mapcount: AtomicI64,
    /// `PG_*` flags, see [`flags`].
    pub flags: AtomicU64,
    /// The page's contents, see [`Stamp`].
    pub data: AtomicU64,
}

impl Page {
    fn new(refcount: i64, flags: u64) -> Self {
        Page {
            refcount: AtomicI64::new(refcount),
            mapcount: AtomicI64::new(0),
            flags: AtomicU64::new(flags),
            data: AtomicU64::new(0),
        }
    }
}

impl Snapshot for Page {
    fn snapshot(&mut self) -> Self {
        Page {
            refcount: self.refcount.snapshot(),
            mapcount: self.mapcount.snapshot(),
            flags: self.flags.snapshot(),
            data: self.data.snapshot(),
        }
    }
}

/// The frame pool: the buddy allocator reduced to a free list.
#[derive(Debug)]
pub struct FramePool {
    pages: Vec<Page>,
    free: Mutex<Vec<Pfn>>,
}

impl FramePool {
    /// The memory the frames' `struct page`s live in: (address, length).
    pub fn region(&self) -> (usize, usize) {
        cowbreak_sync::region_of(&self.pages)
    }

    /// A pool of `n` frames; frames 0 and 1 are the zero pages, the rest are free.
    pub fn new(n: usize) -> Self {
        assert!(
            n >= 3,
            "a frame pool needs the two zero pages and at least one frame"
        );
        let pages: Vec<Page> = (0..n as Pfn)
            .map(|pfn| {
                if is_zero_pfn(pfn) {
                    // The zero pages' refcounts are never allowed to reach 0.
                    Page::new(1, flags::ZERO | flags::UPTODATE)
                } else {
                    Page::new(0, 0)
                }
            })
            .collect();
        FramePool {
            pages,
            free: Mutex::new((2..n as Pfn).rev().collect()),
        }
    }

    /// A copy of the pool between executions ([`Snapshot`]).
    pub(crate) fn snapshot(&mut self) -> Self {
        FramePool {
            pages: self.pages.snapshot(),
            free: self.free.snapshot(),
        }
    }

    /// The page of frame `pfn` (`pfn_to_page`).
    pub fn page(&self, pfn: Pfn) -> &Page {
        &self.pages[pfn as usize]
    }

    /// Number of frames, zero page included.
    pub fn len(&self) -> usize {
        self.pages.len()
    }

    /// Whether the pool is empty (never: it always holds the zero page).
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// Take a frame off the free list; the caller initializes it.
    pub(crate) fn pop_free(&self) -> Option<Pfn> {
        self.free.lock().pop()
    }

    /// Put a frame back on the free list.
    pub(crate) fn push_free(&self, pfn: Pfn) {
        self.free.lock().push(pfn);
    }
}
