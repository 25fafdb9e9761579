//! Architectures: the second axis beside the era.
//!
//! What differs between x86 and arm64 for GUP and COW, each a documented [`Policy`]
//! switch that the architecture's preset sets on top of the era's (so a user can flip any
//! of them, as with era switches):
//!
//! | switch | x86 | arm64 |
//! |---|---|---|
//! | `tso` | on: loads acquire, stores release, locked RMWs full barriers | off: the kernel memory model, weakly ordered |
//! | `tlb_flush_ipi` | on: `flush_tlb_mm_range` sends IPIs and waits, so it waits for CPUs with interrupts off | off: broadcast TLBI + DSB, which waits only for accesses in flight |
//! | `rcu_table_free` | off: page tables are freed after the flush IPI | on: `MMU_GATHER_RCU_TABLE_FREE`, freed after an RCU-sched grace period |
//! | `x86_gup_fast` | on before v4.13 (e585513b76f7): x86's own `arch/x86/mm/gup.c` | off: the generic `mm/gup.c` |
//!
//! and the primitives whose kernel implementation is the architecture's own
//! (`ptep_get_and_clear`, `pmdp_huge_get_and_clear`), one file per architecture, as the
//! kernel keeps them under `arch/`.

mod arm64;
mod x86;

use std::fmt;

use cowbreak_sync::atomic::AtomicU64;

use crate::era::{Era, Policy};
use crate::primitives::MemoryModel;

/// A modeled architecture.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Arch {
    /// x86-64, native (no paravirt TLB flush).
    #[default]
    X86,
    /// arm64.
    Arm64,
}

impl Arch {
    /// Every architecture, x86 (the default) first.
    pub const ALL: [Arch; 2] = [Arch::X86, Arch::Arm64];

    /// The name, as on the command line and in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86 => "x86",
            Arch::Arm64 => "arm64",
        }
    }

    /// One line on what the model makes of it.
    pub fn summary(self) -> &'static str {
        match self {
            Arch::X86 => "TSO; TLB shootdown by IPI (waits for interrupts-off CPUs); page tables freed after the IPI; own fast GUP before v4.13",
            Arch::Arm64 => "weakly ordered (LKMM); broadcast TLBI waits for nobody; page tables freed after an RCU-sched grace period",
        }
    }

    /// Look an architecture up by name (`aarch64` and `x86_64` too).
    pub fn from_name(name: &str) -> Result<Arch, UnknownArch> {
        match name {
            "x86" | "x86_64" | "x86-64" => Ok(Arch::X86),
            "arm64" | "aarch64" => Ok(Arch::Arm64),
            _ => Err(UnknownArch {
                name: name.to_string(),
            }),
        }
    }

    /// Set the architecture's switches on `p`, an era's preset (some depend on the era:
    /// x86 moved to the generic fast GUP in v4.13).
    pub(crate) fn preset(self, era: Era, p: &mut Policy) {
        match self {
            Arch::X86 => x86::preset(era, p),
            Arch::Arm64 => arm64::preset(era, p),
        }
    }

    /// `ptep_get_and_clear` (and `ptep_get_and_clear_full`, `pmdp_huge_get_and_clear`):
    /// the architecture's own.
    pub(crate) fn ptep_get_and_clear(self, mo: MemoryModel, entry: &AtomicU64) -> u64 {
        match self {
            Arch::X86 => x86::ptep_get_and_clear(mo, entry),
            Arch::Arm64 => arm64::ptep_get_and_clear(mo, entry),
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Arch {
    type Err = UnknownArch;
    fn from_str(s: &str) -> Result<Arch, UnknownArch> {
        Arch::from_name(s)
    }
}

/// An architecture name that does not exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownArch {
    /// The name given.
    pub name: String,
}

impl fmt::Display for UnknownArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown architecture `{}`", self.name)?;
        if let Some(s) = crate::suggest(&self.name, Arch::ALL.iter().map(|a| a.name())) {
            write!(f, " (did you mean `{s}`?)")?;
        }
        write!(f, "; architectures are x86, arm64")
    }
}

impl std::error::Error for UnknownArch {}
