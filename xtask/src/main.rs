//! cowbreak's command line (`cargo xtask ...`): one subcommand per file, dispatched by a
//! single `match`. Exit codes: 0 nothing violated (or replay reproduced), 1 violation
//! found, 2 bad input or usage, 3 replay diverged, 130 interrupted (Ctrl-C, SIGTERM; resume
//! with `--resume`). `docs/campaigns.md` has the whole table.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: an exploration allocates and frees the model's kernel, shuttle's tasks and
/// their continuations at every execution, and glibc's malloc and free were 15% of a PCT
/// campaign's time (perf, fast-gup-vs-fork v5.11, 40,000 executions).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bench;
mod check;
mod cli;
mod list;
mod matrix;
mod merge;
mod minimize;
mod one;
mod replay;
mod run;
mod test;
mod view;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    version,
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
    /// Run one execution (a seed's random schedule, or a given one) and write its trace,
    /// violation or not.
    Run(one::Args),
    /// Replay a trace exactly and show the interleaving, one column per thread.
    Replay(replay::Args),
    /// Show a trace as recorded, without replaying it (text columns or HTML).
    View(view::Args),
    /// Run every scenario on every era and print the table.
    Matrix(matrix::Args),
    /// Shrink a trace to the fewest preemptions, then steps, that keep its violation.
    Minimize(minimize::Args),
    /// Join the output directories of a sharded campaign or matrix into one result.
    Merge(merge::Args),
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

/// Output to a closed pipe (`cargo xtask list | head -1`) ends the process quietly, as
/// ripgrep does; any other failure to write standard output (a full disk) is an error
/// with exit 2. Rust's `println!` panics on both: this hook turns them into exits.
fn exit_on_stdout_errors() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if text.starts_with("failed printing to stdout") {
            if text.contains("Broken pipe") {
                std::process::exit(0);
            }
            eprintln!(
                "error: cannot write to standard output: {}",
                text.rsplit(": ").next().unwrap_or(text)
            );
            std::process::exit(i32::from(cli::exit::BAD_INPUT));
        }
        previous(info)
    }));
}

/// Whether this command prints JSON on stdout (`--json` as a flag, `--json` without a
/// file, or `--json -`): its errors then come as JSON on stdout too.
fn json_on_stdout() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().enumerate().any(|(i, a)| {
        a == "--json=-"
            || (a == "--json"
                && args
                    .get(i + 1)
                    .is_none_or(|next| next == "-" || next.starts_with('-')))
    })
}

fn main() -> ExitCode {
    exit_on_stdout_errors();
    let cli = Cli::parse();
    let json = json_on_stdout();
    cli::finish(
        json,
        match cli.command {
            Command::List(args) => list::run(args),
            Command::Check(args) => check::run(args),
            Command::Replay(args) => replay::run(args),
            Command::Run(args) => one::run(args),
            Command::Matrix(args) => matrix::run(args),
            Command::View(args) => view::run(args),
            Command::Merge(args) => merge::run(args),
            Command::Minimize(args) => minimize::run(args),
            Command::Bench(args) => bench::run(args),
            Command::Test(args) => Ok(test::run(args)),
        },
    )
}
