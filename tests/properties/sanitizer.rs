//! The sanitizer, every pattern on and redacting: no body panics it, a JSON body stays JSON
//! when redacted, every finding leaves its placeholder, and no planted secret gets through.

use std::sync::LazyLock;

use llm_gateway::sanitizer::{Sanitizer, ScanOutcome};
use llm_gateway::settings::{CustomPattern, CustomPatternAction, SanitizationSettings};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Value};

use crate::generators;

/// Secrets as they are written (`.0`) and the part that must not reach a provider (`.1`).
pub const SECRETS: &[(&str, &str)] = &[
    ("sk-proj-GQW8Z4PyTXlj91tc9SVua3xUWoSnZCrKTnzJ2t8ZNdbGumO2bs1dACKokBnlDLgFLMO_Fqj1ZsT3BlbkFJwbAVWLbaw", "sk-proj-GQW8Z4PyTXlj91tc9SVua3xUWoSnZCrKTnzJ2t8ZNdbGumO2bs1dACKokBnlDLgFLMO_Fqj1ZsT3BlbkFJwbAVWLbaw"),
    ("sk-ant-api03-IsPZmdSju4b5X2jUd9XBKovKof7zOZx6EvicoyH1-JNTIVNk8Csy2XtjJUb69ydBtNfd_pSCoDT1vtHE92oSrGrpLETSJAA", "sk-ant-api03-IsPZmdSju4b5X2jUd9XBKovKof7zOZx6EvicoyH1-JNTIVNk8Csy2XtjJUb69ydBtNfd_pSCoDT1vtHE92oSrGrpLETSJAA"),
    ("AKIAWHQHBLWEVGK3RLCE", "AKIAWHQHBLWEVGK3RLCE"),
    ("aws_secret_access_key = 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", "VHbbv4Qu9uumHVp8vwkG45PPDxgpUib0Q3mD0HfR"),
    ("ghp_9mwRhnIqF3elbrWgLENnzwhV67H1lcpy12Nc", "ghp_9mwRhnIqF3elbrWgLENnzwhV67H1lcpy12Nc"),
    ("glpat-Ab3dEf6hIj9kLm2nOp5q", "glpat-Ab3dEf6hIj9kLm2nOp5q"),
    ("xoxb-337606743314-1922500729407-SbrXXanOZC2QoCIBiwvq30Sa", "xoxb-337606743314-1922500729407-SbrXXanOZC2QoCIBiwvq30Sa"),
    ("https://hooks.slack.com/services/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", "ImFzv34WeyQPHmTkfd6yvpdH"),
    ("sk_live_H2jmJx38MaHuXXbh8GRdZO0ee6lqGt8u", "sk_live_H2jmJx38MaHuXXbh8GRdZO0ee6lqGt8u"),
    ("AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"),
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq2Xk3r9Tq2LmP8vN4bW7yZ1cD5fG6hJ0sAqW\n-----END RSA PRIVATE KEY-----", "MIIEowIBAAKCAQEA7bq2Xk3r9Tq2LmP8vN4bW7yZ1cD5fG6hJ0sAqW"),
    ("postgres://app:s3cretpass@db.internal:5432/app", "s3cretpass"),
    ("Bearer q7Rk2VtN8wXp4LmZ9sYc", "q7Rk2VtN8wXp4LmZ9sYc"),
    ("password=hunter22x", "hunter22x"),
    ("jane.doe@example.com", "jane.doe@example.com"),
    ("4111 1111 1111 1111", "4111 1111 1111 1111"),
    ("378282246310005", "378282246310005"),
    ("DE89 3704 0044 0532 0130 00", "DE89 3704 0044 0532 0130 00"),
    ("GB82WEST12345698765432", "GB82WEST12345698765432"),
    ("123-45-6789", "123-45-6789"),
    ("+44 20 7946 0958", "+44 20 7946 0958"),
    ("(212) 555-0100", "(212) 555-0100"),
    ("212-555-0199", "212-555-0199"),
    ("TICKET-1234", "TICKET-1234"),
];

/// Every shipped pattern on and redacting, and two of the operator's own: one of them (`.`)
/// able to end inside a multi-byte character.
static SANITIZER: LazyLock<Sanitizer> = LazyLock::new(|| {
    let custom = |name: &str, regex: &str| CustomPattern {
        name: name.into(),
        regex: regex.into(),
        action: CustomPatternAction::Redact,
    };
    Sanitizer::new(&SanitizationSettings {
        enabled: true,
        scan_credentials: true,
        scan_pii: true,
        redact_pii: true,
        redact_credentials: true,
        compliance_gate: false,
        compliance_gate_likely: false,
        inline_scan_bytes: 32 * 1024,
        patterns: vec![custom("ticket", r"TICKET-\d{4}"), custom("ref", "REF-.{4}")],
    })
    .unwrap()
});

/// What goes upstream after the scan.
fn sent(body: &[u8], outcome: &ScanOutcome) -> Vec<u8> {
    outcome.redacted.clone().unwrap_or_else(|| body.to_vec())
}

