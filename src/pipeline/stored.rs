//! OpenAI's stored responses (`GET` and `DELETE /v1/responses/{id}`): the caller's key is
//! identified as on every proxy route, then each enabled OpenAI and Azure OpenAI provider the
//! caller has a credential for is asked in turn until one knows the id. Its answer comes back
//! as it is, with any echo of the provider key masked. Nothing is metered: no tokens are spent.

use actix_web::http::header::HeaderMap;
use actix_web::http::Method;
use actix_web::HttpResponse;

use super::mask::KeyMask;
use super::response::{response_head, MAX_ANSWER_BODY};
use super::upstream::{classify, UpstreamClients};
use super::Pipeline;
use crate::error::GatewayError;
use crate::providers::Credential;

/// Longest response id taken (OpenAI's are `resp_` and 50 hex digits).
const MAX_ID: usize = 200;

/// The stored response `id`, read (`GET`) or deleted (`DELETE`) where it is kept.
pub async fn stored_response(
    pipeline: &Pipeline,
    clients: &UpstreamClients,
    method: Method,
    id: &str,
    headers: &HeaderMap,
    query: &str,
) -> Result<HttpResponse, GatewayError> {
    if id.is_empty()
        || id.len() > MAX_ID
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(GatewayError::InvalidRequest {
            message: format!(
                "a response id is 1 to {MAX_ID} letters, digits, `_` or `-` (as `resp_…`)"
            ),
            param: Some("id".into()),
        });
    }
    let caller = pipeline.keys.identify(headers)?;
    let snapshot = pipeline.providers.load();
    let mut last_error = None;
    for provider in snapshot.providers.iter().filter(|p| p.enabled) {
        let Some(url) = provider.stored_response_url(id, query) else {
            continue;
        };
        let Ok(credential) = caller.credential_for(provider) else {
            continue;
        };
        let mut request = clients
            .for_provider(provider)
            .request(method.clone(), url)
            .timeout(provider.read_timeout);
        if let Some(auth) =
            provider
                .credential_header(&credential)
                .map_err(|e| GatewayError::InvalidRequest {
                    message: e.to_string(),
                    param: None,
                })?
        {
            request = request.insert_header(auth);
        }
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                let error = classify(error, provider);
                tracing::warn!(provider = %provider.id, error = %error, "stored response: provider unreachable");
                last_error = Some(error);
                continue;
            }
        };
        if response.status().as_u16() == 404 {
            continue;
        }
        let secret = match &credential {
            Credential::Key(key) => Some(key.clone()),
            _ => None,
        };
        let mask = KeyMask::new(secret.as_ref());
        let mut builder = response_head(&response, mask.as_ref());
        let read = response.body().limit(MAX_ANSWER_BODY);
        let body = match tokio::time::timeout(provider.read_timeout, read).await {
            Ok(Ok(body)) => body,
            Ok(Err(e)) => {
                return Err(GatewayError::UpstreamBroken {
                    provider: provider.id.clone(),
                    message: e.to_string(),
                })
            }
            Err(_) => {
                return Err(GatewayError::UpstreamTimeout {
                    provider: provider.id.clone(),
                    timeout_ms: provider.read_timeout.as_millis() as u64,
                })
            }
        };
        let body = match &mask {
            Some(mask) => mask.all(body),
            None => body,
        };
        return Ok(builder.body(body));
    }
    // Not found where asked; when a provider could not be asked, it may hold the id: its error.
    Err(last_error.unwrap_or(GatewayError::ResponseNotFound { id: id.to_string() }))
}
