//! Per-VMA locks (v6.4, 5e31275cc997; include/linux/mm.h, mm/memory.c
//! `lock_vma_under_rcu`, include/linux/mmap_lock.h): page faults on anonymous vmas run
//! without the mmap lock when the vma is not write-locked.
//!
//! A vma is write-locked when its `vm_lock_seq` equals its mm's `mm_lock_seq`:
//! `vma_start_write` (under the mmap write lock) sets it, passing through the vma's
//! rwsem so that faults already inside drain first; `mmap_write_unlock` increments
//! `mm_lock_seq` (`vma_end_write_all`), unlocking every vma at once. A fault reads the
//! two sequence numbers, `down_read_trylock`s the vma's rwsem and reads them again.
//!
//! The maple tree is a copy of the vma list that `mmap_write_unlock` publishes (a ghost,
//! read without a scheduling point, as an RCU walk is): a vma changes only while
//! write-locked, so a fault that gets the lock sees the published copy. After locking, a
//! fault rereads its vma from the tree (the kernel reads the fields after the lock; a
//! vma no longer there is `detached`).

use std::ops::{Deref, DerefMut};

use cowbreak_sync::atomic::AtomicU64;
use cowbreak_sync::RwLockWriteGuard;

use crate::kernel::Kernel;
use crate::mm_types::{MmId, Vma, Vmas};
use crate::pgtable::Addr;

/// `RWSEM_WRITER_LOCKED`.
const RWSEM_WRITER_LOCKED: u64 = 1;
/// `RWSEM_READER_BIAS`.
const RWSEM_READER_BIAS: u64 = 1 << 8;

/// A vma read-locked by a fault; dropping it is `vma_end_read` (`up_read`).
pub(crate) struct VmaReadLock<'a> {
    k: &'a Kernel,
    count: &'a AtomicU64,
}

impl Drop for VmaReadLock<'_> {
    fn drop(&mut self) {
        self.k
            .mo
            .atomic_fetch_sub_release(RWSEM_READER_BIAS, self.count);
    }
}

impl Kernel {
    /// `down_read_trylock` of a vma's rwsem (`__down_read_trylock`): while no writer
    /// holds it, `atomic_long_try_cmpxchg_acquire` of one more reader.
    fn vma_down_read_trylock<'a>(&'a self, count: &'a AtomicU64) -> Option<VmaReadLock<'a>> {
        let mut c = self.mo.read_once(count);
        while c & RWSEM_WRITER_LOCKED == 0 {
            let seen = self.mo.cmpxchg_acquire(count, c, c + RWSEM_READER_BIAS);
            if seen == c {
                return Some(VmaReadLock { k: self, count });
            }
            c = seen;
        }
        None
    }

    /// `lock_vma_under_rcu`: the vma of `mm` holding `addr`, read-locked, if it is an
    /// anonymous private vma with an `anon_vma` that is not write-locked; `None` sends
    /// the fault to the mmap lock. The `anon_vma` check comes before `vma_start_read`
    /// until `vma_anon_vma_check_under_lock` (657b5146955e) moves it after.
    pub(crate) fn lock_vma_under_rcu(
        &self,
        mm: MmId,
        addr: Addr,
    ) -> Option<(Vma, VmaReadLock<'_>)> {
        let m = self.mm(mm);
        let vma = m
            .tree
            .with(|t| t.iter().find(|v| v.contains(addr)).copied())?;
        if !vma.is_anonymous() || !vma.is_private() {
            return None;
        }
        let l = m.vma_locks.get(vma.slot)?;
        let has_anon_vma = || self.mo.read_once(&l.anon_vma) != 0;
        let under_lock = self.policy.vma_anon_vma_check_under_lock();
        if !under_lock && !has_anon_vma() {
            return None;
        }
        // vma_start_read.
        if self.mo.read_once(&l.vm_lock_seq) == self.mo.read_once(&m.mm_lock_seq) {
            return None;
        }
        let guard = self.vma_down_read_trylock(&l.lock)?;
        let seq = if self.policy.vma_lock_seq_ordering() {
            self.mo.smp_load_acquire(&m.mm_lock_seq)
        } else {
            self.mo.read_once(&m.mm_lock_seq)
        };
        if self.mo.read_once(&l.vm_lock_seq) == seq {
            return None;
        }
        if under_lock && !has_anon_vma() {
            return None;
        }
        // The vma's fields as of now; gone (detached) or moved away from `addr`: retry
        // under the mmap lock.
        let mut fresh = m.tree.with(|t| {
            t.iter()
                .find(|v| v.slot == vma.slot && v.contains(addr))
                .copied()
        })?;
        // The fields the fault goes on with are read from the vma's memory, after the
        // lock and the sequence check.
        fresh.flags = self.mo.read_once(&l.vm_flags);
        tracing::trace!(target: "cowbreak::mm", mm, func = "lock_vma_under_rcu", addr, slot = vma.slot);
        Some((fresh, guard))
    }

