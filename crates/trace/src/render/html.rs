//! The HTML renderer.

use std::fmt::Write;

use super::{object_keys, render_event_line, View};
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
tr.hl td { background: #fff3b0 !important; }
li[data-key] { cursor: pointer; text-decoration: underline dotted; }
li.on { font-weight: bold; }
pre.scenario { background: #f6f6f6; padding: 0.6em; }
div.pair { display: flex; gap: 2em; align-items: flex-start; }
";

/// Click an object in the violation's list: every event that touches it lights up
/// (click again to clear). Inline, so the page fetches nothing.
const SCRIPT: &str = "\
document.querySelectorAll('li[data-key]').forEach(function (li) {
  li.addEventListener('click', function () {
    var key = li.getAttribute('data-key');
    var on = !li.classList.contains('on');
    li.classList.toggle('on', on);
    document.querySelectorAll('tr[data-objects]').forEach(function (tr) {
      var keys = tr.getAttribute('data-objects').split(' ');
      if (keys.indexOf(key) >= 0) { tr.classList.toggle('hl', on); }
    });
  });
});
";

/// What a page can show beyond the trace itself.
#[derive(Default)]
pub struct HtmlExtras<'a> {
    /// Switches whose recorded value differs from the era's and architecture's preset.
    pub differs_from_preset: Vec<(String, bool)>,
    /// The minimized trace of the same violation, shown beside the original.
    pub minimized: Option<&'a TraceFile>,
}

/// The trace as a self-contained HTML page (inline CSS and script, nothing fetched):
/// the same header, table and violation as [`render_text`](crate::render_text), with
/// cells never cut and rows of warnings (the oracle's report) highlighted.
pub fn render_html(trace: &TraceFile) -> String {
    render_html_with(trace, &HtmlExtras::default())
}

/// [`render_html`] with the scenario's text, a link to the violation, the switches that
/// differ from the preset, objects that light up the events touching them when clicked,
/// and the minimized schedule beside the original when `extras` has one.
pub fn render_html_with(trace: &TraceFile, extras: &HtmlExtras<'_>) -> String {
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
    writeln!(
        out,
        "<p><a id=\"to-violation\" href=\"#violation\">jump to the violation</a></p>"
    )
    .unwrap();
    for line in &view.header {
        writeln!(out, "<p class=\"header\">{}</p>", escape(line)).unwrap();
    }
    if !extras.differs_from_preset.is_empty() {
        let d: Vec<String> = extras
            .differs_from_preset
            .iter()
            .map(|(n, on)| format!("{n}={}", if *on { "on" } else { "off" }))
            .collect();
        writeln!(
            out,
            "<p class=\"header\" id=\"differs\"><strong>differs from the {} {} preset:</strong> {}</p>",
            escape(&trace.era),
            escape(&trace.arch),
            escape(&d.join(", "))
        )
        .unwrap();
    }
    writeln!(
        out,
        "<details id=\"scenario\"><summary>scenario {}</summary>\n<pre class=\"scenario\">{}</pre></details>",
        escape(&trace.scenario.name),
        escape(&trace.scenario.source)
    )
    .unwrap();
    let anchored = match extras.minimized {
        None => table(&mut out, &view, "trace"),
        Some(min) => {
            out += "<div class=\"pair\">\n<div>\n<h2>as found</h2>\n";
            let anchored = table(&mut out, &view, "trace");
            out += "</div>\n<div>\n<h2>minimized</h2>\n";
            writeln!(
                out,
                "<p class=\"header\">{} scheduling steps (from {})</p>",
                min.schedule.steps, trace.schedule.steps
            )
            .unwrap();
            table(&mut out, &View::new(min), "min");
            out += "</div>\n</div>\n";
            anchored
        }
    };
    let [violation, explanation] = &view.violation;
    write!(
        out,
        "<section class=\"violation\" id=\"{}\">\n<p><strong>{}</strong></p>\n<p>{}</p>\n",
        // Without a report row in the table (a deadlock), the link lands here.
        if anchored {
            "violation-summary"
        } else {
            "violation"
        },
        escape(violation),
        escape(explanation)
    )
    .unwrap();
    out += "<p>objects involved (click one to light up the events that touch it):</p>\n<ul>\n";
    if view.keyed_objects.is_empty() {
        for object in &view.objects {
            writeln!(out, "<li>{}</li>", escape(object)).unwrap();
        }
    }
    for (key, line) in &view.keyed_objects {
        writeln!(
            out,
            "<li data-key=\"{}\">{}</li>",
            escape(key),
            escape(line)
        )
        .unwrap();
    }
    out += "</ul>\n</section>\n<script>\n";
    out += SCRIPT;
    out + "</script>\n</body>\n</html>\n"
}

/// The interleaving as a table; the oracle's report row of the first table gets the
/// `violation` anchor. Returns whether it did.
fn table(out: &mut String, view: &View<'_>, id: &str) -> bool {
    write!(out, "<table id=\"{id}\">\n<thead><tr><th>event</th>").unwrap();
    for name in &view.columns {
        write!(out, "<th>{}</th>", escape(name)).unwrap();
    }
    *out += "</tr></thead>\n<tbody>\n";
    let mut anchored = id != "trace";
    for (column, event) in &view.rows {
        let level = escape(&event.level.to_ascii_lowercase());
        let anchor = if !anchored && event.target == "cowbreak::oracle" {
            anchored = true;
            " id=\"violation\""
        } else {
            ""
        };
        write!(
            out,
            "<tr class=\"{level}\"{anchor} data-objects=\"{}\"><td class=\"step\">{}</td>",
            escape(&object_keys(event).join(" ")),
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
        *out += "</tr>\n";
    }
    *out += "</tbody>\n</table>\n";
    id == "trace" && anchored
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
