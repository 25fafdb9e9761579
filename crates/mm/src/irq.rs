//! Interrupts-off sections as epoch barriers, and the IPIs that wait for them.
//!
//! Fast GUP (`lockless_pages_from_mm`, `gup_pgd_range`) runs with interrupts off
//! (`local_irq_save`). A TLB shootdown (`flush_tlb_mm_range` -> `smp_call_function_many`
//! with wait) and the page-table free that follows it (`tlb_remove_table_sync_one`, or the
//! flush in `tlb_finish_mmu`) cannot complete while any CPU has interrupts off. The
//! model gives each CPU an epoch counter, odd while interrupts are off; an IPI records
//! the epochs of the other CPUs when it starts and waits until each odd one has moved.
//!
//! Both sides are store-buffering pairs ("epoch odd, then read the PMD" against "clear
//! the PMD, then read the epoch"), so both carry `fence(SeqCst)`, where the kernel has the
//! full barriers of the IPI machinery.

use cowbreak_sync::atomic::{fence, AtomicU64, Ordering::SeqCst};

use crate::Kernel;

/// One model CPU.
#[derive(Debug, Default)]
pub struct Cpu {
    /// Odd while this CPU has interrupts off.
    pub epoch: AtomicU64,
}

impl Kernel {
    /// `local_irq_save` on `cpu`.
    pub(crate) fn local_irq_disable(&self, cpu: usize) {
        let e = self.cpus[cpu].epoch.fetch_add(1, SeqCst);
        debug_assert!(e.is_multiple_of(2), "nested local_irq_disable on cpu{cpu}");
        fence(SeqCst);
    }

    /// `local_irq_restore` on `cpu`.
    pub(crate) fn local_irq_enable(&self, cpu: usize) {
        let e = self.cpus[cpu].epoch.fetch_add(1, SeqCst);
        debug_assert!(
            e % 2 == 1,
            "local_irq_enable on cpu{cpu} with interrupts on"
        );
    }

    /// Send an IPI from `cpu` to every other CPU and wait for it to be handled
    /// (`smp_call_function_many(..., wait=1)`, as done by the x86 TLB shootdown and by
    /// `tlb_remove_table_sync_one`). Switch `ipi_waits_for_irq_off` off and the IPI no
    /// longer waits: what an RCU table free without the sync would do for fast GUP.
    pub(crate) fn ipi_sync(&self, cpu: usize, why: &'static str) {
        if !self.policy.ipi_waits_for_irq_off {
            return;
        }
        fence(SeqCst);
        for (other, c) in self.cpus.iter().enumerate() {
            if other == cpu {
                continue;
            }
            let e = c.epoch.load(SeqCst);
            if e % 2 == 1 {
                tracing::trace!(target: "cowbreak::mm", cpu, func = why, other, "ipi waits for irq-off cpu");
                while c.epoch.load(SeqCst) == e {
                    cowbreak_sync::spin_wait();
                }
            }
        }
    }
}
