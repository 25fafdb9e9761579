//! Showing a trace: what the text and HTML renderers share.

mod html;
mod text;

use std::collections::BTreeSet;
use std::fmt;

use crate::{Event, TraceFile};

pub use html::{render_html, render_html_with, HtmlExtras};
pub use text::render_text;

/// One event on one line: the kernel function, the mm, the address in hex, a PTE change
/// as `old→new`, the other fields as `key=value` (`true` flags by name, `false` ones left
/// out) and the message in parentheses, e.g.
/// `wp_page_copy mm0 addr=0x8000 pfn3 RO→pfn4 W D (set_pte_at)`. An event without a
/// `func` leads with its message. The thread is left out: the column shows it.
pub fn render_event_line(event: &Event) -> String {
    let fields = &event.fields;
    if event.target == MEM {
        return memory_line(event);
    }
    let (head, note) = match &event.func {
        Some(func) => (func.as_str(), event.message.as_str()),
        None => (event.message.as_str(), ""),
    };
    let mut parts = vec![head.to_owned()];
    if let Some(mm) = fields.get("mm") {
        parts.push(format!("mm{mm}"));
    }
    if let Some(addr) = fields.get("addr") {
        parts.push(format!("addr={}", hex(addr)));
    }
    let change = fields.get("old").zip(fields.get("new"));
    if let Some((old, new)) = change {
        parts.push(format!("{old}→{new}"));
    }
    for (key, value) in fields {
        match key.as_str() {
            "mm" | "addr" => {}
            "old" | "new" if change.is_some() => {}
            "end" => parts.push(format!("end={}", hex(value))),
            _ if value == "true" => parts.push(key.clone()),
            _ if value == "false" => {}
            _ => parts.push(format!("{key}={value}")),
        }
    }
    if !note.is_empty() {
        parts.push(format!("({note})"));
    }
    parts.retain(|part| !part.is_empty());
    parts.join(" ")
}

/// A memory access of a loom trace: `test_bit page3.flags = 0x27 from store 53, not the
/// latest (55)` or `clear_bit page3.flags := 0x23 (store 55)`.
fn memory_line(event: &Event) -> String {
    let f = |k: &str| event.fields.get(k).map(String::as_str).unwrap_or("?");
    let func = event.func.as_deref().unwrap_or("access");
    if event.message == "store" {
        return format!(
            "{func} {} := {} (store {})",
            f("obj"),
            f("value"),
            f("store")
        );
    }
    let mut line = format!(
        "{func} {} = {} from store {}",
        f("obj"),
        f("value"),
        f("read_from")
    );
    if f("stale") == "true" {
        line.push_str(&format!(", not the latest ({}): weak memory", f("latest")));
    }
    if let Some(also) = event.fields.get("also") {
        line.push_str(&format!(" (or store {also}, the same value)"));
    }
    line
}

/// A decimal address as hex; anything else unchanged.
fn hex(value: &str) -> String {
    value
        .parse::<u64>()
        .map_or_else(|_| value.to_owned(), |addr| format!("{addr:#x}"))
}

/// A trace laid out for display: the renderers differ only in markup.
struct View<'a> {
    /// Lines on what ran.
    header: Vec<String>,
    /// Column names: `kernel` first if some events have no thread, then the threads.
    columns: Vec<String>,
    /// Each event with its column.
    rows: Vec<(usize, &'a Event)>,
    /// The violation, then its explanation.
    violation: [String; 2],
    /// The objects the violation names, each with the events that touch it, or a line
    /// saying it names none.
    objects: Vec<String>,
    /// The events that touch an object the violation names, in order.
    touching: Vec<&'a Event>,
    /// The highlighting key of each object the violation names, with its line.
    keyed_objects: Vec<(String, String)>,
}

