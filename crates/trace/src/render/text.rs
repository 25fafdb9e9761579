//! The terminal renderer.

use std::fmt::Write;

use super::{render_event_line, View};
use crate::TraceFile;

/// The narrowest a thread column gets, whatever the width.
const COLUMN_WIDTH_MIN: usize = 12;

/// Between columns.
const SEPARATOR: &str = " │ ";

/// The trace for a terminal `width` characters wide: a header on what ran, the
/// interleaving with one column per thread (and a `kernel` column for events no CPU
/// emits) and one row per event, then the violation and the objects it names with the
/// steps that touch them. Cells longer than their column end in `…`.
pub fn render_text(trace: &TraceFile, width: usize) -> String {
    let view = View::new(trace);
    let step_width = trace
        .events
        .len()
        .saturating_sub(1)
        .to_string()
        .len()
        .max("step".len());
    let columns = view.columns.len();
    let cell_width = (width.saturating_sub(step_width) / columns.max(1))
        .saturating_sub(SEPARATOR.chars().count())
        .max(COLUMN_WIDTH_MIN);
    let row = |step: &str, cells: &[&str]| {
        let mut line = format!("{step:>step_width$}");
        for cell in cells {
            write!(
                line,
                "{SEPARATOR}{:<cell_width$}",
                truncate(cell, cell_width)
            )
            .unwrap();
        }
        line.trim_end().to_owned() + "\n"
    };

    let mut out = view.header.join("\n") + "\n\n";
    out += &row(
        "step",
        &view.columns.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    out += &"─".repeat(step_width);
    out += &format!("─┼─{}", "─".repeat(cell_width)).repeat(columns);
    out += "\n";
    for (column, event) in &view.rows {
        let text = render_event_line(event);
        let mut cells = vec![""; columns];
        cells[*column] = &text;
        out += &row(&event.step.to_string(), &cells);
    }
    let [violation, explanation] = &view.violation;
    write!(out, "\n{violation}\n  {explanation}\nobjects involved:").unwrap();
    for object in &view.objects {
        write!(out, "\n  {object}").unwrap();
    }
    out + "\n"
}

/// `text` cut to `width` characters, the last one `…` if cut.
fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        text.chars().take(width - 1).chain(['…']).collect()
    }
}
