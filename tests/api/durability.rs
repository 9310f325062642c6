//! Ledger records outlive the process: the spool through kills, outages and restarts.
//!
//! `kill -9` under load and SIGTERM while the database is down lose no answered request's record,
//! restarts write each record once, the spool stays small, and a spool belongs to one process.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use entities::requests;
use llm_gateway::actors::cost_ledger::{FlushLedger, PendingRecords};
use llm_gateway::startup::Application;
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, QuerySelect, Statement};
use serde_json::json;

use crate::helpers::*;

/// Answers that arrived within this long before a `kill -9` may lack a record: the spooler
/// moves records to the spool every 5 ms (there is no write per request), and a busy test
/// machine can delay it further.
const KILL_GRACE: Duration = Duration::from_millis(150);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A config with the four providers on `mock`, the ledger in `db_url`, spooling to `spool`.
fn config(mock: &MockUpstream, db_url: &str, spool: &Path, database: &str) -> String {
    format!(
        "{}\n[database]\nurl = \"{db_url}\"\nspool_dir = \"{}\"\n{database}",
        four_providers(mock),
        spool.display()
    )
}

/// The gateway binary, run as an operator runs it.
struct Gateway {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Gateway {
    /// Starts the binary and waits until it serves (after its start-up replay).
    async fn start(config: &Path, port: u16, log: PathBuf) -> Self {
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_llm-gateway"))
            .args([
                "--config",
                config.to_str().unwrap(),
                "--port",
                &port.to_string(),
            ])
            .env("RUST_LOG", "info")
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .unwrap();
        let mut gateway = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        for _ in 0..400 {
            if client
                .get(format!("{}/health", gateway.base))
                .send()
                .await
                .is_ok()
            {
                return gateway;
            }
            if let Some(status) = gateway.child.try_wait().unwrap() {
                panic!("the gateway exited at start ({status}):\n{}", gateway.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = gateway.child.kill();
        panic!("the gateway did not start:\n{}", gateway.log());
    }

    fn signal(&self, signal: &str) {
        Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
    }

    /// Waits for the process to exit.
    async fn exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "the gateway did not exit within {within:?}:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the gateway with SIGTERM and expects a clean exit.
    async fn stop(mut self) {
        self.signal("-TERM");
        let status = self.exit(Duration::from_secs(40)).await;
        assert!(status.success(), "{status}:\n{}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Gateway {
    /// A test that fails half-way leaves no gateway running.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Clients calling the gateway in loops until stopped; each answer that arrived whole is
/// noted with its request id and the moment it arrived.
struct Load {
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<Vec<(String, Instant)>>>,
}

impl Load {
    fn start(base: &str, workers: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let workers = (0..workers)
            .map(|w| {
                let (client, base, stop) = (client.clone(), base.to_string(), stop.clone());
                actix_rt::spawn(async move {
                    let mut answered = Vec::new();
                    let mut i = w;
                    while !stop.load(Ordering::Relaxed) {
                        match call(&client, &base, i).await {
                            Some(id) => answered.push((id, Instant::now())),
                            // Down, or stopping: try again shortly.
                            None => tokio::time::sleep(Duration::from_millis(10)).await,
                        }
                        i += 1;
                    }
                    answered
                })
            })
            .collect();
        Self { stop, workers }
    }

    /// Stops the clients; returns every answered request.
    async fn stop(self) -> Vec<(String, Instant)> {
        self.stop.store(true, Ordering::Relaxed);
        let mut answered = Vec::new();
        for worker in self.workers {
            answered.extend(worker.await.unwrap());
        }
        answered
    }
}

/// One request (a JSON answer, an OpenAI stream or an Anthropic stream); its id when the whole
/// answer arrived.
async fn call(client: &reqwest::Client, base: &str, i: usize) -> Option<String> {
    let (path, body, headers) = match i % 3 {
        0 => (
            "/v1/chat/completions",
            chat_body("gpt-4o", false),
            [("x-mock-delay-ms", "2"), ("x-mock-chunks", "1")],
        ),
        1 => (
            "/v1/chat/completions",
            chat_body("gpt-4o", true),
            [("x-mock-chunks", "3"), ("x-mock-chunk-delay-ms", "2")],
        ),
        _ => (
            "/v1/messages",
            messages_body("claude-sonnet-4-20250514", true),
            [("x-mock-chunks", "3"), ("x-mock-chunk-delay-ms", "2")],
        ),
    };
    let mut request = client
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    answered_id(request).await
}

/// What the ledger database holds.
struct Ledger {
    ids: HashSet<String>,
    rows: i64,
    distinct_ids: i64,
    /// Requests counted by the hourly rollups.
    rolled_up: i64,
}

async fn connect(db_url: &str) -> DatabaseConnection {
    let mut options = sea_orm::ConnectOptions::new(db_url.to_string());
    options.max_connections(1).sqlx_logging(false);
    sea_orm::Database::connect(options).await.unwrap()
}

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    let statement = Statement::from_string(db.get_database_backend(), sql);
    let row = db.query_one_raw(statement).await.unwrap().unwrap();
    row.try_get_by_index(0).unwrap()
}

async fn read_ledger(db_url: &str) -> Ledger {
    let db = connect(db_url).await;
    let ids: Vec<String> = requests::Entity::find()
        .select_only()
        .column(requests::Column::Id)
        .into_tuple()
        .all(&db)
        .await
        .unwrap();
    let ledger = Ledger {
        ids: ids.into_iter().collect(),
        rows: count(&db, "SELECT CAST(COUNT(*) AS BIGINT) FROM requests").await,
        distinct_ids: count(
            &db,
            "SELECT CAST(COUNT(DISTINCT id) AS BIGINT) FROM requests",
        )
        .await,
        rolled_up: count(
            &db,
            "SELECT CAST(COALESCE(SUM(requests), 0) AS BIGINT) FROM rollups_hourly",
        )
        .await,
    };
    let _ = db.close().await;
    ledger
}

impl Ledger {
    /// Every record once: no id twice, and the rollups count each record once.
    fn assert_each_record_once(&self) {
        assert_eq!(self.rows, self.distinct_ids, "a request recorded twice");
        assert_eq!(
            self.rolled_up, self.rows,
            "the rollups count {} requests for {} records",
            self.rolled_up, self.rows
        );
    }
}

/// Waits until the gateway has just written a batch: the count of records changes twice.
async fn wait_for_a_batch(db_url: &str) {
    let db = connect(db_url).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let n = count(&db, "SELECT CAST(COUNT(*) AS BIGINT) FROM requests").await;
        if seen.last() != Some(&n) {
            seen.push(n);
        }
        if seen.iter().filter(|n| **n > 0).count() >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "no batch written: {seen:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = db.close().await;
}

/// The ledger database made unavailable to the gateway. SQLite: another writer holds it locked
/// (as a backup or a migration would), so the gateway's writes time out. PostgreSQL: the
/// database refuses connections and the open ones are cut (a database taken offline).
enum Outage {
    Sqlite(DatabaseConnection),
    Postgres {
        admin: DatabaseConnection,
        name: String,
    },
}

impl Outage {
    async fn begin(db_url: &str) -> Self {
        if db_url.starts_with("sqlite:") {
            let locker = connect(db_url).await;
            locker.execute_unprepared("BEGIN EXCLUSIVE").await.unwrap();
            return Self::Sqlite(locker);
        }
        let name = db_url.rsplit('/').next().unwrap().to_string();
        let admin = connect(&std::env::var("TEST_DATABASE_URL").unwrap()).await;
        admin
            .execute_unprepared(&format!(
                "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"
            ))
            .await
            .unwrap();
        admin
            .execute_unprepared(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            ))
            .await
            .unwrap();
        Self::Postgres { admin, name }
    }

    async fn end(self) {
        match self {
            Self::Sqlite(locker) => {
                locker.execute_unprepared("ROLLBACK").await.unwrap();
                let _ = locker.close().await;
            }
            Self::Postgres { admin, name } => {
                admin
                    .execute_unprepared(&format!(
                        "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"
                    ))
                    .await
                    .unwrap();
                let _ = admin.close().await;
            }
        }
    }
}

#[actix_web::test]
async fn kill_9_under_load_loses_no_answered_request_and_the_restart_writes_each_record_once() {
    let mock = MockUpstream::start_on("127.0.0.1:0", 2).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db_url = fresh_database_url(dir.path()).await;
    // Batches every half second: records spend that long in memory before the database has
    // them, as they do behind a busy database.
    let config = config(
        &mock,
        &db_url,
        &dir.path().join("spool"),
        "flush_interval_ms = 500\n",
    );
    let (_config_dir, config_path) = write_config(&config);
    let port = free_port();
    let mut gateway = Gateway::start(&config_path, port, dir.path().join("first.log")).await;

    let load = Load::start(&gateway.base, 16);
    // Killed between two batches, well after the last one: what was answered since is in the
    // spool, not in the database.
    wait_for_a_batch(&db_url).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed_at = Instant::now();
    gateway.child.kill().unwrap();
    let _ = gateway.child.wait();
    let answered = load.stop().await;
    let answered: Vec<String> = answered
        .into_iter()
        .filter(|(_, at)| *at + KILL_GRACE <= killed_at)
        .map(|(id, _)| id)
        .collect();
    let before = read_ledger(&db_url).await;
    let unwritten = answered
        .iter()
        .filter(|id| !before.ids.contains(*id))
        .count();
    assert!(
        unwritten > 0,
        "the kill came between two batches: {} answered requests, all in the database already",
        answered.len()
    );

    let again = Gateway::start(&config_path, port, dir.path().join("second.log")).await;
    let after = read_ledger(&db_url).await;

    for id in &answered {
        assert!(
            after.ids.contains(id),
            "request {id} was answered before the kill but has no record ({unwritten} of {} were not in the database before the restart):\n{}",
            answered.len(),
            again.log()
        );
    }
    after.assert_each_record_once();
    assert!(
        again.log().contains("ledger spool replayed"),
        "{}",
        again.log()
    );
    again.stop().await;
}

#[actix_web::test]
async fn sigterm_while_the_database_is_down_exits_non_zero_and_the_next_start_writes_every_record()
{
    let mock = MockUpstream::start_on("127.0.0.1:0", 2).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db_url = fresh_database_url(dir.path()).await;
    let config = config(&mock, &db_url, &dir.path().join("spool"), "");
    let (_config_dir, config_path) = write_config(&config);
    let port = free_port();
    let mut gateway = Gateway::start(&config_path, port, dir.path().join("first.log")).await;

    let load = Load::start(&gateway.base, 8);
    wait_for_a_batch(&db_url).await;
    let outage = Outage::begin(&db_url).await;
    // Requests go on being answered while the database is down.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopping = Instant::now();
    gateway.signal("-TERM");
    let status = gateway.exit(Duration::from_secs(60)).await;
    let took = stopping.elapsed();
    let answered: Vec<String> = load.stop().await.into_iter().map(|(id, _)| id).collect();
    outage.end().await;

    let log = gateway.log();
    assert_eq!(status.code(), Some(75), "exit status {status}:\n{log}");
    assert!(took < Duration::from_secs(30), "took {took:?} to stop");
    assert!(
        log.contains("kept in the spool")
            && log.contains(&dir.path().join("spool").display().to_string()),
        "the log says where the records are:\n{log}"
    );
    let before = read_ledger(&db_url).await;
    let unwritten = answered
        .iter()
        .filter(|id| !before.ids.contains(*id))
        .count();
    assert!(
        unwritten > 0,
        "the database was down: some of the {} answered requests are not in it",
        answered.len()
    );

    let again = Gateway::start(&config_path, port, dir.path().join("second.log")).await;
    let after = read_ledger(&db_url).await;

    for id in &answered {
        assert!(
            after.ids.contains(id),
            "request {id} was answered but has no record ({unwritten} of {} were left in the spool):\n{}",
            answered.len(),
            again.log()
        );
    }
    after.assert_each_record_once();
    again.stop().await;
}

/// The segment files in a spool directory.
fn segments(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".jsonl"))
                .collect()
        })
        .unwrap_or_default()
}

#[actix_web::test]
async fn under_sustained_load_the_spool_holds_only_what_the_database_does_not_have_yet() {
    let mock = MockUpstream::start().unwrap();
    // Small segments (about 50 records), so that the load fills many.
    let app = spawn_app(&format!(
        "{}\n[database]\nspool_segment_bytes = 32768\n",
        four_providers(&mock)
    ))
    .await;

    let load = Load::start(&app.address, 8);
    let mut seen = HashSet::new();
    let mut most_at_once = 0;
    // Four seconds, or longer on a slow machine until the load has filled a dozen segments.
    let started = Instant::now();
    let done = |seen: &HashSet<String>| {
        let elapsed = started.elapsed();
        elapsed > Duration::from_secs(30) || (elapsed > Duration::from_secs(4) && seen.len() >= 12)
    };
    while !done(&seen) {
        let now = segments(&app.spool_dir);
        most_at_once = most_at_once.max(now.len());
        seen.extend(now);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let answered = load.stop().await;
    let _ = app.ledger.send(FlushLedger).await;
    // Idle, the last segment is closed within a second, then deleted: nothing is left.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !segments(&app.spool_dir).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    assert!(
        seen.len() >= 10,
        "the load filled many segments: {} seen for {} requests",
        seen.len(),
        answered.len()
    );
    assert!(
        most_at_once <= 8,
        "written segments are deleted: {most_at_once} on disk at once, of {} seen",
        seen.len()
    );
    assert_eq!(
        segments(&app.spool_dir),
        Vec::<String>::new(),
        "once everything is written, the spool is empty"
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("llm_gateway_ledger_spool_bytes 0"),
        "{metrics}"
    );
}

/// Builds a gateway in this process on `db_url` with its spool in `spool`; returns the built
/// application or the start-up error.
async fn build(mock: &MockUpstream, db_url: &str, spool: &Path) -> anyhow::Result<Application> {
    let mut settings = load_settings(&config(mock, db_url, spool, "")).unwrap();
    settings.server.port = 0;
    settings.server.workers = 1;
    settings.database.flush_interval_ms = 20;
    Application::build(settings).await
}

#[actix_web::test]
async fn a_second_gateway_on_the_same_spool_is_refused_with_the_key_to_change() {
    let mock = MockUpstream::start().unwrap();
    let first = spawn_app(&four_providers(&mock)).await;
    let dir = tempfile::tempdir().unwrap();
    let db_url = fresh_database_url(dir.path()).await;

    let error = match build(&mock, &db_url, &first.spool_dir).await {
        Ok(_) => panic!("two gateways on one spool"),
        Err(e) => format!("{e:#}"),
    };

    assert!(
        error.contains("`[database] spool_dir`")
            && error.contains(&first.spool_dir.display().to_string()),
        "{error}"
    );
}

#[actix_web::test]
async fn a_start_writes_what_the_spool_holds_and_the_database_lacks_once_skipping_a_torn_line() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&four_providers(&mock)).await;
    for _ in 0..2 {
        app.post("/v1/chat/completions", &chat_body("gpt-4o", false), &[])
            .await;
    }
    app.records(2).await;
    let db = connect(&app.db_url).await;
    let written = requests::Entity::find().all(&db).await.unwrap();
    let _ = db.close().await;
    // A spool as a crash leaves it: a record the database has, one it lacks, a line cut short.
    let lacking = requests::Model {
        id: "replayed-from-the-spool".into(),
        ..written[1].clone()
    };
    let torn = requests::Model {
        id: "torn-by-the-crash".into(),
        ..written[1].clone()
    };
    let line = |seq: u64, request: &requests::Model| {
        json!({"seq": seq, "request": request, "attempts": []}).to_string() + "\n"
    };
    let spool = tempfile::tempdir().unwrap();
    let text = line(1, &written[0]) + &line(2, &lacking) + &line(3, &torn)[..80];
    std::fs::write(spool.path().join("spool-00000000000000000001.jsonl"), text).unwrap();

    let restarted = build(&mock, &app.db_url, spool.path()).await.unwrap();
    let after = read_ledger(&app.db_url).await;

    let expected: HashSet<String> = [&written[0].id, &written[1].id, &lacking.id]
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(after.ids, expected);
    after.assert_each_record_once();
    assert_eq!(
        segments(spool.path()),
        Vec::<String>::new(),
        "replayed segments are deleted"
    );
    drop(restarted);
}

