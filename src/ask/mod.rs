//! `POST /v1/ask`: a question in plain language → SQL written by a model (called through the
//! gateway's own pipeline, source `llm-gateway/ask`) → checked by the parser (`guard`) → run
//! on a read-only connection (`executor`) → rows, with a chart hint; one repair round when
//! the database rejects the SQL.

pub mod executor;
pub mod guard;
pub mod prompt;

use std::time::{Duration, Instant};

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::api::Operation;
use crate::error::GatewayError;
use crate::pipeline::call::{Inbound, RequestMeta};
use crate::pipeline::upstream::UpstreamClients;
use crate::pipeline::{whole, Pipeline};
use executor::{ExecError, Limits, ReadOnlyDb, Table};

/// The source the ask endpoint's model calls are recorded under.
pub const SOURCE: &str = "llm-gateway/ask";

/// The longest question taken, in characters.
pub const MAX_QUESTION_CHARS: usize = 2000;

/// The SQL dialect of the ledger's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }
}

/// What writes the SQL: a model by id, or a routing profile's choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Writer {
    Model(String),
    Profile(String),
}

/// The ask endpoint, built once at start-up from `[analytics]` and `[database] url`.
pub struct Analyst {
    /// None: `[analytics] model` is not set.
    writer: Option<Writer>,
    limits: Limits,
    db: Result<ReadOnlyDb, String>,
}

/// `POST /v1/ask`'s body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AskRequest {
    /// The question, in plain language (at most 2000 characters).
    #[schema(
        example = "How much did each model cost over the last 7 days?",
        min_length = 1,
        max_length = 2000,
        pattern = r"\S"
    )]
    pub question: String,
}

/// How the portal may draw the rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Chart {
    /// `line` (a day or hour column and a number), `bar` (one text and a number), or `table`.
    #[schema(example = "bar")]
    pub kind: &'static str,
    /// The column along the x axis.
    pub x: Option<String>,
    /// The column of the values.
    pub y: Option<String>,
}

/// `POST /v1/ask`'s answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AskAnswer {
    pub question: String,
    /// The query that ran, as the parser printed it back from the checked syntax tree.
    pub sql: String,
    pub columns: Vec<String>,
    /// One array per row, values in the order of `columns`.
    #[schema(value_type = Vec<Vec<Object>>)]
    pub rows: Vec<Vec<Value>>,
    /// More rows than `[analytics] max_rows` were found; the rest were cut.
    pub truncated: bool,
    /// The model that wrote the SQL (as its answer names it).
    pub model: String,
    /// Time from the question to the rows, model calls included.
    pub elapsed_ms: u64,
    pub chart: Chart,
    /// The first SQL failed at the database and the model wrote it again.
    pub repaired: bool,
}

/// A model's SQL before it is checked.
struct Draft {
    sql: String,
    model: String,
}

impl Analyst {
    /// The ask endpoint for a ledger at `db_url`. `writer` names a model, or a profile
    /// when the routing knows it by that id.
    pub fn new(writer: Option<Writer>, max_rows: usize, timeout: Duration, db_url: &str) -> Self {
        Self {
            writer,
            limits: Limits { max_rows, timeout },
            db: ReadOnlyDb::from_url(db_url),
        }
    }

