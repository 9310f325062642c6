//! Routing profiles as data (`settings/profiles.toml`, with the configuration's
//! `[routing.profiles.<id>]` on top): weights, the task kind that picks the quality prior,
//! required capabilities, provider and model lists, and caps.

use std::collections::BTreeMap;

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use crate::catalog::{Capabilities, Capability, TaskKind};
use crate::providers::Provider;

const PROFILES_TOML: &str = include_str!("../../settings/profiles.toml");
/// What a preferred provider or model adds to its score unless the profile says otherwise.
pub const DEFAULT_PREFER_BONUS: f64 = 0.1;

/// How much cost, latency and quality count (divided by their sum when scoring).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    pub cost: f64,
    pub latency: f64,
    pub quality: f64,
}

/// Allowed, preferred and excluded entries (provider ids or types; model ids or globs).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Lists {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefer: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
}

/// Limits a candidate must keep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Caps {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_input_per_mtok: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_per_mtok: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_context: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ttft_ms: Option<f64>,
}

/// A profile as written in the file or the configuration.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileSpec {
    pub description: String,
    #[serde(default)]
    pub task: TaskKind,
    pub weights: Weights,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub require: Vec<Capability>,
    #[serde(default)]
    pub providers: Lists,
    #[serde(default)]
    pub models: Lists,
    #[serde(default)]
    pub caps: Caps,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefer_bonus: Option<f64>,
    /// Whether a conversation stays on the provider and model that served it last (prompt-cache
    /// affinity, `[routing.affinity]`); default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<bool>,
    /// The profile a request is routed under instead when its key's or project's budget is
    /// past `[limits] budget_low_share` (a cheaper one), rather than refused once it runs out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_budget_low: Option<String>,
}

/// A profile ready to route with: the spec, its globs compiled.
#[derive(Debug, Clone)]
pub struct Profile {
    pub id: String,
    /// Its position among the profiles (set by [`Profiles::load`]; where the Router keeps
    /// what it prepared for the profile).
    pub index: usize,
    pub spec: ProfileSpec,
    pub require: Capabilities,
    models_allow: Option<GlobSet>,
    models_prefer: GlobSet,
    models_exclude: GlobSet,
}

fn globs(patterns: &[String]) -> Result<GlobSet, String> {
    let mut builder = GlobSetBuilder::new();
    for p in patterns {
        builder.add(Glob::new(p).map_err(|e| format!("`{p}` is not a valid glob: {e}"))?);
    }
    builder.build().map_err(|e| e.to_string())
}

/// Whether a provider is named by an entry: its id or its type.
fn names_provider(list: &[String], provider: &Provider) -> bool {
    list.iter()
        .any(|entry| entry == &provider.id || entry == provider.kind.as_str())
}

impl Profile {
    pub fn new(id: &str, spec: ProfileSpec) -> Result<Self, (String, String)> {
        let w = spec.weights;
        for (field, value) in [
            ("cost", w.cost),
            ("latency", w.latency),
            ("quality", w.quality),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err((
                    format!("weights.{field}"),
                    "must be a non-negative number".into(),
                ));
            }
        }
        if w.cost + w.latency + w.quality <= 0.0 {
            return Err((
                "weights".into(),
                "at least one weight must be above 0".into(),
            ));
        }
        if spec
            .prefer_bonus
            .is_some_and(|b| !b.is_finite() || !(0.0..=1.0).contains(&b))
        {
            return Err(("prefer_bonus".into(), "must lie between 0 and 1".into()));
        }
        let compile = |field: &str, patterns: &[String]| {
            globs(patterns).map_err(|e| (format!("models.{field}"), e))
        };
        Ok(Self {
            id: id.to_string(),
            index: 0,
            require: Capabilities::of(&spec.require),
            models_allow: (!spec.models.allow.is_empty())
                .then(|| compile("allow", &spec.models.allow))
                .transpose()?,
            models_prefer: compile("prefer", &spec.models.prefer)?,
            models_exclude: compile("exclude", &spec.models.exclude)?,
            spec,
        })
    }

    /// Why the profile does not allow this provider, if it does not (the reason written out
    /// only when `explain`).
    pub fn refuses_provider(&self, provider: &Provider, explain: bool) -> Option<String> {
        let lists = &self.spec.providers;
        let excluded = names_provider(&lists.exclude, provider);
        let not_allowed = !lists.allow.is_empty() && !names_provider(&lists.allow, provider);
        if !(excluded || not_allowed) {
            return None;
        }
        Some(match (explain, excluded) {
            (false, _) => String::new(),
            (true, true) => format!("profile `{}` excludes provider `{}`", self.id, provider.id),
            (true, false) => format!(
                "profile `{}` allows only providers {}",
                self.id,
                lists.allow.join(", ")
            ),
        })
    }

    /// Why the profile does not allow a model known by these ids (its card's id, the id sent
    /// to the provider), if it does not: an excluded id excludes it; any allowed id allows it.
    pub fn refuses_model(&self, ids: &[&str], explain: bool) -> Option<String> {
        if self.models_exclude.is_empty() && self.models_allow.is_none() {
            return None;
        }
        if let Some(id) = ids.iter().find(|id| self.models_exclude.is_match(id)) {
            return Some(if explain {
                format!("profile `{}` excludes model `{id}`", self.id)
            } else {
                String::new()
            });
        }
        match &self.models_allow {
            Some(allow) if !ids.iter().any(|id| allow.is_match(id)) && !explain => {
                Some(String::new())
            }
            Some(allow) if !ids.iter().any(|id| allow.is_match(id)) => Some(format!(
                "profile `{}` allows only models {}",
                self.id,
                self.spec.models.allow.join(", ")
            )),
            _ => None,
        }
    }

    /// Whether the profile keeps conversations on their provider and model.
    pub fn affinity(&self) -> bool {
        self.spec.affinity.unwrap_or(true)
    }

    /// The bonus a candidate earns by being preferred (0 when it is not).
    pub fn preference(&self, provider: &Provider, model: &str) -> f64 {
        let preferred = names_provider(&self.spec.providers.prefer, provider)
            || (!self.models_prefer.is_empty() && self.models_prefer.is_match(model));
        if preferred {
            self.spec.prefer_bonus.unwrap_or(DEFAULT_PREFER_BONUS)
        } else {
            0.0
        }
    }
}

