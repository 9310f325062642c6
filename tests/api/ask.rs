//! `POST /v1/ask` through the real gateway: a mock model (an OpenAI-compatible server in this
//! file) answers canned SQL chosen by the question; the rows are checked against a seeded
//! ledger; hostile SQL is refused and the ledger left as it was; the database's read-only
//! mode refuses writes on its own; the repair round; the missing model; the ask call's own
//! ledger record. On SQLite, and on PostgreSQL with `TEST_DATABASE_URL`.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use entities::requests;
use llm_gateway::ask::executor::{ExecError, Limits, ReadOnlyDb};
use llm_gateway::ledger::{store, LedgerRecord};
use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder, Statement};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

/// Picks the SQL for a prompt: `(system, user) -> SQL`.
type Answerer = dyn Fn(&str, &str) -> String + Send + Sync;

/// An OpenAI-compatible chat server that answers every prompt with the SQL its answerer
/// chooses, in a ```sql fence, and keeps the prompts it received.
struct SqlWriter {
    port: u16,
    prompts: Arc<Mutex<Vec<(String, String)>>>,
}

impl SqlWriter {
    fn start(answer: impl Fn(&str, &str) -> String + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let prompts = Arc::new(Mutex::new(Vec::new()));
        let answer: Arc<Answerer> = Arc::new(answer);
        let seen = prompts.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (answer, seen) = (answer.clone(), seen.clone());
                std::thread::spawn(move || serve(stream, &*answer, &seen));
            }
        });
        Self { port, prompts }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn prompts(&self) -> Vec<(String, String)> {
        self.prompts.lock().unwrap().clone()
    }
}

fn serve(mut stream: std::net::TcpStream, answer: &Answerer, seen: &Mutex<Vec<(String, String)>>) {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let (head_end, length) = loop {
        let Ok(n) = stream.read(&mut buf) else { return };
        if n == 0 {
            return;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..at]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (at + 4, length);
        }
    };
    while data.len() < head_end + length {
        let Ok(n) = stream.read(&mut buf) else { return };
        if n == 0 {
            return;
        }
        data.extend_from_slice(&buf[..n]);
    }
    let body: Value =
        serde_json::from_slice(&data[head_end..head_end + length]).unwrap_or_default();
    let system = body["messages"][0]["content"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let user = body["messages"][1]["content"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let sql = answer(&system, &user);
    seen.lock().unwrap().push((system, user));
    let reply = json!({
        "id": "chatcmpl-ask",
        "object": "chat.completion",
        "created": 1_796_342_400,
        "model": "sql-writer-1",
        "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": format!("Here it is:\n```sql\n{sql}\n```")}}],
        "usage": {"prompt_tokens": 900, "completion_tokens": 40, "total_tokens": 940},
    })
    .to_string();
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
        reply.len()
    );
}

fn is_postgres(system: &str) -> bool {
    system.contains("Dialect: PostgreSQL")
}

/// Leaves the ask endpoint's own calls out of the seeded figures.
const SEEDED: &str = "COALESCE(source, '') <> 'llm-gateway/ask'";

