//! The prompt that asks a model for SQL: the ledger's schema with a line per column, the
//! dialect, today's date and the units, worked examples, and (in a repair round) the SQL that
//! failed with the database's error.

use super::Dialect;

/// The schema as the model should see it: the views first (they answer most questions), then
/// the tables.
const SCHEMA: &str = "\
View ask_requests — one row per proxied request (use it first):
  id TEXT            the request id (x-request-id)
  ts_ms INTEGER      when it started, Unix epoch milliseconds (UTC)
  day TEXT           its UTC day, 'YYYY-MM-DD' (compare as text: day >= '2026-12-01')
  hour INTEGER       its UTC hour, 0-23
  model TEXT         the model that answered (else the model asked for)
  model_requested TEXT the model the client asked for ('auto' when routed)
  provider TEXT      the provider id that served it (NULL when none did)
  provider_type TEXT openai, azure_openai, anthropic or local
  source TEXT        the x-source header of the caller (an app, a tool), NULL when not sent
  project TEXT       the x-project header, NULL when not sent
  label TEXT         the virtual key's label (a team), NULL for unmapped callers
  endpoint TEXT      chat_completions, messages or count_tokens
  status INTEGER     HTTP status the client got
  outcome TEXT       ok, error, or mitigated (a failed attempt, then a later one succeeded)
  is_error INTEGER   1 when outcome = 'error', else 0 (AVG(is_error) is the error rate)
  error_kind TEXT    why it failed (upstream_http_500, upstream_timeout, model_not_found, …)
  streamed BOOLEAN   the answer was streamed
  cost_usd REAL      cost in US dollars; NULL when the model has no known price
  priced BOOLEAN     false when cost_usd is NULL for want of a price
  input_tokens INTEGER, output_tokens INTEGER, cached_input_tokens INTEGER,
  cache_write_tokens INTEGER   token counts (input includes cached and cache-write tokens)
  tokens INTEGER     input_tokens + output_tokens
  latency_ms INTEGER whole request time in milliseconds
  ttfb_ms INTEGER    time to the first byte of the answer, ms (NULL when none came)
  route_profile TEXT the routing profile of a model: \"auto\" request, else NULL
  translated TEXT    openai->anthropic or anthropic->openai when translated, else NULL
  attempts INTEGER   upstream attempts made

