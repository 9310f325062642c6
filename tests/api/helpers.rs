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
    /// The ledger database this gateway writes to.
    pub db_url: String,
    /// The ledger's spool.
    pub spool_dir: PathBuf,
    pub ledger: actix::Addr<llm_gateway::actors::cost_ledger::CostLedger>,
    pub signals: actix::Addr<llm_gateway::actors::signal_collector::SignalCollector>,
    /// The evidence of quality signals, as the collector publishes it for the router.
    pub signal_figures: std::sync::Arc<arc_swap::ArcSwap<llm_gateway::signals::SignalFigures>>,
    /// The budgets and rate limits, whose clock tests set.
    pub limits: std::sync::Arc<llm_gateway::limits::Limiter>,
    _dir: tempfile::TempDir,
}

/// A fresh ledger database: a new PostgreSQL database when `TEST_DATABASE_URL` is set (the
/// suite then runs against PostgreSQL), otherwise a new SQLite file in `dir`.
pub async fn fresh_database_url(dir: &std::path::Path) -> String {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(base) if !base.is_empty() => fresh_postgres_url(&base).await,
        _ => format!("sqlite://{}?mode=rwc", dir.join("ledger.db").display()),
    }
}

/// A new PostgreSQL database on the server of `base` (a URL ending in `/<database>`).
pub async fn fresh_postgres_url(base: &str) -> String {
    use sea_orm::ConnectionTrait;
    let name = format!("gw_test_{}", uuid::Uuid::now_v7().simple());
    let admin = sea_orm::Database::connect(base)
        .await
        .expect("the PostgreSQL server is reachable");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create a test database");
    let _ = admin.close().await;
    let (server, _) = base
        .rsplit_once('/')
        .expect("the PostgreSQL URL ends with /database");
    format!("{server}/{name}")
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

/// Starts the gateway with `config` on a free port, inside the test's actix system, with a
/// fresh ledger database.
pub async fn spawn_app(config: &str) -> TestApp {
    spawn_app_on(config, None).await
}

/// Starts the gateway with `config`, writing to `db_url` (a fresh database when None).
pub async fn spawn_app_on(config: &str, db_url: Option<&str>) -> TestApp {
    spawn_app_tuned(config, db_url, |_| {}).await
}

/// As [`spawn_app_on`], with `tune` changing the settings last (after the test defaults,
/// such as the 20 ms ledger and signal flushes).
pub async fn spawn_app_tuned(
    config: &str,
    db_url: Option<&str>,
    tune: impl FnOnce(&mut settings::Settings),
) -> TestApp {
    llm_gateway::telemetry::init(Default::default());
    let (dir, path) = write_config(config);
    let db_url = match db_url {
        Some(url) => url.to_string(),
        None => fresh_database_url(dir.path()).await,
    };
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
    settings.database.url = db_url.clone();
    settings.database.flush_interval_ms = 20;
    settings.signals.flush_interval_ms = 20;
    // Each gateway its own spool (a spool is locked by the process that has it).
    let spool_dir = dir.path().join("spool");
    settings.database.spool_dir = spool_dir.clone();
    tune(&mut settings);
    let app = Application::build(settings).await.expect("gateway builds");
    let port = app.port();
    let ledger = app.ledger();
    let signals = app.signals();
    let signal_figures = app.state().signal_figures.clone();
    let limits = app.state().pipeline.limits.clone();
    actix_rt::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        db_url,
        spool_dir,
        ledger,
        signals,
        signal_figures,
        limits,
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

    /// Waits until the ledger holds `n` records (they are written off the request path) and
    /// returns them, most recent first.
    pub async fn records(&self, n: usize) -> Vec<Value> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let _ = self
                .ledger
                .send(llm_gateway::actors::cost_ledger::FlushLedger)
                .await;
            let page: Value = self
                .get("/v1/records?limit=1000")
                .await
                .json()
                .await
                .unwrap();
            let data = page["data"].as_array().cloned().unwrap_or_default();
            if data.len() >= n || std::time::Instant::now() > deadline {
                assert_eq!(data.len(), n, "the ledger holds one record per request");
                return data;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// GETs `path` with extra headers.
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.address));
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

/// POSTs `body` to `path` and reads the whole answer; returns its `x-request-id` and status.
pub async fn send(
    app: &TestApp,
    path: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> (String, u16) {
    let response = app.post(path, body, headers).await;
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let status = response.status().as_u16();
    response.bytes().await.unwrap();
    (id, status)
}

/// A minimal OpenAI chat body.
pub fn chat_body(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "Hello"}]})
}

/// A minimal Anthropic messages body.
pub fn messages_body(model: &str, stream: bool) -> Value {
    json!({"model": model, "max_tokens": 64, "stream": stream, "messages": [{"role": "user", "content": "Hello"}]})
}

/// Sends `request` and reads the whole answer; its `x-request-id` when it was a 200 that
/// arrived complete (a JSON body with usage, or a stream to its end), else None.
pub async fn answered_id(request: reqwest::RequestBuilder) -> Option<String> {
    use futures_util::StreamExt;
    let response = request.send().await.ok()?;
    if response.status() != 200 {
        return None;
    }
    let id = response
        .headers()
        .get("x-request-id")?
        .to_str()
        .ok()?
        .to_string();
    let mut stream = response.bytes_stream();
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk.ok()?);
    }
    let text = String::from_utf8_lossy(&body);
    let complete =
        text.contains("[DONE]") || text.contains("message_stop") || text.contains("\"usage\"");
    complete.then_some(id)
}

/// Opens a raw connection and sends `head` (request line and headers, ending in a blank line):
/// the bytes as written, where an HTTP client would normalise the path or the headers.
pub async fn raw(app: &TestApp, head: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// Reads what the gateway answers until it closes the connection (or `within` passes).
pub async fn answer(stream: &mut tokio::net::TcpStream, within: std::time::Duration) -> String {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(within, stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}
