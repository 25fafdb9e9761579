//! `cargo xtask test`: every suite, each in its own build so none rebuilds another.

use std::process::{Command, ExitCode};
use std::time::Instant;

use crate::project_root;

#[derive(clap::Args)]
pub struct Args {
    /// Skip the loom suite (it builds the workspace a second time, with `--cfg loom`).
    #[arg(long)]
    no_loom: bool,
    /// Skip the stress suite (real threads, `--cfg cowbreak_stress`).
    #[arg(long)]
    no_stress: bool,
}

struct Suite {
    name: &'static str,
    cfg: Option<&'static str>,
    target_dir: &'static str,
    /// The cargo commands the suite runs, in order.
    commands: &'static [&'static [&'static str]],
}

const SUITES: &[Suite] = &[
    Suite {
        name: "workspace (shuttle)",
        cfg: None,
        target_dir: "target",
        commands: &[&["test", "--workspace", "--no-fail-fast"]],
    },
    Suite {
        name: "examples",
        cfg: None,
        target_dir: "target",
        commands: &[
            &["run", "--release", "--example", "find_dirty_cow"],
            &["run", "--release", "--example", "my_scenario"],
            &["run", "--release", "--example", "replay_trace"],
        ],
    },
    Suite {
        name: "loom",
        cfg: Some("loom"),
        target_dir: "target/loom",
        commands: &[&[
            "test",
            "--release",
            "--test",
            "loom",
            "--test",
            "litmus",
            "--example",
            "loom_model",
        ]],
    },
    Suite {
        name: "stress",
        cfg: Some("cowbreak_stress"),
        target_dir: "target/stress",
        commands: &[&["test", "--release", "--test", "stress"]],
    },
];

pub fn run(args: Args) -> ExitCode {
    let root = project_root();
    let mut failed = Vec::new();
    let (mut passed, mut failed_tests) = (0u64, 0u64);
    for suite in SUITES {
        if (suite.cfg == Some("loom") && args.no_loom)
            || (suite.cfg == Some("cowbreak_stress") && args.no_stress)
        {
            continue;
        }
        eprintln!("== cargo xtask test: {} suite ==", suite.name);
        let started = Instant::now();
        let mut ok = true;
        for args in suite.commands {
            let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            cmd.current_dir(&root)
                .args(*args)
                .env("CARGO_TARGET_DIR", root.join(suite.target_dir));
            match suite.cfg {
                Some(cfg) => cmd.env("RUSTFLAGS", format!("--cfg {cfg}")),
                None => cmd.env_remove("RUSTFLAGS"),
            };
            let (ran, p, f) = run_counting(&mut cmd);
            passed += p;
            failed_tests += f;
            ok &= ran;
        }
        eprintln!(
            "== {} suite: {} in {:.1}s ==",
            suite.name,
            if ok { "passed" } else { "FAILED" },
            started.elapsed().as_secs_f64()
        );
        if !ok {
            failed.push(suite.name);
        }
    }
    if !failed.is_empty() {
        eprintln!("failed suites: {}", failed.join(", "));
    }
    println!("{passed} passed, {failed_tests} failed");
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Run `cmd` (a `cargo test`), passing its output through, and add up its
/// `test result: ... N passed; M failed` lines. Returns (success, passed, failed).
fn run_counting(cmd: &mut Command) -> (bool, u64, u64) {
    use std::io::{BufRead, Write};
    let Ok(mut child) = cmd.stdout(std::process::Stdio::piped()).spawn() else {
        return (false, 0, 0);
    };
    let (mut passed, mut failed) = (0, 0);
    if let Some(out) = child.stdout.take() {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            println!("{line}");
            let _ = std::io::stdout().flush();
            if let Some(rest) = line.strip_prefix("test result: ") {
                let count = |what: &str| -> u64 {
                    rest.split(';')
                        .find_map(|part| part.trim().strip_suffix(what))
                        .and_then(|n| n.trim().rsplit(' ').next()?.parse().ok())
                        .unwrap_or(0)
                };
                passed += count(" passed");
                failed += count(" failed");
            }
        }
    }
    let ok = child.wait().map(|s| s.success()).unwrap_or(false);
    (ok, passed, failed)
}
