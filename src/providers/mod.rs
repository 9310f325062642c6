//! Provider types behind a closed enum: where each one's API lives, how it is authenticated, and
//! its quirks (each in the type's own file); `Provider` is the runtime type `runtime` builds.

pub mod anthropic;
pub mod azure_openai;
pub mod local;
pub mod openai;
pub mod snapshot;
pub mod tls;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use awc::http::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::api::{ApiFormat, Operation};
use crate::secret::HeldKey;

/// The four provider types a `[[providers]]` entry can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum ProviderKind {
    #[serde(rename = "anthropic")]
    Anthropic,
    #[serde(rename = "openai")]
    OpenAi,
    #[serde(rename = "azure_openai")]
    AzureOpenAi,
    #[serde(rename = "local")]
    Local,
}

impl ProviderKind {
    /// The name used in config files and answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anthropic => "anthropic",
            Self::OpenAi => "openai",
            Self::AzureOpenAi => "azure_openai",
            Self::Local => "local",
        }
    }

    /// The official base URL, for the types that have one.
    pub fn default_endpoint(self) -> Option<&'static str> {
        match self {
            Self::Anthropic => Some(anthropic::DEFAULT_ENDPOINT),
            Self::OpenAi => Some(openai::DEFAULT_ENDPOINT),
            Self::AzureOpenAi | Self::Local => None,
        }
    }

    /// An example endpoint, for error messages.
    pub fn endpoint_example(self) -> &'static str {
        match self {
            Self::Anthropic => anthropic::DEFAULT_ENDPOINT,
            Self::OpenAi => openai::DEFAULT_ENDPOINT,
            Self::AzureOpenAi => "https://myresource.openai.azure.com",
            Self::Local => "http://localhost:11434",
        }
    }

    /// The wire API this type of provider speaks.
    pub fn api(self) -> ApiFormat {
        match self {
            Self::Anthropic => ApiFormat::Anthropic,
            Self::OpenAi | Self::AzureOpenAi | Self::Local => ApiFormat::OpenAi,
        }
    }

    /// The operation a provider of this type is sent for a client's `op`: `op` itself on
    /// its own API, else what `Operation::on` translates it to; None where the type has no
    /// endpoint for it (count_tokens on OpenAI's API, which the gateway counts itself). A
    /// local server has no Responses API: it is sent Chat Completions, translated.
    pub fn operation_for(self, op: Operation) -> Option<Operation> {
        match (self, op) {
            (Self::Local, Operation::Responses) => Some(Operation::ChatCompletions),
            (kind, op) => op.on(kind.api()),
        }
    }

    /// Whether a provider of this type is sent a translation of the client's `op`.
    pub fn translates(self, op: Operation) -> bool {
        self.operation_for(op) != Some(op)
    }

    /// Whether a stream of `op` reports its usage only when the request asks for it
    /// (`stream_options.include_usage`), which the gateway then does on the client's behalf.
    pub fn asks_stream_usage(self, op: Operation) -> bool {
        match self {
            Self::OpenAi => openai::asks_stream_usage(op),
            Self::AzureOpenAi => azure_openai::asks_stream_usage(op),
            Self::Local => local::asks_stream_usage(op),
            Self::Anthropic => false,
        }
    }

    /// Whether the base URL may be written with a trailing `/v1`, which the paths add themselves.
    fn strips_v1_suffix(self) -> bool {
        self != Self::AzureOpenAi
    }
}

/// The credential that goes upstream with one request.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A key the gateway holds (the provider's own or a key-map entry's).
    Key(Arc<HeldKey>),
    /// The client's own token, forwarded because the gateway holds none (bring your own key).
    /// `bearer` says whether the client sent it as `Authorization: Bearer`.
    ClientToken { token: SecretString, bearer: bool },
    /// Nothing (local servers usually need no key).
    None,
}

/// A configured provider, ready to serve: endpoint normalised, key resolved, TLS built.
#[derive(Debug)]
pub struct Provider {
    pub id: String,
    pub kind: ProviderKind,
    /// Base URL without a trailing `/` (and without `/v1` for OpenAI-shaped types).
    pub endpoint: String,
    pub api_key: Option<Arc<HeldKey>>,
    pub deployment: Option<String>,
    pub api_version: Option<String>,
    pub enabled: bool,
    pub models: Vec<String>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub ca_file: Option<PathBuf>,
    pub tls: Arc<rustls::ClientConfig>,
    /// Requests in flight to this provider at most (`max_connections`): a permit per request,
    /// held until its answer has been passed on.
    pub connections: Arc<tokio::sync::Semaphore>,
    pub max_connections: usize,
}

/// A provider as the admin API shows it: never its key.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProviderView {
    pub id: String,
    pub provider_type: ProviderKind,
    pub endpoint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    pub enabled: bool,
    /// Whether the gateway holds a key for it (the key itself is never shown).
    pub has_api_key: bool,
    pub models: Vec<String>,
    pub connect_timeout_ms: u64,
    pub read_timeout_ms: u64,
    pub max_connections: usize,
}