/// The canned SQL of the four questions, per dialect.
fn canned(system: &str, user: &str) -> String {
    let pg = is_postgres(system);
    let question = user.to_ascii_lowercase();
    if question.contains("spend per model") {
        if pg {
            format!("SELECT model, ROUND(CAST(SUM(cost_usd) AS NUMERIC), 6) AS spend_usd FROM ask_requests WHERE ts_ms >= (EXTRACT(EPOCH FROM now()) - 7 * 86400) * 1000 AND {SEEDED} GROUP BY model ORDER BY spend_usd DESC")
        } else {
            format!("SELECT model, ROUND(SUM(cost_usd), 6) AS spend_usd FROM ask_requests WHERE ts_ms >= (CAST(strftime('%s', 'now') AS INTEGER) - 7 * 86400) * 1000 AND {SEEDED} GROUP BY model ORDER BY spend_usd DESC")
        }
    } else if question.contains("error rate") {
        format!("SELECT source, ROUND(AVG(is_error), 4) AS error_rate, COUNT(*) AS requests FROM ask_requests WHERE {SEEDED} GROUP BY source ORDER BY error_rate DESC, source")
    } else if question.contains("p95") {
        if pg {
            format!("SELECT provider, percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95_latency_ms FROM ask_requests WHERE provider IS NOT NULL AND {SEEDED} GROUP BY provider ORDER BY provider")
        } else {
            // Nearest rank, ceil(0.95 n): what percentile_disc(0.95) gives on PostgreSQL.
            format!("SELECT provider, latency_ms AS p95_latency_ms FROM (SELECT provider, latency_ms, ROW_NUMBER() OVER (PARTITION BY provider ORDER BY latency_ms) AS rn, COUNT(*) OVER (PARTITION BY provider) AS n FROM ask_requests WHERE provider IS NOT NULL AND {SEEDED}) AS ranked WHERE rn = (n * 95 + 99) / 100 ORDER BY provider")
        }
    } else if question.contains("per project per day") {
        format!("SELECT project, day, COUNT(*) AS requests FROM ask_requests WHERE {SEEDED} GROUP BY project, day ORDER BY project, day")
    } else if question.contains("every request id") {
        format!("SELECT id FROM requests WHERE {SEEDED} ORDER BY id")
    } else {
        "SELECT 1 AS unknown_question".into()
    }
}

const DAY: i64 = 86_400_000;

/// Noon UTC `days` days ago, and its day.
fn noon(days: i64) -> (i64, String) {
    let today = chrono::Utc::now().timestamp_millis().div_euclid(DAY) * DAY;
    let ts = today - days * DAY + DAY / 2;
    let day = chrono::DateTime::from_timestamp_millis(ts)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string();
    (ts, day)
}

#[allow(clippy::too_many_arguments)]
fn row(
    id: &str,
    days: i64,
    model: &str,
    provider: &str,
    source: &str,
    project: &str,
    error: bool,
    latency_ms: i64,
    cost: f64,
) -> requests::Model {
    requests::Model {
        id: id.into(),
        ts_ms: noon(days).0,
        endpoint: "chat_completions".into(),
        provider_id: Some(provider.into()),
        provider_type: Some("openai".into()),
        model_requested: Some(model.into()),
        model_used: Some(model.into()),
        source: Some(source.into()),
        project: Some(project.into()),
        status: if error { 500 } else { 200 },
        outcome: if error { "error" } else { "ok" }.into(),
        latency_ms,
        input_tokens: 100,
        output_tokens: 10,
        cost_usd: Some(cost),
        priced: true,
        attempts: 1,
        ..requests::Model::default()
    }
}

/// The seeded ledger:
///
/// | id | days ago | model | provider | source | project | outcome | latency | cost |
/// |---|---|---|---|---|---|---|---|---|
/// | r1 | 1 | gpt-4o | openai | app-a | alpha | ok | 100 | 1.00 |
/// | r2 | 1 | gpt-4o | openai | app-a | alpha | ok | 200 | 0.50 |
/// | r3 | 2 | claude-x | anthropic | app-b | beta | error | 300 | 0.25 |
/// | r4 | 2 | claude-x | anthropic | app-b | alpha | ok | 400 | 0.25 |
/// | r5 | 3 | gpt-4o | openai | app-c | beta | error | 500 | 0.10 |
/// | r6 | 10 | gpt-4o | openai | app-a | alpha | ok | 1000 | 5.00 (outside 7 days) |
/// | b01–b20 | 4 | gpt-4o-mini | azure | bulk | gamma | ok | 10, 20, … 200 | 0.01 each |
fn seed_rows() -> Vec<requests::Model> {
    let mut rows = vec![
        row(
            "r1", 1, "gpt-4o", "openai", "app-a", "alpha", false, 100, 1.0,
        ),
        row(
            "r2", 1, "gpt-4o", "openai", "app-a", "alpha", false, 200, 0.5,
        ),
        row(
            "r3",
            2,
            "claude-x",
            "anthropic",
            "app-b",
            "beta",
            true,
            300,
            0.25,
        ),
        row(
            "r4",
            2,
            "claude-x",
            "anthropic",
            "app-b",
            "alpha",
            false,
            400,
            0.25,
        ),
        row("r5", 3, "gpt-4o", "openai", "app-c", "beta", true, 500, 0.1),
        row(
            "r6", 10, "gpt-4o", "openai", "app-a", "alpha", false, 1000, 5.0,
        ),
    ];
    for i in 1..=20 {
        rows.push(row(
            &format!("b{i:02}"),
            4,
            "gpt-4o-mini",
            "azure",
            "bulk",
            "gamma",
            false,
            i * 10,
            0.01,
        ));
    }
    rows
}