fn occurrences(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

/// Checks the outcome of one scan: JSON stays JSON, every finding left its placeholder.
fn check_scan(body: &[u8]) -> ScanOutcome {
    let outcome = SANITIZER.scan_body(body);
    let out = sent(body, &outcome);
    if serde_json::from_slice::<Value>(body).is_ok() {
        assert!(
            serde_json::from_slice::<Value>(&out).is_ok(),
            "the redacted body is JSON: {}",
            String::from_utf8_lossy(&out)
        );
    }
    assert!(outcome.blocking.is_empty(), "redaction blocks nothing");
    for (kind, count) in &outcome.findings {
        let placeholder = format!("[REDACTED_{}]", kind.to_ascii_uppercase());
        assert!(
            occurrences(&out, placeholder.as_bytes()) >= *count as usize,
            "{count} {kind} found, each leaves {placeholder}: {}",
            String::from_utf8_lossy(&out)
        );
    }
    outcome
}

/// Text that is neither a secret nor part of one: no ASCII letter, digit or joining mark.
fn filler() -> impl Strategy<Value = String> {
    "[ \t!?()\"\\\\éß中😀\u{a0}\u{2028}]{0,12}"
}

/// Secrets and filler, each part apart from the next by a line break or punctuation (as in
/// lists of numbers and keys), and the secrets planted.
fn planted_text() -> impl Strategy<Value = (String, Vec<&'static str>)> {
    let part = prop_oneof![
        2 => select(SECRETS).prop_map(|(planted, secret)| (planted.to_string(), Some(secret))),
        1 => filler().prop_map(|f| (f, None)),
    ];
    (
        prop::collection::vec(part, 1..8),
        select(&["\n", "\n", "\r\n", ", ", "; ", " \n"][..]),
    )
        .prop_map(|(parts, separator)| {
            let secrets = parts.iter().filter_map(|(_, s)| *s).collect();
            let text: Vec<String> = parts.into_iter().map(|(p, _)| p).collect();
            (text.join(separator), secrets)
        })
}

/// `text` where each API shape carries prompt text.
fn request_with(text: &str, shape: usize) -> Value {
    match shape % 4 {
        0 => json!({"model": "gpt-4o", "messages": [{"role": "user", "content": text}]}),
        1 => json!({"model": "claude-x", "max_tokens": 16, "system": text,
                    "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}]}),
        2 => json!({"model": "gpt-4o", "messages": [{"role": "assistant", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": text}}]}]}),
        _ => json!({"model": "claude-x", "messages": [{"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": text}]}]}],
                    "metadata": {"note": text}}),
    }
}

proptest! {
    #![proptest_config(crate::config(256))]

    #[test]
    fn scanning_arbitrary_bytes_never_panics(body in prop::collection::vec(any::<u8>(), 0..512)) {
        check_scan(&body);
    }

    #[test]
    fn a_json_ish_body_is_scanned_into_json_with_every_finding_redacted(
        body in generators::json_ish_bytes(),
    ) {
        check_scan(&body);
    }

    #[test]
    fn a_match_that_ends_inside_a_character_is_redacted_whole(
        before in any::<String>(),
        after in any::<String>(),
    ) {
        let body = request_with(&format!("{before}REF-{after}"), 0).to_string();
        check_scan(body.as_bytes());
    }
}

proptest! {
    // More cases: two secrets of one kind side by side are what finds the most.
    #![proptest_config(crate::config(2048))]

    #[test]
    fn no_planted_secret_reaches_the_provider(
        (text, secrets) in planted_text(),
        shape in 0usize..4,
    ) {
        let body = request_with(&text, shape).to_string();
        let outcome = check_scan(body.as_bytes());
        let out = sent(body.as_bytes(), &outcome);
        for secret in secrets {
            prop_assert_eq!(
                occurrences(&out, secret.as_bytes()), 0,
                "{} got through: {}", secret, String::from_utf8_lossy(&out)
            );
        }
    }

}

#[test]
fn each_planted_secret_alone_is_found() {
    for (planted, secret) in SECRETS {
        let body = request_with(planted, 0).to_string();
        let out = sent(body.as_bytes(), &check_scan(body.as_bytes()));
        assert_eq!(occurrences(&out, secret.as_bytes()), 0, "{planted}");
    }
}

#[test]
fn two_phone_numbers_on_consecutive_lines_are_both_redacted() {
    for text in [
        "(212) 555-0100\n(212) 555-0199",
        "+44 20 7946 0958\n+1 212 555 0100",
        "212-555-0100\n212-555-0199",
    ] {
        let body = request_with(text, 0).to_string();
        let outcome = check_scan(body.as_bytes());
        assert_eq!(outcome.findings.get("phone"), Some(&2), "{text}");
    }
}

#[test]
fn a_custom_match_ending_inside_a_character_is_redacted_with_the_character() {
    let body = request_with("see REF-abcé here", 0).to_string();
    let outcome = check_scan(body.as_bytes());
    let out: Value = serde_json::from_slice(&sent(body.as_bytes(), &outcome)).unwrap();
    assert_eq!(
        out["messages"][0]["content"],
        json!("see [REDACTED_REF] here")
    );
}