impl Provider {
    /// The admin view, without the key.
    pub fn view(&self) -> ProviderView {
        ProviderView {
            id: self.id.clone(),
            provider_type: self.kind,
            endpoint: self.endpoint.clone(),
            deployment: self.deployment.clone(),
            api_version: self.api_version.clone(),
            enabled: self.enabled,
            has_api_key: self.api_key.is_some(),
            models: self.models.clone(),
            connect_timeout_ms: self.connect_timeout.as_millis() as u64,
            read_timeout_ms: self.read_timeout.as_millis() as u64,
            max_connections: self.max_connections,
        }
    }

    /// The upstream URL for an operation; `query` is the client's query string, kept.
    pub fn upstream_url(&self, op: Operation, query: &str) -> String {
        match self.kind {
            ProviderKind::OpenAi => openai::url(&self.endpoint, op, query),
            ProviderKind::Local => local::url(&self.endpoint, op, query),
            ProviderKind::Anthropic => anthropic::url(&self.endpoint, op, query),
            ProviderKind::AzureOpenAi => azure_openai::url(self, op, query),
        }
    }

    /// Where this provider keeps a stored Responses API response (`GET`/`DELETE
    /// /v1/responses/{id}`); None for the types that have no Responses API of their own.
    /// `id` is the client's path segment, already checked to be a plain id.
    pub fn stored_response_url(&self, id: &str, query: &str) -> Option<String> {
        match self.kind {
            ProviderKind::OpenAi => Some(join_url(
                &self.endpoint,
                &format!("/v1/responses/{id}"),
                query,
            )),
            ProviderKind::AzureOpenAi => {
                Some(azure_openai::responses_url(self, &format!("/{id}"), query))
            }
            ProviderKind::Local | ProviderKind::Anthropic => None,
        }
    }

    /// The header that carries `credential` to this provider, if any.
    pub fn credential_header(
        &self,
        credential: &Credential,
    ) -> Result<Option<(HeaderName, HeaderValue)>, InvalidCredential> {
        let (secret, client_bearer) = match credential {
            Credential::None => return Ok(None),
            Credential::Key(key) => (key.secret(), false),
            Credential::ClientToken { token, bearer } => (token, *bearer),
        };
        let header = match self.kind {
            ProviderKind::OpenAi | ProviderKind::Local => openai::auth_header(secret),
            ProviderKind::AzureOpenAi => azure_openai::auth_header(secret),
            ProviderKind::Anthropic => anthropic::auth_header(secret, client_bearer),
        };
        header.map(Some)
    }

    /// Headers this type of provider needs that the client may not have sent (Anthropic's
    /// `anthropic-version`), given the client's headers.
    pub fn default_header(&self, client: &HeaderMap) -> Option<(HeaderName, HeaderValue)> {
        match self.kind {
            ProviderKind::Anthropic => anthropic::version_header(client),
            _ => None,
        }
    }

    /// Whether this provider serves `model`: configured for it, else by type: a cloud
    /// provider serves the models the catalog gives its type (`catalog_kind`); a local
    /// server the models it reported (`discovered`); Azure its deployment only.
    pub fn serves(
        &self,
        model: &str,
        catalog_kind: Option<ProviderKind>,
        discovered: Option<&[String]>,
    ) -> bool {
        if self.configured_models().any(|m| m == model) {
            return true;
        }
        match self.kind {
            ProviderKind::OpenAi | ProviderKind::Anthropic => catalog_kind == Some(self.kind),
            ProviderKind::Local => local::serves(model, discovered),
            ProviderKind::AzureOpenAi => false,
        }
    }

    /// The base URL as written in the config, normalised: no trailing `/`, and no `/v1`
    /// where the type's paths add it themselves.
    pub fn normalise_endpoint(kind: ProviderKind, raw: &str) -> String {
        let endpoint = raw.trim_end_matches('/');
        match endpoint.strip_suffix("/v1") {
            Some(stripped) if kind.strips_v1_suffix() => stripped.to_string(),
            _ => endpoint.to_string(),
        }
    }

    /// The model ids this provider serves by configuration alone (not discovery).
    pub fn configured_models(&self) -> impl Iterator<Item = &str> {
        self.deployment
            .as_deref()
            .into_iter()
            .chain(self.models.iter().map(String::as_str))
    }
}

/// A key that cannot be sent as an HTTP header value (control characters).
#[derive(Debug, thiserror::Error)]
#[error("the API key contains characters that cannot be sent in an HTTP header")]
pub struct InvalidCredential;

/// Makes a sensitive header value, marked so that it is never logged by the HTTP stack.
fn secret_header(value: String) -> Result<HeaderValue, InvalidCredential> {
    // The header takes the string's buffer as it is (validated, not copied).
    let mut value =
        HeaderValue::from_maybe_shared(bytes::Bytes::from(value)).map_err(|_| InvalidCredential)?;
    value.set_sensitive(true);
    Ok(value)
}

/// `Authorization: Bearer <key>`.
fn bearer_header(key: &SecretString) -> Result<(HeaderName, HeaderValue), InvalidCredential> {
    Ok((
        awc::http::header::AUTHORIZATION,
        secret_header(["Bearer ", key.expose_secret()].concat())?,
    ))
}

/// Joins a base URL, a path and the client's query string (`concat` allocates once; it runs on
/// every call, where `format!` cost several times more).
fn join_url(endpoint: &str, path: &str, query: &str) -> String {
    if query.is_empty() {
        [endpoint, path].concat()
    } else {
        [endpoint, path, "?", query].concat()
    }
}
