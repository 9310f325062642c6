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

fn kinds_in(sanitizer: &Sanitizer, text: &str) -> BTreeMap<String, u32> {
    let mut found = BTreeMap::new();
    sanitizer.scan_text(text.as_bytes(), &mut found, &mut Vec::new());
    found
}

#[test]
fn each_credential_kind_finds_its_format_and_skips_its_stand_ins() {
    let sanitizer = Sanitizer::new(&all_on()).unwrap();
    // kind, a random value of the real format, and the stand-ins written where one would be:
    // runs of one character, example words, <…>/${…}, documented example keys, truncated or
    // too short values.
    let table: &[(&str, &str, &[&str])] = &[
        ("anthropic_key", "sk-ant-api03-D55VIRf5XKpojQnaRKInANq1eSsjJ_m5vb4GBXlWw9iYONymwpea8HIbvp_Xp_Z2Z4RTggVK3tK-YbJ-T9urPkKIM2u4vAA",
         &["sk-ant-api03-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxAA", "sk-ant-api03-D55VIRf5XKpojQnaRKInANq1eSsjJ_m5", "sk-ant-<your-key>", "sk-ant-..."]),
        ("openai_key", "sk-proj-l7jRmXzqnL73WfbzSsv2_UIh18GiQhJdqilw-NyK_hPA6FXBeIWGjTjaKaB2F2I3RfLlQl5yDOgv1YRb6J2IxrS5hPNI",
         &["sk-proj-XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "sk-your-api-key-here", "sk-proj-${OPENAI_KEY}", "sk-1234567890abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL"]),
        ("openrouter_key", "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",
         &["sk-or-v1-0000000000000000000000000000000000000000000000000000000000000000", "sk-or-v1-6b7da642b090e674"]),
        ("groq_key", "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",
         &["gsk_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "gsk_your_groq_key"]),
        ("huggingface_token", "hf_5mrbCHLQ2I3SspdRJwUoTtR7LOyUvjO9Cx",
         &["hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "hf_exampleTokenValue1234567890abcd"]),
        ("replicate_token", "r8_7rBYXKpTLxSJ8DN3PUajkbpTVAxCQ4gaw6SUa", &["r8_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "r8_<token>"]),
        ("aws_access_key_id", "AKIAOWF7KW23WF4ZECIR",
         &["AKIAIOSFODNN7EXAMPLE", "AKIAXXXXXXXXXXXXXXXX", "AKIAI44QH8DHBEXAMPLE", "AKIA0000000000000000", "AKIAOWF7KW23"]),
        ("aws_secret_key", "aws_secret_access_key = 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",
         &["aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key = XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "aws_secret_access_key =\nGlEwXcY+gfiOrGbYbbSd5AMxPND9Toom0TEaanNt"]),
        ("github_token", "ghp_pyCVxlGeL844p6TBL0eg9mY7FC7zmwDuEQPo",
         &["ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "ghp_16C7e42F292c6912E7710c838347Ae178B4a", "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", "ghp_pyCVxlGeL844"]),
        ("gitlab_token", "glpat-pAFQ4lFFMTNp9E1HqNbY", &["glpat-XXXXXXXXXXXXXXXXXXXX", "glpat-your-token-here-please", "glpat-pAFQ4l"]),
        ("slack_token", "xoxb-557666748109-2713612654614-VoEV6XTgOj9v4QSzz8Q9lVnq",
         &["xoxb-my-bot-token", "xoxp-123456789012-############-abc", "xoxb-1234-5678", "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy", "xoxb-557666748109-2713612654614-XXXXXXXXXXXXXXXXXXXXXXXX"]),
        ("slack_webhook", "http://hooks.slack.com/services/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",
         &["https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX", "hooks.slack.com/services/TUUNE8X7V/BC9E28K0U22/<secret>"]),
        ("stripe_live_key", "sk_live_E308fjoH1ziklMTonIHJVCqS", &["sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_xxxxxxxxxxxxxxxxxxxxxxxx", "sk_live_E308fjoH"]),
        ("stripe_test_key", "sk_test_793lNGA50ImYqeoR86fM7pHe", &["sk_test_4eC39HqLyjWDarjtT1zdp7dc", "sk_test_BQokikJOvBiI2HlWgH4olfQ2", "sk_test_********************"]),
        ("google_api_key", "AIzazVek2Mkj5rkTAZjY9g6YfGKPoQWoW5WjqFF",
         &["AIzaAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "AIzaSyDOCAbC123dEf456GhI789jKl012-MnO", "AIzaSy-your-api-key-goes-here-1234567"]),
        ("npm_token", "npm_OWXWgBR6wpRpJVzMM9lqDrOj6lvpfBKOl00f", &["npm_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "npm_${NPM_TOKEN}"]),
        ("pypi_token", "pypi-AgEIcHlwaS5vcmcdBrwRNYcAWs3T83ybHEpyOGl_m0Q3cg3fMr7A8npNh_OMjdPx1UtkmYltULTFZb9Zzsja0",
         &["pypi-AgEIcHlwaS5vcmc...", "pypi-AgEIcHlwaS5vcmcXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"]),
        ("twilio_api_key", "SK56514fe253520d3e061d8744b9bec997", &["SKxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "SK00000000000000000000000000000000"]),
        ("sendgrid_key", "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",
         &["SG.xxxxxxxxxxxxxxxxxxxxxx.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "SG.<id>.<secret>"]),
        ("datadog_key", "DD_API_KEY=b5e303db4d4f7127ab1be460d786e34f", &["DD_API_KEY=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "DD_API_KEY=<your-api-key>"]),
        ("shopify_token", "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", &["shpat_00000000000000000000000000000000", "shpat_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"]),
        ("telegram_bot_token", "6440501018:AAIYwmUnZj6c4qdBzbTk12FfByJFsqaYVyz",
         &["110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", "123456789:AAxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"]),
        ("azure_storage_key", "AccountKey=Lu3gvu51Braa2NxQ801kFUAJl15LVS/X7OlMC7OyncNVnX9nEom1+xbweJNZ9BaFEWN4tpbBD4SPi0BQFhPetZ==",
         &["AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==", "AccountKey=<storage-account-key>"]),
        ("jwt", "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiIxNzIxOSIsImlhdCI6MTcyOTg0NzMyOSwic2NvcGUiOiJhcGkifQ.",
         &["eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
           "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxNzIxOSIsImlhdCI6MTcyOTg0NzMyOSwic2NvcGUiOiJhcGkifQ."]),
        ("private_key", "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7q2Xk3r9Tq2Lm\n-----END PRIVATE KEY-----",
         &["-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----", "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----", "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA...\n-----END RSA PRIVATE KEY-----"]),
        ("connection_string", "postgres://app:Vq8rT2mZ4kLp@db.internal:5432/app", &["postgres://app:${DB_PASSWORD}@db:5432/app", "postgres://app:<password>@db/app", "postgres://app:xxxxxxxx@db/app"]),
        ("bearer_token", "Authorization: Bearer Vq8rT2mZ4kLpW9sYc3Nd", &["Authorization: Bearer <token>", "Authorization: Bearer xxxxxxxxxxxxxxxxxxxx", "Authorization: Bearer\nVq8rT2mZ4kLpW9sYc3Nd"]),
        ("password_assignment", "creds := \"Vq8rT2mZ4kLpW9sYc3Nd\"",
         &["password = \"dummy-password\"", "password := \"<password>\"", "GITHUB_API_KEY=\nDYNATRACE_API_KEY=", "creds := load_creds(path)", "next_page_token = \"Vq8rT2mZ4kLpW9sYc3Nd\"", "api_key = ${API_KEY}", "secret = \"################\""]),
    ];
    for (kind, real, stand_ins) in table {
        let found = kinds_in(&sanitizer, real);
        assert_eq!(
            found,
            BTreeMap::from([(kind.to_string(), 1)]),
            "{kind}: {real}"
        );
        for stand_in in *stand_ins {
            let found = kinds_in(&sanitizer, stand_in);
            assert!(found.is_empty(), "{kind}: {stand_in} gave {found:?}");
        }
    }
}

#[test]
fn formats_are_certain_and_names_with_random_values_are_likely() {
    let sanitizer = Sanitizer::new(&all_on()).unwrap();
    use llm_gateway::sanitizer::Confidence;
    for kind in [
        "openai_key",
        "aws_access_key_id",
        "jwt",
        "private_key",
        "credit_card",
    ] {
        assert_eq!(
            sanitizer.confidence(kind),
            Some(Confidence::Certain),
            "{kind}"
        );
    }
    for kind in ["password_assignment", "bearer_token"] {
        assert_eq!(
            sanitizer.confidence(kind),
            Some(Confidence::Likely),
            "{kind}"
        );
    }
    assert_eq!(sanitizer.confidence("no_such_kind"), None);
}

#[actix_web::test]
async fn the_gate_blocks_likely_findings_only_when_switched_to() {
    let likely = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "why does login fail? db_password := \"Vq8rT2mZ4kLpW9sYc3Nd\""}]});
    let certain = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "key AKIAOWF7KW23WF4ZECIR"}]});

    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&config(&mock, "compliance_gate = true")).await;
    let response = app.post("/v1/chat/completions", &likely, &[]).await;
    assert_eq!(response.status(), 200, "a likely finding is reported");
    response.bytes().await.unwrap();
    let response = app.post("/v1/chat/completions", &certain, &[]).await;
    assert_eq!(response.status(), 403, "a certain finding is blocked");
    let records = app.records(2).await;
    let reported = records
        .iter()
        .find(|r| r["error_kind"] != "compliance_blocked")
        .unwrap();
    let findings: BTreeMap<String, u32> =
        serde_json::from_value(reported["sanitizer_findings"].clone()).unwrap();
    assert_eq!(
        findings.get("password_assignment"),
        Some(&1),
        "{findings:?}"
    );

    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&config(
        &mock,
        "compliance_gate = true\ncompliance_gate_likely = true",
    ))
    .await;
    let response = app.post("/v1/chat/completions", &likely, &[]).await;
    assert_eq!(response.status(), 403);
    let json: Value = response.json().await.unwrap();
    let message = json["error"]["message"].as_str().unwrap();
    assert!(message.contains("password_assignment"), "{message}");
    assert!(!message.contains("Vq8rT2mZ"), "{message}");
    assert!(mock.requests().iter().all(|r| r.method != "POST"));
}
