//! Configuration: defaults without a file, file and environment layering, and one test per validation rule.

use std::process::Command;
use std::time::Duration;

use llm_gateway::settings::{load_with_env, ConfigSource, SettingsError};

use crate::helpers::*;

/// Loads `config` and returns the error message, which must name the file.
fn error_of(config: &str) -> String {
    let (_dir, path) = write_config(config);
    let source = ConfigSource {
        path: path.clone(),
        explicit: true,
    };
    let error = load_with_env(&source, Vec::new())
        .expect_err("config must be refused")
        .to_string();
    assert!(
        error.contains(&path.display().to_string()),
        "names the file: {error}"
    );
    error
}

#[test]
fn the_gateway_starts_on_embedded_defaults_without_a_config_file() {
    let source = ConfigSource {
        path: "/nonexistent/config.toml".into(),
        explicit: false,
    };
    let settings = load_with_env(&source, Vec::new()).unwrap();
    assert_eq!(settings.server.port, 8930);
    assert_eq!(settings.server.host, "127.0.0.1");
    assert_eq!(settings.server.max_body_bytes, 10 * 1024 * 1024);
    assert!(!settings.auth.require_key);
    assert!(!settings.sanitization.enabled);
    let ids: Vec<&str> = settings.providers().iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["openai", "anthropic"]);
}

#[test]
fn a_named_config_file_that_does_not_exist_is_an_error_naming_it() {
    let source = ConfigSource {
        path: "/nonexistent/gateway.toml".into(),
        explicit: true,
    };
    let error = load_with_env(&source, Vec::new()).unwrap_err();
    assert!(matches!(error, SettingsError::MissingFile(_)));
    assert!(error.to_string().contains("/nonexistent/gateway.toml"));
}

#[test]
fn environment_variables_override_the_file() {
    let (_dir, path) = write_config("[server]\nport = 9000\n");
    let source = ConfigSource {
        path,
        explicit: true,
    };
    let env = vec![
        ("LLM_GATEWAY__SERVER__PORT".to_string(), "9100".to_string()),
        (
            "LLM_GATEWAY__AUTH__REQUIRE_KEY".to_string(),
            "true".to_string(),
        ),
    ];
    let settings = load_with_env(&source, env).unwrap();
    assert_eq!(settings.server.port, 9100);
    assert!(settings.auth.require_key);
}

#[test]
fn the_description_example_config_loads() {
    let settings = load_settings(
        r#"
[server]
port = 8930
host = "127.0.0.1"

[[providers]]
id = "anthropic"
provider_type = "anthropic"
api_key = "sk-ant-..."
enabled = true

[[providers]]
id = "azure"
provider_type = "azure_openai"
api_key = "..."
endpoint = "https://myresource.openai.azure.com"
deployment = "gpt-4o"
api_version = "2024-10-21"
enabled = true

[[providers]]
id = "ollama"
provider_type = "local"
endpoint = "http://localhost:11434"
enabled = true

[sanitization]
enabled = true
scan_credentials = true
redact_pii = false
compliance_gate = false

[key_map.my-team-key]
label = "Team Alpha"
anthropic_key = "sk-ant-..."
openai_key = "sk-..."
"#,
    )
    .unwrap();
    assert_eq!(settings.providers().len(), 3);
    assert_eq!(settings.key_map["my-team-key"].label, "Team Alpha");
}

#[test]
fn the_shipped_example_config_loads() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml"))
        .unwrap();
    let settings = load_settings(&text).unwrap();
    assert!(!settings.providers().is_empty());
}

#[test]
fn toml_syntax_errors_name_the_line() {
    assert!(error_of("[server\nport = 1").contains("line 1"));
}

#[test]
fn unknown_keys_are_refused_by_name() {
    assert!(error_of("[server]\nprot = 9000\n").contains("prot"));
    assert!(error_of("[serverr]\nport = 9000\n").contains("serverr"));
    let nested = error_of(
        "[[providers]]\nid = \"o\"\nprovider_type = \"openai\"\nendpointt = \"http://x\"\n",
    );
    assert!(
        nested.contains("providers[0]") && nested.contains("endpointt"),
        "{nested}"
    );
    assert!(error_of("[key_map.k]\nlabel = \"A\"\nopenai = \"x\"\n").contains("openai"));
}

