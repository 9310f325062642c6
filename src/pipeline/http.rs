//! The HTTP side of the pipeline: a proxy endpoint's request (its headers, query and body
//! stream) in, through [`Pipeline::call`], and the upstream's answer out as the client's
//! response, passed through as it streams, or the error in the caller's API shape.

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use std::time::Duration;

use super::call::{Inbound, RequestMeta};
use super::mask::KeyMask;
use super::meter::RequestMeter;
use super::upstream::UpstreamClients;
use super::{inbound, response, Answer, Pipeline, Reply};
use crate::api::Operation;
use crate::error::ApiError;
use crate::translate::Translation;

/// Serves one proxied call. Every call leaves exactly one ledger record, through its meter,
/// however it ends.
pub async fn serve(
    pipeline: &Pipeline,
    op: Operation,
    req: &HttpRequest,
    payload: web::Payload,
    clients: &UpstreamClients,
    meta: RequestMeta,
) -> Result<HttpResponse, ApiError> {
    let mut meter = pipeline.meter(op, &meta);
    let answer = async {
        let (body, reservation) =
            inbound::read_body(req.headers(), payload, &pipeline.body_limits).await?;
        let inbound = Inbound {
            op,
            meta,
            headers: req.headers(),
            query: req.query_string(),
            body,
            reservation: Some(reservation),
        };
        pipeline.call(inbound, clients, &mut meter).await
    }
    .await;
    match answer {
        Ok(answer) => Ok(respond(pipeline, answer, meter).await),
        Err(error) => {
            meter.fail(&error);
            Err(error.in_shape(op.api()))
        }
    }
}

/// The client's response from the upstream's answer: an error answer read whole (it is small,
/// and a key the provider echoes can be masked), any other passed through as it streams.
async fn respond(pipeline: &Pipeline, answer: Answer, meter: RequestMeter) -> HttpResponse {
    pipeline
        .recorder
        .metrics
        .overhead
        .observe(answer.overhead.as_secs_f64());
    let mask = KeyMask::new(answer.secret.as_ref());
    let routed = answer.routed;
    let translation = answer.translation;
    let mut response = match (answer.reply, translation.as_ref()) {
        (Reply::Counted { input_tokens }, _) => response::counted(input_tokens, meter),
        (Reply::Upstream { response, .. }, translation) if response.status().as_u16() >= 400 => {
            response::error_answer(response, mask, meter, translation).await
        }
        (Reply::Upstream { response, .. }, Some(translation)) if !translation.stream => {
            response::translated_answer(
                response,
                answer.read_timeout,
                &answer.provider_id,
                mask,
                meter,
                translation,
            )
            .await
        }
        (Reply::Upstream { response, permit }, translation) => response::passthrough(
            response,
            answer.read_timeout,
            &answer.provider_id,
            mask,
            permit,
            meter,
            translation.map(Translation::stream),
        ),
    };
    let headers = response.headers_mut();
    headers.insert(
        HeaderName::from_static("x-gateway-overhead-ms"),
        millis_header(answer.overhead),
    );
    if let Some(translation) = &translation {
        headers.insert(
            HeaderName::from_static("x-gateway-translated"),
            HeaderValue::from_static(super::translation::direction(translation)),
        );
        if !translation.removed.is_empty() {
            if let Ok(value) = HeaderValue::from_str(&translation.removed.join(", ")) {
                headers.insert(
                    HeaderName::from_static("x-gateway-translation-removed"),
                    value,
                );
            }
        }
    }
    if let Some((profile, model)) = &routed {
        for (name, value) in [("x-route-profile", profile), ("x-route-model", model)] {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
    }
    response
}

/// `d` in milliseconds with three decimals (`0.042`), written digit by digit: float formatting
/// cost more than the rest of the header work on every proxied call.
fn millis_header(d: Duration) -> HeaderValue {
    let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let mut text = [0u8; 24];
    let mut at = text.len();
    let mut put = |byte: u8| {
        at -= 1;
        text[at] = byte;
    };
    let fraction = micros % 1000;
    for place in [1, 10, 100] {
        put(b'0' + (fraction / place % 10) as u8);
    }
    put(b'.');
    let mut whole = micros / 1000;
    loop {
        put(b'0' + (whole % 10) as u8);
        whole /= 10;
        if whole == 0 {
            break;
        }
    }
    HeaderValue::from_bytes(&text[at..]).unwrap_or_else(|_| HeaderValue::from_static("0.000"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn overhead_is_written_in_milliseconds_with_three_decimals() {
        for (d, text) in [
            (Duration::ZERO, "0.000"),
            (Duration::from_nanos(999), "0.000"),
            (Duration::from_micros(42), "0.042"),
            (Duration::from_micros(1_005), "1.005"),
            (Duration::from_micros(12_340), "12.340"),
            (Duration::from_secs(90_061), "90061000.000"),
        ] {
            assert_eq!(super::millis_header(d).to_str().ok(), Some(text));
        }
    }
}
