//! cowbreak's command line (`cargo xtask ...`): one subcommand per file, dispatched by a
//! single `match`. Exit codes: 0 nothing violated (or replay reproduced), 1 violation
//! found, 2 bad input or usage, 3 replay diverged.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod check;
mod cli;
mod list;
mod matrix;
mod replay;
mod test;
mod view;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "cowbreak: find GUP / COW races in the Linux mm, era by era"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the built-in scenarios, the eras and the policy switches.
    List(list::Args),
    /// Check one scenario on one era; write a trace for every violation.
    Check(check::Args),
    /// Replay a trace exactly and show the interleaving, one column per thread.
    Replay(replay::Args),
    /// Show a trace as recorded, without replaying it (text columns or HTML).
    View(view::Args),
    /// Run every scenario on every era and print the table.
    Matrix(matrix::Args),
    /// Benchmark: throughput against bare shuttle, executions to first violation per strategy, stress, loom.
    Bench(bench::Args),
    /// Run the whole test suite: workspace tests (shuttle), the loom suite, the stress suite.
    Test(test::Args),
}

/// The workspace root, from this crate's manifest directory.
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::finish(match cli.command {
        Command::List(args) => list::run(args),
        Command::Check(args) => check::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Matrix(args) => matrix::run(args),
        Command::View(args) => view::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Test(args) => Ok(test::run(args)),
    })
}
