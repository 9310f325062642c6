//! llm-gateway: one endpoint speaking the OpenAI and Anthropic APIs in front of every LLM provider.

pub mod access;
pub mod actors;
pub mod catalog;
pub mod cli;
pub mod error;
pub mod keys;
pub mod ledger;
pub mod metrics;
pub mod openapi;
pub mod providers;
pub mod proxy;
pub mod request_context;
pub mod routes;
pub mod sanitizer;
pub mod secret;
pub mod settings;
pub mod startup;
pub mod telemetry;
