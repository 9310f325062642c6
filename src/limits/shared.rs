//! Counters that every gateway instance on one ledger shares, so that a budget or a rate limit
//! is one limit however many replicas serve it: rows of `limit_counters` in the PostgreSQL
//! ledger, or keys in Redis when `[limits] redis_url` is set.
//!
//! Every change is one atomic statement (an `INSERT … ON CONFLICT DO UPDATE` or a Lua
//! script), never a read then a write. An instance does not ask the store on every request:
//! it *leases* a slice of a limit (`[limits] lease_share` of it, or what a request needs when
//! that is more) and admits requests from its slice in memory, leasing the next slice in the
//! background before the current one runs out. The store grants a lease only from what is
//! left under the limit, so the instances together never commit more than the limit; what a
//! request costs beyond its reservation is added afterwards, as the in-flight overshoot the
//! local limiter allows too. An instance that stops gives its unused slices back; one that is
//! killed leaves them counted until their window ends (at most one slice per limit).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

/// A store call's future.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// How long a store call may take before the request it serves gives up on it (and the
/// limit refuses, rather than the request hanging on a store that went away).
pub const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// What a counter counts, in whole units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Spend, in micro-USD.
    Usd,
    /// Requests of a minute.
    Requests,
    /// Tokens of a minute.
    Tokens,
}

impl Metric {
    pub const ALL: [Metric; 3] = [Metric::Usd, Metric::Requests, Metric::Tokens];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Usd => "usd",
            Self::Requests => "requests",
            Self::Tokens => "tokens",
        }
    }

    pub fn index(self) -> usize {
        match self {
            Self::Usd => 0,
            Self::Requests => 1,
            Self::Tokens => 2,
        }
    }
}

/// USD as the store's whole units.
pub fn micros(usd: f64) -> i64 {
    (usd.max(0.0) * 1e6).ceil() as i64
}

/// The store's units as USD.
pub fn usd(micros: i64) -> f64 {
    micros as f64 / 1e6
}

/// One counter: its key, what it starts at when it does not exist yet (the ledger's spend
/// for a budget window, read at start-up), and when its window ends.
#[derive(Debug, Clone)]
pub struct Counter {
    pub key: String,
    pub seed: i64,
    /// The window's end on the limiter's clock (Unix ms); None for a total budget.
    pub expires_at_ms: Option<i64>,
    /// Milliseconds from now to the window's end (the store's own expiry, so that a key
    /// outlives its window by a margin whatever the store's clock says).
    pub ttl_ms: Option<i64>,
}

/// What a lease got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// Units granted: what was asked, or what was left under the limit (0: the limit is spent).
    pub granted: i64,
    /// The counter after the grant: every instance's spend, reservations and leases.
    pub used: i64,
}

/// A store of shared counters.
pub trait Store: Send + Sync {
    /// `postgres` or `redis` (in `GET /v1/keys`).
    fn name(&self) -> &'static str;
    /// Atomically: creates the counter at its seed if it does not exist, then adds
    /// `min(want, max(limit - used, 0))` to it.
    fn lease<'a>(&'a self, counter: &'a Counter, want: i64, limit: i64) -> StoreFuture<'a, Grant>;
    /// Atomically adds `delta` (negative: gives units back), creating the counter at its seed.
    fn add<'a>(&'a self, counter: &'a Counter, delta: i64) -> StoreFuture<'a, i64>;
    /// The counter's value, if it exists.
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<i64>>;
    /// Drops counters whose window ended before `now_ms`.
    fn sweep(&self, now_ms: i64) -> StoreFuture<'_, u64>;
}

/// Counters as rows of the PostgreSQL ledger's `limit_counters`.
pub struct PgStore {
    db: DatabaseConnection,
}

impl PgStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// The row an `INSERT … RETURNING` statement answers.
    async fn one_row<const N: usize>(
        &self,
        sql: &str,
        values: [sea_orm::Value; N],
    ) -> Result<sea_orm::QueryResult, String> {
        let statement = Statement::from_sql_and_values(DbBackend::Postgres, sql, values);
        self.db
            .query_one_raw(statement)
            .await
            .map_err(db_error)?
            .ok_or_else(|| "the limit counter statement returned no row".to_string())
    }
}

/// `$1` key, `$2` seed, `$3` want, `$4` limit, `$5` expires_at. In `DO UPDATE SET`, `c.used`
/// is the row before the update in both expressions; the row stays locked until the
/// statement ends, so the grant read back is this statement's own.
const PG_LEASE: &str = "INSERT INTO limit_counters AS c (key, used, granted, expires_at) \
     VALUES ($1, $2 + LEAST($3, GREATEST($4 - $2, 0)), LEAST($3, GREATEST($4 - $2, 0)), $5) \
     ON CONFLICT (key) DO UPDATE SET \
       granted = LEAST($3, GREATEST($4 - c.used, 0)), \
       used = c.used + LEAST($3, GREATEST($4 - c.used, 0)) \
     RETURNING granted, used";

/// `$1` key, `$2` seed, `$3` delta, `$4` expires_at.
const PG_ADD: &str = "INSERT INTO limit_counters AS c (key, used, granted, expires_at) \
     VALUES ($1, GREATEST($2 + $3, 0), 0, $4) \
     ON CONFLICT (key) DO UPDATE SET used = GREATEST(c.used + $3, 0) \
     RETURNING used";

