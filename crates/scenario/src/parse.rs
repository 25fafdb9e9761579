//! The scenario text format: a small line language (docs/scenarios.md).
//!
//! One statement per line; `#` starts a comment. Header statements (`scenario`,
//! `summary`, `source`, `check`, `expect`, `switch`, `file`, `map`) come first, then
//! `thread NAME [in PROCESS]:` headers, each followed by that thread's operations.
//! Every error is located (`file:line:col`) and says what was expected and what was
//! found; unknown names get a "did you mean".

use std::fmt;

use cowbreak_mm::mmap::{MapKind, Prot};
use cowbreak_mm::pgtable::{PMD_SIZE, PTRS_PER_PMD, PTRS_PER_PTE, TASK_SIZE};
use cowbreak_mm::{suggest, Arch, Era, PinMode, ViolationKind, PAGE_SIZE, SWITCHES};

use crate::ast::{ExpectCell, FileDecl, Init, Loc, MapDecl, Op, Scenario, Step, ThreadDecl};

/// A located error in a scenario text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The file (or `builtin:NAME`, `<stdin>`).
    pub origin: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub col: usize,
    /// What was expected and what was found.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.origin, self.line, self.col, self.message
        )
    }
}

impl std::error::Error for ParseError {}

/// The header keywords.
pub const HEADER_KEYWORDS: &[&str] = &[
    "scenario", "summary", "source", "check", "expect", "switch", "arch", "backend", "file", "map",
    "thread",
];

/// The explorers a `backend` line may name.
pub const BACKENDS: &[&str] = &["pct", "random", "urw", "pos", "surw", "dfs", "loom"];

/// The operation keywords.
pub const OP_KEYWORDS: &[&str] = &[
    "read",
    "write",
    "fork",
    "exit",
    "exit-group",
    "munmap",
    "madvise-dontneed",
    "mprotect",
    "proc-mem-write",
    "proc-mem-read",
    "vmsplice",
    "pin",
    "pin-fast",
    "unpin",
    "read-pin",
    "migrate",
    "ksm-merge",
    "collapse",
    "signal",
    "wait",
];

/// Most threads a scenario may have (one CPU each).
pub const THREADS_MAX: usize = 8;
/// Most processes (mm slots).
pub const PROCESSES_MAX: usize = 8;

#[derive(Clone, Debug)]
struct Tok {
    text: String,
    col: usize,
    quoted: bool,
}

/// Split a line into tokens: words, and double-quoted strings (with `\"` and `\\`).
fn tokenize(line: &str, lineno: usize, origin: &str) -> Result<Vec<Tok>, ParseError> {
    let chars: Vec<char> = line.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '#' {
            break;
        }
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let col = i + 1;
        if c == '"' {
            let mut text = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(ParseError {
                            origin: origin.to_string(),
                            line: lineno,
                            col,
                            message: "expected a closing `\"`, found the end of the line".into(),
                        })
                    }
                    Some('"') => break,
                    Some('\\') if matches!(chars.get(i + 1), Some('"') | Some('\\')) => {
                        text.push(chars[i + 1]);
                        i += 2;
                    }
                    Some(&ch) => {
                        text.push(ch);
                        i += 1;
                    }
                }
            }
            i += 1;
            toks.push(Tok {
                text,
                col,
                quoted: true,
            });
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '#' && chars[i] != '"'
            {
                i += 1;
            }
            toks.push(Tok {
                text: chars[start..i].iter().collect(),
                col,
                quoted: false,
            });
        }
    }
    Ok(toks)
}

/// The column after the last character of a line that is not a comment or trailing
/// blank: where "the end of the line" is reported.
fn content_end(raw: &str) -> usize {
    let mut in_quote = false;
    let mut end = 0;
    for (i, c) in raw.chars().enumerate() {
        match c {
            '#' if !in_quote => break,
            '"' => in_quote = !in_quote,
            _ => {}
        }
        if !c.is_whitespace() {
            end = i + 1;
        }
    }
    end
}

/// A cursor over one line's tokens.
struct Line<'a> {
    origin: &'a str,
    no: usize,
    toks: Vec<Tok>,
    pos: usize,
    end_col: usize,
}

