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

use cowbreak_sync::{RwLockReadGuard, RwLockWriteGuard};

use crate::kernel::Kernel;
use crate::mm_types::{MmId, Vma, Vmas};
use crate::pgtable::Addr;

impl Kernel {
    /// `lock_vma_under_rcu`: the vma of `mm` holding `addr`, read-locked, if it is an
    /// anonymous private vma with an `anon_vma` that is not write-locked; `None` sends
    /// the fault to the mmap lock. The `anon_vma` check comes before `vma_start_read`
    /// until `vma_anon_vma_check_under_lock` (657b5146955e) moves it after.
    pub(crate) fn lock_vma_under_rcu(
        &self,
        mm: MmId,
        addr: Addr,
    ) -> Option<(Vma, RwLockReadGuard<'_, ()>)> {
        let m = self.mm(mm);
        let vma = m
            .tree
            .with(|t| t.iter().find(|v| v.contains(addr)).copied())?;
        if !vma.is_anonymous() || !vma.is_private() {
            return None;
        }
        let l = m.vma_locks.get(vma.slot)?;
        let has_anon_vma = || self.mo.read_once(&l.anon_vma) != 0;
        let under_lock = self.policy.vma_anon_vma_check_under_lock;
        if !under_lock && !has_anon_vma() {
            return None;
        }
        // vma_start_read.
        if self.mo.read_once(&l.vm_lock_seq) == self.mo.read_once(&m.mm_lock_seq) {
            return None;
        }
        let guard = self.mo.down_read_trylock(&l.lock)?;
        let seq = if self.policy.vma_lock_seq_ordering {
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
        let fresh = m.tree.with(|t| {
            t.iter()
                .find(|v| v.slot == vma.slot && v.contains(addr))
                .copied()
        })?;
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
        let g = self.mo.down_write(&l.lock);
        self.mo.write_once(&l.vm_lock_seq, seq);
        drop(g);
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

    /// `vma_end_write_all`, from `mmap_write_unlock`: with per-VMA locks, publish the
    /// vma list to the tree and `mm_lock_seq + 1` (`WRITE_ONCE`, `smp_store_release`
    /// from `vma_lock_seq_ordering`).
    fn vma_end_write_all(&self, mm: MmId, v: &Vmas) {
        if !self.policy.per_vma_lock {
            return;
        }
        let m = self.mm(mm);
        m.tree.with(|t| t.clone_from(&v.list));
        let next = self.mo.read_once(&m.mm_lock_seq) + 1;
        if self.policy.vma_lock_seq_ordering {
            self.mo.smp_store_release(&m.mm_lock_seq, next);
        } else {
            self.mo.write_once(&m.mm_lock_seq, next);
        }
    }

    /// `__anon_vma_prepare` as the anonymous faults call it: give the vma an `anon_vma`
    /// if it has none, under `page_table_lock`. Tracked only where something reads it
    /// (per-VMA locks).
    pub(crate) fn anon_vma_prepare(&self, mm: MmId, vma: &Vma) {
        let Some(l) = self.mm(mm).vma_locks.get(vma.slot) else {
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

    /// A vma `from` of `mm` gave `to` of `into` its `anon_vma` (`anon_vma_fork`, a split).
    pub(crate) fn anon_vma_copy(&self, mm: MmId, from: usize, into: MmId, to: usize) {
        let (Some(a), Some(b)) = (
            self.mm(mm).vma_locks.get(from),
            self.mm(into).vma_locks.get(to),
        ) else {
            return;
        };
        let has = self.mo.read_once(&a.anon_vma);
        self.mo.write_once(&b.anon_vma, has);
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