fn db_error(e: sea_orm::DbErr) -> String {
    format!("the limit counters in PostgreSQL: {e}")
}

impl Store for PgStore {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn lease<'a>(&'a self, counter: &'a Counter, want: i64, limit: i64) -> StoreFuture<'a, Grant> {
        Box::pin(async move {
            let values = [
                counter.key.clone().into(),
                counter.seed.into(),
                want.into(),
                limit.into(),
                counter.expires_at_ms.into(),
            ];
            let row = self.one_row(PG_LEASE, values).await?;
            Ok(Grant {
                granted: row.try_get("", "granted").map_err(db_error)?,
                used: row.try_get("", "used").map_err(db_error)?,
            })
        })
    }

    fn add<'a>(&'a self, counter: &'a Counter, delta: i64) -> StoreFuture<'a, i64> {
        Box::pin(async move {
            let values = [
                counter.key.clone().into(),
                counter.seed.into(),
                delta.into(),
                counter.expires_at_ms.into(),
            ];
            let row = self.one_row(PG_ADD, values).await?;
            row.try_get("", "used").map_err(db_error)
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<i64>> {
        Box::pin(async move {
            let statement = Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT used FROM limit_counters WHERE key = $1",
                [key.into()],
            );
            match self.db.query_one_raw(statement).await.map_err(db_error)? {
                Some(row) => Ok(Some(row.try_get("", "used").map_err(db_error)?)),
                None => Ok(None),
            }
        })
    }

    fn sweep(&self, now_ms: i64) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let statement = Statement::from_sql_and_values(
                DbBackend::Postgres,
                "DELETE FROM limit_counters WHERE expires_at < $1",
                [now_ms.into()],
            );
            let done = self.db.execute_raw(statement).await.map_err(db_error)?;
            Ok(done.rows_affected())
        })
    }
}

/// Counters as Redis keys (`<prefix><key>`), changed by Lua scripts, each atomic.
pub struct RedisStore {
    conn: redis::aio::ConnectionManager,
    prefix: String,
    lease: redis::Script,
    add: redis::Script,
}

/// KEYS[1] counter; ARGV seed, want, limit, ttl ms (0: none). Answers {granted, used}.
const REDIS_LEASE: &str = r"
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[1], 'NX')
end
local used = tonumber(redis.call('GET', KEYS[1]))
local grant = math.min(tonumber(ARGV[2]), math.max(tonumber(ARGV[3]) - used, 0))
if grant > 0 then
  used = redis.call('INCRBY', KEYS[1], grant)
end
return {grant, used}
";

/// KEYS[1] counter; ARGV seed, delta, ttl ms (0: none). Answers the counter (never below 0).
const REDIS_ADD: &str = r"
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[1], 'NX')
end
local used = redis.call('INCRBY', KEYS[1], ARGV[2])
if used < 0 then
  redis.call('INCRBY', KEYS[1], -used)
  used = 0
end
return used
";

/// How long a Redis key outlives its window (a late settle still finds it).
const REDIS_TTL_MARGIN_MS: i64 = 3_600_000;

impl RedisStore {
    /// Connects to `url` (the connection is multiplexed, and reconnects by itself).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| redis_error(&e))?;
        let conn = tokio::time::timeout(STORE_TIMEOUT * 5, client.get_connection_manager())
            .await
            .map_err(|_| "Redis did not answer within 10 s".to_string())?
            .map_err(|e| redis_error(&e))?;
        Ok(Self {
            conn,
            prefix: prefix.to_string(),
            lease: redis::Script::new(REDIS_LEASE),
            add: redis::Script::new(REDIS_ADD),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

/// Redis's error without the URL (which may hold a password).
fn redis_error(e: &redis::RedisError) -> String {
    format!(
        "Redis ([limits] redis_url): {:?}: {}",
        e.kind(),
        e.detail().unwrap_or("no detail")
    )
}

fn ttl(counter: &Counter) -> i64 {
    counter.ttl_ms.map_or(0, |t| t.max(0) + REDIS_TTL_MARGIN_MS)
}

impl Store for RedisStore {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn lease<'a>(&'a self, counter: &'a Counter, want: i64, limit: i64) -> StoreFuture<'a, Grant> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let (granted, used): (i64, i64) = self
                .lease
                .key(self.key(&counter.key))
                .arg(counter.seed)
                .arg(want)
                .arg(limit)
                .arg(ttl(counter))
                .invoke_async(&mut conn)
                .await
                .map_err(|e| redis_error(&e))?;
            Ok(Grant { granted, used })
        })
    }

    fn add<'a>(&'a self, counter: &'a Counter, delta: i64) -> StoreFuture<'a, i64> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            self.add
                .key(self.key(&counter.key))
                .arg(counter.seed)
                .arg(delta)
                .arg(ttl(counter))
                .invoke_async(&mut conn)
                .await
                .map_err(|e| redis_error(&e))
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<i64>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            redis::cmd("GET")
                .arg(self.key(key))
                .query_async(&mut conn)
                .await
                .map_err(|e| redis_error(&e))
        })
    }

    /// Redis expires its keys itself.
    fn sweep(&self, _now_ms: i64) -> StoreFuture<'_, u64> {
        Box::pin(async { Ok(0) })
    }
}