async fn seed(app: &TestApp) {
    let db = store::connect(&app.db_url).await.unwrap();
    let batch: Vec<LedgerRecord> = seed_rows()
        .into_iter()
        .map(|request| LedgerRecord {
            request,
            attempts: Vec::new(),
        })
        .collect();
    store::write_batch(&db, &batch).await.unwrap();
    let _ = db.close().await;
}

fn config(writer: &SqlWriter, extra: &str) -> String {
    format!(
        "[[providers]]\nid = \"writer\"\nprovider_type = \"openai\"\nendpoint = \"{}\"\nmodels = [\"sql-writer\"]\n\n\
         [analytics]\nmodel = \"sql-writer\"\ntimeout_ms = 800\n{extra}\n",
        writer.url()
    )
}

async fn ask(app: &TestApp, question: &str) -> (u16, Value) {
    let response = app
        .post("/v1/ask", &json!({"question": question}), &[])
        .await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Numbers equal within 1e-9, everything else exactly.
fn assert_rows(answer: &Value, expected: Value) {
    let rows = &answer["rows"];
    let same = |a: &Value, b: &Value| match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() < 1e-9,
        _ => a == b,
    };
    let ok = rows.as_array().map(Vec::len) == expected.as_array().map(Vec::len)
        && rows
            .as_array()
            .unwrap()
            .iter()
            .zip(expected.as_array().unwrap())
            .all(|(r, e)| {
                r.as_array().map(Vec::len) == e.as_array().map(Vec::len)
                    && r.as_array()
                        .unwrap()
                        .iter()
                        .zip(e.as_array().unwrap())
                        .all(|(a, b)| same(a, b))
            });
    assert!(ok, "rows {rows} != expected {expected}\n{answer}");
}

