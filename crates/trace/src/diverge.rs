//! Comparing a replay's events with a trace's.

use std::fmt;

use crate::{render_event_line, Event};

/// Where a replay first departs from a recorded trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Divergence {
    /// The first step at which the two differ.
    pub step: u64,
    /// The trace's event at `step`; `None` if the trace ended there.
    pub expected: Option<Event>,
    /// The run's event at `step`; `None` if the run ended there.
    pub actual: Option<Event>,
}

/// The first step at which `actual` (a replay) differs from `expected` (the trace), or
/// `None` if they are equal.
pub fn first_divergence(expected: &[Event], actual: &[Event]) -> Option<Divergence> {
    let step = expected
        .iter()
        .zip(actual)
        .take_while(|(e, a)| e == a)
        .count();
    (step < expected.len().max(actual.len())).then(|| Divergence {
        step: step as u64,
        expected: expected.get(step).cloned(),
        actual: actual.get(step).cloned(),
    })
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let step = self.step;
        match (&self.expected, &self.actual) {
            (Some(e), Some(a)) => {
                let (expected, actual) = (describe(e), describe(a));
                if expected == actual {
                    // They differ only in what the one-line form leaves out.
                    write!(f, "step {step}: expected {e:?}, got {a:?}")
                } else {
                    write!(f, "step {step}: expected {expected}, got {actual}")
                }
            }
            (Some(e), None) => write!(
                f,
                "the run ended at step {step}, the trace goes on with {}",
                describe(e)
            ),
            (None, Some(a)) => write!(
                f,
                "the trace ended at step {step}, the run goes on with {}",
                describe(a)
            ),
            (None, None) => write!(f, "step {step}: no difference"),
        }
    }
}

/// An event on one line, with its CPU.
fn describe(event: &Event) -> String {
    match event.thread {
        Some(cpu) => format!("cpu{cpu} {}", render_event_line(event)),
        None => render_event_line(event),
    }
}
