//! cowbreak's command line (`cargo xtask ...`): one subcommand per file, dispatched by a
//! single `match`. Exit codes: 0 nothing violated (or replay reproduced), 1 violation
//! found, 2 bad input or usage, 3 replay diverged.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod test;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "cowbreak: find GUP / COW races in the Linux mm, era by era")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole test suite: workspace tests (shuttle), the loom suite, the stress suite.
    Test(test::Args),
}

/// The workspace root, from this crate's manifest directory.
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Test(args) => test::run(args),
    }
}
