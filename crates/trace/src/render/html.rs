//! The HTML renderer.

use std::fmt::Write;

use super::{render_event_line, View};
use crate::TraceFile;

const STYLE: &str = "\
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
p.header { margin: 0.2em 0; }
table { border-collapse: collapse; font-family: ui-monospace, monospace; font-size: 0.9em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }
thead th { position: sticky; top: 0; background: #eee; }
td.step { text-align: right; color: #888; }
tbody tr:nth-child(even) { background: #f8f8f8; }
tr.warn td, tr.error td { background: #fdd; }
section.violation { border-left: 4px solid #c00; padding: 0.5em 1em; background: #fff4f4; }
";

/// The trace as a self-contained HTML page (inline CSS, no scripts, nothing fetched):
/// the same header, table and violation as [`render_text`](crate::render_text), with
/// cells never cut and rows of warnings (the oracle's report) highlighted.
pub fn render_html(trace: &TraceFile) -> String {
    let view = View::new(trace);
    let mut out = String::new();
    let title = escape(&format!(
        "{}: {}",
        trace.scenario.name, trace.violation.kind
    ));
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    )
    .unwrap();
    write!(
        out,
        "<title>cowbreak trace · {title}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n"
    )
    .unwrap();
    writeln!(out, "<h1>{title}</h1>").unwrap();
    for line in &view.header {
        writeln!(out, "<p class=\"header\">{}</p>", escape(line)).unwrap();
    }
    out += "<table>\n<thead><tr><th>step</th>";
    for name in &view.columns {
        write!(out, "<th>{}</th>", escape(name)).unwrap();
    }
    out += "</tr></thead>\n<tbody>\n";
    for (column, event) in &view.rows {
        let level = escape(&event.level.to_ascii_lowercase());
        write!(
            out,
            "<tr class=\"{level}\"><td class=\"step\">{}</td>",
            event.step
        )
        .unwrap();
        for i in 0..view.columns.len() {
            let cell = if i == *column {
                escape(&render_event_line(event))
            } else {
                String::new()
            };
            write!(out, "<td>{cell}</td>").unwrap();
        }
        out += "</tr>\n";
    }
    out += "</tbody>\n</table>\n";
    let [violation, explanation] = &view.violation;
    write!(
        out,
        "<section class=\"violation\">\n<p><strong>{}</strong></p>\n<p>{}</p>\n",
        escape(violation),
        escape(explanation)
    )
    .unwrap();
    out += "<p>objects involved:</p>\n<ul>\n";
    for object in &view.objects {
        writeln!(out, "<li>{}</li>", escape(object)).unwrap();
    }
    out + "</ul>\n</section>\n</body>\n</html>\n"
}

/// `text` safe in HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped += "&amp;",
            '<' => escaped += "&lt;",
            '>' => escaped += "&gt;",
            '"' => escaped += "&quot;",
            '\'' => escaped += "&#39;",
            c => escaped.push(c),
        }
    }
    escaped
}
