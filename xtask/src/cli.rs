//! What every subcommand shares: resolving scenarios, eras and switches from the
//! command line, and failing with the right exit code.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::process::ExitCode;

use cowbreak_mm::{suggest, Arch, Era, SWITCHES};
use cowbreak_scenario::{library, Scenario};

use crate::project_root;

/// Exit codes (DESIGN.md): 0 nothing violated / replay reproduced, 1 violation found,
/// 2 bad input or usage, 3 replay diverged.
pub mod exit {
    pub const VIOLATION: u8 = 1;
    pub const BAD_INPUT: u8 = 2;
    pub const DIVERGED: u8 = 3;
}

/// What `check` and `run` run: a scenario on an era and an architecture, with switches.
#[derive(clap::Args)]
pub struct Target {
    /// A built-in scenario (its name, the cow.c test it follows, or a commit it cites; see
    /// `cargo xtask list`) or a scenario file.
    pub scenario: String,
    /// The kernel era (v4.8, v4.9, v4.15, v4.4.289, v5.8, v5.9, v5.11, v5.18, v5.19, v6.0,
    /// v6.1, v6.2, v6.4, v6.5, v6.6, v6.10, v6.12).
    #[arg(long)]
    pub era: String,
    /// The architecture (x86, arm64); default: the scenario's `arch` line, else x86.
    #[arg(long)]
    pub arch: Option<String>,
    /// Flip a policy switch on top of the era's preset, e.g. `write_protect_seq=on`. Repeatable.
    #[arg(long = "switch", value_name = "NAME=on|off")]
    pub switches: Vec<String>,
}

impl Target {
    /// The scenario, era, architecture and switch flips, checked.
    pub fn resolve(&self) -> Result<(Scenario, Era, Arch, Vec<(String, bool)>), Fail> {
        let scenario = scenario(&self.scenario)?;
        let era = era(&self.era)?;
        let arch = arch_for(&scenario, self.arch.as_deref())?;
        Ok((scenario, era, arch, switches(&self.switches)?))
    }
}

/// A failure that ends the command with an exit code and a message on stderr.
#[derive(Debug)]
pub struct Fail {
    pub code: u8,
    pub message: String,
}