#[test]
fn wrongly_typed_values_name_the_key() {
    let error = error_of("[server]\nport = \"eighty\"\n");
    assert!(error.contains("server.port"), "{error}");
    assert!(error_of("[server]\nport = 70000\n").contains("server.port"));
}

#[test]
fn an_unknown_provider_type_lists_the_valid_ones() {
    let error = error_of("[[providers]]\nid = \"g\"\nprovider_type = \"gemini\"\n");
    assert!(
        error.contains("providers[0].provider_type") && error.contains("azure_openai"),
        "{error}"
    );
}

#[test]
fn local_and_azure_providers_need_an_endpoint() {
    assert!(
        error_of("[[providers]]\nid = \"l\"\nprovider_type = \"local\"\n")
            .contains("providers[0].endpoint")
    );
    assert!(error_of("[[providers]]\nid = \"a\"\nprovider_type = \"azure_openai\"\ndeployment = \"d\"\napi_version = \"v\"\n")
        .contains("providers[0].endpoint"));
}

#[test]
fn azure_providers_need_a_deployment_and_an_api_version() {
    let base = "[[providers]]\nid = \"a\"\nprovider_type = \"azure_openai\"\nendpoint = \"https://x.openai.azure.com\"\n";
    assert!(error_of(&format!("{base}api_version = \"2024-10-21\"\n"))
        .contains("providers[0].deployment"));
    assert!(
        error_of(&format!("{base}deployment = \"gpt-4o\"\n")).contains("providers[0].api_version")
    );
}

#[test]
fn an_endpoint_must_be_an_http_url() {
    let error = error_of(
        "[[providers]]\nid = \"l\"\nprovider_type = \"local\"\nendpoint = \"localhost:11434\"\n",
    );
    assert!(
        error.contains("providers[0].endpoint") && error.contains("http://"),
        "{error}"
    );
}

#[test]
fn provider_ids_are_unique_and_url_safe() {
    let twice = "[[providers]]\nid = \"o\"\nprovider_type = \"openai\"\n[[providers]]\nid = \"o\"\nprovider_type = \"openai\"\n";
    assert!(error_of(twice).contains("providers[1].id"));
    assert!(
        error_of("[[providers]]\nid = \"my/openai\"\nprovider_type = \"openai\"\n")
            .contains("providers[0].id")
    );
}

#[test]
fn api_key_and_api_key_env_are_exclusive_and_the_variable_must_be_set() {
    let both = "[[providers]]\nid = \"o\"\nprovider_type = \"openai\"\napi_key = \"k\"\napi_key_env = \"X\"\n";
    assert!(error_of(both).contains("providers[0].api_key_env"));
    let unset = "[[providers]]\nid = \"o\"\nprovider_type = \"openai\"\napi_key_env = \"LLM_GATEWAY_TEST_UNSET_VARIABLE\"\n";
    assert!(error_of(unset).contains("LLM_GATEWAY_TEST_UNSET_VARIABLE"));
}

#[test]
fn timeouts_must_be_positive() {
    assert!(error_of(
        "[[providers]]\nid = \"o\"\nprovider_type = \"openai\"\nread_timeout_ms = 0\n"
    )
    .contains("providers[0].read_timeout_ms"));
    assert!(error_of("[provider_defaults]\nconnect_timeout_ms = 0\n")
        .contains("provider_defaults.connect_timeout_ms"));
}

#[test]
fn signal_settings_must_be_positive_and_the_recent_index_bounded() {
    for key in [
        "flush_interval_ms",
        "batch_size",
        "max_pending",
        "publish_interval_ms",
    ] {
        let error = error_of(&format!("[signals]\n{key} = 0\n"));
        assert!(error.contains(&format!("signals.{key}")), "{error}");
    }
    let error = error_of("[signals]\nrecent_requests = 10000001\n");
    assert!(
        error.contains("signals.recent_requests") && error.contains("at most"),
        "{error}"
    );
    assert!(
        load_settings("[signals]\nrecent_requests = 0\n").is_ok(),
        "0: the database only"
    );
}

