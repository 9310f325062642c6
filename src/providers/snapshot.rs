//! The providers as the request path sees them: an immutable snapshot the ProviderRegistry
//! actor publishes (an `ArcSwap`), read by the route plan and the router without a message.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Provider, ProviderKind};

/// What the request path sees: the providers in configuration order and the models local servers reported.
#[derive(Debug, Default, Clone)]
pub struct RegistrySnapshot {
    pub providers: Vec<Arc<Provider>>,
    pub discovered: HashMap<String, Arc<Vec<String>>>,
    /// The context windows local servers reported, by provider id and model id.
    pub contexts: HashMap<String, Arc<HashMap<String, u64>>>,
}

impl RegistrySnapshot {
    /// Whether any enabled local provider could report new models on a refresh.
    pub fn has_local_providers(&self) -> bool {
        self.providers
            .iter()
            .any(|p| p.enabled && p.kind == ProviderKind::Local)
    }

    /// The context window a local server reported for one of its models.
    pub fn reported_context(&self, provider: &str, model: &str) -> Option<u64> {
        self.contexts.get(provider)?.get(model).copied()
    }

    /// The ids of the enabled providers, for `/health`.
    pub fn enabled_ids(&self) -> Vec<String> {
        self.providers
            .iter()
            .filter(|p| p.enabled)
            .map(|p| p.id.clone())
            .collect()
    }
}
