//! cowbreak's scenario language: describe a race in a few lines of text and run it
//! against every era without writing Rust.
//!
//! ```
//! let sc = cowbreak_scenario::parse("example.scn", r#"
//! scenario basic-cow
//! summary "a child's write after fork stays in the child"
//! map buf private-anon pages=1 prot=rw write=1
//! thread parent:
//!     fork child
//! thread kid in child:
//!     write buf 2
//! "#).unwrap();
//! assert_eq!(sc.threads.len(), 2);
//! assert_eq!(sc.processes, ["main", "child"]);
//! ```
//!
//! The format is documented in `docs/scenarios.md`; the built-in scenarios are in
//! [`library`].

#![warn(missing_docs)]

pub mod ast;
mod interp;
pub mod library;
pub mod parse;

pub use ast::{ExpectCell, Loc, MapDecl, Op, Scenario, Step, ThreadDecl};
pub use interp::LOOM_THREADS_MAX;
pub use parse::{parse, ParseError};