impl Line<'_> {
    fn err(&self, col: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            origin: self.origin.to_string(),
            line: self.no,
            col,
            message: message.into(),
        }
    }

    fn found(&self) -> String {
        match self.toks.get(self.pos) {
            Some(t) if t.quoted => format!("\"{}\"", t.text),
            Some(t) => format!("`{}`", t.text),
            None => "the end of the line".to_string(),
        }
    }

    fn col(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end_col, |t| t.col)
    }

    fn expected(&self, what: &str) -> ParseError {
        self.err(
            self.col(),
            format!("expected {what}, found {}", self.found()),
        )
    }

    fn next(&mut self, what: &str) -> Result<Tok, ParseError> {
        match self.toks.get(self.pos) {
            Some(t) => {
                self.pos += 1;
                Ok(t.clone())
            }
            None => Err(self.expected(what)),
        }
    }

    fn word(&mut self, what: &str) -> Result<Tok, ParseError> {
        match self.toks.get(self.pos) {
            Some(t) if !t.quoted => self.next(what),
            _ => Err(self.expected(what)),
        }
    }

    fn name(&mut self, what: &str) -> Result<Tok, ParseError> {
        let t = self.word(what)?;
        let ok = t
            .text
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && t.text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        if ok {
            Ok(t)
        } else {
            Err(self.err(
                t.col,
                format!(
                    "expected {what} (letters, digits, `-`, `_`, `.`), found `{}`",
                    t.text
                ),
            ))
        }
    }

    fn string(&mut self, what: &str) -> Result<String, ParseError> {
        match self.toks.get(self.pos) {
            Some(t) if t.quoted => Ok(self.next(what)?.text),
            _ => Err(self.expected(what)),
        }
    }

    fn done(&self) -> Result<(), ParseError> {
        if self.pos < self.toks.len() {
            Err(self.expected("the end of the line"))
        } else {
            Ok(())
        }
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn eat(&mut self, word: &str) -> bool {
        if self.peek().is_some_and(|t| !t.quoted && t.text == word) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// The remaining `key=value` options; each key at most once, from `allowed`.
    fn options(&mut self, allowed: &[&str]) -> Result<Vec<(String, Tok)>, ParseError> {
        let mut out: Vec<(String, Tok)> = Vec::new();
        while let Some(t) = self.peek().cloned() {
            let (key, value) = match t.text.split_once('=') {
                Some((k, v)) if !t.quoted => (k.to_string(), v.to_string()),
                _ => {
                    let opts: Vec<String> = allowed.iter().map(|a| format!("`{a}=`")).collect();
                    return Err(self.expected(&format!("an option ({})", opts.join(", "))));
                }
            };
            if !allowed.contains(&key.as_str()) {
                let hint = suggest(&key, allowed.iter().copied())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                let opts: Vec<String> = allowed.iter().map(|a| format!("`{a}`")).collect();
                return Err(self.err(
                    t.col,
                    format!("expected one of {}, found `{key}`{hint}", opts.join(", ")),
                ));
            }
            if out.iter().any(|(k, _)| *k == key) {
                return Err(self.err(
                    t.col,
                    format!("expected each option once, found `{key}` again"),
                ));
            }
            self.pos += 1;
            let vcol = t.col + key.chars().count() + 1;
            out.push((
                key,
                Tok {
                    text: value,
                    col: vcol,
                    quoted: false,
                },
            ));
        }
        Ok(out)
    }
}

fn number(line: &Line<'_>, t: &Tok, what: &str, max: u64) -> Result<u64, ParseError> {
    let text = t.text.replace('_', "");
    let (digits, radix) = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (text.as_str(), 10),
    };
    // from_str_radix would accept a leading `+`; the language does not.
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(line.err(
            t.col,
            format!(
                "expected {what} (a number, decimal or 0x hex), found `{}`",
                t.text
            ),
        ));
    }
    let shown = |n: u64| {
        if radix == 16 {
            format!("{n:#x}")
        } else {
            n.to_string()
        }
    };
    match u64::from_str_radix(digits, radix) {
        Ok(n) if n <= max => Ok(n),
        Ok(n) => Err(line.err(
            t.col,
            format!("expected {what} at most {}, found {}", shown(max), shown(n)),
        )),
        Err(_) => Err(line.err(
            t.col,
            format!("expected {what} at most {}, found `{}`", shown(max), t.text),
        )),
    }
}

fn prot(line: &Line<'_>, t: &Tok) -> Result<Prot, ParseError> {
    match t.text.as_str() {
        "r" => Ok(Prot::R),
        "rw" => Ok(Prot::RW),
        "none" => Ok(Prot::NONE),
        other => Err(line.err(
            t.col,
            format!("expected a protection (`r`, `rw` or `none`), found `{other}`"),
        )),
    }
}

fn unknown(line: &Line<'_>, t: &Tok, what: &str, candidates: &[&str]) -> ParseError {
    let hint = suggest(&t.text, candidates.iter().copied())
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    line.err(t.col, format!("expected {what}, found `{}`{hint}", t.text))
}