impl<'a> View<'a> {
    fn new(trace: &'a TraceFile) -> View<'a> {
        let ids = column_ids(trace);
        let column_name = |id: &Option<u32>| match id {
            None => "kernel".to_owned(),
            Some(id) => trace
                .threads
                .iter()
                .find(|t| t.id == *id)
                .map_or_else(|| format!("cpu{id}"), |t| t.name.clone()),
        };
        let column_of = |e: &Event| ids.iter().position(|id| *id == e.thread);
        let violation = &trace.violation;
        let shown = memory_events_shown(trace);
        View {
            header: header(trace),
            columns: ids.iter().map(column_name).collect(),
            rows: trace
                .events
                .iter()
                .filter(|e| e.target != MEM || shown.contains(&e.step))
                .map(|e| (column_of(e).expect("every thread has a column"), e))
                .collect(),
            violation: [
                format!(
                    "violation {} at {}: {}",
                    violation.kind, violation.at, violation.message
                ),
                violation.explanation.clone(),
            ],
            objects: objects_involved(trace),
            keyed_objects: {
                let lines = objects_involved(trace);
                Object::named_in(&trace.violation.message)
                    .into_iter()
                    .zip(lines)
                    .map(|(o, line)| (o.key(), line))
                    .collect()
            },
            touching: {
                let objects = Object::named_in(&trace.violation.message);
                trace
                    .events
                    .iter()
                    .filter(|e| objects.iter().any(|o| o.touched_by(e)))
                    .collect()
            },
        }
    }
}

/// The target of the record of memory accesses (`cowbreak_mm::record`): loom traces
/// have one event per access.
const MEM: &str = "cowbreak::mem";

/// Of the memory-access events, the ones worth a row: every load that read a store
/// other than the latest one (what weak memory did), and the stores it read and missed.
/// The rest stay in the file.
fn memory_events_shown(trace: &TraceFile) -> BTreeSet<u64> {
    let stale: Vec<&Event> = trace
        .events
        .iter()
        .filter(|e| e.target == MEM && e.fields.get("stale").map(String::as_str) == Some("true"))
        .collect();
    let stores: BTreeSet<&str> = stale
        .iter()
        .flat_map(|e| ["read_from", "latest"].map(|k| e.fields.get(k).map(String::as_str)))
        .flatten()
        .collect();
    trace
        .events
        .iter()
        .filter(|e| e.target == MEM)
        .filter(|e| {
            e.fields.get("stale").map(String::as_str) == Some("true")
                || e.fields
                    .get("store")
                    .is_some_and(|id| stores.contains(id.as_str()))
        })
        .map(|e| e.step)
        .collect()
}

/// Scenario, era, backend, schedule, switches and the violation's kind, a line each.
fn header(trace: &TraceFile) -> Vec<String> {
    let TraceFile {
        scenario,
        backend,
        schedule,
        ..
    } = trace;
    let path = scenario
        .path
        .as_ref()
        .map(|path| format!(" ({path})"))
        .unwrap_or_default();
    let params: Vec<String> = backend
        .params
        .iter()
        .map(|(key, value)| match value {
            serde_json::Value::String(s) => format!("{key}={s}"),
            value => format!("{key}={value}"),
        })
        .collect();
    let params = if params.is_empty() {
        String::new()
    } else {
        format!(" ({})", params.join(", "))
    };
    let switches: Vec<String> = trace
        .switches
        .iter()
        .map(|(name, on)| format!("{name}={}", if *on { "on" } else { "off" }))
        .collect();
    vec![
        format!(
            "scenario {}{path} · era {} · arch {} · cowbreak {}",
            scenario.name, trace.era, trace.arch, trace.model_version
        ),
        format!(
            "backend {}{params} · schedule {}, {} steps",
            backend.name, schedule.encoding, schedule.steps
        ),
        format!("switches: {}", switches.join(", ")),
        format!("violation: {}", trace.violation.kind),
    ]
}

/// The thread of each column: `None` (the kernel) first if some events have no thread,
/// then the listed threads, then threads only the events name.
fn column_ids(trace: &TraceFile) -> Vec<Option<u32>> {
    let listed: Vec<u32> = trace.threads.iter().map(|t| t.id).collect();
    let unlisted: BTreeSet<u32> = trace
        .events
        .iter()
        .filter_map(|e| e.thread)
        .filter(|id| !listed.contains(id))
        .collect();
    let kernel = trace.events.iter().any(|e| e.thread.is_none());
    kernel
        .then_some(None)
        .into_iter()
        .chain(listed.into_iter().chain(unlisted).map(Some))
        .collect()
}

/// A line per object the violation names, with the events that touch it.
fn objects_involved(trace: &TraceFile) -> Vec<String> {
    let objects: Vec<String> = Object::named_in(&trace.violation.message)
        .into_iter()
        .map(|object| {
            let steps: Vec<String> = trace
                .events
                .iter()
                .filter(|e| object.touched_by(e))
                .map(|e| e.step.to_string())
                .collect();
            match steps.as_slice() {
                [] => format!("{object}: in no event"),
                [step] => format!("{object}: event {step}"),
                steps => format!("{object}: events {}", steps.join(", ")),
            }
        })
        .collect();
    if objects.is_empty() {
        vec!["none named".to_owned()]
    } else {
        objects
    }
}

/// The keys (`pfn:2`, `mm:0`, `addr:0x8000`, `table:1`) of the objects `event` touches,
/// for the HTML page's highlighting; the violation's objects carry the same keys.
fn object_keys(event: &Event) -> Vec<String> {
    let mut keys = Vec::new();
    let mut push = |k: String| {
        if !keys.contains(&k) {
            keys.push(k)
        }
    };
    for (name, value) in &event.fields {
        let n = value.parse::<u64>().ok();
        match (name.as_str(), n) {
            ("pfn" | "from" | "to", Some(n)) => push(format!("pfn:{n}")),
            ("mm" | "child" | "holder", Some(n)) => push(format!("mm:{n}")),
            ("addr", Some(n)) => push(format!("addr:{n:#x}")),
            ("table", Some(n)) => push(format!("table:{n}")),
            _ => {
                if let Some(pfn) = value.split(' ').next().and_then(|w| w.strip_prefix("pfn")) {
                    if let Ok(p) = pfn.parse::<u64>() {
                        push(format!("pfn:{p}"));
                    }
                }
            }
        }
    }
    keys
}

/// Something a violation message names, in the oracle's words: `pfn 3`, `mm1`, `0x8000`,
/// `table 2`.
#[derive(Copy, Clone, PartialEq)]
enum Object {
    Pfn(u64),
    Mm(u64),
    Addr(u64),
    Table(u64),
}

impl Object {
    /// The objects `message` names, in order of first mention.
    fn named_in(message: &str) -> Vec<Object> {
        let mut words = message
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .peekable();
        let number = |word: Option<&&str>| word.and_then(|w| w.parse().ok());
        let mut objects = Vec::new();
        while let Some(word) = words.next() {
            let object = match word {
                "pfn" => number(words.peek()).map(Object::Pfn),
                "table" => number(words.peek()).map(Object::Table),
                _ => match (word.strip_prefix("mm"), word.strip_prefix("0x")) {
                    (Some(mm), _) => mm.parse().ok().map(Object::Mm),
                    (_, Some(addr)) => u64::from_str_radix(addr, 16).ok().map(Object::Addr),
                    _ => None,
                },
            };
            if let Some(object) = object.filter(|o| !objects.contains(o)) {
                objects.push(object);
            }
        }
        objects
    }

