//! cowbreak: deterministic concurrency testing of the Linux kernel's GUP / COW code.
//!
//! This facade re-exports the workspace's public API: the kernel model
//! ([`mm`]), the backend switch ([`sync`]) and the explorers ([`explore`]).

pub use cowbreak_explore as explore;
pub use cowbreak_mm as mm;
pub use cowbreak_scenario as scenario;
pub use cowbreak_sync as sync;
pub use cowbreak_trace as trace;
