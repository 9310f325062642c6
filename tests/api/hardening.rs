//! Hostile and careless inputs the gateway once mishandled: overflowing query numbers, model ids
//! that grew the metrics without bound, a port in use, and logs an operator could not use.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::helpers::*;

#[actix_web::test]
async fn offsets_and_times_beyond_what_the_database_takes_get_a_400_naming_the_parameter() {
    let app = spawn_app("providers = []").await;

    for (path, param) in [
        ("/v1/records?offset=9223372036854775808", "offset"),
        ("/v1/records?offset=18446744073709551615", "offset"),
        (
            "/v1/projects/p/records?offset=9223372036854775808",
            "offset",
        ),
        ("/v1/stats?since=9223372036854775", "since"),
        ("/v1/stats?until=9223372036854775", "until"),
        ("/v1/records?since=-1", "since"),
        ("/v1/sources?since=10000-01-01T00:00:00Z", "since"),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 400, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["param"], param, "{path}: {body}");
    }
    let far = app.get("/v1/stats?since=253402300799").await;
    assert_eq!(far.status(), 200);
    let far: Value = far.json().await.unwrap();
    assert_eq!(far["total_requests"], 0);
    assert_eq!(
        app.get("/v1/records?offset=9223372036854775807")
            .await
            .status(),
        200
    );
}

#[actix_web::test]
async fn made_up_model_ids_share_one_metric_label() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&four_providers(&mock)).await;
    let known = app
        .post("/v1/chat/completions", &chat_body("gpt-4o", false), &[])
        .await;
    assert_eq!(known.status(), 200);
    let before = app
        .get("/metrics")
        .await
        .text()
        .await
        .unwrap()
        .lines()
        .count();

    for i in 0..200 {
        let response = app
            .post(
                "/v1/chat/completions",
                &chat_body(&format!("gpt-made-up-{i}"), false),
                &[],
            )
            .await;
        assert_eq!(response.status(), 200);
    }

    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(!metrics.contains("gpt-made-up-"), "no label per made-up id");
    assert!(metrics.contains("model=\"other\""), "they share one label");
    assert!(
        metrics.contains("model=\"gpt-4o\""),
        "known models keep theirs"
    );
    let after = metrics.lines().count();
    assert!(
        after < before + 40,
        "/metrics grew from {before} to {after} lines"
    );
}

#[test]
fn a_port_in_use_is_one_clear_error_and_exit_status_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_llm-gateway"))
        .args(["--port", &port.to_string()])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.matches("failed to bind").count(), 1, "{stderr}");
    assert!(stderr.contains("[server] host and port"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Starts the binary with `config` in a fresh directory and stops it once it is up; its
/// stdout and stderr.
fn run_briefly(config: &str) -> (String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_llm-gateway"))
        .args(["--config", path.to_str().unwrap(), "--port", "0"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let output = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        dir,
    )
}

#[test]
fn logs_go_to_stderr_uncoloured_off_a_terminal_and_name_the_config_file() {
    let (stdout, stderr, dir) = run_briefly("providers = []\n");

    assert!(stdout.is_empty(), "nothing on stdout: {stdout}");
    assert!(
        !stderr.contains('\u{1b}'),
        "no colour codes in a file: {stderr}"
    );
    let config = dir.path().join("gateway.toml");
    assert!(
        stderr.contains(&format!("configuration loaded from={}", config.display())),
        "{stderr}"
    );
    assert!(stderr.contains("llm-gateway listening"), "{stderr}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let (_, stderr, _dir) = run_briefly("providers = []\n[log]\nformat = \"json\"\n");

    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines.len() >= 2, "{stderr}");
    for line in lines {
        let event: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            event["level"].is_string() && event["timestamp"].is_string(),
            "{line}"
        );
    }
    assert!(
        stderr.contains("\"message\":\"llm-gateway listening\""),
        "{stderr}"
    );
}

#[test]
fn a_configuration_error_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[server]\nport = \"eighty\"\n").unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_llm-gateway"))
        .args(["--config", path.to_str().unwrap()])
        .output()
        .unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("server.port"), "{stderr}");
}