    /// Whether `event` reads or changes this object, as far as its fields say.
    fn touched_by(self, event: &Event) -> bool {
        let number = |key: &str| event.fields.get(key).and_then(|v| v.parse::<u64>().ok());
        let any = |keys: &[&str], n: u64| keys.iter().any(|key| number(key) == Some(n));
        match self {
            // A PTE field (`pte`, `old`, `new`) formats as `pfn3 RO ...`.
            Object::Pfn(pfn) => {
                any(&["pfn", "from", "to"], pfn)
                    || event
                        .fields
                        .values()
                        .any(|v| v.split(' ').next() == Some(format!("pfn{pfn}").as_str()))
            }
            Object::Mm(mm) => any(&["mm", "child", "holder"], mm),
            Object::Addr(addr) => match (number("addr"), number("end")) {
                (Some(start), Some(end)) => (start..end).contains(&addr),
                (start, _) => start == Some(addr),
            },
            Object::Table(table) => any(&["table"], table),
        }
    }
}

impl Object {
    /// The key [`object_keys`] gives events that touch it.
    fn key(self) -> String {
        match self {
            Object::Pfn(pfn) => format!("pfn:{pfn}"),
            Object::Mm(mm) => format!("mm:{mm}"),
            Object::Addr(addr) => format!("addr:{addr:#x}"),
            Object::Table(table) => format!("table:{table}"),
        }
    }
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Object::Pfn(pfn) => write!(f, "pfn {pfn}"),
            Object::Mm(mm) => write!(f, "mm{mm}"),
            Object::Addr(addr) => write!(f, "{addr:#x}"),
            Object::Table(table) => write!(f, "table {table}"),
        }
    }
}
