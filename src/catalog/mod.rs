//! The model catalog (`settings/catalog.toml`, with the configuration's `[[models]]` on top):
//! which provider type serves a model id, by name or by family, and the card of each model it
//! knows (its prices are read by `ledger::pricing`, the rest by the router); and the embedding
//! models (`[[embeddings]]`), priced but never routed.

pub mod card;
pub mod embedding;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use regex::RegexSet;
use serde::Deserialize;

use crate::providers::ProviderKind;
pub use card::{Capabilities, Capability, CardOrigin, CardPatch, ModelCard, TaskKind};
pub use embedding::EmbeddingCard;

const CATALOG_TOML: &str = include_str!("../../settings/catalog.toml");

/// The known models and the family rules, loaded once at start-up.
#[derive(Debug)]
pub struct Catalog {
    /// Every id and alias → its card's index in `models` (foldhash: looked up for every
    /// candidate of every routed request).
    by_id: HashMap<String, usize, foldhash::fast::RandomState>,
    /// Local cards by every id and alias lowercased, and by the part after an organisation
    /// prefix (`qwen/qwen2.5-7b-instruct` → `qwen2.5-7b-instruct`).
    local_by_name: HashMap<String, usize, foldhash::fast::RandomState>,
    /// Shared with the Router's prepared candidates (a clone is a reference count).
    models: Vec<Arc<ModelCard>>,
    families: Vec<(ProviderKind, RegexSet)>,
    /// The embedding models, in file order (a handful: looked up by a scan).
    embeddings: Vec<EmbeddingCard>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    families: HashMap<ProviderKind, Vec<String>>,
    models: Vec<ModelCard>,
    #[serde(default)]
    embeddings: Vec<EmbeddingCard>,
}

impl Catalog {
    /// The catalog shipped in the binary.
    pub fn embedded() -> Result<Self, String> {
        Self::parse(CATALOG_TOML)
    }

    /// The shipped catalog with the configuration's cards added or changed; the error names
    /// the `models[i].field` at fault.
    pub fn with_patches(patches: &[CardPatch]) -> Result<Self, (String, String)> {
        let mut catalog = Self::embedded().map_err(|e| ("models".to_string(), e))?;
        for (i, patch) in patches.iter().enumerate() {
            let at = |(field, message): (String, String)| (format!("models[{i}].{field}"), message);
            patch.validate().map_err(at)?;
            match catalog.by_id.get(&patch.id).copied() {
                Some(index) => patch.apply(Arc::make_mut(&mut catalog.models[index])),
                None => catalog.models.push(Arc::new(patch.to_card().map_err(at)?)),
            }
            catalog.index();
        }
        Ok(catalog)
    }

    fn parse(text: &str) -> Result<Self, String> {
        let file: CatalogFile =
            toml::from_str(text).map_err(|e| format!("invalid settings/catalog.toml: {e}"))?;
        let mut families = Vec::new();
        for (kind, patterns) in file.families {
            let set = RegexSet::new(&patterns)
                .map_err(|e| format!("invalid family pattern in settings/catalog.toml: {e}"))?;
            families.push((kind, set));
        }
        let mut catalog = Self {
            by_id: HashMap::default(),
            local_by_name: HashMap::default(),
            models: file.models.into_iter().map(Arc::new).collect(),
            families,
            embeddings: file.embeddings,
        };
        catalog.index();
        Ok(catalog)
    }

    /// Rebuilds the id index; a later card's id wins over an earlier card's alias.
    fn index(&mut self) {
        self.by_id.clear();
        for (i, card) in self.models.iter().enumerate() {
            for alias in &card.aliases {
                self.by_id.entry(alias.clone()).or_insert(i);
            }
        }
        for (i, card) in self.models.iter().enumerate() {
            self.by_id.insert(card.id.clone(), i);
        }
        self.local_by_name.clear();
        for (i, card) in self.models.iter().enumerate() {
            if card.provider_type != ProviderKind::Local {
                continue;
            }
            for id in card.ids() {
                let lower = id.to_ascii_lowercase();
                if let Some((_, bare)) = lower.rsplit_once('/') {
                    self.local_by_name.entry(bare.to_string()).or_insert(i);
                }
                self.local_by_name.entry(lower).or_insert(i);
            }
        }
    }

    /// The card of a model id or alias.
    pub fn card(&self, model: &str) -> Option<&ModelCard> {
        self.shared_card(model).map(|c| &**c)
    }

    /// The card of a model id or alias, as the catalog holds it.
    pub fn shared_card(&self, model: &str) -> Option<&Arc<ModelCard>> {
        self.by_id.get(model).map(|&i| &self.models[i])
    }

