//! A plugin's `tracing` events, forwarded to the host: each plugin library links its own copy of
//! `tracing` with its own global dispatcher, which the host's subscriber never sees. When the host
//! loads a plugin it hands over its log sink ([`FfiLogSink`]); the plugin then installs a subscriber
//! that asks the sink whether an event is wanted and passes its text on. The target is the plugin's
//! crate name, `-` written `_` (`testkit_plugin`), so `L2L_LOG=testkit_plugin=debug` selects one
//! plugin. Spans are not forwarded.
//!
//! Plugins log with `l2l_plugin_api::tracing::warn!(…)` (or their own `tracing` 0.1: the same
//! dispatcher, since one copy of `tracing-core` is linked into the plugin library).

use crate::ffi::FfiLogSink;
use abi_stable::std_types::RStr;
use std::fmt::Write as _;
use std::sync::OnceLock;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// The plugin's name as its events' target, set with the sink.
static TARGET: OnceLock<String> = OnceLock::new();

/// The levels in the sink's numbering: 1 error … 5 trace (both ends use this one table).
const LEVELS: [Level; 5] = [Level::ERROR, Level::WARN, Level::INFO, Level::DEBUG, Level::TRACE];

/// A level as the sink's number.
fn level_number(level: &Level) -> u8 {
    LEVELS.iter().position(|l| l == level).map_or(5, |i| i as u8 + 1)
}

/// The level a sink's number stands for, `None` for a number that is none.
pub fn level_of(number: u8) -> Option<Level> {
    LEVELS.get(usize::from(number).checked_sub(1)?).copied()
}

/// Forwards every enabled event to the host's sink.
struct Forward {
    sink: FfiLogSink,
}

impl Forward {
    fn target(&self) -> &str {
        TARGET.get().map(String::as_str).unwrap_or("l2l_plugin")
    }
}

/// An event's fields as one line: its message, then `name=value` for the others.
#[derive(Default)]
struct Line {
    message: String,
    fields: String,
}

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

impl Subscriber for Forward {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        (self.sink.enabled)(level_number(metadata.level()), RStr::from_str(self.target()))
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = Line::default();
        event.record(&mut line);
        let text = format!("{}{}", line.message, line.fields);
        (self.sink.log)(
            level_number(event.metadata().level()),
            RStr::from_str(self.target()),
            RStr::from_str(&text),
        );
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// The root module's `set_log_sink`: installs the forwarding subscriber once, logging under
/// `target` (later sinks are ignored: a library is loaded once per process).
pub extern "C" fn ffi_set_log_sink(sink: FfiLogSink, target: RStr<'_>) {
    let target = target.as_str().replace('-', "_");
    let _ = std::panic::catch_unwind(move || {
        if TARGET.set(target).is_ok() {
            let _ = tracing::subscriber::set_global_default(Forward { sink });
        }
    });
}
