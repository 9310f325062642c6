//! The gateway's actors, one concern each; messages live beside the actor that handles them.

pub mod provider_registry;
