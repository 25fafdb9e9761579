//! The trace crate through its public API: capture, the file round trip, the errors a
//! broken file gives, divergence, rendering.

use cowbreak_trace::*;

/// A stand-in for a model run: a fault on cpu1, a PTE update no CPU emits, the oracle's
/// report, and an event of a foreign target that capture must ignore.
fn run_model() {
    let pte = "pfn3 RO D";
    tracing::info!(target: "other_crate", cpu = 0usize, "not ours");
    tracing::trace!(target: "cowbreak::mm", cpu = 1usize, mm = 1usize, func = "handle_mm_fault", addr = 0x8000u64, write = true, unshare = false);
    tracing::trace!(target: "cowbreak::mm", func = "wp_page_copy", mm = 1usize, addr = 0x8000u64, old = %pte, new = "pfn4 W D", "set_pte_at");
    tracing::trace!(target: "cowbreak::mm", cpu = 0usize, mm = 0usize, func = "read_pinned_page", addr = 0x8000u64, pfn = 3u64);
    let message = "mm0 reads pfn 3 at 0x8000, but mm1 maps pfn 4 <after COW>";
    tracing::warn!(target: "cowbreak::oracle", kind = "pin-coherence", at = "do_wp_page", %message, "violation");
}

fn sample() -> TraceFile {
    let ((), events) = capture(run_model);
    TraceFile {
        format: FORMAT.into(),
        version: VERSION,
        model_version: "0.1.0".into(),
        scenario: ScenarioInfo {
            name: "pin-then-cow".into(),
            source: "thread reader {}\n".into(),
            path: Some("scenarios/pin.cb".into()),
        },
        era: "v5.9".into(),
        arch: "x86".into(),
        switches: vec![
            ("write_protect_seq".into(), false),
            ("unshare".into(), true),
        ],
        backend: BackendInfo {
            name: "pct".into(),
            params: [("depth".into(), 3.into()), ("seed".into(), 42.into())].into(),
        },
        schedule: Schedule {
            encoding: "shuttle".into(),
            data: "910e02".into(),
            steps: 17,
        },
        threads: vec![
            ThreadInfo {
                id: 0,
                name: "reader".into(),
                process: "parent".into(),
            },
            ThreadInfo {
                id: 1,
                name: "writer".into(),
                process: "child".into(),
            },
        ],
        events,
        violation: ViolationRecord {
            kind: "pin-coherence".into(),
            at: "do_wp_page".into(),
            message: "mm0 reads pfn 3 at 0x8000, but mm1 maps pfn 4 <after COW>".into(),
            explanation: "a pinned page is no longer what its holder maps: COW broke the wrong way"
                .into(),
        },
    }
}

#[test]
fn write_then_read_round_trips() {
    let dir = std::env::temp_dir().join(format!("cowbreak-trace-test-{}", std::process::id()));
    let path = dir.join("nested/trace.json");
    let trace = sample();
    trace.write(&path).unwrap();
    let read = TraceFile::read(&path);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(read.unwrap(), trace);
}

#[test]
fn read_names_a_missing_file() {
    let err = TraceFile::read("no/such/trace.json".as_ref()).unwrap_err();
    assert!(err.to_string().starts_with("no/such/trace.json: "), "{err}");
}

#[test]
fn capture_records_cowbreak_events_only() {
    let x = "pfn3 RO";
    let ((), events) = capture(|| {
        tracing::trace!(target: "cowbreak::mm", cpu = 1usize, func = "do_wp_page", addr = 0x8000u64, old = ?x, "msg");
        tracing::trace!(target: "elsewhere", cpu = 0usize, func = "ignored");
    });
    let expected = Event {
        step: 0,
        thread: Some(1),
        target: "cowbreak::mm".into(),
        level: "TRACE".into(),
        func: Some("do_wp_page".into()),
        message: "msg".into(),
        fields: [
            ("addr".into(), "32768".into()),
            ("old".into(), "\"pfn3 RO\"".into()),
        ]
        .into(),
    };
    assert_eq!(events, [expected]);
}

#[test]
fn capture_keeps_the_oracles_message_field() {
    let ((), events) = capture(run_model);
    let report = events.last().unwrap();
    assert_eq!(
        (
            report.step,
            report.thread,
            report.level.as_str(),
            report.message.as_str()
        ),
        (3, None, "WARN", "violation")
    );
    assert_eq!(report.fields["kind"], "pin-coherence");
    assert_eq!(
        report.fields["message"],
        "mm0 reads pfn 3 at 0x8000, but mm1 maps pfn 4 <after COW>"
    );
}

#[test]
fn capture_is_deterministic() {
    assert_eq!(capture(run_model).1, capture(run_model).1);
}

/// `from_json` on `text` fails with exactly `expected`, after `traces/x.json`.
fn check_error(text: &str, expected: &str) {
    let err = TraceFile::from_json(text, "traces/x.json").unwrap_err();
    assert_eq!(err.to_string(), format!("traces/x.json{expected}"));
}

fn sample_json_with(edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) -> String {
    let mut value = serde_json::to_value(sample()).unwrap();
    edit(value.as_object_mut().unwrap());
    serde_json::to_string_pretty(&value).unwrap()
}

#[test]
fn from_json_locates_syntax_errors() {
    check_error("not json", ":1:2: expected ident");
    check_error(
        "{\n  \"format\": \"cowbreak-trace\"\n  \"version\": 1\n}",
        ":3:3: expected `,` or `}`",
    );
}