    /// The card of a model a local server reported: by its id, else by its name without a
    /// `:latest` tag or an organisation prefix, case-insensitively (`Qwen/Qwen2.5-7B-Instruct`).
    pub fn local_card(&self, model: &str) -> Option<&Arc<ModelCard>> {
        if let Some(card) = self
            .shared_card(model)
            .filter(|c| c.provider_type == ProviderKind::Local)
        {
            return Some(card);
        }
        // Servers mostly report lowercase names: lowered only when needed (this runs for
        // every reported model each time the router rebuilds its inventory).
        let lower: Cow<'_, str> = if model.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(model.to_ascii_lowercase())
        } else {
            Cow::Borrowed(model)
        };
        let bare = lower.strip_suffix(":latest").unwrap_or(&lower);
        self.local_by_name
            .get(bare)
            .or_else(|| {
                self.local_by_name
                    .get(bare.rsplit('/').next().unwrap_or(bare))
            })
            .map(|&i| &self.models[i])
    }

    /// The provider type that serves `model`: by its catalog entry (a chat or an embedding
    /// model), else by its family.
    pub fn provider_kind_of(&self, model: &str) -> Option<ProviderKind> {
        let card = self.card(model).map(|c| c.provider_type);
        card.or_else(|| self.embedding(model).map(|c| c.provider_type))
            .or_else(|| {
                self.families
                    .iter()
                    .find(|(_, set)| set.is_match(model))
                    .map(|(kind, _)| *kind)
            })
    }

    /// The catalog's model ids (with their aliases) for a provider type, in file order: the
    /// chat models, then the embedding models.
    pub fn ids_for(&self, kind: ProviderKind) -> impl Iterator<Item = &str> {
        let chat = self
            .models
            .iter()
            .filter(move |m| m.provider_type == kind)
            .flat_map(|m| m.ids());
        let embedding = self
            .embeddings
            .iter()
            .filter(move |m| m.provider_type == kind)
            .flat_map(|m| m.ids());
        chat.chain(embedding)
    }

    /// The embedding card of a model id or alias.
    pub fn embedding(&self, model: &str) -> Option<&EmbeddingCard> {
        self.embeddings
            .iter()
            .find(|c| c.ids().any(|id| id == model))
    }

    /// Every embedding card, in file order.
    pub fn embeddings(&self) -> &[EmbeddingCard] {
        &self.embeddings
    }

    /// Every model card, in file order (the configuration's new cards last).
    pub fn models(&self) -> &[Arc<ModelCard>] {
        &self.models
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_catalog_loads_and_knows_the_description_models() -> Result<(), String> {
        let catalog = Catalog::embedded()?;
        assert_eq!(
            catalog.provider_kind_of("gpt-4o"),
            Some(ProviderKind::OpenAi)
        );
        assert_eq!(
            catalog.provider_kind_of("claude-sonnet-4-20250514"),
            Some(ProviderKind::Anthropic)
        );
        Ok(())
    }

    #[test]
    fn every_shipped_card_is_valid_and_says_where_its_figures_come_from() -> Result<(), String> {
        let catalog = Catalog::embedded()?;
        let mut seen = std::collections::HashSet::new();
        for card in catalog.models() {
            for id in card.ids() {
                assert!(seen.insert(id.to_string()), "{id} is on two cards");
            }
            let patch = CardPatch {
                id: card.id.clone(),
                context_window: Some(card.context_window),
                max_output_tokens: Some(card.max_output_tokens),
                input_per_mtok: Some(card.input_per_mtok),
                output_per_mtok: Some(card.output_per_mtok),
                cached_input_per_mtok: card.cached_input_per_mtok,
                cache_write_per_mtok: card.cache_write_per_mtok,
                latency: Some(card.latency),
                quality: Some(card.quality),
                released: card.released.clone(),
                retires: card.retires.clone(),
                ..CardPatch::default()
            };
            patch
                .validate()
                .map_err(|(field, message)| format!("{}: {field} {message}", card.id))?;
            assert!(card.max_output_tokens <= card.context_window, "{}", card.id);
            for (what, source) in [
                ("prices", &card.sources.prices),
                ("limits", &card.sources.limits),
                ("latency", &card.sources.latency),
                ("quality", &card.sources.quality),
                ("checked", &card.sources.checked),
            ] {
                assert!(!source.trim().is_empty(), "{}: no {what} source", card.id);
            }
        }
        Ok(())
    }

    #[test]
    fn every_key_of_the_shipped_cards_is_a_field_of_the_card() {
        let file: toml::Table = toml::from_str(CATALOG_TOML).unwrap_or_else(|e| panic!("{e}"));
        let models = file["models"].as_array().cloned().unwrap_or_default();
        for model in models {
            let card: ModelCard = model.clone().try_into().unwrap_or_else(|e| panic!("{e}"));
            let back = toml::Value::try_from(&card).unwrap_or_else(|e| panic!("{e}"));
            for (key, value) in model.as_table().into_iter().flatten() {
                assert!(back.get(key).is_some(), "{}: unknown key `{key}`", card.id);
                if let (Some(inner), Some(back_inner)) = (value.as_table(), back[key].as_table()) {
                    for nested in inner.keys() {
                        assert!(
                            back_inner.contains_key(nested),
                            "{}: unknown key `{key}.{nested}`",
                            card.id
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn local_models_find_their_card_by_any_servers_name() {
        let catalog = Catalog::embedded().unwrap_or_else(|e| panic!("{e}"));
        let id = |m: &str| catalog.local_card(m).map(|c| c.id.clone());
        let qwen = id("qwen2.5:7b");
        assert!(qwen.is_some());
        assert_eq!(id("Qwen/Qwen2.5-7B-Instruct"), qwen);
        assert_eq!(id("QWEN2.5:7B"), qwen);
        assert_eq!(id("no-such-model:3b"), None);
        let default = ModelCard::local_default("x", None);
        assert!(default
            .sources
            .limits
            .contains(&card::DEFAULT_LOCAL_CONTEXT.to_string()));
    }

    #[test]
    fn a_patch_changes_only_what_it_sets_and_a_new_card_needs_its_prices() {
        let mut catalog = Catalog::embedded().unwrap_or_else(|e| panic!("{e}"));
        let before = catalog
            .card("gpt-4o")
            .cloned()
            .unwrap_or_else(|| panic!("gpt-4o"));
        catalog = Catalog::with_patches(&[CardPatch {
            id: "gpt-4o".into(),
            context_window: Some(64_000),
            ..CardPatch::default()
        }])
        .unwrap_or_else(|e| panic!("{e:?}"));
        let after = catalog.card("gpt-4o").unwrap_or_else(|| panic!("gpt-4o"));
        assert_eq!(after.context_window, 64_000);
        assert_eq!(after.input_per_mtok, before.input_per_mtok);
        assert_eq!(after.origin, CardOrigin::Config);
        let err = Catalog::with_patches(&[CardPatch {
            id: "my-model".into(),
            provider_type: Some(ProviderKind::OpenAi),
            ..CardPatch::default()
        }])
        .err();
        assert_eq!(
            err.map(|e| e.0),
            Some("models[0].input_per_mtok".to_string())
        );
        let local = Catalog::with_patches(&[CardPatch {
            id: "my-llama".into(),
            provider_type: Some(ProviderKind::Local),
            context_window: Some(32_768),
            ..CardPatch::default()
        }])
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            local.card("my-llama").map(|c| c.context_window),
            Some(32_768)
        );
    }

    #[test]
    fn embedding_models_are_priced_and_served_but_are_not_chat_cards() -> Result<(), String> {
        let catalog = Catalog::embedded()?;
        let small = catalog
            .embedding("text-embedding-3-small")
            .ok_or("no text-embedding-3-small card")?;
        assert_eq!(small.input_per_mtok, 0.02);
        assert_eq!(
            catalog.provider_kind_of("text-embedding-3-large"),
            Some(ProviderKind::OpenAi)
        );
        assert_eq!(
            catalog.provider_kind_of("nomic-embed-text"),
            Some(ProviderKind::Local)
        );
        assert!(catalog.card("text-embedding-3-small").is_none());
        assert!(catalog
            .ids_for(ProviderKind::OpenAi)
            .any(|id| id == "text-embedding-ada-002"));
        for card in catalog.embeddings() {
            let sources = &card.sources;
            for (what, source) in [
                ("prices", &sources.prices),
                ("limits", &sources.limits),
                ("checked", &sources.checked),
            ] {
                assert!(!source.trim().is_empty(), "{}: no {what} source", card.id);
            }
            assert!(
                catalog.card(&card.id).is_none(),
                "{} is a chat card too",
                card.id
            );
        }
        Ok(())
    }

    #[test]
    fn unknown_models_of_a_plain_family_still_have_a_provider_type() -> Result<(), String> {
        let catalog = Catalog::embedded()?;
        for (model, kind) in [
            ("gpt-7-turbo", Some(ProviderKind::OpenAi)),
            ("o9-mini", Some(ProviderKind::OpenAi)),
            ("o3", Some(ProviderKind::OpenAi)),
            ("chatgpt-5-latest", Some(ProviderKind::OpenAi)),
            ("claude-opus-9", Some(ProviderKind::Anthropic)),
            ("oasis", None),
            ("o1x", None),
        ] {
            assert_eq!(catalog.provider_kind_of(model), kind, "{model}");
        }
        Ok(())
    }
}
