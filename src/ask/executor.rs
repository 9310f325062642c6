//! Runs a query on a connection the database itself holds read-only, within a time limit and a
//! row cap: SQLite opened read-only with `query_only`, a progress handler stopping it at the
//! deadline; PostgreSQL in a `READ ONLY` transaction with `statement_timeout`, rolled back.
//! Each connection is the query's own (never one of the ledger's), and closed after it.

use std::str::FromStr;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection, PgRow};
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteRow};
use sea_orm::sqlx::{
    self, AssertSqlSafe, Column, Connection, Executor, Row, SqlSafeStr, Statement, TypeInfo,
    ValueRef,
};
use serde_json::Value;

use super::Dialect;

/// What a query returned: its columns, its rows (at most the cap), and whether more were cut.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    pub truncated: bool,
}

/// Why a query did not return.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// The database refused or failed it; its message.
    #[error("{0}")]
    Database(String),
    /// It ran past the time limit and was stopped.
    #[error("stopped at the time limit")]
    Timeout,
    /// The read-only connection could not be opened.
    #[error("failed to open the read-only connection: {0}")]
    Connect(String),
}

/// The limits of one query.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_rows: usize,
    pub timeout: Duration,
}

/// How to open a read-only connection to the ledger.
#[derive(Debug, Clone)]
pub enum ReadOnlyDb {
    Sqlite(SqliteConnectOptions),
    Postgres(PgConnectOptions),
}

/// Past the time limit, the client gives up on a database that did not stop the query itself.
const BACKSTOP: Duration = Duration::from_secs(2);

impl ReadOnlyDb {
    /// The read-only access to the ledger at `url` (`[database] url`).
    pub fn from_url(url: &str) -> Result<Self, String> {
        if url.starts_with("sqlite:") {
            if url.contains(":memory:") || url.contains("mode=memory") {
                return Err("an in-memory SQLite ledger cannot be opened a second time, read-only: use a file".into());
            }
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| format!("failed to read [database] url: {e}"))?
                // SQLITE_OPEN_READONLY: the file is opened for reading only.
                .read_only(true)
                .create_if_missing(false)
                // And the connection refuses any write, even to a temporary table.
                .pragma("query_only", "ON")
                .statement_cache_capacity(0);
            Ok(Self::Sqlite(options))
        } else {
            let options = PgConnectOptions::from_str(url)
                .map_err(|e| format!("failed to read [database] url: {e}"))?;
            Ok(Self::Postgres(options))
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Self::Sqlite(_) => Dialect::Sqlite,
            Self::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs `sql` as it is. The caller checks it first ([`super::guard::check`]); this
    /// connection refuses writes whether or not it was checked.
    pub async fn run(&self, sql: &str, limits: Limits) -> Result<Table, ExecError> {
        let work = async {
            match self {
                Self::Sqlite(options) => run_sqlite(options, sql, limits).await,
                Self::Postgres(options) => run_postgres(options, sql, limits).await,
            }
        };
        match tokio::time::timeout(limits.timeout + BACKSTOP, work).await {
            Ok(result) => result,
            Err(_) => Err(ExecError::Timeout),
        }
    }
}

async fn run_sqlite(
    options: &SqliteConnectOptions,
    sql: &str,
    limits: Limits,
) -> Result<Table, ExecError> {
    let mut conn = SqliteConnection::connect_with(options)
        .await
        .map_err(|e| ExecError::Connect(e.to_string()))?;
    let deadline = Instant::now() + limits.timeout;
    // Called every 1000 virtual-machine steps: past the deadline, SQLite interrupts the query.
    conn.lock_handle()
        .await
        .map_err(|e| ExecError::Connect(e.to_string()))?
        .set_progress_handler(1000, move || Instant::now() < deadline);
    let result = fetch_rows!(&mut conn, sql, limits.max_rows, sqlite_value);
    let _ = conn.close().await;
    result.map_err(|e| match e {
        ExecError::Database(message)
            if Instant::now() >= deadline && message.contains("interrupt") =>
        {
            ExecError::Timeout
        }
        other => other,
    })
}

async fn run_postgres(
    options: &PgConnectOptions,
    sql: &str,
    limits: Limits,
) -> Result<Table, ExecError> {
    let timeout_ms = limits.timeout.as_millis().max(1).to_string();
    // Set at connection start as well: every transaction of this session is read-only and
    // every statement time-limited, before the query's own transaction says so again.
    let options = options.clone().options([
        ("default_transaction_read_only", "on"),
        ("statement_timeout", timeout_ms.as_str()),
    ]);
    let mut conn = PgConnection::connect_with(&options)
        .await
        .map_err(|e| ExecError::Connect(e.to_string()))?;
    let result = async {
        conn.execute("BEGIN READ ONLY").await.map_err(database)?;
        conn.execute(AssertSqlSafe(format!(
            "SET LOCAL statement_timeout = {timeout_ms}"
        )))
        .await
        .map_err(database)?;
        fetch_rows!(&mut conn, sql, limits.max_rows, postgres_value)
    }
    .await;
    let _ = conn.execute("ROLLBACK").await;
    let _ = conn.close().await;
    result.map_err(|e| match e {
        // 57014: query_canceled, which is what statement_timeout raises.
        ExecError::Database(message) if message.contains("statement timeout") => ExecError::Timeout,
        other => other,
    })
}

fn database(e: sqlx::Error) -> ExecError {
    match e {
        sqlx::Error::Database(e) => ExecError::Database(e.message().to_string()),
        other => ExecError::Database(other.to_string()),
    }
}

/// Prepares `sql` (one statement: the extended protocol takes no more) and reads up to
/// `max_rows + 1` rows, each value turned into JSON by `$value`. A macro: sqlx's executor
/// traits are written once per backend more plainly than once generically.
macro_rules! fetch_rows {
    ($conn:expr, $sql:expr, $max_rows:expr, $value:expr) => {{
        let conn = $conn;
        async {
            let statement = (&mut *conn)
                .prepare(AssertSqlSafe($sql.to_string()).into_sql_str())
                .await
                .map_err(database)?;
            let columns: Vec<String> = statement
                .columns()
                .iter()
                .map(|c| c.name().to_string())
                .collect();
            let mut rows = Vec::new();
            let mut truncated = false;
            let mut stream = statement.query().fetch(&mut *conn);
            while let Some(row) = stream.try_next().await.map_err(database)? {
                if rows.len() == $max_rows {
                    truncated = true;
                    break;
                }
                let values = (0..row.len())
                    .map(|i| $value(&row, i))
                    .collect::<Result<Vec<_>, _>>()?;
                rows.push(values);
            }
            Ok::<Table, ExecError>(Table {
                columns,
                rows,
                truncated,
            })
        }
        .await
    }};
}
use fetch_rows;

fn decode<'r, T, R>(row: &'r R, i: usize) -> Result<T, ExecError>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    T: sqlx::Decode<'r, R::Database>,
{
    row.try_get_unchecked::<T, _>(i)
        .map_err(|e| ExecError::Database(format!("failed to read column {i}: {e}")))
}

fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// A SQLite value by its storage class (an expression's column has no declared type).
fn sqlite_value(row: &SqliteRow, i: usize) -> Result<Value, ExecError> {
    let raw = row.try_get_raw(i).map_err(database)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let kind = raw.type_info().name().to_ascii_uppercase();
    Ok(match kind.as_str() {
        "INTEGER" | "INT" | "BIGINT" | "BOOLEAN" => Value::from(decode::<i64, _>(row, i)?),
        "REAL" | "FLOAT" | "DOUBLE" | "NUMERIC" => number(decode::<f64, _>(row, i)?),
        "BLOB" => Value::String(format!("<{} bytes>", decode::<Vec<u8>, _>(row, i)?.len())),
        _ => Value::String(decode::<String, _>(row, i)?),
    })
}

/// A PostgreSQL value by its type; a type without a JSON form asks for a cast to text.
fn postgres_value(row: &PgRow, i: usize) -> Result<Value, ExecError> {
    use sqlx::types::chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
    let raw = row.try_get_raw(i).map_err(database)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let kind = raw.type_info().name().to_ascii_uppercase();
    Ok(match kind.as_str() {
        "INT2" => Value::from(decode::<i16, _>(row, i)?),
        "INT4" => Value::from(decode::<i32, _>(row, i)?),
        "INT8" => Value::from(decode::<i64, _>(row, i)?),
        "FLOAT4" => number(f64::from(decode::<f32, _>(row, i)?)),
        "FLOAT8" => number(decode::<f64, _>(row, i)?),
        "NUMERIC" => {
            let decimal = decode::<sqlx::types::Decimal, _>(row, i)?;
            decimal
                .to_string()
                .parse::<f64>()
                .map_or(Value::Null, number)
        }
        "BOOL" => Value::Bool(decode::<bool, _>(row, i)?),
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" => {
            Value::String(decode::<String, _>(row, i)?)
        }
        "DATE" => Value::String(decode::<NaiveDate, _>(row, i)?.to_string()),
        "TIMESTAMP" => Value::String(
            decode::<NaiveDateTime, _>(row, i)?
                .format("%Y-%m-%dT%H:%M:%S%.3f")
                .to_string(),
        ),
        "TIMESTAMPTZ" => Value::String(
            decode::<DateTime<Utc>, _>(row, i)?
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string(),
        ),
        "JSON" | "JSONB" => decode::<Value, _>(row, i)?,
        other => {
            let name = row.columns()[i].name();
            return Err(ExecError::Database(format!(
                "column `{name}` has type {other}, which has no JSON form here: cast it to text or a number"
            )));
        }
    })
}
