//! arm64 (arch/arm64).

use cowbreak_sync::atomic::AtomicU64;

use crate::era::{Era, Policy};
use crate::primitives::MemoryModel;

/// arm64's switches on top of `era`'s preset.
pub(super) fn preset(_era: Era, p: &mut Policy) {
    // Weakly ordered: only what the kernel's primitives promise.
    p.tso = false;
    // flush_tlb_mm / __flush_tlb_range: dsb(ishst); tlbi ...is; dsb(ish): a broadcast
    // invalidation that waits for accesses in flight on other CPUs, not for CPUs that
    // merely have interrupts off (GUP-fast).
    p.tlb_flush_ipi = false;
    // MMU_GATHER_RCU_TABLE_FREE (HAVE_RCU_TABLE_FREE before v5.3): tables are freed
    // after an RCU-sched grace period, which waits for interrupts-off sections.
    p.rcu_table_free = true;
    // arm64 always used the generic fast GUP (HAVE_GENERIC_RCU_GUP, later
    // HAVE_FAST_GUP).
    p.x86_gup_fast = false;
}

/// `ptep_get_and_clear`: `xchg_relaxed`.
pub(super) fn ptep_get_and_clear(mo: MemoryModel, entry: &AtomicU64) -> u64 {
    mo.xchg_relaxed(entry, 0)
}