fn kind(line: &Line<'_>, t: &Tok) -> Result<ViolationKind, ParseError> {
    ViolationKind::from_name(t.text.trim_end_matches(',')).ok_or_else(|| {
        let names: Vec<&str> = ViolationKind::ALL.iter().map(|k| k.name()).collect();
        unknown(line, t, "a violation kind", &names)
    })
}

fn arch(line: &Line<'_>, t: &Tok, text: &str, col: usize) -> Result<Arch, ParseError> {
    Arch::from_name(text).map_err(|_| {
        let names: Vec<&str> = Arch::ALL.iter().map(|a| a.name()).collect();
        let t = Tok {
            text: text.to_string(),
            col,
            quoted: t.quoted,
        };
        unknown(line, &t, "an architecture", &names)
    })
}

/// `ERA`, `ERA@ARCH`, and either with `:weak`, in an `expect` line.
fn era_cell(line: &Line<'_>, t: &Tok) -> Result<ExpectCell, ParseError> {
    let full = t.text.trim_end_matches(',');
    let (text, weak) = match full.split_once(':') {
        None => (full, false),
        Some((cell, "weak")) => (cell, true),
        Some((cell, other)) => {
            let col = t.col + cell.chars().count() + 1;
            return Err(line.err(
                col,
                format!(
                    "expected `weak` after `:` (a cell only weak memory shows), found `{other}`"
                ),
            ));
        }
    };
    let tok = |text: &str, col: usize| Tok {
        text: text.to_string(),
        col,
        quoted: t.quoted,
    };
    match text.split_once('@') {
        None => Ok(ExpectCell {
            era: era(line, &tok(text, t.col))?,
            arch: None,
            weak,
        }),
        Some((e, a)) => {
            let era = era(line, &tok(e, t.col))?;
            let arch = arch(line, t, a, t.col + e.chars().count() + 1)?;
            Ok(ExpectCell {
                era,
                arch: Some(arch),
                weak,
            })
        }
    }
}

fn era(line: &Line<'_>, t: &Tok) -> Result<Era, ParseError> {
    Era::from_name(t.text.trim_end_matches(',')).map_err(|_| {
        let names: Vec<&str> = Era::ALL.iter().map(|e| e.name()).collect();
        unknown(line, t, "an era", &names)
    })
}

/// Names declared so far, for resolution with suggestions.
#[derive(Default)]
struct Names {
    points: Vec<(String, usize, usize, bool, bool)>, // name, line, col, signalled, waited
}

impl Names {
    fn point(&mut self, name: &Tok, line: usize, signal: bool) -> usize {
        let i = match self.points.iter().position(|p| p.0 == name.text) {
            Some(i) => i,
            None => {
                self.points
                    .push((name.text.clone(), line, name.col, false, false));
                self.points.len() - 1
            }
        };
        if signal {
            self.points[i].3 = true;
        } else {
            self.points[i].4 = true;
        }
        i
    }
}

struct Parser<'a> {
    origin: &'a str,
    sc: Scenario,
    names: Names,
    /// Threads' `in PROCESS` references, checked at the end.
    thread_procs: Vec<(usize, Tok, usize)>,
    /// Where each thread was declared (line, column of its name).
    thread_at: Vec<(usize, usize)>,
}

/// Parse and check a scenario. `origin` names the text in errors (a path or
/// `builtin:NAME`). Never panics, whatever the input.
pub fn parse(origin: &str, text: &str) -> Result<Scenario, ParseError> {
    let mut p = Parser {
        origin,
        sc: Scenario {
            name: String::new(),
            summary: String::new(),
            source: String::new(),
            check: Vec::new(),
            expect: Vec::new(),
            arches: Vec::new(),
            backend: None,
            preemption_bound: None,
            switches: Vec::new(),
            files: Vec::new(),
            maps: Vec::new(),
            processes: vec!["main".to_string()],
            threads: Vec::new(),
            points: Vec::new(),
            text: text.to_string(),
            origin: origin.to_string(),
        },
        names: Names::default(),
        thread_procs: Vec::new(),
        thread_at: Vec::new(),
    };
    let mut last_line = 0;
    for (i, raw) in text.lines().enumerate() {
        last_line = i + 1;
        let toks = tokenize(raw, i + 1, origin)?;
        if toks.is_empty() {
            continue;
        }
        let mut line = Line {
            origin,
            no: i + 1,
            toks,
            pos: 0,
            end_col: content_end(raw) + 1,
        };
        p.statement(&mut line)?;
    }
    p.finish(last_line.max(1))
}

