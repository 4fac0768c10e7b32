//! Logging to stderr, the same for every program built on the host: `l2l-host` and the Python
//! package (whose plugins' warnings would otherwise go nowhere).

use std::sync::atomic::{AtomicBool, Ordering};

/// Set by [`init_logging`] with `quiet`: progress bars are then hidden too.
static QUIET: AtomicBool = AtomicBool::new(false);

/// A progress bar of `len` steps on stderr, hidden with `-q` (indicatif hides it off a terminal).
pub fn progress_bar(len: u64) -> indicatif::ProgressBar {
    if QUIET.load(Ordering::Relaxed) {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(len)
    }
}

/// Logs to stderr: warnings by default, more with `verbose` (1: info, 2+: debug), errors only with
/// `quiet` (which hides progress bars too), or the `L2L_LOG` filter; colours only on a terminal and
/// without `NO_COLOR`. Only the first call of a process takes effect.
pub fn init_logging(verbose: u8, quiet: bool) {
    QUIET.fetch_or(quiet, Ordering::Relaxed);
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("L2L_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    let _already_set = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(colour)
        .try_init();
}
