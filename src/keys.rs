//! Virtual keys: who the caller is (`[key_map]`) and which credential goes upstream for them.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};

use crate::error::GatewayError;
use crate::providers::{Credential, Provider, ProviderKind};
use crate::secret::HeldKey;
use crate::settings::KeyMapEntry;

/// A team's virtual key: its label and the provider keys it stands for.
#[derive(Debug)]
pub struct VirtualKey {
    pub label: String,
    by_type: HashMap<ProviderKind, Arc<HeldKey>>,
    by_provider: HashMap<String, Arc<HeldKey>>,
}

/// The token a client presented, and whether it came as `Authorization: Bearer`.
#[derive(Debug, Clone)]
pub struct ClientToken {
    pub value: SecretString,
    pub bearer: bool,
}

/// Who is calling, as far as keys go.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A token found in the key map.
    Virtual(Arc<VirtualKey>),
    /// No token, or one the map does not know (it may be the client's own provider key).
    Unmapped(Option<ClientToken>),
}

/// The `[key_map]` table and the `[auth] require_key` rule.
#[derive(Debug, Default)]
pub struct KeyMap {
    entries: HashMap<String, Arc<VirtualKey>>,
    require_key: bool,
}

impl KeyMap {
    /// Builds the map from the validated configuration.
    pub fn new<'a>(
        entries: impl IntoIterator<Item = (&'a String, &'a KeyMapEntry)>,
        require_key: bool,
    ) -> Self {
        let entries = entries
            .into_iter()
            .map(|(token, entry)| {
                let by_type = [
                    (ProviderKind::Anthropic, &entry.anthropic_key),
                    (ProviderKind::OpenAi, &entry.openai_key),
                    (ProviderKind::AzureOpenAi, &entry.azure_openai_key),
                    (ProviderKind::Local, &entry.local_key),
                ]
                .into_iter()
                .filter_map(|(kind, key)| key.clone().and_then(HeldKey::new).map(|k| (kind, k)))
                .collect();
                let key = VirtualKey {
                    label: entry.label.clone(),
                    by_type,
                    by_provider: entry
                        .provider_keys
                        .iter()
                        .filter_map(|(id, key)| HeldKey::new(key.clone()).map(|k| (id.clone(), k)))
                        .collect(),
                };
                (token.clone(), Arc::new(key))
            })
            .collect();
        Self {
            entries,
            require_key,
        }
    }

    /// Identifies the caller from `Authorization: Bearer`, `x-api-key` or `api-key`.
    /// With `require_key`, a caller without a known virtual key is refused.
    /// Every key's label, sorted, each once (never the tokens).
    pub fn labels(&self) -> Vec<String> {
        let mut labels: Vec<String> = self.entries.values().map(|k| k.label.clone()).collect();
        labels.sort();
        labels.dedup();
        labels
    }

    pub fn identify(&self, headers: &HeaderMap) -> Result<Caller, GatewayError> {
        let token = client_token(headers);
        if let Some(key) = token
            .as_ref()
            .and_then(|t| self.entries.get(t.value.expose_secret()))
        {
            return Ok(Caller::Virtual(key.clone()));
        }
        if self.require_key {
            let message = if token.is_some() {
                "the virtual key is not known to this gateway"
            } else {
                "this gateway requires a virtual key: send `Authorization: Bearer <key>` or `x-api-key: <key>`"
            };
            return Err(GatewayError::Unauthorized {
                message: message.to_string(),
            });
        }
        Ok(Caller::Unmapped(token))
    }
}

fn client_token(headers: &HeaderMap) -> Option<ClientToken> {
    let non_empty = |v: &str| {
        let v = v.trim();
        (!v.is_empty()).then(|| SecretString::from(v.to_string()))
    };
    if let Some(value) = headers
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .and_then(non_empty);
        if let Some(value) = token {
            return Some(ClientToken {
                value,
                bearer: true,
            });
        }
    }
    ["x-api-key", "api-key"].into_iter().find_map(|name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(non_empty)
            .map(|value| ClientToken {
                value,
                bearer: false,
            })
    })
}

impl Caller {
    /// The key-map label, kept with the request for the ledger.
    pub fn label(&self) -> Option<&str> {
        match self {
            Self::Virtual(key) => Some(&key.label),
            Self::Unmapped(_) => None,
        }
    }

    /// The credential to send to `provider` for this caller: the virtual key's mapped key,
    /// else the provider's own key, else (for a token not in the map) the client's token.
    pub fn credential_for(&self, provider: &Provider) -> Result<Credential, GatewayError> {
        match self {
            Self::Virtual(key) => key
                .by_provider
                .get(&provider.id)
                .or_else(|| key.by_type.get(&provider.kind))
                .or(provider.api_key.as_ref())
                .map(|k| Credential::Key(k.clone()))
                .ok_or_else(|| GatewayError::NoKeyForProvider {
                    label: key.label.clone(),
                    provider: provider.id.clone(),
                }),
            Self::Unmapped(token) => Ok(match (&provider.api_key, token) {
                (Some(key), _) => Credential::Key(key.clone()),
                (None, Some(token)) => Credential::ClientToken {
                    token: token.value.clone(),
                    bearer: token.bearer,
                },
                (None, None) => Credential::None,
            }),
        }
    }
}
