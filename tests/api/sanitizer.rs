//! The sanitizer: a labelled corpus (precision and recall per kind, no miss and no false alarm
//! allowed), and its effect through the gateway — redaction, the compliance gate, findings in
//! the ledger and never the secret itself.

use std::collections::BTreeMap;

use llm_gateway::sanitizer::Sanitizer;
use serde_json::{json, Value};

use crate::helpers::*;

fn all_on() -> llm_gateway::settings::SanitizationSettings {
    let mut settings = load_settings("[sanitization]\nenabled = true\n")
        .unwrap()
        .sanitization;
    settings.scan_credentials = true;
    settings.scan_pii = true;
    settings
}

#[test]
fn the_labelled_corpus_is_found_exactly() {
    let sanitizer = Sanitizer::new(&all_on()).unwrap();
    let corpus = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/sanitizer/corpus.jsonl"
    ))
    .unwrap();
    // kind -> (true positives, false positives, false negatives)
    let mut tally: BTreeMap<String, (u32, u32, u32)> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut cases = 0;
    let mut look_alikes = 0;
    for line in corpus.lines().filter(|l| !l.trim().is_empty()) {
        cases += 1;
        let case: Value = serde_json::from_str(line).unwrap();
        let text = case["text"].as_str().unwrap();
        let expected: BTreeMap<String, u32> =
            serde_json::from_value(case["expect"].clone()).unwrap();
        if expected.is_empty() {
            look_alikes += 1;
        }
        let mut found = BTreeMap::new();
        let mut blocking = Vec::new();
        sanitizer.scan_text(text.as_bytes(), &mut found, &mut blocking);
        let kinds: std::collections::BTreeSet<&String> =
            expected.keys().chain(found.keys()).collect();
        for kind in kinds {
            let want = expected.get(kind).copied().unwrap_or(0);
            let got = found.get(kind).copied().unwrap_or(0);
            let t = tally.entry(kind.clone()).or_default();
            t.0 += want.min(got);
            t.1 += got.saturating_sub(want);
            t.2 += want.saturating_sub(got);
        }
        if found != expected {
            failures.push(format!(
                "{}: expected {expected:?}, found {found:?}",
                case["id"]
            ));
        }
    }
    eprintln!(
        "{cases} cases, {look_alikes} look-alikes\n{:<22} {:>5} {:>5} {:>5} {:>9} {:>7}",
        "kind", "tp", "fp", "fn", "precision", "recall"
    );
    for (kind, (tp, fp, fn_)) in &tally {
        let precision = f64::from(*tp) / f64::from((tp + fp).max(1));
        let recall = f64::from(*tp) / f64::from((tp + fn_).max(1));
        eprintln!("{kind:<22} {tp:>5} {fp:>5} {fn_:>5} {precision:>9.3} {recall:>7.3}");
    }
    assert!(cases >= 550, "the corpus has at least 550 cases ({cases})");
    assert!(
        look_alikes * 3 >= cases,
        "at least a third of the corpus are look-alikes ({look_alikes} of {cases})"
    );
    assert!(
        failures.is_empty(),
        "{} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn config(mock: &MockUpstream, sanitization: &str) -> String {
    format!(
        "{}\n[sanitization]\nenabled = true\n{sanitization}\n",
        four_providers(mock)
    )
}

const LEAKY: &str =
    "Deploy with AWS key AKIAWHQHBLWEVGK3RLCE and mail ops@example.com or call +44 20 7946 0958.";

fn leaky_chat(stream: bool) -> Value {
    json!({"model": "gpt-4o", "stream": stream, "messages": [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": [{"type": "text", "text": LEAKY}]},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "deploy", "arguments": "{\"token\": \"ghp_9mwRhnIqF3elbrWgLENnzwhV67H1lcpy12Nc\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sent to dev@example.org"}
    ]})
}

fn leaky_messages(stream: bool) -> Value {
    json!({"model": "claude-sonnet-4-20250514", "max_tokens": 64, "stream": stream,
    "system": [{"type": "text", "text": "Reach the owner at owner@example.com"}],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": LEAKY}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "deploy", "input": {"token": "ghp_9mwRhnIqF3elbrWgLENnzwhV67H1lcpy12Nc"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sent to dev@example.org"}]}
    ]})
}

#[actix_web::test]
async fn pii_is_redacted_before_the_provider_sees_it_and_findings_are_recorded() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&config(&mock, "redact_pii = true")).await;

    for (path, body) in [
        ("/v1/chat/completions", leaky_chat(false)),
        ("/v1/chat/completions", leaky_chat(true)),
        ("/v1/messages", leaky_messages(false)),
        ("/v1/messages", leaky_messages(true)),
    ] {
        let response = app.post(path, &body, &[]).await;
        assert_eq!(response.status(), 200, "{path}");
        response.bytes().await.unwrap();
        let upstream = String::from_utf8(mock.last_request().unwrap().body.to_vec()).unwrap();
        assert!(
            !upstream.contains("ops@example.com") && !upstream.contains("dev@example.org"),
            "{upstream}"
        );
        assert!(!upstream.contains("7946 0958"), "{upstream}");
        assert!(
            upstream.contains("[REDACTED_EMAIL]") && upstream.contains("[REDACTED_PHONE]"),
            "{upstream}"
        );
        // Credentials are reported, not masked, unless redact_credentials is on.
        assert!(upstream.contains("AKIAWHQHBLWEVGK3RLCE"), "{upstream}");
    }

    let records = app.records(4).await;
    for r in &records {
        let findings: BTreeMap<String, u32> =
            serde_json::from_value(r["sanitizer_findings"].clone()).unwrap();
        assert_eq!(findings["aws_access_key_id"], 1, "{findings:?}");
        assert_eq!(findings["github_token"], 1, "{findings:?}");
        assert_eq!(findings["phone"], 1, "{findings:?}");
        assert!(findings["email"] >= 2, "{findings:?}");
    }
}