#[actix_web::test]
async fn records_beyond_the_memory_backlog_wait_in_the_spool_and_none_is_lost() {
    let mock = MockUpstream::start().unwrap();
    let app = spawn_app(&format!(
        "{}\n[database]\nmax_pending = 10\nbatch_size = 5\n",
        four_providers(&mock)
    ))
    .await;
    app.post("/v1/chat/completions", &chat_body("gpt-4o", false), &[])
        .await;
    app.records(1).await;

    let outage = Outage::begin(&app.db_url).await;
    for i in 0..60 {
        let response = app
            .post(
                "/v1/chat/completions",
                &chat_body("gpt-4o", i % 2 == 0),
                &[],
            )
            .await;
        assert_eq!(response.status(), 200);
        let _ = response.bytes().await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.ledger.send(PendingRecords).await.unwrap() < 60 {
        assert!(
            Instant::now() < deadline,
            "the records wait for the database"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    outage.end().await;

    app.records(61).await;
    let after = read_ledger(&app.db_url).await;
    after.assert_each_record_once();
}

#[test]
fn the_spool_settings_are_checked_naming_the_key() {
    for (config, key) in [
        ("[database]\nspool_dir = \"\"\n", "database.spool_dir"),
        (
            "[database]\nspool_segment_bytes = 0\n",
            "database.spool_segment_bytes",
        ),
    ] {
        let error = load_settings(config).unwrap_err().to_string();
        assert!(error.contains(key), "{config}: {error}");
    }
}
