//! An embedding model's card: who serves it, its vectors, its input limit and its price. Kept
//! apart from the chat cards so that the Router never ranks an embedding model for a chat.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::providers::ProviderKind;

/// What the catalog knows of one embedding model (`[[embeddings]]` in `settings/catalog.toml`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingCard {
    pub id: String,
    pub provider_type: ProviderKind,
    /// Other ids of the same model (Ollama's `:latest`, a Hugging Face repo id).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// The length of its vectors by default.
    pub dimensions: u32,
    /// The most tokens one input may hold.
    pub max_input_tokens: u64,
    /// USD per 1 million input tokens (an embedding has no output tokens).
    pub input_per_mtok: f64,
    pub sources: EmbeddingSources,
}

/// Where an embedding card's figures were read, and when.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingSources {
    pub prices: Cow<'static, str>,
    pub limits: Cow<'static, str>,
    /// The date (YYYY-MM-DD) the figures were last checked.
    pub checked: Cow<'static, str>,
}

impl EmbeddingCard {
    /// The card's id and its aliases.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.id.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}
