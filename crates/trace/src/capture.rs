//! Recording the model's `tracing` events while a run executes.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use tracing::field::{Field, Visit};
use tracing::{Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use crate::Event;

/// Run `f` and return what it returns with every event of a `cowbreak*` target it emitted,
/// at any level, numbered from step 0.
///
/// The recording subscriber is the calling thread's default for the duration of `f`
/// (`tracing::subscriber::with_default`): it sees the events of shuttle and loom
/// executions, which run every model thread on the calling OS thread, but not those of
/// OS threads `f` spawns, and it hides any global subscriber meanwhile. Events hold
/// nothing from the OS (no time, no thread ids), so a deterministic `f` records the same
/// events every time. A panic in `f` propagates and the events are lost: catch it inside
/// `f` to keep them.
pub fn capture<R>(f: impl FnOnce() -> R) -> (R, Vec<Event>) {
    capture_with_threads(|| None, f)
}

/// [`capture`], with `thread_of` naming the thread of an event that has no `cpu` field
/// (the scheduler knows which model thread is running; the event does not say).
pub fn capture_with_threads<R>(
    thread_of: impl Fn() -> Option<u32> + Send + Sync + 'static,
    f: impl FnOnce() -> R,
) -> (R, Vec<Event>) {
    let recorder = Recorder {
        events: Arc::default(),
        thread_of: Box::new(thread_of),
    };
    let events = Arc::clone(&recorder.events);
    let result =
        tracing::subscriber::with_default(tracing_subscriber::registry().with(recorder), f);
    let events = std::mem::take(&mut *events.lock().unwrap_or_else(PoisonError::into_inner));
    (result, events)
}

/// The layer [`capture`] installs.
struct Recorder {
    events: Arc<Mutex<Vec<Event>>>,
    thread_of: Box<dyn Fn() -> Option<u32> + Send + Sync>,
}

impl<S: Subscriber> Layer<S> for Recorder {
    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        metadata.target().starts_with("cowbreak")
    }

    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let metadata = event.metadata();
        let mut recorded = Event {
            step: 0,
            thread: None,
            target: metadata.target().to_owned(),
            level: metadata.level().to_string(),
            func: None,
            message: String::new(),
            fields: Default::default(),
        };
        // Format the fields before taking the lock: a Debug impl might emit an event.
        event.record(&mut FieldRecorder(&mut recorded));
        if recorded.thread.is_none() {
            recorded.thread = (self.thread_of)();
        }
        let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        recorded.step = events.len() as u64;
        events.push(recorded);
    }
}

/// Sorts an event's fields into [`Event`]'s slots.
struct FieldRecorder<'a>(&'a mut Event);

impl FieldRecorder<'_> {
    fn record(&mut self, name: &str, value: String) {
        let event = &mut *self.0;
        match name {
            "cpu" if value.parse::<u32>().is_ok() => event.thread = value.parse().ok(),
            "func" => event.func = Some(value),
            // The format-string message comes first; an explicit `message` field after it
            // (the oracle's `%message`) is kept as a field.
            "message" if event.message.is_empty() => event.message = value,
            _ => {
                event.fields.insert(name.to_owned(), value);
            }
        }
    }
}

impl Visit for FieldRecorder<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field.name(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record(field.name(), format!("{value:?}"));
    }
}
