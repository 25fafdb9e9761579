//! What user space does to the model: loads and stores through the page tables,
//! `/proc/pid/mem`, vmsplice, pin_user_pages(_fast), reads through a pin, unpin.

use crate::gup::{foll, Grabbed, PinIntent};
use crate::kernel::Kernel;
use crate::memory::fault;
use crate::mm_types::{vm, MmId};
use crate::oracle::PinId;
use crate::page::{Pfn, Stamp};
use crate::pgtable::Addr;
use crate::Errno;

/// How to pin.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub struct PinMode {
    /// FOLL_WRITE: a R/W pin (the device will write).
    pub write: bool,
    /// FOLL_LONGTERM.
    pub longterm: bool,
    /// `pin_user_pages_fast` (the lockless walk first) instead of `pin_user_pages`.
    pub fast: bool,
}

/// A page held by a pin or a long-lived FOLL_GET reference (vmsplice).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Pin {
    /// The mm whose address was pinned.
    pub holder: MmId,
    /// The pinned address.
    pub addr: Addr,
    /// The pinned page.
    pub pfn: Pfn,
    /// References it holds: 1 (FOLL_GET) or the FOLL_PIN bias.
    pub refs: i64,
    /// A R/W pin.
    pub write: bool,
    id: PinId,
}

impl Pin {
    fn from_grabbed(holder: MmId, addr: Addr, write: bool, g: Grabbed) -> Pin {
        Pin {
            holder,
            addr,
            pfn: g.pfn,
            refs: g.refs,
            write,
            id: g.pin.expect("pins are tracked from the grab"),
        }
    }
}

impl Kernel {
    /// A user load (`write == None`) or store of `value` at `addr` by a thread of `mm` on
    /// `cpu`. The access is the hardware's: a page walk and the access itself, atomic with
    /// respect to IPIs and to a broadcast TLB invalidation (a hardware-access section, see
    /// [`crate::irq`]); a huge PMD maps its page directly. A missing or read-only
    /// PTE raises a page fault (`do_user_addr_fault`): `mmap_read_lock`, `access_error`
    /// against the vma (SIGSEGV), `handle_mm_fault`, retry the access. With
    /// `per_vma_lock` (v6.4) the fault first tries `lock_vma_under_rcu` and, if it gets
    /// the vma and the access is allowed, runs `handle_mm_fault` with
    /// `FAULT_FLAG_VMA_LOCK` and no mmap lock; `VM_FAULT_RETRY` or a refusal falls back.
    pub fn user_access(
        &self,
        cpu: usize,
        mm: MmId,
        addr: Addr,
        write: Option<u32>,
    ) -> Result<Stamp, Errno> {
        for _ in 0..self.gup_retries_max {
            self.hw_access_begin(cpu);
            let mut done = None;
            // The hardware walk: the PMD, then the PTE, or the huge PMD's own page.
            let pmd = self.pmd_read(mm, addr);
            let leaf = if pmd.is_none() {
                None
            } else if pmd.is_huge() {
                Some(pmd.leaf())
            } else {
                let pte = self.ptep_get_lockless(self.tables.table(pmd.table_id()), addr);
                self.oracle
                    .check_table_read(pmd.table_id(), mm, "user_access");
                Some(pte)
            };
            if let Some(pte) = leaf {
                if pte.present() && (write.is_none() || pte.write()) {
                    let private = || self.oracle.is_private_mapping(mm, addr);
                    done = Some(self.access_page(
                        cpu,
                        mm,
                        addr,
                        pte.pfn(),
                        write,
                        private,
                        "user_access",
                    ));
                }
            }
            self.hw_access_end(cpu);
            if let Some(stamp) = done {
                return Ok(stamp);
            }
            let needed = if write.is_some() { vm::WRITE } else { vm::READ };
            let flags = if write.is_some() { fault::WRITE } else { 0 };
            if self.policy.per_vma_lock() {
                if let Some((vma, lock)) = self.lock_vma_under_rcu(mm, addr) {
                    let r = (vma.flags & needed != 0).then(|| {
                        self.handle_mm_fault(cpu, mm, &vma, addr, flags | fault::VMA_LOCK)
                    });
                    // Still under the vma lock: no writer can have changed the vma since
                    // the fault read it, so it must agree with what was last published.
                    if r.is_some()
                        && write.is_some()
                        && self.published_writable(mm, vma.slot) == Some(false)
                    {
                        self.oracle.report(
                            crate::ViolationKind::VmaCoherence,
                            "lock_vma_under_rcu",
                            format!("mm{mm}'s write fault at {addr:#x} under the vma lock saw VM_WRITE, but the vma had been made read-only and unlocked (its stale vm_flags)"),
                        );
                    }
                    // vma_end_read.
                    drop(lock);
                    match r {
                        Some(Ok(ret)) if ret & crate::memory::VM_FAULT_RETRY == 0 => continue,
                        Some(Err(e)) => return Err(e),
                        _ => {}
                    }
                }
            }
            let vmas = self.mo.down_read(&self.mm(mm).mmap_lock);
            let vma = vmas.lookup(addr).ok_or(Errno::SIGSEGV)?;
            if vma.flags & needed == 0 {
                return Err(Errno::SIGSEGV);
            }
            self.handle_mm_fault(cpu, mm, &vma, addr, flags)?;
        }
        self.oracle.report(
            crate::ViolationKind::Livelock,
            "user_access",
            format!(
                "mm{mm}: access at {addr:#x} still faults after {} rounds",
                self.gup_retries_max
            ),
        );
        Err(Errno::EFAULT)
    }