impl Parser<'_> {
    fn statement(&mut self, line: &mut Line<'_>) -> Result<(), ParseError> {
        let kw = line.word("a statement")?;
        if HEADER_KEYWORDS.contains(&kw.text.as_str()) && kw.text != "thread" {
            self.header_only(line, kw.col, &format!("`{}`", kw.text))?;
        }
        match kw.text.as_str() {
            "scenario" => {
                if !self.sc.name.is_empty() {
                    return Err(line.err(kw.col, "expected one `scenario` line, found a second"));
                }
                self.sc.name = line.name("the scenario's name")?.text;
            }
            "summary" => self.sc.summary = line.string("a quoted one-line summary")?,
            "source" => self.sc.source = line.string("a quoted source (commit or selftest)")?,
            "check" => {
                line.peek()
                    .ok_or_else(|| line.expected("a violation kind"))?;
                while let Some(t) = line.peek().cloned() {
                    line.pos += 1;
                    let k = kind(line, &t)?;
                    if !self.sc.check.contains(&k) {
                        self.sc.check.push(k);
                    }
                }
            }
            "expect" => {
                let t = line.word("a violation kind")?;
                let k = kind(line, &t)?;
                if !line.eat("on") {
                    return Err(line.expected("`on` and the eras that have the bug"));
                }
                if self.sc.expect.iter().any(|(e, _)| *e == k) {
                    return Err(line.err(
                        t.col,
                        format!(
                            "expected one `expect` line per kind, found `{}` again",
                            k.name()
                        ),
                    ));
                }
                if !self.sc.check.is_empty() && !self.sc.check.contains(&k) {
                    return Err(line.err(t.col, format!("expected a kind the `check` line includes, found `{}`, which it leaves out", k.name())));
                }
                let mut eras: Vec<ExpectCell> = Vec::new();
                line.peek().ok_or_else(|| line.expected("an era"))?;
                while let Some(t) = line.peek().cloned() {
                    line.pos += 1;
                    let c = era_cell(line, &t)?;
                    // `v5.19` covers `v5.19@arm64`: either repeats the other.
                    if eras.iter().any(|c2| {
                        c2.era == c.era
                            && (c2.arch.is_none() || c.arch.is_none() || c2.arch == c.arch)
                    }) {
                        return Err(line.err(
                            t.col,
                            format!(
                                "expected each era (and architecture) once, found `{}` again",
                                t.text
                            ),
                        ));
                    }
                    eras.push(c);
                }
                self.sc.expect.push((k, eras));
            }
            "switch" => {
                let t = line.word("a switch name")?;
                if !SWITCHES.iter().any(|s| s.name == t.text) {
                    let names: Vec<&str> = SWITCHES.iter().map(|s| s.name).collect();
                    return Err(unknown(line, &t, "a switch name", &names));
                }
                let on = match line.word("`on` or `off`")?.text.as_str() {
                    "on" => true,
                    "off" => false,
                    _ => {
                        line.pos -= 1;
                        return Err(line.expected("`on` or `off`"));
                    }
                };
                self.sc.switches.push((t.text, on));
            }
            "arch" => {
                if !self.sc.arches.is_empty() {
                    return Err(line.err(kw.col, "expected one `arch` line, found a second"));
                }
                line.peek()
                    .ok_or_else(|| line.expected("an architecture (x86, arm64)"))?;
                while let Some(t) = line.peek().cloned() {
                    line.pos += 1;
                    let a = arch(line, &t, &t.text, t.col)?;
                    if self.sc.arches.contains(&a) {
                        return Err(line.err(
                            t.col,
                            format!("expected each architecture once, found `{a}` again"),
                        ));
                    }
                    self.sc.arches.push(a);
                }
            }
            "backend" => {
                if self.sc.backend.is_some() {
                    return Err(line.err(kw.col, "expected one `backend` line, found a second"));
                }
                let t = line.word("an explorer (pct, random, urw, dfs, loom)")?;
                if !BACKENDS.contains(&t.text.as_str()) {
                    return Err(unknown(line, &t, "an explorer", BACKENDS));
                }
                // The bound loom uses for this scenario, whichever explorer `check`
                // defaults to (the loom suite runs every scenario that fits).
                for (k, v) in line.options(&["preemption-bound"])? {
                    if k == "preemption-bound" {
                        self.sc.preemption_bound =
                            Some(number(line, &v, "a preemption bound", 8)? as usize);
                    }
                }
                self.sc.backend = Some(t.text);
            }
            "file" => self.file(line)?,
            "map" => self.map(line)?,
            "thread" => self.thread(line)?,
            op if OP_KEYWORDS.contains(&op) => {
                if self.sc.threads.is_empty() {
                    return Err(line.err(
                        kw.col,
                        format!("expected `thread NAME:` before the first operation, found `{op}`"),
                    ));
                }
                let thread = self.sc.threads.last().expect("checked above");
                if let Some(gone) = thread
                    .steps
                    .iter()
                    .find(|s| matches!(s.op, Op::Exit | Op::ExitGroup))
                {
                    if kw.text != "signal" {
                        return Err(line.err(
                            kw.col,
                            format!(
                                "expected only `signal` after `{}` (line {}): thread `{}` is gone (a `signal` stands for the parent's waitpid), found `{}`",
                                gone.op.keyword(),
                                gone.line,
                                thread.name,
                                kw.text
                            ),
                        ));
                    }
                }
                let step = self.op(line, &kw)?;
                self.sc
                    .threads
                    .last_mut()
                    .expect("checked above")
                    .steps
                    .push(step);
                return line.done();
            }
            _ => {
                let mut all: Vec<&str> = HEADER_KEYWORDS.to_vec();
                all.extend_from_slice(OP_KEYWORDS);
                return Err(unknown(
                    line,
                    &kw,
                    "a statement (`scenario`, `map`, `thread`, an operation, ...)",
                    &all,
                ));
            }
        }
        line.done()
    }

    fn header_only(&self, line: &Line<'_>, col: usize, what: &str) -> Result<(), ParseError> {
        if self.sc.threads.is_empty() {
            Ok(())
        } else {
            Err(line.err(
                col,
                format!("expected {what} before the first `thread`, found it after"),
            ))
        }
    }

    fn file(&mut self, line: &mut Line<'_>) -> Result<(), ParseError> {
        let name = line.name("the file's name")?;
        if self.sc.files.iter().any(|f| f.name == name.text) {
            return Err(line.err(
                name.col,
                format!("expected a new file name, found `{}` again", name.text),
            ));
        }
        let mut pages = 1;
        for (k, v) in line.options(&["pages"])? {
            if k == "pages" {
                pages = number(line, &v, "a page count", (PTRS_PER_PMD * 8) as u64)? as usize;
                if pages == 0 {
                    return Err(line.err(v.col, "expected at least 1 page, found 0"));
                }
            }
        }
        self.sc.files.push(FileDecl {
            name: name.text,
            pages,
        });
        Ok(())
    }

    fn map(&mut self, line: &mut Line<'_>) -> Result<(), ParseError> {
        let name = line.name("the mapping's name")?;
        if self.sc.maps.iter().any(|m| m.name == name.text) {
            return Err(line.err(
                name.col,
                format!("expected a new mapping name, found `{}` again", name.text),
            ));
        }
        let kt = line.word("a mapping kind (`private-anon`, `private-file`, `shared-file`)")?;
        let kinds = ["private-anon", "private-file", "shared-file"];
        if !kinds.contains(&kt.text.as_str()) {
            return Err(unknown(
                line,
                &kt,
                "a mapping kind (`private-anon`, `private-file`, `shared-file`)",
                &kinds,
            ));
        }
        let mut thp = None;
        let (mut pages, mut prot_v, mut file, mut at, mut init) =
            (1u64, Prot::RW, None, None, Init::Untouched);
        let mut file_col = kt.col;
        for (k, v) in line.options(&["pages", "prot", "file", "at", "write", "read", "thp"])? {
            match k.as_str() {
                "pages" => {
                    pages = number(line, &v, "a page count", PTRS_PER_PMD as u64 * 8)?;
                    if pages == 0 {
                        return Err(line.err(v.col, "expected at least 1 page, found 0"));
                    }
                }
                "prot" => prot_v = prot(line, &v)?,
                "file" => {
                    file_col = v.col;
                    let i = self
                        .sc
                        .files
                        .iter()
                        .position(|f| f.name == v.text)
                        .ok_or_else(|| {
                            let names: Vec<&str> =
                                self.sc.files.iter().map(|f| f.name.as_str()).collect();
                            unknown(line, &v, "a file declared with `file NAME`", &names)
                        })?;
                    file = Some(i);
                }
                "at" => {
                    at = Some((
                        number(line, &v, "an address", TASK_SIZE - PAGE_SIZE)?,
                        v.col,
                    ))
                }
                "write" => {
                    init = Init::Written(number(line, &v, "a value", u32::MAX as u64)? as u32)
                }
                "thp" => match v.text.as_str() {
                    "yes" => thp = Some(v.col),
                    "no" => {}
                    _ => {
                        return Err(
                            line.err(v.col, format!("expected `yes` or `no`, found `{}`", v.text))
                        )
                    }
                },
                "read" => match v.text.as_str() {
                    "yes" => init = Init::Read,
                    "no" => {}
                    _ => {
                        return Err(
                            line.err(v.col, format!("expected `yes` or `no`, found `{}`", v.text))
                        )
                    }
                },
                _ => unreachable!("options() only returns allowed keys"),
            }
        }
        let kind = match (kt.text.as_str(), file) {
            ("private-anon", None) => MapKind::PrivateAnon,
            ("private-anon", Some(_)) => {
                return Err(line.err(file_col, "expected no `file=` on an anonymous mapping"))
            }
            (_, None) => {
                return Err(line.err(
                    line.end_col,
                    format!(
                        "expected `file=NAME` for a `{}` mapping, found the end of the line",
                        kt.text
                    ),
                ))
            }
            ("private-file", Some(f)) => MapKind::PrivateFile(f),
            (_, Some(f)) => MapKind::SharedFile(f),
        };
        if let MapKind::PrivateFile(f) | MapKind::SharedFile(f) = kind {
            if pages as usize > self.sc.files[f].pages {
                return Err(line.err(
                    file_col,
                    format!(
                        "expected a file of at least {pages} pages, found `{}` with {}",
                        self.sc.files[f].name, self.sc.files[f].pages
                    ),
                ));
            }
        }
        // Each mapping gets PMD-aligned room of its own unless placed by hand, so that
        // unmapping it frees its page table.
        let addr = match at {
            Some((a, col)) => {
                if a % PAGE_SIZE != 0 {
                    return Err(line.err(col, format!("expected a page-aligned address (multiple of {PAGE_SIZE:#x}), found {a:#x}")));
                }
                a
            }
            None => {
                let next = self
                    .sc
                    .maps
                    .iter()
                    .map(|m| (m.addr + m.pages * PAGE_SIZE).div_ceil(PMD_SIZE) * PMD_SIZE)
                    .max()
                    .unwrap_or(PMD_SIZE);
                next.max(PMD_SIZE)
            }
        };
        let end = addr + pages * PAGE_SIZE;
        if end > TASK_SIZE {
            return Err(line.err(kt.col, format!("expected the mapping to fit below {TASK_SIZE:#x}, but it would end at {end:#x}")));
        }
        if let Some(other) = self
            .sc
            .maps
            .iter()
            .find(|m| m.addr < end && addr < m.addr + m.pages * PAGE_SIZE)
        {
            return Err(line.err(
                name.col,
                format!(
                    "expected a free range, but `{}` overlaps `{}`",
                    name.text, other.name
                ),
            ));
        }
        if let Some(col) = thp {
            if kind != MapKind::PrivateAnon || pages != PTRS_PER_PTE as u64 || addr % PMD_SIZE != 0
            {
                return Err(line.err(
                    col,
                    format!(
                        "expected `thp=yes` on a PMD-aligned `private-anon` mapping of exactly {PTRS_PER_PTE} pages (one huge page); splitting huge pages is not modeled"
                    ),
                ));
            }
        }
        self.sc.maps.push(MapDecl {
            name: name.text,
            kind,
            pages,
            prot: prot_v,
            addr,
            init,
            thp: thp.is_some(),
        });
        Ok(())
    }

    fn thread(&mut self, line: &mut Line<'_>) -> Result<(), ParseError> {
        let mut name = line.word("the thread's name")?;
        let colon = name.text.ends_with(':');
        if colon {
            name.text.pop();
        }
        line.pos -= 1;
        line.toks[line.pos] = name.clone();
        let name = line.name("the thread's name")?;
        if self.sc.threads.iter().any(|t| t.name == name.text) {
            return Err(line.err(
                name.col,
                format!("expected a new thread name, found `{}` again", name.text),
            ));
        }
        if self.sc.threads.len() == THREADS_MAX {
            return Err(line.err(
                name.col,
                format!("expected at most {THREADS_MAX} threads, found one more"),
            ));
        }
        let mut proc_tok = Tok {
            text: "main".into(),
            col: name.col,
            quoted: false,
        };
        let mut saw_in = false;
        if !colon && line.eat("in") {
            saw_in = true;
            if line.peek().is_some_and(|t| t.text == ":") {
                return Err(line.expected("a process name"));
            }
            let mut t = line.word("a process name")?;
            if t.text.ends_with(':') {
                t.text.pop();
                line.toks.insert(
                    line.pos,
                    Tok {
                        text: ":".into(),
                        col: t.col + t.text.chars().count(),
                        quoted: false,
                    },
                );
            }
            proc_tok = t;
        }
        if !colon && !line.eat(":") && line.peek().is_some() {
            return Err(line.expected(if saw_in {
                "`:`"
            } else {
                "`:` or `in PROCESS:`"
            }));
        }
        self.thread_at.push((line.no, name.col));
        self.thread_procs
            .push((self.sc.threads.len(), proc_tok, line.no));
        self.sc.threads.push(ThreadDecl {
            name: name.text,
            process: 0,
            steps: Vec::new(),
            pins: Vec::new(),
        });
        Ok(())
    }

    fn loc(&self, line: &mut Line<'_>) -> Result<Loc, ParseError> {
        let t = line.word("a location (`MAPPING` or `MAPPING+PAGE`)")?;
        let (name, page) = match t.text.split_once('+') {
            Some((n, p)) => {
                let pt = Tok {
                    text: p.to_string(),
                    col: t.col + n.chars().count() + 1,
                    quoted: false,
                };
                (n.to_string(), Some(pt))
            }
            None => (t.text.clone(), None),
        };
        let map = self
            .sc
            .maps
            .iter()
            .position(|m| m.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = self.sc.maps.iter().map(|m| m.name.as_str()).collect();
                unknown(
                    line,
                    &Tok {
                        text: name.clone(),
                        ..t.clone()
                    },
                    "a mapping declared with `map NAME`",
                    &names,
                )
            })?;
        let pages = self.sc.maps[map].pages;
        let page = match page {
            Some(pt) => {
                let n = number(line, &pt, "a page index", u32::MAX as u64)?;
                if n >= pages {
                    return Err(line.err(pt.col, format!("expected a page index below {pages} (`{name}` has {pages} pages), found {n}")));
                }
                n
            }
            None => 0,
        };
        Ok(Loc { map, page })
    }

    fn pages_opt(
        &self,
        line: &mut Line<'_>,
        loc: Loc,
        extra: &[&str],
    ) -> Result<(u64, Vec<(String, Tok)>), ParseError> {
        let mut allowed = vec!["pages"];
        allowed.extend_from_slice(extra);
        let opts = line.options(&allowed)?;
        let room = self.sc.maps[loc.map].pages - loc.page;
        let mut pages = room;
        let mut rest = Vec::new();
        for (k, v) in opts {
            if k == "pages" {
                pages = number(line, &v, "a page count", room)?;
                if pages == 0 {
                    return Err(line.err(v.col, "expected at least 1 page, found 0"));
                }
            } else {
                rest.push((k, v));
            }
        }
        Ok((pages, rest))
    }

    fn value(&self, line: &mut Line<'_>) -> Result<u32, ParseError> {
        let t = line.word("a value to write")?;
        Ok(number(line, &t, "a value", u32::MAX as u64)? as u32)
    }

    fn new_pin(&mut self, line: &mut Line<'_>) -> Result<usize, ParseError> {
        if !line.eat("as") {
            return Err(line.expected("`as NAME` to name the pin"));
        }
        let t = line.name("the pin's name")?;
        let thread = self.sc.threads.last_mut().expect("inside a thread");
        if thread.pins.contains(&t.text) {
            return Err(line.err(
                t.col,
                format!(
                    "expected a new pin name in thread `{}`, found `{}` again",
                    thread.name, t.text
                ),
            ));
        }
        thread.pins.push(t.text);
        Ok(thread.pins.len() - 1)
    }

    fn pin_ref(&self, line: &mut Line<'_>) -> Result<usize, ParseError> {
        let t = line.name("a pin name")?;
        let thread = self.sc.threads.last().expect("inside a thread");
        thread
            .pins
            .iter()
            .position(|p| *p == t.text)
            .ok_or_else(|| {
                let names: Vec<&str> = thread.pins.iter().map(String::as_str).collect();
                unknown(
                    line,
                    &t,
                    &format!("a pin taken earlier by thread `{}`", thread.name),
                    &names,
                )
            })
    }

    fn op(&mut self, line: &mut Line<'_>, kw: &Tok) -> Result<Step, ParseError> {
        let op = match kw.text.as_str() {
            "read" => Op::Read(self.loc(line)?),
            "write" => {
                let loc = self.loc(line)?;
                Op::Write(loc, self.value(line)?)
            }
            "fork" => {
                let t = line.name("the child process's name")?;
                if self.sc.processes.contains(&t.text) {
                    return Err(line.err(
                        t.col,
                        format!("expected a new process name, found `{}` again", t.text),
                    ));
                }
                if self.sc.processes.len() == PROCESSES_MAX {
                    return Err(line.err(
                        t.col,
                        format!("expected at most {PROCESSES_MAX} processes, found one more"),
                    ));
                }
                self.sc.processes.push(t.text);
                Op::Fork(self.sc.processes.len() - 1)
            }
            "exit" => Op::Exit,
            "exit-group" => Op::ExitGroup,
            "munmap" | "madvise-dontneed" => {
                let loc = self.loc(line)?;
                let (pages, _) = self.pages_opt(line, loc, &[])?;
                if kw.text == "munmap" {
                    Op::Munmap(loc, pages)
                } else {
                    Op::MadviseDontneed(loc, pages)
                }
            }
            "mprotect" => {
                let loc = self.loc(line)?;
                let (pages, rest) = self.pages_opt(line, loc, &["prot"])?;
                let (_, v) = rest
                    .into_iter()
                    .find(|(k, _)| k == "prot")
                    .ok_or_else(|| line.expected("`prot=r`, `prot=rw` or `prot=none`"))?;
                Op::Mprotect(loc, pages, prot(line, &v)?)
            }
            "proc-mem-write" => {
                let loc = self.loc(line)?;
                Op::ProcMemWrite(loc, self.value(line)?)
            }
            "proc-mem-read" => Op::ProcMemRead(self.loc(line)?),
            "vmsplice" => {
                let loc = self.loc(line)?;
                Op::Vmsplice(loc, self.new_pin(line)?)
            }
            "pin" | "pin-fast" => {
                let loc = self.loc(line)?;
                let slot = self.new_pin(line)?;
                let mut mode = PinMode {
                    fast: kw.text == "pin-fast",
                    ..PinMode::default()
                };
                while let Some(t) = line.peek().cloned() {
                    match t.text.as_str() {
                        "rw" => mode.write = true,
                        "ro" => mode.write = false,
                        "longterm" => mode.longterm = true,
                        _ => {
                            return Err(unknown(
                                line,
                                &t,
                                "`ro`, `rw` or `longterm`",
                                &["ro", "rw", "longterm"],
                            ))
                        }
                    }
                    line.pos += 1;
                }
                Op::Pin(loc, slot, mode)
            }
            "unpin" => Op::Unpin(self.pin_ref(line)?),
            "migrate" => Op::Migrate(self.loc(line)?),
            "ksm-merge" => Op::KsmMerge(self.loc(line)?),
            "collapse" => Op::Collapse(self.loc(line)?),
            "read-pin" => Op::ReadPin(self.pin_ref(line)?),
            "signal" | "wait" => {
                let t = line.name("an ordering point's name")?;
                let signal = kw.text == "signal";
                let point = self.names.point(&t, line.no, signal);
                if signal {
                    Op::Signal(point)
                } else {
                    Op::Wait(point)
                }
            }
            _ => unreachable!("called with an operation keyword"),
        };
        Ok(Step { op, line: line.no })
    }

    fn finish(mut self, last_line: usize) -> Result<Scenario, ParseError> {
        let at = |line: usize, col: usize, message: String| ParseError {
            origin: self.origin.to_string(),
            line,
            col,
            message,
        };
        if self.sc.name.is_empty() {
            return Err(at(
                1,
                1,
                "expected a `scenario NAME` line, found none".into(),
            ));
        }
        if self.sc.threads.is_empty() {
            return Err(at(
                last_line,
                1,
                "expected at least one `thread NAME:` with operations, found none".into(),
            ));
        }
        for (i, tok, line) in std::mem::take(&mut self.thread_procs) {
            let Some(p) = self.sc.processes.iter().position(|p| *p == tok.text) else {
                let names: Vec<&str> = self.sc.processes.iter().map(String::as_str).collect();
                let hint = suggest(&tok.text, names.iter().copied())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                return Err(at(
                    line,
                    tok.col,
                    format!(
                        "expected `main` or a process created by `fork`, found `{}`{hint}",
                        tok.text
                    ),
                ));
            };
            self.sc.threads[i].process = p;
        }
        for (t, &(line, col)) in self.sc.threads.iter().zip(&self.thread_at) {
            if t.steps.is_empty() {
                return Err(at(
                    line,
                    col,
                    format!("expected operations in thread `{}`, found none", t.name),
                ));
            }
        }
        for (name, line, col, signalled, waited) in &self.names.points {
            if *waited && !signalled {
                return Err(at(*line, *col, format!("expected a `signal {name}` somewhere for this `wait {name}`, found none (it would never return)")));
            }
        }
        if !self.sc.arches.is_empty() {
            for (kind, cells) in &self.sc.expect {
                if let Some(a) = cells
                    .iter()
                    .filter_map(|c| c.arch)
                    .find(|a| !self.sc.arches.contains(a))
                {
                    let line = self
                        .sc
                        .text
                        .lines()
                        .position(|l| {
                            l.trim_start().starts_with("expect") && l.contains(kind.name())
                        })
                        .map_or(1, |i| i + 1);
                    return Err(at(line, 1, format!("expected `expect {}` to name only the architectures of the `arch` line, found `@{a}`", kind.name())));
                }
            }
        }
        self.sc.points = self.names.points.iter().map(|p| p.0.clone()).collect();
        Ok(self.sc)
    }
}