#[actix_web::test]
async fn four_questions_are_answered_with_the_rows_of_the_seeded_ledger() {
    let writer = SqlWriter::start(canned);
    let app = spawn_app(&config(&writer, "")).await;
    seed(&app).await;

    let (status, spend) = ask(&app, "What is the spend per model over the last 7 days?").await;
    assert_eq!(status, 200, "{spend}");
    assert_eq!(spend["columns"], json!(["model", "spend_usd"]));
    assert_rows(
        &spend,
        json!([["gpt-4o", 1.6], ["claude-x", 0.5], ["gpt-4o-mini", 0.2]]),
    );
    assert_eq!(
        spend["chart"],
        json!({"kind": "bar", "x": "model", "y": "spend_usd"})
    );
    assert_eq!(spend["truncated"], json!(false));
    assert_eq!(spend["model"], json!("sql-writer-1"));
    assert_eq!(spend["repaired"], json!(false));
    assert!(spend["elapsed_ms"].is_u64());
    assert!(
        spend["sql"]
            .as_str()
            .unwrap()
            .starts_with("SELECT model, ROUND("),
        "{spend}"
    );

    let (status, errors) = ask(&app, "Top sources by error rate?").await;
    assert_eq!(status, 200, "{errors}");
    assert_eq!(
        errors["columns"],
        json!(["source", "error_rate", "requests"])
    );
    assert_rows(
        &errors,
        json!([
            ["app-c", 1.0, 1],
            ["app-b", 0.5, 2],
            ["app-a", 0.0, 3],
            ["bulk", 0.0, 20]
        ]),
    );

    let (status, p95) = ask(&app, "p95 latency per provider").await;
    assert_eq!(status, 200, "{p95}");
    assert_eq!(p95["columns"], json!(["provider", "p95_latency_ms"]));
    // openai: 100, 200, 500, 1000 → rank ceil(3.8) = 4; anthropic: 300, 400 → rank 2;
    // azure: 10 … 200 → rank 19.
    assert_rows(
        &p95,
        json!([["anthropic", 400], ["azure", 190], ["openai", 1000]]),
    );

    let (status, daily) = ask(&app, "How many requests per project per day?").await;
    assert_eq!(status, 200, "{daily}");
    let d = |days| noon(days).1;
    assert_rows(
        &daily,
        json!([
            ["alpha", d(10), 1],
            ["alpha", d(2), 1],
            ["alpha", d(1), 2],
            ["beta", d(3), 1],
            ["beta", d(2), 1],
            ["gamma", d(4), 20],
        ]),
    );
    assert_eq!(
        daily["chart"],
        json!({"kind": "line", "x": "day", "y": "requests"})
    );

    // The prompt carries the dialect, today's date, the units and the views.
    let (system, user) = writer.prompts()[0].clone();
    let dialect = if app.db_url.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    assert!(system.contains(&format!("Dialect: {dialect}.")), "{system}");
    assert!(system.contains(&noon(0).1), "{system}");
    for part in [
        "ask_requests",
        "cost_usd",
        "US dollars",
        "milliseconds",
        "tokens",
        "Examples:",
    ] {
        assert!(system.contains(part), "{part}");
    }
    assert_eq!(user, "What is the spend per model over the last 7 days?");
}

#[actix_web::test]
async fn rows_past_max_rows_are_cut_and_marked_truncated() {
    let writer = SqlWriter::start(canned);
    let app = spawn_app(&config(&writer, "max_rows = 5")).await;
    seed(&app).await;
    let (status, answer) = ask(&app, "List every request id").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["truncated"], json!(true));
    assert_rows(
        &answer,
        json!([["b01"], ["b02"], ["b03"], ["b04"], ["b05"]]),
    );
    assert_eq!(answer["chart"]["kind"], json!("table"));
}

/// The seeded requests (the ask calls' own records left out) and the schema's tables, hashed.
async fn ledger_checksum(db_url: &str) -> (usize, u64) {
    let db = store::connect(db_url).await.unwrap();
    let rows: Vec<requests::Model> = requests::Entity::find()
        .order_by_asc(requests::Column::Id)
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.source.as_deref() != Some("llm-gateway/ask"))
        .collect();
    let tables_sql = if db_url.starts_with("postgres") {
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name"
    } else {
        "SELECT name FROM sqlite_master ORDER BY name"
    };
    let tables: Vec<String> = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            tables_sql,
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect();
    let _ = db.close().await;
    let mut hasher = DefaultHasher::new();
    serde_json::to_string(&rows).unwrap().hash(&mut hasher);
    tables.hash(&mut hasher);
    (rows.len(), hasher.finish())
}

const FOREVER: &str = "WITH RECURSIVE forever(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM forever) SELECT COUNT(*) AS n FROM forever";

/// Hostile SQL, each answered for the question `hostile <index>`.
const HOSTILE: &[&str] = &[
    "DELETE FROM requests",
    "UPDATE requests SET cost_usd = 0",
    "INSERT INTO requests (id, ts_ms) VALUES ('evil', 0)",
    "DROP TABLE requests",
    "ALTER TABLE requests ADD COLUMN evil INTEGER",
    "CREATE TABLE evil (a INTEGER)",
    "ATTACH DATABASE '/tmp/evil.db' AS evil",
    "PRAGMA query_only = OFF",
    "VACUUM",
    "SELECT load_extension('/tmp/evil')",
    "SELECT 1; DELETE FROM requests",
    "SELECT 1 /* nothing to see */; DROP TABLE requests",
    "/* SELECT 1 */ DELETE FROM requests",
    "WITH gone AS (DELETE FROM requests RETURNING id) SELECT COUNT(*) FROM gone",
    "SELECT pg_sleep(30)",
    "SELECT pg_read_file('/etc/passwd')",
    "COPY requests TO PROGRAM 'touch /tmp/llm-gateway-pwned'",
    "SELECT set_config('default_transaction_read_only', 'off', false)",
    "SELECT * FROM sqlite_master",
    "SELECT * FROM pg_authid",
];

