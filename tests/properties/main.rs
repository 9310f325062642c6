//! Property tests: arbitrary bytes never panic the gateway's readers (request body, usage, SSE,
//! sanitizer), and what they read and pass on does not depend on how the bytes were split.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod generators;
mod inbound;
mod learning;
mod router;
mod sanitizer;
mod sse;
mod usage;

use proptest::test_runner::Config;

/// Cases per property: enough to find what these found, few enough for a debug build to run
/// the whole target in seconds. Failures are kept as named regression tests, not in files.
pub fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}
