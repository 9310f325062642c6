//! An upstream answer read whole by a caller inside the gateway (the ask endpoint) instead of
//! being passed to a client: masked, shown to the meter as `response` does, translated back
//! into the caller's API when the upstream spoke the other one.

use bytes::Bytes;

use super::mask::KeyMask;
use super::meter::RequestMeter;
use super::response::MAX_ANSWER_BODY;
use super::{Answer, Reply};
use crate::error::GatewayError;

/// A whole answer: the upstream's status and its body, in the caller's API.
#[derive(Debug)]
pub struct WholeAnswer {
    pub status: u16,
    pub body: Bytes,
    pub provider_id: String,
}

/// Reads `answer` to its end within the provider's read timeout. The meter sees the body as
/// a client's answer would show it, and records the call when this returns (or fails).
pub async fn read(answer: Answer, mut meter: RequestMeter) -> Result<WholeAnswer, GatewayError> {
    let provider_id = answer.provider_id;
    let (mut response, permit) = match answer.reply {
        Reply::Upstream { response, permit } => (response, permit),
        Reply::Counted { .. } => {
            let error = GatewayError::Internal {
                message: "a token count is not a chat answer".into(),
            };
            meter.fail(&error);
            return Err(error);
        }
    };
    let status = response.status().as_u16();
    let read = tokio::time::timeout(answer.read_timeout, response.body().limit(MAX_ANSWER_BODY));
    let body = match read.await {
        Ok(Ok(body)) => body,
        failed => {
            let error = match failed {
                Ok(Err(e)) => GatewayError::UpstreamBroken {
                    provider: provider_id.clone(),
                    message: e.to_string(),
                },
                _ => GatewayError::UpstreamTimeout {
                    provider: provider_id.clone(),
                    timeout_ms: answer.read_timeout.as_millis() as u64,
                },
            };
            meter.fail(&error);
            return Err(error);
        }
    };
    // The connection slot is the provider's again once its answer is read.
    drop(permit);
    let body = match KeyMask::new(answer.secret.as_ref()) {
        Some(mask) => mask.all(body),
        None => body,
    };
    let body = meter.on_chunk(body);
    let _ = meter.on_end();
    let body = match &answer.translation {
        None => body,
        Some(translation) if status >= 400 => Bytes::from(translation.error(status, &body)),
        Some(translation) => match translation.answer(&body) {
            Ok(answer) => Bytes::from(answer),
            Err(message) => {
                return Err(GatewayError::UpstreamBroken {
                    provider: provider_id,
                    message: format!("its answer could not be translated: {message}"),
                })
            }
        },
    };
    Ok(WholeAnswer {
        status,
        body,
        provider_id,
    })
}
