//! Spawning the real gateway on a free port against mock upstreams, and small request helpers.

use std::path::PathBuf;

use llm_gateway::settings::{self, ConfigSource};
use llm_gateway::startup::Application;
pub use mock_upstream::MockUpstream;
use serde_json::{json, Value};

/// A running gateway and a client pointed at it.
pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// Loads `config` (TOML) as the gateway would from a file.
pub fn load_settings(config: &str) -> Result<settings::Settings, settings::SettingsError> {
    let (_dir, path) = write_config(config);
    settings::load_with_env(
        &ConfigSource {
            path,
            explicit: true,
        },
        Vec::new(),
    )
}

/// Writes `config` to a fresh temporary directory.
pub fn write_config(config: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).expect("write config");
    (dir, path)
}

/// Starts the gateway with `config` on a free port, inside the test's actix system.
pub async fn spawn_app(config: &str) -> TestApp {
    llm_gateway::telemetry::init();
    let (dir, path) = write_config(config);
    let mut settings = settings::load_with_env(
        &ConfigSource {
            path,
            explicit: true,
        },
        Vec::new(),
    )
    .expect("test config is valid");
    settings.server.port = 0;
    settings.server.workers = 1;
    let app = Application::build(settings).expect("gateway builds");
    let port = app.port();
    actix_rt::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client"),
        _dir: dir,
    }
}

/// A config with one provider of each type, all pointing at `mock`.
pub fn four_providers(mock: &MockUpstream) -> String {
    let url = mock.url();
    format!(
        r#"
[[providers]]
id = "openai"
provider_type = "openai"
api_key = "sk-openai-provider-key"
endpoint = "{url}"

[[providers]]
id = "azure"
provider_type = "azure_openai"
api_key = "azure-provider-key"
endpoint = "{url}"
deployment = "my-gpt4o"
api_version = "2024-10-21"

[[providers]]
id = "anthropic"
provider_type = "anthropic"
api_key = "sk-ant-provider-key"
endpoint = "{url}"

[[providers]]
id = "ollama"
provider_type = "local"
endpoint = "{url}"
"#
    )
}

impl TestApp {
    /// POSTs a JSON body to `path` with extra headers.
    pub async fn post(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}{path}", self.address))
            .header("content-type", "application/json")
            .body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("gateway answers")
    }

    /// GETs `path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("gateway answers")
    }
}

/// A minimal OpenAI chat body.
pub fn chat_body(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "Hello"}]})
}

/// A minimal Anthropic messages body.
pub fn messages_body(model: &str, stream: bool) -> Value {
    json!({"model": model, "max_tokens": 64, "stream": stream, "messages": [{"role": "user", "content": "Hello"}]})
}