#[actix_web::test]
async fn hostile_sql_is_refused_and_the_ledger_is_untouched() {
    let writer = SqlWriter::start(|_, user| {
        if user.contains("forever") {
            return FOREVER.to_string();
        }
        let index: usize = user.trim_start_matches("hostile ").parse().unwrap();
        HOSTILE[index].to_string()
    });
    let app = spawn_app(&config(&writer, "")).await;
    seed(&app).await;
    let before = ledger_checksum(&app.db_url).await;
    assert_eq!(before.0, 26);

    for (index, sql) in HOSTILE.iter().enumerate() {
        let (status, answer) = ask(&app, &format!("hostile {index}")).await;
        assert_eq!(status, 422, "{sql}: {answer}");
        assert_eq!(
            answer["error"]["code"],
            json!("sql_refused"),
            "{sql}: {answer}"
        );
        assert_eq!(answer["sql"], json!(sql), "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("the SQL was refused: "), "{message}");
    }

    // A recursive query that never ends passes the parser; the time limit stops it.
    let started = Instant::now();
    let (status, answer) = ask(&app, "count forever").await;
    let took = started.elapsed();
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["code"], json!("sql_timeout"), "{answer}");
    assert!(
        answer["sql"].as_str().unwrap().contains("RECURSIVE"),
        "{answer}"
    );
    assert!(
        took < Duration::from_secs(5),
        "stopped after {took:?} (limit 800 ms)"
    );
    assert!(took >= Duration::from_millis(800), "{took:?}");

    assert_eq!(
        ledger_checksum(&app.db_url).await,
        before,
        "the ledger changed"
    );
    // One refusal each: no repair round for a refused query.
    assert_eq!(writer.prompts().len(), HOSTILE.len() + 1);
}

#[actix_web::test]
async fn the_read_only_connection_alone_refuses_writes_the_parser_never_saw() {
    let writer = SqlWriter::start(canned);
    let app = spawn_app(&config(&writer, "")).await;
    seed(&app).await;
    let before = ledger_checksum(&app.db_url).await;
    let db = ReadOnlyDb::from_url(&app.db_url).unwrap();
    let limits = Limits {
        max_rows: 10,
        timeout: Duration::from_millis(800),
    };
    let postgres = app.db_url.starts_with("postgres");
    let mut writes = vec![
        "DELETE FROM requests",
        "UPDATE requests SET cost_usd = 0",
        "INSERT INTO projects (id, first_seen_ms, last_seen_ms) VALUES ('evil', 0, 0)",
        "DROP TABLE signals",
        "ALTER TABLE requests ADD COLUMN evil INTEGER",
        "CREATE TABLE evil (a INTEGER)",
        "CREATE TEMP TABLE evil (a INTEGER)",
    ];
    if postgres {
        writes.extend([
            "WITH gone AS (DELETE FROM requests RETURNING id) SELECT COUNT(*) FROM gone",
            // Several statements are refused by the extended protocol itself.
            "COMMIT; DELETE FROM requests",
            "SELECT set_config('default_transaction_read_only', 'off', false); DELETE FROM requests",
        ]);
    } else {
        writes.extend(["PRAGMA query_only = OFF; DELETE FROM requests", "VACUUM"]);
    }
    for sql in writes {
        let result = db.run(sql, limits).await;
        let Err(ExecError::Database(message)) = &result else {
            panic!("{sql}: {result:?}");
        };
        let expected = ["read-only", "readonly", "cannot insert multiple commands"];
        assert!(
            expected.iter().any(|e| message.contains(e)),
            "{sql}: {message}"
        );
    }
    // The time limit alone ends a query that never would.
    let started = Instant::now();
    assert_eq!(db.run(FOREVER, limits).await, Err(ExecError::Timeout));
    assert!(started.elapsed() < Duration::from_secs(3));
    // And reading works.
    let table = db
        .run("SELECT COUNT(*) AS n FROM requests", limits)
        .await
        .unwrap();
    assert_eq!(table.columns, ["n"]);
    assert_eq!(
        ledger_checksum(&app.db_url).await,
        before,
        "the ledger changed"
    );
}

