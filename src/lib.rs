//! llm-gateway: one endpoint speaking the OpenAI and Anthropic APIs in front of every LLM provider.

pub mod access;
pub mod actors;
pub mod api;
pub mod ask;
pub mod catalog;
pub mod cli;
pub mod error;
pub mod keys;
pub mod ledger;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod pipeline;
pub mod providers;
pub mod request_context;
pub mod router;
pub mod routes;
pub mod runtime;
pub mod sanitizer;
pub mod secret;
pub mod settings;
pub mod signals;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod translate;