    /// The access itself: store `value` (stamped as written by `mm`) into, or load
    /// from, the page's data, and tell the oracle where a store landed.
    #[allow(clippy::too_many_arguments)]
    fn access_page(
        &self,
        cpu: usize,
        mm: MmId,
        addr: Addr,
        pfn: Pfn,
        write: Option<u32>,
        private: impl FnOnce() -> bool,
        at: &'static str,
    ) -> Stamp {
        let page = self.page(pfn);
        match write {
            Some(value) => {
                let stamp = Stamp::by_mm(mm, value);
                // The store itself: a plain one.
                self.mo.write_once(&page.data, stamp.0);
                self.oracle.on_write(mm, addr, pfn, private(), at);
                tracing::trace!(target: "cowbreak::mm", cpu, mm, func = at, addr, pfn, ?stamp, "write");
                stamp
            }
            None => {
                let stamp = Stamp(self.mo.read_once(&page.data));
                self.oracle.check_live(pfn, at);
                tracing::trace!(target: "cowbreak::mm", cpu, mm, func = at, addr, pfn, ?stamp, "read");
                stamp
            }
        }
    }

    /// `mem_rw` -> `access_remote_vm` on `/proc/<mm>/mem`: `mmap_read_lock`,
    /// `get_user_pages_remote` with FOLL_FORCE (| FOLL_WRITE), copy one word to or from
    /// the page, `put_page`. A forced write may COW through a read-only private mapping:
    /// where it lands is what Dirty COW got wrong.
    pub fn proc_mem_access(
        &self,
        cpu: usize,
        mm: MmId,
        addr: Addr,
        write: Option<u32>,
    ) -> Result<Stamp, Errno> {
        let mut flags = foll::FORCE | foll::GET | foll::TOUCH;
        if write.is_some() {
            flags |= foll::WRITE;
        }
        let vmas = self.mo.down_read(&self.mm(mm).mmap_lock);
        let got = self.__get_user_pages(cpu, mm, &vmas, addr, 1, flags, None)?;
        let pfn = got[0].pfn;
        let private = || vmas.lookup(addr).is_none_or(|v| v.is_private());
        let stamp = self.access_page(cpu, mm, addr, pfn, write, private, "access_remote_vm");
        self.put_page(pfn, "access_remote_vm");
        Ok(stamp)
    }

    /// vmsplice of one page into a pipe (`iov_iter_get_pages` -> `get_user_pages_fast`,
    /// a FOLL_GET read reference the pipe keeps until it is read or closed).
    pub fn vmsplice(&self, cpu: usize, mm: MmId, addr: Addr) -> Result<Pin, Errno> {
        let intent = Some(PinIntent {
            holder: mm,
            write: false,
        });
        let got = self.get_user_pages_fast(cpu, mm, addr, 1, foll::GET, intent)?;
        Ok(Pin::from_grabbed(mm, addr, false, got[0]))
    }

    /// `pin_user_pages` / `pin_user_pages_fast` of one page (FOLL_PIN, | FOLL_WRITE for a
    /// R/W pin, | FOLL_LONGTERM). Without `foll_pin` (before v5.6, and 4.4.289) a pin is
    /// what drivers used then: `get_user_pages(_fast)` with FOLL_GET.
    pub fn pin_user_page(
        &self,
        cpu: usize,
        mm: MmId,
        addr: Addr,
        mode: PinMode,
    ) -> Result<Pin, Errno> {
        let mut flags = if self.policy.foll_pin() {
            foll::PIN
        } else {
            foll::GET
        };
        if mode.write {
            flags |= foll::WRITE;
        }
        if mode.longterm {
            flags |= foll::LONGTERM;
        }
        let intent = Some(PinIntent {
            holder: mm,
            write: mode.write,
        });
        let got = if mode.fast {
            self.get_user_pages_fast(cpu, mm, addr, 1, flags, intent)?
        } else {
            self.get_user_pages(cpu, mm, addr, 1, flags | foll::TOUCH, intent)?
        };
        Ok(Pin::from_grabbed(mm, addr, mode.write, got[0]))
    }

    /// What the device (or the pipe reader) sees through the pin.
    pub fn read_pinned(&self, pin: &Pin) -> Stamp {
        self.oracle.check_live(pin.pfn, "read_pinned_page");
        // The device's DMA read (or the pipe's copy): a plain load.
        let stamp = Stamp(self.mo.read_once(&self.page(pin.pfn).data));
        tracing::trace!(target: "cowbreak::mm", mm = pin.holder, func = "read_pinned_page", addr = pin.addr, pfn = pin.pfn, ?stamp);
        stamp
    }

    /// `unpin_user_page` (FOLL_PIN) or `put_page` (FOLL_GET).
    pub fn unpin(&self, pin: Pin) {
        tracing::trace!(target: "cowbreak::mm", mm = pin.holder, func = "unpin_user_page", addr = pin.addr, pfn = pin.pfn);
        self.release_grabbed(&[Grabbed {
            pfn: pin.pfn,
            refs: pin.refs,
            pin: Some(pin.id),
        }]);
    }
}
