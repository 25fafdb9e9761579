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
/// emits) and one row per event, then the violation, the objects it names and every
/// event that touches them, in full. Columns get room by what they hold (an empty one
/// only its name); a cell longer than its column wraps onto more lines.
pub fn render_text(trace: &TraceFile, width: usize) -> String {
    let view = View::new(trace);
    let event_width = trace
        .events
        .len()
        .saturating_sub(1)
        .to_string()
        .len()
        .max("event".len());
    let columns = view.columns.len();
    let texts: Vec<(usize, u64, String)> = view
        .rows
        .iter()
        .map(|(c, e)| (*c, e.step, render_event_line(e)))
        .collect();
    let widths = column_widths(&view.columns, &texts, width.saturating_sub(event_width));
    let row = |event: &str, cells: &[&str]| {
        let wrapped: Vec<Vec<String>> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, &w)| {
                textwrap::wrap(cell, textwrap::Options::new(w).break_words(true))
                    .into_iter()
                    .map(|l| l.into_owned())
                    .collect()
            })
            .collect();
        let lines = wrapped.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let mut out = String::new();
        for i in 0..lines {
            let mut line = format!("{:>event_width$}", if i == 0 { event } else { "" });
            for (cell, &w) in wrapped.iter().zip(&widths) {
                write!(
                    line,
                    "{SEPARATOR}{:<w$}",
                    cell.get(i).map_or("", String::as_str)
                )
                .unwrap();
            }
            out += line.trim_end();
            out += "\n";
        }
        out
    };

    let mut out = view.header.join("\n") + "\n\n";
    out += &row(
        "event",
        &view.columns.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    out += &"─".repeat(event_width);
    for w in &widths {
        out += &format!("─┼─{}", "─".repeat(*w));
    }
    out += "\n";
    for (column, step, text) in &texts {
        let mut cells = vec![""; columns];
        cells[*column] = text;
        out += &row(&step.to_string(), &cells);
    }
    let [violation, explanation] = &view.violation;
    write!(out, "\n{violation}\n  {explanation}\nobjects involved:").unwrap();
    for object in &view.objects {
        write!(out, "\n  {object}").unwrap();
    }
    if !view.touching.is_empty() {
        write!(out, "\nevents that touch them:").unwrap();
        for e in &view.touching {
            let thread = view
                .rows
                .iter()
                .find(|(_, r)| r.step == e.step)
                .map_or("", |(c, _)| view.columns[*c].as_str());
            write!(
                out,
                "\n  {:>event_width$}  {thread:<10} {}",
                e.step,
                render_event_line(e)
            )
            .unwrap();
        }
    }
    out + "\n"
}

/// Each column's width within `width`: every column at least its name (and
/// [`COLUMN_WIDTH_MIN`] if it holds events), the rest shared in proportion to what the
/// column's longest event needs, and no column wider than that.
fn column_widths(names: &[String], texts: &[(usize, u64, String)], width: usize) -> Vec<usize> {
    let n = names.len().max(1);
    let available = width.saturating_sub(n * SEPARATOR.chars().count());
    let need: Vec<usize> = (0..names.len())
        .map(|c| {
            texts
                .iter()
                .filter(|(col, _, _)| *col == c)
                .map(|(_, _, t)| t.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let floor: Vec<usize> = names
        .iter()
        .zip(&need)
        .map(|(name, &need)| {
            let name = name.chars().count();
            if need == 0 {
                name
            } else {
                name.max(COLUMN_WIDTH_MIN.min(need))
            }
        })
        .collect();
    let base: usize = floor.iter().sum();
    let spare = available.saturating_sub(base);
    let extra: Vec<usize> = need
        .iter()
        .zip(&floor)
        .map(|(n, f)| n.saturating_sub(*f))
        .collect();
    let wanted: usize = extra.iter().sum();
    floor
        .iter()
        .zip(&extra)
        .map(|(f, e)| {
            let share = if wanted <= spare {
                *e
            } else {
                e * spare / wanted.max(1)
            };
            (f + share).max(1)
        })
        .collect()
}