/// Every profile by id, with the default.
#[derive(Debug, Clone)]
pub struct Profiles {
    pub by_id: BTreeMap<String, Profile>,
    pub default: String,
}

impl Profiles {
    /// The shipped profiles with the configuration's added or replacing them; the error
    /// names the `routing.…` key at fault.
    pub fn load(
        overrides: &BTreeMap<String, ProfileSpec>,
        default: &str,
    ) -> Result<Self, (String, String)> {
        let shipped: BTreeMap<String, ProfileSpec> =
            toml::from_str(PROFILES_TOML).map_err(|e| {
                (
                    "routing.profiles".to_string(),
                    format!("settings/profiles.toml: {e}"),
                )
            })?;
        let mut by_id = BTreeMap::new();
        for (id, spec) in shipped.into_iter().chain(overrides.clone()) {
            let valid_id = !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !valid_id {
                return Err((
                    format!("routing.profiles.{id}"),
                    "a profile id takes letters, digits, `-`, `_` and `.`".into(),
                ));
            }
            let profile = Profile::new(&id, spec)
                .map_err(|(field, message)| (format!("routing.profiles.{id}.{field}"), message))?;
            by_id.insert(id, profile);
        }
        for (index, profile) in by_id.values_mut().enumerate() {
            profile.index = index;
        }
        for (id, profile) in &by_id {
            if let Some(low) = profile.spec.on_budget_low.as_deref() {
                if !by_id.contains_key(low) || low == id {
                    return Err((
                        format!("routing.profiles.{id}.on_budget_low"),
                        format!(
                            "names `{low}`, which is not another profile; the profiles are {}",
                            by_id.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
            }
        }
        if !by_id.contains_key(default) {
            return Err((
                "routing.default_profile".into(),
                format!(
                    "no profile `{default}`; the profiles are {}",
                    by_id.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        Ok(Self {
            by_id,
            default: default.to_string(),
        })
    }

    pub fn get(&self, id: &str) -> Option<&Profile> {
        self.by_id.get(id)
    }

    /// The ids, for error messages.
    pub fn ids(&self) -> String {
        self.by_id.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_profiles_load_and_the_config_adds_and_replaces() {
        let profiles =
            Profiles::load(&BTreeMap::new(), "balanced").unwrap_or_else(|e| panic!("{e:?}"));
        for id in [
            "balanced",
            "cost-optimized",
            "quality-first",
            "low-latency",
            "coding",
            "long-context",
            "local-only",
        ] {
            assert!(profiles.get(id).is_some(), "{id}");
        }
        let mine: ProfileSpec = toml::from_str(
            "description = \"mine\"\nweights = { cost = 1, latency = 0, quality = 0 }\nmodels = { allow = [\"gpt-*\"] }",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut overrides = BTreeMap::new();
        overrides.insert("balanced".to_string(), mine.clone());
        overrides.insert("mine".to_string(), mine);
        let profiles = Profiles::load(&overrides, "mine").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            profiles
                .get("balanced")
                .map(|p| p.spec.description.as_str()),
            Some("mine")
        );
        let mine = profiles.get("mine").unwrap_or_else(|| panic!("mine"));
        assert!(mine.refuses_model(&["gpt-4o"], true).is_none());
        assert!(mine.refuses_model(&["claude-opus-4-5"], true).is_some());
        let err = Profiles::load(&BTreeMap::new(), "nope").err();
        assert_eq!(err.map(|e| e.0), Some("routing.default_profile".into()));
    }
}
