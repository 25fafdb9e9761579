//! Interrupts-off sections and hardware accesses as epoch barriers; the TLB flush, the
//! IPIs and the RCU-sched grace periods that wait for them.
//!
//! Fast GUP (`lockless_pages_from_mm`, `gup_pgd_range`) runs with interrupts off
//! (`local_irq_save`). Three things can wait for CPUs:
//!
//! - an IPI with wait (`smp_call_function_many(..., wait = 1)`: x86's TLB shootdown,
//!   `tlb_remove_table_sync_one`) waits for every CPU that has interrupts off, and for one
//!   in the middle of an access (interrupts are taken between instructions);
//! - a broadcast TLB invalidation (arm64 `tlbi ...is` + `dsb ish`) waits only for the
//!   accesses in flight that use the old translation, not for interrupts-off CPUs;
//! - an RCU-sched grace period (`MMU_GATHER_RCU_TABLE_FREE`'s `tlb_remove_table`) waits
//!   for every interrupts-off section that began before it.
//!
//! Each CPU has an epoch word `4n + s`, where `s` is 0 outside any section, 1 inside one
//! hardware access (the model's page walk and load or store, `user_access`), 3 with
//! interrupts off. A waiter reads the other CPUs' words once and waits until each one in
//! a section it must wait for has moved on. Both sides are store-buffering pairs ("enter,
//! then read the PMD" against "clear the PMD, then read the epoch"), so both carry a full
//! barrier: the hardware's (see [`crate::primitives::hw`]).

use cowbreak_sync::atomic::AtomicU64;

use crate::primitives::hw;
use crate::Kernel;

/// One model CPU.
#[derive(Debug, Default)]
pub struct Cpu {
    /// `4n + s`: `s` is 0 (no section), 1 (a hardware access) or 3 (interrupts off).
    pub epoch: AtomicU64,
}

impl cowbreak_sync::Snapshot for Cpu {
    fn snapshot(&mut self) -> Self {
        Cpu {
            epoch: self.epoch.snapshot(),
        }
    }
}

/// What a section is, by the low bits of the epoch word.
const IN_ACCESS: u64 = 1;
const IRQS_OFF: u64 = 3;

/// Which sections a waiter waits for.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Waits {
    /// An IPI: interrupts-off sections and accesses in flight.
    Ipi,
    /// A broadcast TLB invalidation: accesses in flight.
    Tlbi,
    /// An RCU-sched grace period: interrupts-off sections.
    RcuSched,
}

impl Waits {
    fn waits_for(self, state: u64) -> bool {
        match self {
            Waits::Ipi => state != 0,
            Waits::Tlbi => state == IN_ACCESS,
            Waits::RcuSched => state == IRQS_OFF,
        }
    }
}

impl Kernel {
    /// `local_irq_save` on `cpu`.
    pub(crate) fn local_irq_disable(&self, cpu: usize) {
        let e = hw::section_enter(&self.cpus[cpu].epoch, IRQS_OFF);
        debug_assert_eq!(e % 4, 0, "nested section on cpu{cpu}");
    }

    /// `local_irq_restore` on `cpu`.
    pub(crate) fn local_irq_enable(&self, cpu: usize) {
        let e = hw::section_exit(&self.cpus[cpu].epoch, 4 - IRQS_OFF);
        debug_assert_eq!(
            e % 4,
            IRQS_OFF,
            "local_irq_enable on cpu{cpu} with interrupts on"
        );
    }

    /// The start of one hardware access on `cpu` (the page walk and the load or store).
    pub(crate) fn hw_access_begin(&self, cpu: usize) {
        let e = hw::section_enter(&self.cpus[cpu].epoch, IN_ACCESS);
        debug_assert_eq!(e % 4, 0, "nested section on cpu{cpu}");
    }

    /// Its end.
    pub(crate) fn hw_access_end(&self, cpu: usize) {
        let e = hw::section_exit(&self.cpus[cpu].epoch, 4 - IN_ACCESS);
        debug_assert_eq!(e % 4, IN_ACCESS, "access end on cpu{cpu} outside an access");
    }

    /// Wait, from `cpu`, until every other CPU that is in a section `waits` covers has
    /// left it.
    fn wait_for_cpus(&self, cpu: usize, waits: Waits, why: &'static str) {
        hw::sender_fence();
        for (other, c) in self.cpus.iter().enumerate() {
            if other == cpu {
                continue;
            }
            let e = hw::epoch(&c.epoch);
            if waits.waits_for(e % 4) {
                tracing::trace!(target: "cowbreak::mm", cpu, func = why, other, ?waits, "waits for cpu");
                while hw::epoch(&c.epoch) == e {
                    cowbreak_sync::spin_wait();
                }
            }
        }
    }

    /// `flush_tlb_mm_range` / `flush_tlb_page` / `tlb_flush_mmu` from `cpu`: with
    /// `tlb_flush_ipi` (x86) an IPI to every other CPU that waits until each has taken it;
    /// without (arm64) a broadcast TLBI, which waits only for accesses in flight.
    pub(crate) fn flush_tlb(&self, cpu: usize, at: &'static str) {
        let waits = if self.policy.tlb_flush_ipi() {
            Waits::Ipi
        } else {
            Waits::Tlbi
        };
        self.wait_for_cpus(cpu, waits, at);
    }

    /// `tlb_remove_table_sync_one`: an IPI to every CPU, waiting (so it waits for
    /// interrupts-off walkers whatever the TLB flush does).
    pub(crate) fn tlb_remove_table_sync_one(&self, cpu: usize) {
        self.wait_for_cpus(cpu, Waits::Ipi, "tlb_remove_table_sync_one");
    }

    /// `synchronize_rcu` as `pte_free_defer`'s `call_rcu` callback waits for it: every
    /// interrupts-off section that began before it (GUP-fast). The callback's free runs
    /// in the caller here, after the wait. The slow walkers' `rcu_read_lock` sections
    /// (`pte_offset_map`) are not modeled: everything they read locklessly they recheck
    /// under the PTE lock, so a table freed (in the model: cleared) under such a read
    /// makes them retry, as the stale table would.
    pub(crate) fn synchronize_rcu(&self, cpu: usize, at: &'static str) {
        self.wait_for_cpus(cpu, Waits::RcuSched, at);
    }

    /// What stands between a PTE table's PMD being cleared (and the TLB flushed) and the
    /// table's free: with `rcu_table_free` (arm64) `tlb_remove_table` frees it after an
    /// RCU-sched grace period (modeled as waiting for it here); without (x86 native),
    /// nothing more than the flush IPI that already ran.
    pub(crate) fn tlb_remove_table(&self, cpu: usize) {
        if self.policy.rcu_table_free() {
            self.wait_for_cpus(cpu, Waits::RcuSched, "tlb_remove_table_rcu");
        }
    }
}
