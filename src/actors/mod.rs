//! The gateway's actors, one concern each; messages live beside the actor that handles them.

pub mod cost_ledger;
pub mod project_tracker;
pub mod provider_registry;
pub mod router;
pub mod sanitizer;
pub mod signal_collector;
