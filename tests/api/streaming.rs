//! Streaming passthrough: chunks reach the client as the upstream emits them, and a client that leaves ends the upstream request.

use std::time::Duration;

use futures_util::StreamExt;

use crate::helpers::*;

async fn first_chunk_arrives_before_the_second_is_sent(path: &str, body: serde_json::Value) {
    let mock = MockUpstream::start().unwrap();
    mock.set_models(&["llama3:8b"]);
    let app = spawn_app(&four_providers(&mock)).await;

    let response = app.post(path, &body, &[("x-mock-hold", "1")]).await;
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(30), stream.next())
        .await
        .expect("the first chunk arrives while the upstream holds the second")
        .unwrap()
        .unwrap();

    // The mock holds the second chunk for at least 500 ms and until released: the client
    // holding the first one now proves nothing was buffered.
    assert_eq!(mock.chunks_sent(), 1, "the second chunk is not yet sent");
    assert!(first.starts_with(b"data: ") || first.starts_with(b"event: "));
    mock.release();
    let mut rest = Vec::new();
    while let Some(chunk) = stream.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    assert!(mock.chunks_sent() > 2);
    let text = String::from_utf8(rest).unwrap();
    assert!(
        text.contains("chunk2"),
        "the rest of the stream follows: {text}"
    );
}

#[actix_web::test]
async fn an_openai_stream_reaches_the_client_before_the_upstream_finishes() {
    first_chunk_arrives_before_the_second_is_sent(
        "/v1/chat/completions",
        chat_body("gpt-4o", true),
    )
    .await;
}

#[actix_web::test]
async fn an_anthropic_stream_reaches_the_client_before_the_upstream_finishes() {
    first_chunk_arrives_before_the_second_is_sent(
        "/v1/messages",
        messages_body("claude-sonnet-4-20250514", true),
    )
    .await;
}

#[actix_web::test]
async fn a_client_that_disconnects_ends_the_upstream_request() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&four_providers(&mock)).await;

    let response = app
        .post(
            "/v1/chat/completions",
            &chat_body("gpt-4o", true),
            &[("x-mock-chunks", "1000"), ("x-mock-chunk-delay-ms", "20")],
        )
        .await;
    let mut stream = response.bytes_stream();
    stream.next().await.unwrap().unwrap();
    drop(stream);

    // The upstream stream would take 20 s to finish; its end is observed well before.
    let mut waited = Duration::ZERO;
    while mock.aborted_streams() == 0 && waited < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    assert_eq!(
        mock.aborted_streams(),
        1,
        "the upstream saw its reader go away"
    );
    assert_eq!(mock.completed_streams(), 0);
}