#[test]
fn a_ca_file_must_exist_and_hold_certificates() {
    let missing = error_of("[[providers]]\nid = \"o\"\nprovider_type = \"openai\"\nca_file = \"/nonexistent/ca.pem\"\n");
    assert!(
        missing.contains("providers[0].ca_file") && missing.contains("/nonexistent/ca.pem"),
        "{missing}"
    );
    let (_dir, not_pem) = write_config("just text");
    let error = error_of(&format!(
        "[[providers]]\nid = \"o\"\nprovider_type = \"openai\"\nca_file = \"{}\"\n",
        not_pem.display()
    ));
    assert!(error.contains("no PEM certificate"), "{error}");
    for device in ["/dev/zero", "/dev/stdin"] {
        let error = error_of(&format!(
            "[[providers]]\nid = \"o\"\nprovider_type = \"openai\"\nca_file = \"{device}\"\n"
        ));
        assert!(error.contains("not a regular file"), "{error}");
    }
    let (_dir, huge) = write_config(&"A".repeat(2 * 1024 * 1024));
    let error = error_of(&format!(
        "[[providers]]\nid = \"o\"\nprovider_type = \"openai\"\nca_file = \"{}\"\n",
        huge.display()
    ));
    assert!(error.contains("larger than"), "{error}");
}

#[test]
fn key_map_entries_need_a_label_and_known_provider_ids() {
    assert!(error_of("[key_map.k]\nlabel = \"\"\n").contains("label"));
    assert!(error_of("[key_map.k]\n").contains("label"));
    let error =
        error_of("[key_map.secret-token]\nlabel = \"A\"\nprovider_keys = { nope = \"x\" }\n");
    assert!(
        error.contains("nope") && !error.contains("secret-token"),
        "names the entry by label, not token: {error}"
    );
}

#[test]
fn max_body_bytes_must_be_positive() {
    assert!(error_of("[server]\nmax_body_bytes = 0\n").contains("server.max_body_bytes"));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_binary_refuses_an_invalid_config_with_a_message_naming_key_and_file() {
    let (_dir, path) = write_config("[server]\nport = \"eighty\"\n");
    let output = Command::new(env!("CARGO_BIN_EXE_llm-gateway"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr.contains("server.port") && stderr.contains(&path.display().to_string()),
        "{stderr}"
    );
}

#[test]
fn the_binary_runs_without_a_config_file_and_takes_the_port_flag() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_llm-gateway"))
        .current_dir(dir.path())
        .args(["-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut health = None;
    for _ in 0..100 {
        if let Ok(body) = blocking_get(port, "/health") {
            health = Some(body);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let health: serde_json::Value =
        serde_json::from_str(&health.expect("the gateway answers /health")).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["port"], port);
    assert_eq!(
        health["providers"],
        serde_json::json!(["openai", "anthropic"])
    );
}

/// A tiny HTTP/1.0 GET, so this test needs no async runtime.
fn blocking_get(port: u16, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .ok_or_else(|| std::io::Error::other("no body"))
}

#[test]
fn the_database_url_must_be_sqlite_or_postgres() {
    let error = error_of("[database]\nurl = \"mysql://localhost/x\"\n");
    assert!(
        error.contains("database.url") && error.contains("postgres://"),
        "{error}"
    );
    assert!(error_of("[database]\nbatch_size = 0\n").contains("database.batch_size"));
}

#[test]
fn prices_must_name_a_model_and_be_non_negative() {
    assert!(
        error_of("[[pricing]]\nmodel = \"\"\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n")
            .contains("pricing[0].model")
    );
    let negative =
        error_of("[[pricing]]\nmodel = \"m\"\ninput_per_mtok = -1.0\noutput_per_mtok = 2.0\n");
    assert!(
        negative.contains("pricing[0]") && negative.contains("non-negative"),
        "{negative}"
    );
    assert!(
        error_of("[[pricing]]\nmodel = \"m\"\ninput_per_mtok = 1.0\n").contains("output_per_mtok")
    );
}

#[test]
fn configured_prices_load() {
    let settings = load_settings(
        "[[pricing]]\nmodel = \"gpt-4.1\"\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n",
    )
    .unwrap();
    assert_eq!(settings.pricing[0].model, "gpt-4.1");
}
