//! Sending a request upstream with awc: one client per worker and upstream TLS profile, connections kept alive.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{self, HeaderName, HeaderValue};
use awc::error::SendRequestError;
use awc::ClientResponse;
use bytes::Bytes;

use super::call::ProxyCall;
use super::plan::Target;
use crate::error::GatewayError;
use crate::providers::{Credential, Provider};

/// The awc clients of one HTTP worker, one per (TLS configuration, connect timeout), so
/// every upstream's connections are pooled and reused across requests.
///
/// Known cost, upstream in awc 3.11 / actix-http 3.20: each request on a pooled HTTP/1
/// connection builds `h1::ClientCodec::default()`, whose `ServiceConfig::default()` spawns a
/// `DateService` task (a 500 ms interval, a formatted date, a timer and an eventfd write) that is
/// aborted when the request ends. It shows as about 2% of the gateway's CPU under load
/// (`perf`, see issue 6's notes) and can only be fixed in awc.
#[derive(Default)]
pub struct UpstreamClients {
    /// A handful of entries (one per TLS profile and connect timeout in the config), scanned
    /// in a few instructions where a map hashed the key on every call.
    clients: RefCell<Vec<((usize, Duration), awc::Client)>>,
}

impl UpstreamClients {
    pub(super) fn for_provider(&self, provider: &Provider) -> awc::Client {
        let key = (
            Arc::as_ptr(&provider.tls) as usize,
            provider.connect_timeout,
        );
        let mut clients = self.clients.borrow_mut();
        if let Some((_, client)) = clients.iter().find(|(k, _)| *k == key) {
            return client.clone();
        }
        let connector = awc::Connector::new()
            .rustls_0_23(provider.tls.clone())
            .timeout(provider.connect_timeout)
            .handshake_timeout(provider.connect_timeout)
            // No cap here: awc's pool would queue requests past it silently. Each provider's
            // `max_connections` permits bound the requests in flight instead, and their wait
            // is measured (`upstream_connection_wait_seconds`).
            .limit(0);
        let client = awc::Client::builder()
            .connector(connector)
            // awc adds its own User-Agent and a 5 s default timeout: the client's
            // User-Agent is forwarded instead, and each request sets its own timeout.
            .no_default_headers()
            // A proxy passes a redirect back to its client; following it would also
            // send the provider key to wherever the redirect points.
            .disable_redirects()
            .disable_timeout()
            .finish();
        clients.push((key, client.clone()));
        client
    }
}

/// Headers never forwarded upstream: hop-by-hop headers, the client's credentials (the
/// gateway sets its own), the gateway's own tracking headers, and client-network details.
fn is_forwarded(name: &HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "host"
            | "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authorization"
            | "proxy-authenticate"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
            | "expect"
            | "accept-encoding"
            | "authorization"
            | "x-api-key"
            | "api-key"
            | "cookie"
            | "x-source"
            | "x-project"
            | "x-route-profile"
            | "x-forwarded-for"
            | "x-forwarded-host"
            | "x-forwarded-proto"
            | "forwarded"
            | "x-real-ip"
    )
}

/// Headers that belong to one wire API (`anthropic-version`, `anthropic-beta`,
/// `openai-organization`, …): not sent to a provider of the other API.
pub fn is_api_specific(name: &HeaderName) -> bool {
    let name = name.as_str();
    name.starts_with("anthropic-") || name.starts_with("openai-")
}

/// Sends the request to the target and waits for the response head (not the body).
pub async fn send(
    clients: &UpstreamClients,
    target: &Target,
    call: &ProxyCall<'_>,
    body: Bytes,
    credential: &Credential,
) -> Result<ClientResponse, GatewayError> {
    let provider = &target.provider;
    // Through translation: the other API's endpoint, without the client's query (Claude
    // Code's `?beta=true` means nothing there) and without the client API's own headers.
    let translated = provider.kind.translates(call.op);
    let op = provider.kind.operation_for(call.op).unwrap_or(call.op);
    let url = provider.upstream_url(op, if translated { "" } else { call.query });
    let client = clients.for_provider(provider);
    let mut request = client
        .post(url)
        .timeout(provider.read_timeout)
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ));
    // Connection-scoped headers the client named in `Connection: …` are hop-by-hop too.
    let connection_scoped: Vec<String> = call
        .headers
        .get_all(header::CONNECTION)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect();
    for (name, value) in call.headers {
        if is_forwarded(name)
            && name != header::CONTENT_TYPE
            && !(translated && is_api_specific(name))
            && !connection_scoped.iter().any(|c| c == name.as_str())
        {
            request = request.append_header((name.clone(), value.clone()));
        }
    }
    if let Some(default) = provider.default_header(call.headers) {
        request = request.insert_header(default);
    }
    let auth =
        provider
            .credential_header(credential)
            .map_err(|e| GatewayError::InvalidRequest {
                message: e.to_string(),
                param: None,
            })?;
    if let Some(auth) = auth {
        request = request.insert_header(auth);
    }
    request
        .send_body(body)
        .await
        .map_err(|e| classify(e, provider))
}

pub(super) fn classify(error: SendRequestError, provider: &Provider) -> GatewayError {
    let provider_id = provider.id.clone();
    match error {
        SendRequestError::Timeout => GatewayError::UpstreamTimeout {
            provider: provider_id,
            timeout_ms: provider.read_timeout.as_millis() as u64,
        },
        SendRequestError::Connect(awc::error::ConnectError::Timeout) => {
            GatewayError::UpstreamTimeout {
                provider: provider_id,
                timeout_ms: provider.connect_timeout.as_millis() as u64,
            }
        }
        SendRequestError::Connect(e) => GatewayError::UpstreamConnect {
            provider: provider_id,
            message: e.to_string(),
        },
        SendRequestError::Send(e) => GatewayError::UpstreamConnect {
            provider: provider_id,
            message: e.to_string(),
        },
        SendRequestError::H2(e) => GatewayError::UpstreamConnect {
            provider: provider_id,
            message: e.to_string(),
        },
        SendRequestError::Response(e) => GatewayError::UpstreamBroken {
            provider: provider_id,
            message: e.to_string(),
        },
        other => GatewayError::Internal {
            message: format!("failed to send the request to provider `{provider_id}`: {other}"),
        },
    }
}