impl Fail {
    pub fn bad(message: impl Into<String>) -> Fail {
        Fail {
            code: exit::BAD_INPUT,
            message: message.into(),
        }
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Print the failure (on stderr, and as `{"error": ..}` on stdout when the command's
/// output is JSON there) and turn it into the process's exit code.
pub fn finish(json: bool, result: Result<ExitCode, Fail>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(fail) => {
            eprintln!("error: {}", fail.message);
            if json {
                println!(
                    "{}",
                    serde_json::json!({"error": {"message": fail.message, "exit_code": fail.code}})
                );
            }
            ExitCode::from(fail.code)
        }
    }
}

/// A scenario: a built-in by name, by the `cow.c` test it follows (`"vmsplice() + unmap
/// in child"`) or by a commit or CVE id its `source` line cites (a prefix of 7 or more
/// hex digits will do), or a scenario file by path. Several built-ins citing the same
/// test or commit is an error that lists them.
pub fn scenario(arg: &str) -> Result<Scenario, Fail> {
    let all =
        library::all().map_err(|e| Fail::bad(format!("built-in scenario does not parse: {e}")))?;
    if let Some(sc) = all.iter().find(|s| s.name == arg) {
        return Ok(sc.clone());
    }
    if let Some(sc) = scale()?.into_iter().find(|s| s.name == arg) {
        return Ok(sc);
    }
    let path = Path::new(arg);
    if path.is_file() {
        return read_scenario_file(arg);
    }
    let wanted = arg.trim().to_lowercase();
    let by_test: Vec<&Scenario> = all
        .iter()
        .filter(|s| {
            library::cow_tests(s)
                .iter()
                .any(|t| t.to_lowercase() == wanted)
        })
        .collect();
    let hexish = wanted.len() >= 7 && wanted.chars().all(|c| c.is_ascii_hexdigit());
    let by_commit: Vec<&Scenario> = all
        .iter()
        .filter(|s| {
            library::commits(s).iter().any(|c| {
                let c = c.to_lowercase();
                if hexish {
                    c.starts_with(&wanted) || wanted.starts_with(&c)
                } else {
                    c == wanted
                }
            })
        })
        .collect();
    for (matches, what) in [(by_test, "cow.c test"), (by_commit, "commit")] {
        match matches.as_slice() {
            [] => {}
            [one] => return Ok((*one).clone()),
            many => {
                let names: Vec<&str> = many.iter().map(|s| s.name.as_str()).collect();
                return Err(Fail::bad(format!(
                    "{what} `{arg}` is cited by {} built-in scenarios: {}; name one",
                    names.len(),
                    names.join(", ")
                )));
            }
        }
    }
    if arg.contains('/') || arg.ends_with(".scn") {
        return read_scenario_file(arg);
    }
    let mut known: Vec<String> = Vec::new();
    for s in &all {
        known.push(s.name.clone());
        known.extend(library::cow_tests(s));
        known.extend(library::commits(s));
    }
    let hint = suggest(arg, known.iter().map(String::as_str))
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    Err(Fail::bad(format!("unknown scenario `{arg}`{hint}; `cargo xtask list` shows the built-ins (by name, cow.c test or commit), or give a file path")))
}

fn read_scenario_file(arg: &str) -> Result<Scenario, Fail> {
    let text = std::fs::read_to_string(arg)
        .map_err(|e| Fail::bad(format!("{arg}: cannot read scenario: {e}")))?;
    cowbreak_scenario::parse(arg, &text).map_err(|e| Fail::bad(e.to_string()))
}

/// The built-in scale scenarios (`scenarios/scale/`).
pub fn scale() -> Result<Vec<Scenario>, Fail> {
    library::scale().map_err(|e| Fail::bad(format!("built-in scenario does not parse: {e}")))
}

/// Every built-in scenario.
pub fn builtins() -> Result<Vec<Scenario>, Fail> {
    library::all().map_err(|e| Fail::bad(format!("built-in scenario does not parse: {e}")))
}

/// An era by name.
pub fn era(arg: &str) -> Result<Era, Fail> {
    Era::from_name(arg).map_err(|e| Fail::bad(e.to_string()))
}

/// An architecture by name.
pub fn arch(arg: &str) -> Result<Arch, Fail> {
    Arch::from_name(arg).map_err(|e| Fail::bad(e.to_string()))
}

/// The architecture to run `scenario` on: `arg` if given (it must be one the scenario's
/// `arch` line allows), else the scenario's default.
pub fn arch_for(scenario: &Scenario, arg: Option<&str>) -> Result<Arch, Fail> {
    let Some(arg) = arg else {
        return Ok(scenario.default_arch());
    };
    let a = arch(arg)?;
    if !scenario.runs_on(a) {
        let on: Vec<&str> = scenario.arches.iter().map(|a| a.name()).collect();
        return Err(Fail::bad(format!(
            "scenario `{}` is for {} only (its `arch` line), not {a}",
            scenario.name,
            on.join(", ")
        )));
    }
    Ok(a)
}

/// `NAME=on|off` switch flips.
pub fn switches(args: &[String]) -> Result<Vec<(String, bool)>, Fail> {
    args.iter()
        .map(|a| {
            let (name, value) = a.split_once('=').ok_or_else(|| {
                Fail::bad(format!("--switch `{a}`: expected NAME=on or NAME=off"))
            })?;
            let on = match value {
                "on" | "true" | "1" => true,
                "off" | "false" | "0" => false,
                _ => {
                    return Err(Fail::bad(format!(
                        "--switch `{a}`: expected `on` or `off` after `=`, found `{value}`"
                    )))
                }
            };
            if !SWITCHES.iter().any(|s| s.name == name) {
                let hint = suggest(name, SWITCHES.iter().map(|s| s.name))
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                return Err(Fail::bad(format!("unknown switch `{name}`{hint}")));
            }
            Ok((name.to_string(), on))
        })
        .collect()
}

/// Build the runner for `cfg` in its own target directory (once per process: matrix
/// cells share it).
pub fn build_runner(cfg: &str, dir: &str) -> Result<PathBuf, Fail> {
    static BUILT: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, path)) = built.iter().find(|(c, _)| c == cfg) {
        return Ok(path.clone());
    }
    let root = project_root();
    eprintln!("building the runner with --cfg {cfg} in {dir} ...");
    let ok = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&root)
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "cowbreak",
            "--bin",
            "cowbreak-runner",
        ])
        .env("RUSTFLAGS", format!("--cfg {cfg}"))
        .env("CARGO_TARGET_DIR", root.join(dir))
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        return Err(Fail::bad(format!("building the {cfg} runner failed")));
    }
    let path = root.join(dir).join("release/cowbreak-runner");
    built.push((cfg.to_string(), path.clone()));
    Ok(path)
}