#[test]
fn from_json_locates_truncation() {
    let text = sample().to_json_pretty();
    let truncated = &text[..text.len() / 2];
    let err = TraceFile::from_json(truncated, "traces/x.json")
        .unwrap_err()
        .to_string();
    let line = truncated.lines().count();
    assert!(
        err.starts_with(&format!("traces/x.json:{line}:")) && err.contains("EOF while parsing"),
        "{err}"
    );
}

#[test]
fn from_json_rejects_foreign_json() {
    check_error(
        r#"{"hello": 1}"#,
        r#": not a cowbreak trace (no "format": "cowbreak-trace" marker)"#,
    );
    check_error(
        "[1, 2]",
        r#": not a cowbreak trace (no "format": "cowbreak-trace" marker)"#,
    );
}

#[test]
fn from_json_rejects_other_versions() {
    let text = sample_json_with(|trace| drop(trace.insert("version".into(), 99.into())));
    check_error(
        &text,
        ": trace format version 99, this cowbreak reads version 3",
    );
}

#[test]
fn from_json_names_a_missing_field() {
    let text = sample_json_with(|trace| drop(trace.remove("events")));
    let err = TraceFile::from_json(&text, "traces/x.json")
        .unwrap_err()
        .to_string();
    let lines = text.lines().count();
    assert!(
        err.starts_with(&format!("traces/x.json:{lines}:"))
            && err.ends_with("missing field `events`"),
        "{err}"
    );
}

#[test]
fn first_divergence_of_equal_runs_is_none() {
    let events = sample().events;
    assert_eq!(first_divergence(&events, &events), None);
}

#[test]
fn first_divergence_finds_a_changed_field() {
    let expected = sample().events;
    let mut actual = expected.clone();
    actual[1].fields.insert("new".into(), "pfn3 W D".into());
    let divergence = first_divergence(&expected, &actual).unwrap();
    assert_eq!(
        (
            divergence.step,
            divergence.expected.as_ref(),
            divergence.actual.as_ref()
        ),
        (1, expected.get(1), actual.get(1))
    );
    assert_eq!(
        divergence.to_string(),
        "step 1: expected wp_page_copy mm1 addr=0x8000 pfn3 RO D→pfn4 W D (set_pte_at), \
         got wp_page_copy mm1 addr=0x8000 pfn3 RO D→pfn3 W D (set_pte_at)"
    );
}

#[test]
fn first_divergence_finds_a_short_run() {
    let expected = sample().events;
    let divergence = first_divergence(&expected, &expected[..2]).unwrap();
    assert_eq!((divergence.step, &divergence.actual), (2, &None));
    assert_eq!(
        divergence.to_string(),
        "the run ended at step 2, the trace goes on with cpu0 read_pinned_page mm0 addr=0x8000 pfn=3"
    );
}

#[test]
fn render_text_shows_threads_events_and_violation() {
    let trace = sample();
    let text = render_text(&trace, 100);
    for header in ["kernel", "reader", "writer"] {
        assert!(
            text.contains(&format!(" │ {header}")),
            "no column {header}:\n{text}"
        );
    }
    for event in &trace.events {
        assert!(
            text.contains(event.func.as_deref().unwrap_or("violation")),
            "no step {}:\n{text}",
            event.step
        );
    }
    assert!(
        text.contains("violation pin-coherence at do_wp_page"),
        "{text}"
    );
    assert!(text.contains("pfn 3: events 1, 2"), "{text}");
    assert!(
        text.contains("event │"),
        "rows are numbered as events:\n{text}"
    );
    // Nothing is cut: cells wrap, and the events touching the violation's objects are
    // printed whole under the table.
    assert!(!text.contains('…'), "{text}");
    let below = text
        .split("events that touch them:")
        .nth(1)
        .expect("the list");
    for e in trace.events.iter().filter(|e| [1, 2].contains(&e.step)) {
        assert!(
            below.contains(&cowbreak_trace::render_event_line(e)),
            "{below}"
        );
    }
    // Any width, however narrow or wide, renders.
    for width in [0, 1, 30, 60, 100, 10_000] {
        let t = render_text(&trace, width);
        assert!(t.contains("violation pin-coherence"), "{width}");
        if width >= 60 {
            // The table's rows fit the width.
            for line in t.lines().filter(|l| l.contains(" │ ")) {
                assert!(line.chars().count() <= width, "{width}: {line}");
            }
        }
    }
}

#[test]
fn render_html_escapes_text() {
    let html = render_html(&sample());
    assert!(html.contains("pfn 4 &lt;after COW&gt;"), "{html}");
    assert!(!html.contains("<after"), "{html}");
}

/// Regression: with a scoped subscriber per capture, a call site first reached on
/// another thread while no capture was live could be cached as uninteresting, and a
/// concurrent capture then lost its events (seen as flaky replays under `cargo test`).
#[test]
fn capture_keeps_every_event_while_other_threads_emit() {
    fn emit(n: u64) {
        for i in 0..n {
            tracing::trace!(target: "cowbreak::mm", func = "race", i);
        }
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let noisy: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    emit(10);
                }
            })
        })
        .collect();
    for _ in 0..200 {
        let ((), events) = capture(|| emit(25));
        assert_eq!(
            events.len(),
            25,
            "a capture saw another thread's events or lost its own"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in noisy {
        t.join().unwrap();
    }
}
