//! The built-in scenarios, embedded in the binary so the library works from any
//! directory. Each is a file in `scenarios/` that users can copy and edit.

use crate::{parse, ParseError, Scenario};

macro_rules! builtin {
    ($($file:literal),* $(,)?) => {
        /// `(file name, text)` of every built-in scenario.
        pub const FILES: &[(&str, &str)] = &[
            $(($file, include_str!(concat!("../../../scenarios/", $file))),)*
        ];
    };
}

builtin! {
    "basic-cow-after-fork-mprotect.scn",
    "basic-cow-after-fork.scn",
    "collapse-table-vs-gup-fast.scn",
    "collapse-vs-gup-fast.scn",
    "retract-table-vs-gup-fast.scn",
    "retract-vs-fault.scn",
    "cor-pins-while-child-exits.scn",
    "cve-2020-29374-thp.scn",
    "cve-2020-29374.scn",
    "dirty-cow.scn",
    "fast-gup-vs-fork.scn",
    "fork-vs-vma-locked-fault.scn",
    "fast-gup-vs-munmap-without-ipi.scn",
    "fast-gup-vs-munmap.scn",
    "huge-dirty-cow.scn",
    "ksm-vs-ro-pin-fast.scn",
    "migrate-pinned-page.scn",
    "migrate-vs-ro-pin-fast.scn",
    "ro-mapping-rw-pinned-page.scn",
    "ro-pin-exclusive.scn",
    "ro-pin-fast-exclusive.scn",
    "ro-pin-fast-previously-shared.scn",
    "ro-pin-fast-shared.scn",
    "ro-pin-previously-shared.scn",
    "ro-pin-shared.scn",
    "rw-longterm-pin-then-fork.scn",
    "vma-seq-ordering.scn",
    "vmsplice-before-fork-unmap-in-parent.scn",
    "vmsplice-unmap-in-child-mprotect.scn",
    "vmsplice-unmap-in-parent.scn",
}

/// `(file name, text)` of every built-in scale scenario (`scenarios/scale/`): four and
/// eight threads on up to 56 pages, several forks, pins and faults in flight. loom
/// cannot finish them; they are for the bench (throughput and executions to the first
/// violation as threads and pages grow) and for campaigns (`check` and `matrix
/// --scenarios` take them by name). The default matrix, the table of kernel history,
/// leaves them out: each repeats a race a history scenario already pins to its eras.
pub const SCALE_FILES: &[(&str, &str)] = &[
    (
        "scale/scale-fork-pins-4.scn",
        include_str!("../../../scenarios/scale/scale-fork-pins-4.scn"),
    ),
    (
        "scale/scale-fork-pins-8.scn",
        include_str!("../../../scenarios/scale/scale-fork-pins-8.scn"),
    ),
];

/// Every built-in scale scenario, parsed (see [`SCALE_FILES`]).
pub fn scale() -> Result<Vec<Scenario>, ParseError> {
    SCALE_FILES
        .iter()
        .map(|(file, text)| parse(&format!("scenarios/{file}"), text))
        .collect()
}

/// Every built-in scenario, parsed. A built-in that does not parse is a bug caught by
/// the tests, reported here as the parse error.
pub fn all() -> Result<Vec<Scenario>, ParseError> {
    FILES
        .iter()
        .map(|(file, text)| parse(&format!("scenarios/{file}"), text))
        .collect()
}

/// The built-in scenario called `name`: a history scenario or a scale one.
pub fn find(name: &str) -> Option<Scenario> {
    all()
        .ok()?
        .into_iter()
        .chain(scale().ok()?)
        .find(|s| s.name == name)
}

/// Names of the built-in scenarios.
pub fn names() -> Vec<String> {
    all()
        .map(|v| v.into_iter().map(|s| s.name).collect())
        .unwrap_or_default()
}

/// The `tools/testing/selftests/mm/cow.c` test names a scenario's `source` line cites
/// (`cow.c "NAME"`), as written there; cow.c runs its tests on small pages and on THPs,
/// so a citation followed by ` (THP)` names the THP run (`NAME (THP)`).
pub fn cow_tests(sc: &Scenario) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = sc.source.as_str();
    while let Some(i) = rest.find("cow.c \"") {
        let after = &rest[i + "cow.c \"".len()..];
        let Some(end) = after.find('"') else { break };
        let thp = after[end + 1..].starts_with(" (THP)");
        names.push(format!(
            "{}{}",
            &after[..end],
            if thp { " (THP)" } else { "" }
        ));
        rest = &after[end..];
    }
    names
}

/// The kernel commit ids (12 or more hex digits) and CVE ids a scenario's `source` line
/// cites.
pub fn commits(sc: &Scenario) -> Vec<String> {
    sc.source
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| {
            (w.len() >= 12 && w.chars().all(|c| c.is_ascii_hexdigit()))
                || w.to_ascii_uppercase().starts_with("CVE-")
        })
        .map(str::to_string)
        .collect()
}
