//! Black-box tests: the real gateway on a free port, mock upstreams speaking the providers' wire formats.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod ask;
mod bad_input;
mod bounds;
mod config;
mod durability;
mod errors;
mod exposure;
mod hardening;
mod helpers;
mod key_map;
mod ledger;
mod metrics;
mod models;
mod pipeline;
mod provider_types;
mod replay;
mod routing;
mod sanitizer;
mod secrets;
mod shutdown;
mod signals;
mod streaming;
mod translation;
mod translation_features;
