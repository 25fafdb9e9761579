//! Which store each load read: the provenance of memory accesses, for traces of weak
//! memory.
//!
//! Under loom a load may return an older store than the last one in the order the
//! threads ran: that is what a weak-memory bug looks like. When recording is on (a
//! replay being captured into a trace, [`recording`]), every access a kernel primitive
//! makes is an event of target `cowbreak::mem`: stores get a number (`store`), and a
//! load says which store it read (`read_from`), whether that was not the latest store
//! to the location in the order the run went (`stale`, with `latest`), and, when the
//! same value was stored more than once, which other stores it could have been
//! (`also`): loom does not say which of two equal values a load returned, so the model
//! names the latest candidate and lists the others.
//!
//! When recording is off (exploration), each access costs one thread-local check.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static STATE: RefCell<State> = RefCell::new(State::default());
}

#[derive(Default)]
struct State {
    /// The name of every location of the current kernel, by address.
    names: HashMap<usize, String>,
    /// The stores to each location so far: (store number, value).
    stores: HashMap<usize, Vec<(u64, u64)>>,
    next: u64,
}

/// Run `f` with recording on (on this OS thread, where loom and shuttle run every model
/// thread of an execution), and off again after.
pub fn recording<R>(f: impl FnOnce() -> R) -> R {
    let was = ON.with(|on| on.replace(true));
    STATE.with(|s| *s.borrow_mut() = State::default());
    let r = f();
    ON.with(|on| on.set(was));
    STATE.with(|s| *s.borrow_mut() = State::default());
    r
}

/// Whether accesses are being recorded (on this OS thread).
pub fn is_on() -> bool {
    on()
}

/// Whether accesses are being recorded.
#[inline]
pub(crate) fn on() -> bool {
    ON.with(|on| on.get())
}

/// Name the location at `addr`, holding `value` from its creation (store 0 of it).
pub(crate) fn name(addr: usize, value: u64, name: impl FnOnce() -> String) {
    if !on() {
        return;
    }
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.names.insert(addr, name());
        s.stores.insert(addr, vec![(0, value)]);
    });
}

fn describe(s: &State, addr: usize) -> String {
    s.names
        .get(&addr)
        .cloned()
        .unwrap_or_else(|| format!("{addr:#x}"))
}

/// A store of `value` by primitive `prim`.
pub(crate) fn store(prim: &'static str, addr: usize, value: u64) {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.next += 1;
        let id = s.next;
        s.stores.entry(addr).or_default().push((id, value));
        let obj = describe(&s, addr);
        drop(s);
        tracing::trace!(target: "cowbreak::mem", func = prim, obj, value = format_args!("{value:#x}"), store = id, "store");
    });
}

/// A load by primitive `prim` that returned `value` (`rmw`: the read half of an RMW,
/// which always reads the latest store).
pub(crate) fn load(prim: &'static str, addr: usize, value: u64) {
    STATE.with(|s| {
        let s = s.borrow();
        let stores = s.stores.get(&addr);
        let latest = stores.and_then(|v| v.last()).map(|&(id, _)| id);
        let candidates: Vec<u64> = stores
            .into_iter()
            .flatten()
            .filter(|&&(_, v)| v == value)
            .map(|&(id, _)| id)
            .collect();
        let obj = describe(&s, addr);
        drop(s);
        let read_from = candidates.last().copied();
        let stale = read_from.is_some() && read_from != latest;
        let also: Vec<String> = candidates
            .iter()
            .rev()
            .skip(1)
            .map(|id| id.to_string())
            .collect();
        let read_from = read_from.map_or("?".to_string(), |id| id.to_string());
        let latest = latest.map_or("?".to_string(), |id| id.to_string());
        if also.is_empty() {
            tracing::trace!(target: "cowbreak::mem", func = prim, obj, value = format_args!("{value:#x}"), read_from, stale, latest, "load");
        } else {
            let also = also.join(",");
            tracing::trace!(target: "cowbreak::mem", func = prim, obj, value = format_args!("{value:#x}"), read_from, stale, latest, also, "load");
        }
    });
}