#[actix_web::test]
async fn sql_that_fails_at_the_database_is_repaired_once_with_the_error_fed_back() {
    let writer = SqlWriter::start(|_, user| {
        if user.contains("Your previous SQL failed") {
            if user.contains("twice") {
                "SELECT still_no_such_column FROM ask_requests".into()
            } else {
                "SELECT COUNT(*) AS requests FROM ask_requests WHERE source = 'bulk'".into()
            }
        } else {
            "SELECT no_such_column FROM ask_requests".into()
        }
    });
    let app = spawn_app(&config(&writer, "")).await;
    seed(&app).await;

    let (status, answer) = ask(&app, "How many bulk requests?").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["repaired"], json!(true));
    assert_rows(&answer, json!([[20]]));
    let prompts = writer.prompts();
    assert_eq!(prompts.len(), 2);
    let (_, second) = &prompts[1];
    assert!(second.starts_with("How many bulk requests?"), "{second}");
    assert!(
        second.contains("SELECT no_such_column FROM ask_requests"),
        "{second}"
    );
    assert!(second.contains("Database error: "), "{second}");
    assert!(second.contains("no_such_column"), "{second}");

    // Still failing after the repair round: 422 with the SQL and the database's error.
    let (status, answer) = ask(&app, "fails twice").await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["code"], json!("sql_failed"));
    assert_eq!(
        answer["sql"],
        json!("SELECT still_no_such_column FROM ask_requests")
    );
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("the SQL failed at the database: "),
        "{message}"
    );
    assert!(message.contains("still_no_such_column"), "{message}");
    assert_eq!(writer.prompts().len(), 4, "one repair round, no more");
}

#[actix_web::test]
async fn without_an_analytics_model_the_answer_names_the_key_to_set() {
    let app = spawn_app("").await;
    let (status, answer) = ask(&app, "How much did we spend?").await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(
        answer["error"]["code"],
        json!("analytics_model_not_configured")
    );
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("`[analytics] model`"), "{message}");

    // A bad body is the client's: 400.
    let response = app.post("/v1/ask", &json!({"question": "  "}), &[]).await;
    assert_eq!(response.status(), 400);
    let response = app
        .post("/v1/ask", &json!({"question": "x", "sql": "DROP"}), &[])
        .await;
    assert_eq!(response.status(), 400);
}

#[actix_web::test]
async fn the_ask_call_is_in_the_ledger_under_its_own_source() {
    let writer = SqlWriter::start(canned);
    let app = spawn_app(&config(&writer, "")).await;
    let (status, answer) = ask(&app, "How many requests per project per day?").await;
    assert_eq!(status, 200, "{answer}");
    let records = app.records(1).await;
    let record = &records[0];
    assert_eq!(record["source"], json!("llm-gateway/ask"), "{record}");
    assert_eq!(record["provider_id"], json!("writer"), "{record}");
    assert_eq!(record["model_requested"], json!("sql-writer"), "{record}");
    assert_eq!(record["status"], json!(200), "{record}");
    assert_eq!(record["input_tokens"], json!(900), "{record}");
    assert_eq!(record["output_tokens"], json!(40), "{record}");
}

