//! x86-64 (arch/x86), native: no paravirt TLB flush.

use cowbreak_sync::atomic::AtomicU64;

use crate::era::{Era, Policy};
use crate::primitives::MemoryModel;

/// x86's switches on top of `era`'s preset.
pub(super) fn preset(era: Era, p: &mut Policy) {
    // x86-TSO; every locked instruction is a full barrier.
    p.tso = true;
    // flush_tlb_mm_range -> flush_tlb_others / native_flush_tlb_multi ->
    // smp_call_function_many(..., wait = 1): the flush waits for every target CPU to
    // take the IPI, which it cannot while its interrupts are off.
    p.tlb_flush_ipi = true;
    // Native x86 frees page tables with tlb_remove_page after the flush IPI; only
    // paravirt (Hyper-V, KVM flushing without IPIs) selects MMU_GATHER_RCU_TABLE_FREE.
    p.rcu_table_free = false;
    // arch/x86/mm/gup.c until e585513b76f7 (v4.13) moved x86 to mm/gup.c.
    p.x86_gup_fast = era < Era::V4_15 || era == Era::V4_4_289;
}

/// `native_ptep_get_and_clear` (SMP): `xchg`, fully ordered.
pub(super) fn ptep_get_and_clear(mo: MemoryModel, entry: &AtomicU64) -> u64 {
    mo.xchg(entry, 0)
}