/// The width to render for: `arg`, else the terminal's (stdout), else 160.
pub fn width(arg: Option<usize>) -> usize {
    arg.or_else(|| {
        console::Term::stdout()
            .size_checked()
            .map(|(_, cols)| usize::from(cols))
    })
    .unwrap_or(160)
}

/// The HTML page of `trace` (read from `path`): with the switches that differ from its
/// preset, and beside it the minimized trace `<path>.min.json` when there is one.
pub fn html_page(trace: &cowbreak_trace::TraceFile, path: &Path) -> String {
    let min_path = path.with_extension("min.json");
    let minimized = (!path.to_string_lossy().ends_with(".min.json"))
        .then(|| cowbreak_trace::TraceFile::read(&min_path).ok())
        .flatten();
    let extras = cowbreak_trace::HtmlExtras {
        differs_from_preset: cowbreak_explore::campaign::preset_diff(trace),
        minimized: minimized.as_ref(),
    };
    cowbreak_trace::render_html_with(trace, &extras)
}

/// Run `cmd` to its end, or kill it once `seconds` have passed (`Ok(None)` then). Its
/// output goes to files, not pipes, so a large output (a loom runner's traces) never
/// blocks it while this waits on the clock.
pub fn output_within(
    cmd: &mut std::process::Command,
    seconds: Option<f64>,
) -> Result<Option<std::process::Output>, Fail> {
    use std::io::{Read, Seek};
    let program = cmd.get_program().to_string_lossy().into_owned();
    let cannot = |e: std::io::Error| Fail::bad(format!("cannot run {program}: {e}"));
    let (mut out, mut err) = (
        tempfile::tempfile().map_err(cannot)?,
        tempfile::tempfile().map_err(cannot)?,
    );
    let mut child = cmd
        .stdout(out.try_clone().map_err(cannot)?)
        .stderr(err.try_clone().map_err(cannot)?)
        .spawn()
        .map_err(cannot)?;
    // Woken when the child ends, not at the next tick of a polling loop: a matrix runs
    // hundreds of loom proofs of a few milliseconds each. A limit too far off to be a
    // deadline (`--proof-seconds 1e300`, `inf`) is none.
    let limit = seconds
        .and_then(|s| std::time::Duration::try_from_secs_f64(s.max(0.0)).ok())
        .filter(|d| std::time::Instant::now().checked_add(*d).is_some());
    let status = match limit {
        None => child.wait().map_err(cannot)?,
        Some(limit) => {
            use wait_timeout::ChildExt;
            match child.wait_timeout(limit).map_err(cannot)? {
                Some(status) => status,
                None => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Ok(None);
                }
            }
        }
    };
    let read = |f: &mut std::fs::File| -> Result<Vec<u8>, Fail> {
        let mut v = Vec::new();
        f.seek(std::io::SeekFrom::Start(0)).map_err(cannot)?;
        f.read_to_end(&mut v).map_err(cannot)?;
        Ok(v)
    };
    Ok(Some(std::process::Output {
        status,
        stdout: read(&mut out)?,
        stderr: read(&mut err)?,
    }))
}
