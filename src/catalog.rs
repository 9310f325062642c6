//! The model catalog (`settings/catalog.toml`): which provider type serves a model id, by name or by family, and the card of each model it knows (its prices are read by `ledger::pricing`).

use std::collections::HashMap;

use regex::RegexSet;
use serde::Deserialize;

use crate::providers::ProviderKind;

const CATALOG_TOML: &str = include_str!("../settings/catalog.toml");

/// The known models and the family rules, loaded once at start-up.
#[derive(Debug)]
pub struct Catalog {
    by_id: HashMap<String, ProviderKind>,
    models: Vec<ModelCard>,
    families: Vec<(ProviderKind, RegexSet)>,
}

/// What the catalog knows of one model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCard {
    pub id: String,
    pub provider_type: ProviderKind,
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    #[serde(default)]
    pub cached_input_per_mtok: Option<f64>,
    #[serde(default)]
    pub cache_write_per_mtok: Option<f64>,
    /// Where the price was read.
    pub source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    families: HashMap<ProviderKind, Vec<String>>,
    models: Vec<ModelCard>,
}

impl Catalog {
    /// The catalog shipped in the binary.
    pub fn embedded() -> Result<Self, String> {
        Self::parse(CATALOG_TOML)
    }

    fn parse(text: &str) -> Result<Self, String> {
        let file: CatalogFile =
            toml::from_str(text).map_err(|e| format!("invalid settings/catalog.toml: {e}"))?;
        let by_id = file
            .models
            .iter()
            .map(|m| (m.id.clone(), m.provider_type))
            .collect();
        let mut families = Vec::new();
        for (kind, patterns) in file.families {
            let set = RegexSet::new(&patterns)
                .map_err(|e| format!("invalid family pattern in settings/catalog.toml: {e}"))?;
            families.push((kind, set));
        }
        Ok(Self {
            by_id,
            models: file.models,
            families,
        })
    }

    /// The provider type that serves `model`: by its catalog entry, else by its family.
    pub fn provider_kind_of(&self, model: &str) -> Option<ProviderKind> {
        self.by_id.get(model).copied().or_else(|| {
            self.families
                .iter()
                .find(|(_, set)| set.is_match(model))
                .map(|(kind, _)| *kind)
        })
    }

    /// The catalog's model ids for a provider type, in file order.
    pub fn ids_for(&self, kind: ProviderKind) -> impl Iterator<Item = &str> {
        self.models
            .iter()
            .filter(move |m| m.provider_type == kind)
            .map(|m| m.id.as_str())
    }

    /// Every model card, in file order.
    pub fn models(&self) -> &[ModelCard] {
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
    fn unknown_models_of_a_plain_family_still_have_a_provider_type() -> Result<(), String> {
        let catalog = Catalog::embedded()?;
        for (model, kind) in [
            ("gpt-7-turbo", Some(ProviderKind::OpenAi)),
            ("o9-mini", Some(ProviderKind::OpenAi)),
            ("o3", Some(ProviderKind::OpenAi)),
            ("chatgpt-5-latest", Some(ProviderKind::OpenAi)),
            ("claude-opus-9", Some(ProviderKind::Anthropic)),
            ("llama3:8b", None),
            ("oasis", None),
            ("o1x", None),
        ] {
            assert_eq!(catalog.provider_kind_of(model), kind, "{model}");
        }
        Ok(())
    }
}
