//! Logging set-up: `RUST_LOG` filters (default `info`), `PATCHBAY_LOG_FORMAT` picks one-line
//! human output (`pretty`, the default) or one JSON object per line (`json`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber; call once, early in `main`.
pub fn init(format: LogFormat) {
    install(format, "info");
}

/// The same for a command that prints its own progress: only warnings and errors unless
/// `RUST_LOG` says otherwise.
pub fn init_quiet(format: LogFormat) {
    install(format, "warn");
}

fn install(format: LogFormat, default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal: log files and collectors get the plain `key=value` text.
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
