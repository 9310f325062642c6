//! The model catalog (`settings/catalog.toml`): which provider type serves a model id, by name or by family.

use std::collections::HashMap;

use regex::RegexSet;
use serde::Deserialize;

use crate::providers::ProviderKind;

const CATALOG_TOML: &str = include_str!("../settings/catalog.toml");

/// The known models and the family rules, loaded once at start-up.
#[derive(Debug)]
pub struct Catalog {
    by_id: HashMap<String, ProviderKind>,
    ids: Vec<(ProviderKind, String)>,
    families: Vec<(ProviderKind, RegexSet)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    families: HashMap<ProviderKind, Vec<String>>,
    models: Vec<CatalogGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogGroup {
    provider_type: ProviderKind,
    ids: Vec<String>,
}

impl Catalog {
    /// The catalog shipped in the binary.
    pub fn embedded() -> Result<Self, String> {
        Self::parse(CATALOG_TOML)
    }

    fn parse(text: &str) -> Result<Self, String> {
        let file: CatalogFile =
            toml::from_str(text).map_err(|e| format!("invalid settings/catalog.toml: {e}"))?;
        let mut by_id = HashMap::new();
        let mut ids = Vec::new();
        for group in file.models {
            for id in group.ids {
                by_id.insert(id.clone(), group.provider_type);
                ids.push((group.provider_type, id));
            }
        }
        let mut families = Vec::new();
        for (kind, patterns) in file.families {
            let set = RegexSet::new(&patterns)
                .map_err(|e| format!("invalid family pattern in settings/catalog.toml: {e}"))?;
            families.push((kind, set));
        }
        Ok(Self {
            by_id,
            ids,
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
        self.ids
            .iter()
            .filter(move |(k, _)| *k == kind)
            .map(|(_, id)| id.as_str())
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
