//! Recording the model's `tracing` events while a run executes.

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use crate::Event;

/// Run `f` and return what it returns with every event of a `cowbreak*` target it emitted,
/// at any level, numbered from step 0.
///
/// Recording goes through one process-wide subscriber, installed on first use, that
/// records only on threads inside `capture` (shuttle and loom run every model thread on
/// the calling OS thread, so it sees them all). A per-call scoped subscriber would be
/// simpler, but tracing caches each call site's interest process-wide, and a call site
/// first reached on another thread while no capture is live can be cached as
/// uninteresting and lose events here. Elsewhere the subscriber costs one thread-local
/// check per `cowbreak` event. If a global subscriber was already set by someone else,
/// `capture` falls back to a scoped one. Events hold nothing from the OS (no time, no
/// thread ids), so a deterministic `f` records the same events every time. A panic in
/// `f` propagates and the events are lost: catch it inside `f` to keep them.
pub fn capture<R>(f: impl FnOnce() -> R) -> (R, Vec<Event>) {
    capture_with_threads(|| None, f)
}

/// [`capture`], with `thread_of` naming the thread of an event that has no `cpu` field
/// (the scheduler knows which model thread is running; the event does not say).
pub fn capture_with_threads<R>(
    thread_of: impl Fn() -> Option<u32> + 'static,
    f: impl FnOnce() -> R,
) -> (R, Vec<Event>) {
    static INSTALL: Once = Once::new();
    static GLOBAL: AtomicBool = AtomicBool::new(false);
    INSTALL.call_once(|| {
        let global = tracing_subscriber::registry().with(Recorder);
        GLOBAL.store(
            tracing::subscriber::set_global_default(global).is_ok(),
            Ordering::SeqCst,
        );
    });
    let previous = SINK.with(|s| {
        s.replace(Some(Sink {
            events: Vec::new(),
            thread_of: Box::new(thread_of),
        }))
    });
    // Restores the outer capture (if any) even when `f` panics.
    struct Restore(Option<Option<Sink>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(previous) = self.0.take() {
                SINK.with(|s| *s.borrow_mut() = previous);
            }
        }
    }
    let mut restore = Restore(Some(previous));
    let result = if GLOBAL.load(Ordering::SeqCst) {
        f()
    } else {
        tracing::subscriber::with_default(tracing_subscriber::registry().with(Recorder), f)
    };
    let events = SINK.with(|s| {
        s.borrow_mut()
            .take()
            .map(|sink| sink.events)
            .unwrap_or_default()
    });
    SINK.with(|s| *s.borrow_mut() = restore.0.take().flatten());
    (result, events)
}

/// Where the current thread's capture puts its events.
struct Sink {
    events: Vec<Event>,
    thread_of: Box<dyn Fn() -> Option<u32>>,
}

thread_local! {
    static SINK: RefCell<Option<Sink>> = const { RefCell::new(None) };
}

fn capturing() -> bool {
    SINK.with(|s| s.try_borrow().map(|s| s.is_some()).unwrap_or(false))
}

/// The layer the recording subscriber is made of.
struct Recorder;

impl<S: Subscriber> Layer<S> for Recorder {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if metadata.target().starts_with("cowbreak") {
            // Asked again at every event: whether this thread is capturing changes.
            Interest::sometimes()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        metadata.target().starts_with("cowbreak") && capturing()
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
        // Format the fields before borrowing the sink: a Debug impl might emit an event.
        event.record(&mut FieldRecorder(&mut recorded));
        let thread_of = |sink: &Sink| (sink.thread_of)();
        SINK.with(|s| {
            let Ok(mut sink) = s.try_borrow_mut() else {
                return;
            };
            let Some(sink) = sink.as_mut() else { return };
            if recorded.thread.is_none() {
                recorded.thread = thread_of(sink);
            }
            recorded.step = sink.events.len() as u64;
            sink.events.push(recorded);
        });
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