#[actix_web::test]
async fn the_ask_endpoint_is_behind_the_admin_token() {
    let writer = SqlWriter::start(canned);
    let app = spawn_app(&format!(
        "[server]\nadmin_token = \"s3cret\"\n\n{}",
        config(&writer, "")
    ))
    .await;
    let (status, _) = ask(&app, "spend per model").await;
    assert_eq!(status, 401);
    assert!(writer.prompts().is_empty());
    let response = app
        .post(
            "/v1/ask",
            &json!({"question": "spend per model"}),
            &[("authorization", "Bearer s3cret")],
        )
        .await;
    assert_eq!(response.status(), 200);
}

#[actix_web::test]
async fn a_routing_profile_as_the_analytics_model_routes_the_call() {
    let writer = SqlWriter::start(canned);
    let app = spawn_app(&format!(
        "[[models]]\nid = \"sql-writer\"\nprovider_type = \"openai\"\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n\
         context_window = 128000\nmax_output_tokens = 4096\ncapabilities = [\"streaming\"]\n\
         latency = {{ ttft_ms = 500, output_tokens_per_s = 50 }}\n\
         quality = {{ general = 0.5, coding = 0.5, reasoning = 0.5, long_context = 0.5 }}\n\n\
         [routing.profiles.sql]\ndescription = \"SQL\"\ntask = \"general\"\n\
         weights = {{ cost = 1.0, latency = 1.0, quality = 1.0 }}\nmodels = {{ allow = [\"sql-writer\"] }}\n\n\
         [[providers]]\nid = \"writer\"\nprovider_type = \"openai\"\nendpoint = \"{}\"\nmodels = [\"sql-writer\"]\n\n\
         [analytics]\nmodel = \"sql\"\n",
        writer.url()
    ))
    .await;
    let (status, answer) = ask(&app, "How many requests per project per day?").await;
    assert_eq!(status, 200, "{answer}");
    let records = app.records(1).await;
    assert_eq!(
        records[0]["model_requested"],
        json!("auto"),
        "{}",
        records[0]
    );
    assert_eq!(records[0]["route_profile"], json!("sql"), "{}", records[0]);
}

#[test]
fn analytics_settings_are_validated_naming_the_key() {
    for (config, key) in [
        ("[analytics]\nmodel = \" \"\n", "analytics.model"),
        ("[analytics]\nmax_rows = 0\n", "analytics.max_rows"),
        ("[analytics]\nmax_rows = 100001\n", "analytics.max_rows"),
        ("[analytics]\ntimeout_ms = 0\n", "analytics.timeout_ms"),
        ("[analytics]\ntimeout_ms = 600001\n", "analytics.timeout_ms"),
        ("[analytics]\nsql = \"x\"\n", "sql"),
    ] {
        let error = crate::helpers::load_settings(config)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains(key), "{config}: {error}");
    }
    let settings = crate::helpers::load_settings("").unwrap();
    assert_eq!(settings.analytics.model, None);
    assert_eq!(settings.analytics.max_rows, 1000);
    assert_eq!(settings.analytics.timeout_ms, 5000);
}

#[actix_web::test]
async fn the_openapi_document_describes_the_ask_endpoint() {
    let app = spawn_app("").await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let ask = &doc["paths"]["/v1/ask"]["post"];
    assert_eq!(ask["tags"], json!(["analytics"]), "{ask}");
    assert!(ask["security"].is_array(), "{ask}");
    assert!(
        ask["requestBody"]["content"]["application/json"].is_object(),
        "{ask}"
    );
    for status in ["200", "400", "401", "422", "503"] {
        assert!(ask["responses"][status].is_object(), "{status}: {ask}");
    }
    let answer = &doc["components"]["schemas"]["AskAnswer"]["properties"];
    for field in [
        "question",
        "sql",
        "columns",
        "rows",
        "truncated",
        "model",
        "elapsed_ms",
        "chart",
    ] {
        assert!(answer[field].is_object(), "{field}: {answer}");
    }
    assert!(doc["components"]["schemas"]["AskRequest"].is_object());
}