View ask_attempts — one row per upstream attempt of a request:
  id INTEGER, request_id TEXT (= ask_requests.id), ts_ms INTEGER, day TEXT, hour INTEGER,
  attempt INTEGER (0 = first try), provider TEXT, model TEXT,
  status INTEGER (the upstream's HTTP status, NULL when it did not answer),
  error_kind TEXT (NULL when it succeeded), latency_ms INTEGER, mitigated BOOLEAN,
  is_error INTEGER (1 when error_kind is set)

Table requests — the raw ledger rows behind ask_requests: the same facts with the names
  ts_ms, provider_id, model_used, model_requested, key_label, and also sanitizer_findings TEXT
  (JSON of finding kinds and counts), route_rank INTEGER, needs TEXT (capabilities needed,
  comma-separated), prompt_tokens_estimate INTEGER, max_tokens INTEGER, usage_estimated BOOLEAN,
  route_plan TEXT (JSON array of \"provider/model\" in the order they were to be tried),
  route_decided_by TEXT (score, load, affinity, budget_low when a low budget chose a cheaper profile, or explicit for a model the client named),
  breaker_skips INTEGER (targets an open circuit breaker took from the request).
Table attempts — raw rows behind ask_attempts (provider_id instead of provider).
Table signals — quality feedback on answers: id, ts_ms (when reported), request_id TEXT,
  signal TEXT (thumbs_up, thumbs_down, score, retry, bad_format, tool_error, accepted),
  value REAL (a score's value, 0-1), comment TEXT, source TEXT ('' when unnamed),
  provider_id TEXT, model TEXT, route_profile TEXT.
Table projects — id TEXT (the x-project value), first_seen_ms INTEGER, last_seen_ms INTEGER.";

/// Worked examples per dialect: a question, then the SQL that answers it.
fn examples(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "\
Q: How much did each model cost over the last 7 days?
SELECT model, ROUND(SUM(cost_usd), 6) AS spend_usd, COUNT(*) AS requests FROM ask_requests
WHERE ts_ms >= (CAST(strftime('%s', 'now') AS INTEGER) - 7 * 86400) * 1000
GROUP BY model ORDER BY spend_usd DESC

Q: Requests per day this month?
SELECT day, COUNT(*) AS requests FROM ask_requests
WHERE day >= strftime('%Y-%m-01', 'now') GROUP BY day ORDER BY day

Q: Median latency per provider? (SQLite has no percentile function: rank the rows.)
SELECT provider, latency_ms AS p50_latency_ms FROM (
  SELECT provider, latency_ms,
         ROW_NUMBER() OVER (PARTITION BY provider ORDER BY latency_ms) AS rn,
         COUNT(*) OVER (PARTITION BY provider) AS n
  FROM ask_requests WHERE provider IS NOT NULL) AS ranked
WHERE rn = (n * 50 + 99) / 100 ORDER BY provider"
        }
        Dialect::Postgres => {
            "\
Q: How much did each model cost over the last 7 days?
SELECT model, ROUND(CAST(SUM(cost_usd) AS NUMERIC), 6) AS spend_usd, COUNT(*) AS requests
FROM ask_requests WHERE ts_ms >= (EXTRACT(EPOCH FROM now()) - 7 * 86400) * 1000
GROUP BY model ORDER BY spend_usd DESC

Q: Requests per day this month?
SELECT day, COUNT(*) AS requests FROM ask_requests
WHERE day >= to_char(date_trunc('month', now()), 'YYYY-MM-DD') GROUP BY day ORDER BY day

Q: Median latency per provider?
SELECT provider, percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50_latency_ms
FROM ask_requests WHERE provider IS NOT NULL GROUP BY provider ORDER BY provider"
        }
    }
}

/// The system message: what to write, over what, in which dialect, as of when.
pub fn system(dialect: Dialect, today: &str, now_ms: i64) -> String {
    format!(
        "You write one SQL query that answers a question about the usage ledger of an LLM \
gateway. Answer with the SQL only, in a ```sql fence, no explanation.\n\n\
Rules: exactly one read-only SELECT (WITH … SELECT is fine); read only the views and tables \
below, by their plain names; use only aggregate, window, arithmetic, text and date functions \
of the dialect; give every computed column a short snake_case alias; ORDER BY something \
meaningful; no more than a few hundred rows.\n\n\
Dialect: {dialect}.\nToday is {today} (UTC); now is {now_ms} in Unix epoch milliseconds.\n\
Units: money in US dollars (cost_usd), times in milliseconds (latency_ms, ttfb_ms), \
sizes in tokens.\n\n{SCHEMA}\n\nExamples:\n{examples}\n",
        dialect = dialect.name(),
        examples = examples(dialect),
    )
}

/// The user's message of a repair round: the question again, the SQL that failed, the error.
pub fn repair(question: &str, sql: &str, error: &str) -> String {
    format!(
        "{question}\n\nYour previous SQL failed at the database.\nSQL:\n{sql}\nDatabase error: \
{error}\nWrite a corrected query."
    )
}

/// The SQL in a model's answer: the first ```sql fence (or any fence), else the whole text.
pub fn extract_sql(text: &str) -> String {
    let text = text.trim();
    if let Some(start) = text.find("```") {
        let after = &text[start + 3..];
        // The fence's language word, if any, ends its first line.
        let body = match after.find('\n') {
            Some(line_end) if after[..line_end].trim().chars().all(char::is_alphanumeric) => {
                &after[line_end + 1..]
            }
            _ => after,
        };
        let end = body.find("```").unwrap_or(body.len());
        return body[..end].trim().to_string();
    }
    text.to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_sql_is_taken_from_a_fence_or_is_the_whole_text() {
        assert_eq!(
            extract_sql("Here:\n```sql\nSELECT 1\n```\nDone."),
            "SELECT 1"
        );
        assert_eq!(extract_sql("```\nSELECT 2\n```"), "SELECT 2");
        assert_eq!(extract_sql("```SELECT 3```"), "SELECT 3");
        assert_eq!(extract_sql("  SELECT 4;  "), "SELECT 4;");
    }

    #[test]
    fn the_prompt_names_the_dialect_the_date_and_every_view() {
        let prompt = system(Dialect::Postgres, "2026-12-04", 1_796_342_400_000);
        for part in [
            "PostgreSQL",
            "2026-12-04",
            "1796342400000",
            "ask_requests",
            "ask_attempts",
            "US dollars",
        ] {
            assert!(prompt.contains(part), "{part}");
        }
        assert!(system(Dialect::Sqlite, "2026-12-04", 0).contains("Dialect: SQLite"));
    }
}