#[actix_web::test]
async fn the_compliance_gate_answers_403_naming_the_kinds_and_forwards_nothing() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&config(&mock, "compliance_gate = true")).await;

    for (path, body) in [
        ("/v1/chat/completions", leaky_chat(false)),
        ("/v1/chat/completions", leaky_chat(true)),
        ("/v1/messages", leaky_messages(false)),
        ("/v1/messages", leaky_messages(true)),
    ] {
        let response = app.post(path, &body, &[]).await;
        assert_eq!(response.status(), 403, "{path}");
        let json: Value = response.json().await.unwrap();
        let message = json["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("aws_access_key_id") && message.contains("github_token"),
            "{message}"
        );
        assert!(
            !message.contains("AKIA"),
            "the 403 names kinds, never the secret: {message}"
        );
        if path == "/v1/messages" {
            assert_eq!(json["type"], "error");
            assert_eq!(json["error"]["type"], "permission_error");
        } else {
            assert_eq!(json["error"]["type"], "permission_error");
        }
    }
    assert!(
        mock.requests().iter().all(|r| r.method != "POST"),
        "nothing was forwarded"
    );
    let clean = app
        .post("/v1/chat/completions", &chat_body("gpt-4o", false), &[])
        .await;
    assert_eq!(clean.status(), 200);

    let records = app.records(5).await;
    assert_eq!(
        records
            .iter()
            .filter(|r| r["error_kind"] == "compliance_blocked")
            .count(),
        4
    );
}

#[actix_web::test]
async fn credentials_can_be_masked_and_custom_patterns_apply() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&config(
        &mock,
        "redact_credentials = true\n[[sanitization.patterns]]\nname = \"ticket\"\nregex = 'TICKET-\\d{4}'\naction = \"redact\"\n[[sanitization.patterns]]\nname = \"codename\"\nregex = 'Project Nightingale'\naction = \"block\"\n",
    ))
    .await;

    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": format!("{LEAKY} See TICKET-1234.")}]});
    let response = app.post("/v1/chat/completions", &body, &[]).await;
    assert_eq!(response.status(), 200);
    let upstream = String::from_utf8(mock.last_request().unwrap().body.to_vec()).unwrap();
    assert!(
        upstream.contains("[REDACTED_AWS_ACCESS_KEY_ID]")
            && !upstream.contains("AKIAWHQHBLWEVGK3RLCE"),
        "{upstream}"
    );
    assert!(upstream.contains("[REDACTED_TICKET]"), "{upstream}");
    assert!(
        upstream.contains("ops@example.com"),
        "PII is reported, not masked, without redact_pii: {upstream}"
    );

    let blocked = app
        .post("/v1/chat/completions", &json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "About Project Nightingale"}]}), &[])
        .await;
    assert_eq!(blocked.status(), 403);
}

#[actix_web::test]
async fn the_ledger_database_holds_kinds_and_counts_and_never_the_secret() {
    let mock = MockUpstream::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("ledger.db").display()
    );
    let app = spawn_app_on(&config(&mock, "redact_pii = true"), Some(&db_url)).await;

    let response = app
        .post("/v1/chat/completions", &leaky_chat(false), &[])
        .await;
    assert_eq!(response.status(), 200);
    app.records(1).await;

    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let db = String::from_utf8_lossy(&bytes);
    assert!(
        db.contains("aws_access_key_id"),
        "the finding kinds are recorded"
    );
    for secret in [
        "AKIAWHQHBLWEVGK3RLCE",
        "ghp_9mwRhnIqF3elbrWgLENnzwhV67H1lcpy12Nc",
        "ops@example.com",
        "7946 0958",
    ] {
        assert!(!db.contains(secret), "{secret} is in the database");
    }
}

#[test]
fn an_invalid_custom_pattern_stops_start_up_naming_it() {
    let error = load_settings("[sanitization]\nenabled = true\n[[sanitization.patterns]]\nname = \"broken\"\nregex = 'a(b'\n").unwrap_err().to_string();
    assert!(
        error.contains("sanitization.patterns[0].regex") && error.contains("broken"),
        "{error}"
    );
    let error = load_settings("[[sanitization.patterns]]\nname = \"has space\"\nregex = 'x'\n")
        .unwrap_err()
        .to_string();
    assert!(error.contains("sanitization.patterns[0].name"), "{error}");
}
