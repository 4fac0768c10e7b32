//! The host's end of plugin logging (see `l2l_plugin_api::logging`): the sink a plugin receives when
//! it is loaded. Each plugin's events arrive as a level, a target (the plugin's name) and a line, and
//! are dispatched to the host's subscriber as events of that target — so `-v` and `L2L_LOG`
//! (`L2L_LOG=testkit_plugin=debug`) filter them like the host's own. The host's callsites for them
//! are made once per target and level (a handful per plugin) and live as long as the process.

use abi_stable::std_types::RStr;
use l2l_plugin_api::ffi::FfiLogSink;
use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock, PoisonError};
use tracing::field::{display, FieldSet, Value};
use tracing::{Event, Metadata};
use tracing_core::callsite::{Callsite, Identifier};
use tracing_core::metadata::Kind;
use tracing_core::subscriber::Interest;

/// The sink handed to every plugin at load.
pub fn sink() -> FfiLogSink {
    FfiLogSink { enabled, log }
}

/// The callsite of one plugin target at one level.
struct PluginCallsite {
    metadata: OnceLock<Metadata<'static>>,
}

impl Callsite for PluginCallsite {
    fn set_interest(&self, _: Interest) {}
    fn metadata(&self) -> &Metadata<'_> {
        self.metadata.get().expect("set when the callsite is made")
    }
}

/// Callsites made so far, by target and level number.
static CALLSITES: Mutex<BTreeMap<(String, u8), &'static PluginCallsite>> = Mutex::new(BTreeMap::new());

/// The metadata of `target`'s events at `level` (1 error … 5 trace), made and registered once.
fn metadata(target: &str, level: u8) -> Option<&'static Metadata<'static>> {
    let level_value = l2l_plugin_api::logging::level_of(level)?;
    let mut callsites = CALLSITES.lock().unwrap_or_else(PoisonError::into_inner);
    let callsite = *callsites.entry((target.to_string(), level)).or_insert_with(|| {
        let target: &'static str = Box::leak(target.to_string().into_boxed_str());
        let callsite: &'static PluginCallsite = Box::leak(Box::new(PluginCallsite {
            metadata: OnceLock::new(),
        }));
        let fields = FieldSet::new(&["message"], Identifier(callsite));
        let _ = callsite.metadata.set(Metadata::new(
            "plugin event",
            target,
            level_value,
            None,
            None,
            None,
            fields,
            Kind::EVENT,
        ));
        tracing_core::callsite::register(callsite);
        callsite
    });
    callsite.metadata.get()
}

extern "C" fn enabled(level: u8, target: RStr<'_>) -> bool {
    std::panic::catch_unwind(|| {
        metadata(target.as_str(), level)
            .is_some_and(|metadata| tracing::dispatcher::get_default(|d| d.enabled(metadata)))
    })
    .unwrap_or(false)
}

extern "C" fn log(level: u8, target: RStr<'_>, message: RStr<'_>) {
    let _ = std::panic::catch_unwind(|| {
        let Some(metadata) = metadata(target.as_str(), level) else {
            return;
        };
        let fields = metadata.fields();
        if let Some(field) = fields.field("message") {
            // the host prints no targets: the plugin is named in the line
            let text = format!("{}: {}", target.as_str(), message.as_str());
            let text = display(&text);
            let values = [(&field, Some(&text as &dyn Value))];
            Event::dispatch(metadata, &fields.value_set(&values));
        }
    });
}