    /// Answers `question`: asks the model for SQL, checks it, runs it; one repair round
    /// when the database fails it.
    pub async fn ask(
        &self,
        pipeline: &Pipeline,
        clients: &UpstreamClients,
        question: &str,
    ) -> Result<AskAnswer, GatewayError> {
        let started = Instant::now();
        let question = question.trim();
        if question.is_empty() || question.chars().count() > MAX_QUESTION_CHARS {
            return Err(GatewayError::InvalidRequest {
                message: format!("`question` must hold 1 to {MAX_QUESTION_CHARS} characters"),
                param: Some("question".into()),
            });
        }
        let writer = self
            .writer
            .as_ref()
            .ok_or(GatewayError::AnalyticsNotConfigured)?;
        let db = self.db.as_ref().map_err(|e| GatewayError::Internal {
            message: format!("failed to open the ledger read-only: {e}"),
        })?;
        let dialect = db.dialect();
        let now = chrono::Utc::now();
        let system = prompt::system(
            dialect,
            &now.format("%Y-%m-%d").to_string(),
            now.timestamp_millis(),
        );
        let draft = self
            .write_sql(pipeline, clients, writer, &system, question)
            .await?;
        let (sql, table, repaired, model) = match self.check_and_run(db, &draft.sql).await {
            Ok((sql, table)) => (sql, table, false, draft.model),
            Err(Failed::Database { sql, error }) => {
                let again = prompt::repair(question, &sql, &error);
                let draft = self
                    .write_sql(pipeline, clients, writer, &system, &again)
                    .await?;
                match self.check_and_run(db, &draft.sql).await {
                    Ok((sql, table)) => (sql, table, true, draft.model),
                    Err(failed) => return Err(failed.into_error(self.limits)),
                }
            }
            Err(failed) => return Err(failed.into_error(self.limits)),
        };
        let chart = chart(&table);
        Ok(AskAnswer {
            question: question.to_string(),
            sql,
            columns: table.columns,
            rows: table.rows,
            truncated: table.truncated,
            model,
            elapsed_ms: started.elapsed().as_millis() as u64,
            chart,
            repaired,
        })
    }

    async fn check_and_run(&self, db: &ReadOnlyDb, sql: &str) -> Result<(String, Table), Failed> {
        let checked = guard::check(sql, db.dialect()).map_err(|refusal| Failed::Refused {
            sql: sql.to_string(),
            reason: refusal.0,
        })?;
        match db.run(&checked, self.limits).await {
            Ok(table) => Ok((checked, table)),
            Err(ExecError::Timeout) => Err(Failed::Timeout { sql: checked }),
            Err(ExecError::Database(error)) => Err(Failed::Database {
                sql: checked,
                error,
            }),
            Err(ExecError::Connect(message)) => Err(Failed::Gateway(message)),
        }
    }

    /// One chat completion through the pipeline, as any client's would go, recorded under
    /// [`SOURCE`]; the SQL is taken from its answer.
    async fn write_sql(
        &self,
        pipeline: &Pipeline,
        clients: &UpstreamClients,
        writer: &Writer,
        system: &str,
        user: &str,
    ) -> Result<Draft, GatewayError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            HeaderName::from_static("x-source"),
            HeaderValue::from_static(SOURCE),
        );
        let model = match writer {
            Writer::Model(model) => model.as_str(),
            Writer::Profile(profile) => {
                let value = HeaderValue::from_str(profile).map_err(|_| GatewayError::Internal {
                    message: format!("[analytics] model `{profile}` is not a valid header value"),
                })?;
                headers.insert(HeaderName::from_static("x-route-profile"), value);
                "auto"
            }
        };
        let body = json!({
            "model": model,
            "stream": false,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
        });
        let request_id = uuid::Uuid::now_v7().to_string();
        let meta = RequestMeta::from_headers(&headers, request_id, Instant::now());
        let mut meter = pipeline.meter(Operation::ChatCompletions, &meta);
        let inbound = Inbound {
            op: Operation::ChatCompletions,
            meta,
            headers: &headers,
            query: "",
            body: serde_json::to_vec(&body)
                .map_err(|e| GatewayError::Internal {
                    message: format!("failed to write the ask prompt: {e}"),
                })?
                .into(),
            reservation: None,
        };
        let answer = match pipeline.call(inbound, clients, &mut meter).await {
            Ok(answer) => answer,
            Err(error) => {
                meter.fail(&error);
                return Err(error);
            }
        };
        let answer = whole::read(answer, meter).await?;
        let provider = answer.provider_id.clone();
        let broken = |message: String| GatewayError::UpstreamBroken {
            provider: provider.clone(),
            message,
        };
        let json: Value = serde_json::from_slice(&answer.body)
            .map_err(|e| broken(format!("the SQL writer's answer is not JSON: {e}")))?;
        if answer.status >= 400 {
            let message = json["error"]["message"]
                .as_str()
                .unwrap_or("no message")
                .chars()
                .take(500)
                .collect::<String>();
            return Err(broken(format!(
                "the SQL writer answered {}: {message}",
                answer.status
            )));
        }
        let text = json["choices"][0]["message"]["content"]
            .as_str()
            .ok_or_else(|| broken("the SQL writer's answer has no message content".into()))?;
        Ok(Draft {
            sql: prompt::extract_sql(text),
            model: json["model"].as_str().unwrap_or(model).to_string(),
        })
    }
}

