//! Logging through tracing, filtered by `RUST_LOG` (default `info`), set up once.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; later calls do nothing (tests start many apps).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}