    /// `vma_start_write`: with the mmap lock held for write, mark the vma write-locked
    /// (`vm_lock_seq = mm_lock_seq`), waiting in `down_write` of its rwsem for the
    /// faults inside it. Nothing without per-VMA locks.
    pub(crate) fn vma_start_write(&self, mm: MmId, vma: &Vma) {
        let m = self.mm(mm);
        let Some(l) = m.vma_locks.get(vma.slot) else {
            return;
        };
        let seq = self.mo.read_once(&m.mm_lock_seq);
        if self.mo.read_once(&l.vm_lock_seq) == seq {
            return;
        }
        // down_write: the fast path's cmpxchg_acquire from 0, sleeping (spinning here)
        // while readers hold it.
        while self.mo.cmpxchg_acquire(&l.lock, 0, RWSEM_WRITER_LOCKED) != 0 {
            cowbreak_sync::spin_wait();
        }
        self.mo.write_once(&l.vm_lock_seq, seq);
        // up_write.
        self.mo
            .atomic_fetch_sub_release(RWSEM_WRITER_LOCKED, &l.lock);
        tracing::trace!(target: "cowbreak::mm", mm, func = "vma_start_write", addr = vma.start, slot = vma.slot);
    }

    /// `mmap_write_lock`: the mmap lock for write, released by dropping the guard, which
    /// is `mmap_write_unlock`.
    pub(crate) fn mmap_write_lock(&self, mm: MmId) -> MmapWriteGuard<'_> {
        MmapWriteGuard {
            k: self,
            mm,
            v: Some(self.mo.down_write(&self.mm(mm).mmap_lock)),
        }
    }

    /// `mmap_write_trylock`: the mmap lock for write if nobody holds it.
    pub(crate) fn mmap_write_trylock(&self, mm: MmId) -> Option<MmapWriteGuard<'_>> {
        let v = self.mo.down_write_trylock(&self.mm(mm).mmap_lock)?;
        Some(MmapWriteGuard {
            k: self,
            mm,
            v: Some(v),
        })
    }

    /// `vma_end_write_all`, from `mmap_write_unlock`: with per-VMA locks, publish the
    /// vma list to the tree and `mm_lock_seq + 1` (`WRITE_ONCE`, `smp_store_release`
    /// from `vma_lock_seq_ordering`).
    fn vma_end_write_all(&self, mm: MmId, v: &Vmas) {
        let m = self.mm(mm);
        m.i_mmap.with(|t| t.clone_from(&v.list));
        if !self.policy.per_vma_lock() {
            return;
        }
        m.tree.with(|t| t.clone_from(&v.list));
        let next = self.mo.read_once(&m.mm_lock_seq) + 1;
        if self.policy.vma_lock_seq_ordering() {
            self.mo.smp_store_release(&m.mm_lock_seq, next);
        } else {
            self.mo.write_once(&m.mm_lock_seq, next);
        }
    }

    /// `__anon_vma_prepare` as the anonymous faults call it: give the vma an `anon_vma`
    /// if it has none, under `page_table_lock`. Memory where per-VMA locks read it;
    /// bookkeeping elsewhere (only `retract_page_tables` under the mmap write lock reads
    /// it there).
    pub(crate) fn anon_vma_prepare(&self, mm: MmId, vma: &Vma) {
        let Some(l) = self.mm(mm).vma_locks.get(vma.slot) else {
            self.mm(mm)
                .anon_vma_ghost
                .with(|g| *g |= 1 << (vma.slot % 64));
            return;
        };
        if self.mo.read_once(&l.anon_vma) != 0 {
            return;
        }
        let _ptl = self.mo.spin_lock(&self.mm(mm).page_table_lock);
        if self.mo.read_once(&l.anon_vma) == 0 {
            self.mo.write_once(&l.anon_vma, 1);
        }
    }

    /// `READ_ONCE(vma->anon_vma)` of vma `slot` of `mm` (see [`Self::anon_vma_prepare`]).
    pub(crate) fn vma_anon_vma(&self, mm: MmId, slot: usize) -> bool {
        match self.mm(mm).vma_locks.get(slot) {
            Some(l) => self.mo.read_once(&l.anon_vma) != 0,
            None => self
                .mm(mm)
                .anon_vma_ghost
                .with(|g| *g & (1 << (slot % 64)) != 0),
        }
    }

    /// `vm_area_dup` / `anon_vma_fork` / `anon_vma_clone`: vma `to` of `into` starts
    /// with the `anon_vma` and the `vm_flags` of vma `from` of `mm` (a split, fork).
    pub(crate) fn vma_dup_state(&self, mm: MmId, from: usize, into: MmId, to: usize) {
        let (Some(a), Some(b)) = (
            self.mm(mm).vma_locks.get(from),
            self.mm(into).vma_locks.get(to),
        ) else {
            let has = self
                .mm(mm)
                .anon_vma_ghost
                .with(|g| *g & (1 << (from % 64)) != 0);
            self.mm(into).anon_vma_ghost.with(|g| {
                *g = (*g & !(1 << (to % 64))) | (u64::from(has) << (to % 64));
            });
            return;
        };
        let has = self.mo.read_once(&a.anon_vma);
        self.mo.write_once(&b.anon_vma, has);
        let flags = self.mo.read_once(&a.vm_flags);
        self.mo.write_once(&b.vm_flags, flags);
    }

    /// `vm_flags_init` / `vm_flags_reset`: the vma's `vm_flags` as faults under the vma
    /// lock read them (the caller holds the mmap lock for write and has write-locked the
    /// vma, or it is not yet visible).
    pub(crate) fn vm_flags_reset(&self, mm: MmId, vma: &Vma) {
        if let Some(l) = self.mm(mm).vma_locks.get(vma.slot) {
            self.mo.write_once(&l.vm_flags, vma.flags);
        }
    }

    /// Whether the vma `slot` of `mm` is writable as its last unlock published it.
    pub(crate) fn published_writable(&self, mm: MmId, slot: usize) -> Option<bool> {
        self.mm(mm).tree.with(|t| {
            t.iter()
                .find(|v| v.slot == slot)
                .map(|v| v.flags & crate::mm_types::vm::WRITE != 0)
        })
    }
}

/// The mmap lock held for write ([`Kernel::mmap_write_lock`]); dropping it is
/// `mmap_write_unlock`, which unlocks every vma the holder write-locked.
pub(crate) struct MmapWriteGuard<'a> {
    k: &'a Kernel,
    mm: MmId,
    v: Option<RwLockWriteGuard<'a, Vmas>>,
}

impl Deref for MmapWriteGuard<'_> {
    type Target = Vmas;
    fn deref(&self) -> &Vmas {
        self.v.as_ref().expect("held until dropped")
    }
}

impl DerefMut for MmapWriteGuard<'_> {
    fn deref_mut(&mut self) -> &mut Vmas {
        self.v.as_mut().expect("held until dropped")
    }
}

impl Drop for MmapWriteGuard<'_> {
    fn drop(&mut self) {
        if let Some(v) = self.v.take() {
            self.k.vma_end_write_all(self.mm, &v);
            drop(v);
        }
    }
}