/// How a draft failed, before it becomes the client's error.
enum Failed {
    Refused { sql: String, reason: String },
    Database { sql: String, error: String },
    Timeout { sql: String },
    Gateway(String),
}

impl Failed {
    fn into_error(self, limits: Limits) -> GatewayError {
        match self {
            Self::Refused { sql, reason } => GatewayError::SqlRefused { reason, sql },
            Self::Database { sql, error } => GatewayError::SqlFailed { error, sql },
            Self::Timeout { sql } => GatewayError::SqlTimeout {
                timeout_ms: limits.timeout.as_millis() as u64,
                sql,
            },
            Self::Gateway(message) => GatewayError::Internal { message },
        }
    }
}

/// Columns whose name says they run along time.
fn is_time_column(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["day", "hour", "date", "week", "month", "time", "ts"]
        .iter()
        .any(|t| {
            name == *t || name.starts_with(&format!("{t}_")) || name.ends_with(&format!("_{t}"))
        })
}

/// The chart hint: a time column and a number → line; one text column and a number → bar;
/// anything else → table.
pub fn chart(table: &Table) -> Chart {
    let all = |i: usize, test: fn(&Value) -> bool| {
        let mut seen = false;
        for row in &table.rows {
            match row.get(i) {
                Some(Value::Null) | None => {}
                Some(value) if test(value) => seen = true,
                Some(_) => return false,
            }
        }
        seen
    };
    let numeric: Vec<usize> = (0..table.columns.len())
        .filter(|&i| all(i, Value::is_number))
        .collect();
    let text: Vec<usize> = (0..table.columns.len())
        .filter(|&i| all(i, Value::is_string))
        .collect();
    let name = |i: usize| Some(table.columns[i].clone());
    if let Some(&x) = (0..table.columns.len())
        .find(|&i| is_time_column(&table.columns[i]))
        .as_ref()
    {
        if let Some(&y) = numeric.iter().find(|&&i| i != x) {
            return Chart {
                kind: "line",
                x: name(x),
                y: name(y),
            };
        }
    }
    if let ([x], [y, ..]) = (text.as_slice(), numeric.as_slice()) {
        return Chart {
            kind: "bar",
            x: name(*x),
            y: name(*y),
        };
    }
    Chart {
        kind: "table",
        x: None,
        y: None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn table(columns: &[&str], rows: Vec<Vec<Value>>) -> Table {
        Table {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows,
            truncated: false,
        }
    }

    #[test]
    fn the_chart_hint_follows_the_columns() {
        let line = chart(&table(
            &["day", "requests"],
            vec![vec![json!("2026-12-01"), json!(3)]],
        ));
        assert_eq!(
            (line.kind, line.x.as_deref(), line.y.as_deref()),
            ("line", Some("day"), Some("requests"))
        );
        let hourly = chart(&table(&["hour", "spend"], vec![vec![json!(4), json!(0.5)]]));
        assert_eq!((hourly.kind, hourly.y.as_deref()), ("line", Some("spend")));
        let bar = chart(&table(
            &["model", "spend_usd"],
            vec![
                vec![json!("gpt-4o"), json!(1.5)],
                vec![json!("x"), Value::Null],
            ],
        ));
        assert_eq!(
            (bar.kind, bar.x.as_deref(), bar.y.as_deref()),
            ("bar", Some("model"), Some("spend_usd"))
        );
        let many = chart(&table(
            &["project", "model", "n"],
            vec![vec![json!("a"), json!("b"), json!(1)]],
        ));
        assert_eq!(many.kind, "table");
        assert_eq!(chart(&table(&["n"], vec![])).kind, "table");
    }
}
