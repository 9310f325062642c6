//! The parser's check of a model's SQL (sqlparser): exactly one read-only query, over the
//! ledger's tables and views only, calling only allow-listed functions. What runs is the
//! checked statement printed back from its syntax tree, never the model's text.

use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, FunctionArguments, ObjectName, ObjectNamePart, Query, SetExpr, Statement, TableFactor,
    Visit, Visitor,
};
use sqlparser::dialect::{Dialect as SqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;

use super::Dialect;

/// The relations a query may read: the ledger's tables and the views made for questions.
pub const LEDGER_RELATIONS: &[&str] = &[
    "requests",
    "attempts",
    "signals",
    "projects",
    "ask_requests",
    "ask_attempts",
];

/// Functions any dialect may call: aggregates, window functions, arithmetic, text and
/// null handling. Nothing that reads files, sleeps, sets configuration or loads code.
const COMMON_FUNCTIONS: &[&str] = &[
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "round",
    "coalesce",
    "nullif",
    "abs",
    "lower",
    "upper",
    "length",
    "substr",
    "substring",
    "trim",
    "ltrim",
    "rtrim",
    "replace",
    "ceil",
    "ceiling",
    "floor",
    "sqrt",
    "power",
    "ln",
    "log",
    "exp",
    "sign",
    "mod",
    "row_number",
    "rank",
    "dense_rank",
    "percent_rank",
    "cume_dist",
    "ntile",
    "lag",
    "lead",
    "first_value",
    "last_value",
    "greatest",
    "least",
    "concat",
];

/// SQLite's date functions and its own aggregates and conditionals.
const SQLITE_FUNCTIONS: &[&str] = &[
    "strftime",
    "date",
    "datetime",
    "time",
    "julianday",
    "unixepoch",
    "total",
    "group_concat",
    "ifnull",
    "iif",
    "instr",
];

/// PostgreSQL's date functions, percentiles and its own aggregates.
const POSTGRES_FUNCTIONS: &[&str] = &[
    "date_trunc",
    "date_part",
    "to_char",
    "to_timestamp",
    "to_date",
    "extract",
    "percentile_cont",
    "percentile_disc",
    "string_agg",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "variance",
    "bool_and",
    "bool_or",
    "now",
    "current_date",
    "current_timestamp",
];

/// Why a query was refused; the message names what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// Checks `sql` and returns the statement to run, printed back from its syntax tree.
pub fn check(sql: &str, dialect: Dialect) -> Result<String, Refusal> {
    let parser_dialect: &dyn SqlDialect = match dialect {
        Dialect::Sqlite => &SQLiteDialect {},
        Dialect::Postgres => &PostgreSqlDialect {},
    };
    let statements = Parser::parse_sql(parser_dialect, sql)
        .map_err(|e| Refusal(format!("not a single valid {} query: {e}", dialect.name())))?;
    let statement = match statements.as_slice() {
        [one] => one,
        [] => return Err(Refusal("no SQL statement was found".into())),
        many => {
            return Err(Refusal(format!(
                "{} statements were given; exactly one query is run",
                many.len()
            )))
        }
    };
    let Statement::Query(query) = statement else {
        return Err(Refusal(format!(
            "only a read-only query (SELECT, or WITH … SELECT) is run, not {}",
            statement_kind(statement)
        )));
    };
    let mut guard = Guard {
        functions: dialect_functions(dialect),
        scopes: Vec::new(),
    };
    if let ControlFlow::Break(refusal) = query.visit(&mut guard) {
        return Err(refusal);
    }
    Ok(statement.to_string())
}

fn dialect_functions(dialect: Dialect) -> &'static [&'static str] {
    match dialect {
        Dialect::Sqlite => SQLITE_FUNCTIONS,
        Dialect::Postgres => POSTGRES_FUNCTIONS,
    }
}

/// The statement's first word or two, for the refusal (`DELETE`, `CREATE TABLE`).
fn statement_kind(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    match words.as_slice() {
        [first, second, ..]
            if matches!(
                first.to_ascii_uppercase().as_str(),
                "CREATE" | "DROP" | "ALTER"
            ) =>
        {
            format!(
                "{} {}",
                first.to_ascii_uppercase(),
                second.to_ascii_uppercase()
            )
        }
        [first, ..] => first.to_ascii_uppercase(),
        [] => "an empty statement".into(),
    }
}

/// The names the common table expressions of one `WITH` define, and how many of them the
/// part of the query being walked can see (a non-recursive CTE sees only those before it).
struct Scope {
    names: Vec<String>,
    /// Pointers to each CTE's query, to know which one is being walked.
    queries: Vec<*const Query>,
    recursive: bool,
    visible: usize,
}

struct Guard {
    functions: &'static [&'static str],
    scopes: Vec<Scope>,
}

fn refuse(message: String) -> ControlFlow<Refusal> {
    ControlFlow::Break(Refusal(message))
}

/// A one-part name, lowercased (a quoted name keeps its case: it only matches itself).
fn single_name(name: &ObjectName) -> Option<String> {
    match name.0.as_slice() {
        [ObjectNamePart::Identifier(ident)] => Some(match ident.quote_style {
            Some(_) => ident.value.clone(),
            None => ident.value.to_lowercase(),
        }),
        _ => None,
    }
}

/// The body of every query must only read: no INSERT, UPDATE, DELETE or MERGE inside.
fn check_body(body: &SetExpr) -> ControlFlow<Refusal> {
    match body {
        SetExpr::Select(select) => {
            if select.into.is_some() {
                return refuse("SELECT … INTO writes a table; only reading queries are run".into());
            }
            if !select.lateral_views.is_empty() || !select.connect_by.is_empty() {
                return refuse("LATERAL VIEW and CONNECT BY are not supported".into());
            }
            ControlFlow::Continue(())
        }
        SetExpr::Query(_) | SetExpr::Values(_) => ControlFlow::Continue(()),
        SetExpr::SetOperation { left, right, .. } => {
            check_body(left)?;
            check_body(right)
        }
        SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => {
            refuse("a data-modifying statement inside the query (a writing CTE or subquery) is refused; only reading queries are run".into())
        }
        SetExpr::Table(_) => refuse("`TABLE name` is not supported: write SELECT * FROM name".into()),
    }
}

impl Visitor for Guard {
    type Break = Refusal;

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<Refusal> {
        let pointer: *const Query = query;
        // Entering one of the enclosing WITH's CTEs: it sees the CTEs before it (all of
        // them, and itself, under WITH RECURSIVE).
        if let Some(scope) = self.scopes.last_mut() {
            if let Some(at) = scope.queries.iter().position(|q| *q == pointer) {
                scope.visible = if scope.recursive {
                    scope.names.len()
                } else {
                    at
                };
            }
        }
        if !query.locks.is_empty() {
            return refuse("locking clauses (FOR UPDATE, FOR SHARE) are refused".into());
        }
        if query.for_clause.is_some()
            || query.settings.is_some()
            || query.format_clause.is_some()
            || !query.pipe_operators.is_empty()
        {
            return refuse("FOR, SETTINGS, FORMAT and pipe clauses are not supported".into());
        }
        check_body(&query.body)?;
        let scope = match &query.with {
            Some(with) => Scope {
                names: with
                    .cte_tables
                    .iter()
                    .map(|cte| match cte.alias.name.quote_style {
                        Some(_) => cte.alias.name.value.clone(),
                        None => cte.alias.name.value.to_lowercase(),
                    })
                    .collect(),
                queries: with
                    .cte_tables
                    .iter()
                    .map(|cte| &*cte.query as *const Query)
                    .collect(),
                recursive: with.recursive,
                visible: 0,
            },
            None => Scope {
                names: Vec::new(),
                queries: Vec::new(),
                recursive: false,
                visible: 0,
            },
        };
        self.scopes.push(scope);
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, query: &Query) -> ControlFlow<Refusal> {
        self.scopes.pop();
        // Left a CTE: what follows (the next CTE resets it, or the main body) sees them all.
        let pointer: *const Query = query;
        if let Some(scope) = self.scopes.last_mut() {
            if scope.queries.contains(&pointer) {
                scope.visible = scope.names.len();
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<Refusal> {
        match factor {
            TableFactor::Table { args: Some(_), .. } => {
                refuse("table functions are refused; read the ledger's tables and views".into())
            }
            TableFactor::Table { .. } | TableFactor::Derived { .. } | TableFactor::NestedJoin { .. } => {
                ControlFlow::Continue(())
            }
            _ => refuse(
                "only tables, views and subqueries may appear in FROM (no table functions, UNNEST, PIVOT, JSON_TABLE, …)".into(),
            ),
        }
    }

    fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<Refusal> {
        let Some(name) = single_name(relation) else {
            return refuse(format!(
                "`{relation}`: schema-qualified names are refused; read the ledger's tables and views ({}) by their plain names",
                LEDGER_RELATIONS.join(", ")
            ));
        };
        let defined = self
            .scopes
            .iter()
            .any(|scope| scope.names[..scope.visible.min(scope.names.len())].contains(&name));
        if defined || LEDGER_RELATIONS.contains(&name.as_str()) {
            return ControlFlow::Continue(());
        }
        refuse(format!(
            "`{relation}` is not one of the ledger's tables and views ({})",
            LEDGER_RELATIONS.join(", ")
        ))
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<Refusal> {
        let Expr::Function(function) = expr else {
            return ControlFlow::Continue(());
        };
        let allowed = single_name(&function.name).filter(|name| {
            COMMON_FUNCTIONS.contains(&name.as_str()) || self.functions.contains(&name.as_str())
        });
        if allowed.is_none() {
            return refuse(format!(
                "function `{}` is not allowed; allowed: {}, {}",
                function.name,
                COMMON_FUNCTIONS.join(", "),
                self.functions.join(", ")
            ));
        }
        if !matches!(function.parameters, FunctionArguments::None) {
            return refuse(format!(
                "`{}`: parametric function calls are not supported",
                function.name
            ));
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn refused(sql: &str, dialect: Dialect) -> String {
        match check(sql, dialect) {
            Ok(ok) => panic!("accepted on {}: {sql} → {ok}", dialect.name()),
            Err(Refusal(why)) => why,
        }
    }

    #[test]
    fn reading_queries_over_the_ledger_are_accepted_and_printed_back() {
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            for sql in [
                "SELECT model, SUM(cost_usd) AS spend FROM ask_requests GROUP BY model ORDER BY spend DESC",
                "select count(*) from requests r join attempts a on a.request_id = r.id",
                "WITH daily AS (SELECT day, COUNT(*) AS n FROM ask_requests GROUP BY day) SELECT * FROM daily",
                "WITH a AS (SELECT 1 AS x), b AS (SELECT x FROM a) SELECT x FROM b",
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT i FROM n",
                "SELECT provider, latency_ms FROM (SELECT provider, latency_ms, ROW_NUMBER() OVER (PARTITION BY provider ORDER BY latency_ms) AS rn FROM ask_requests) t WHERE rn = 1",
                "SELECT CASE WHEN status >= 400 THEN 'error' ELSE 'ok' END AS s, CAST(latency_ms AS REAL) FROM requests WHERE id IN (SELECT request_id FROM signals)",
                "SELECT 1 -- ; DELETE FROM requests",
            ] {
                let printed = check(sql, dialect).unwrap_or_else(|e| panic!("{sql}: {e}"));
                assert!(!printed.contains(';'), "{printed}");
            }
        }
        check(
            "SELECT strftime('%Y-%m-%d', ts_ms / 1000, 'unixepoch') FROM requests",
            Dialect::Sqlite,
        )
        .unwrap();
        check(
            "SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) FROM requests",
            Dialect::Postgres,
        )
        .unwrap();
        check(
            "SELECT date_trunc('day', to_timestamp(ts_ms / 1000.0)) FROM requests",
            Dialect::Postgres,
        )
        .unwrap();
    }

    #[test]
    fn every_kind_of_hostile_sql_is_refused_on_both_dialects() {
        let cases: &[(&str, &str)] = &[
            ("DELETE FROM requests", "not DELETE"),
            ("UPDATE requests SET cost_usd = 0", "not UPDATE"),
            ("INSERT INTO requests (id) VALUES ('x')", "not INSERT"),
            ("DROP TABLE requests", "not DROP TABLE"),
            ("ALTER TABLE requests ADD COLUMN x INT", "not ALTER TABLE"),
            ("CREATE TABLE x (a INT)", "not CREATE TABLE"),
            ("SELECT 1; DELETE FROM requests", "2 statements"),
            ("SELECT 1 /* hidden */; DROP TABLE requests", "2 statements"),
            ("/* SELECT 1 */ DELETE FROM requests", "not DELETE"),
            ("SELECT * FROM sqlite_master", "not one of the ledger's"),
            ("SELECT * FROM pg_authid", "not one of the ledger's"),
            ("SELECT * FROM pg_catalog.pg_authid", "schema-qualified"),
            (
                "SELECT * FROM information_schema.tables",
                "schema-qualified",
            ),
            ("SELECT * FROM main.requests", "schema-qualified"),
            ("SELECT * FROM seaql_migrations", "not one of the ledger's"),
            ("SELECT pg_sleep(10)", "function `pg_sleep`"),
            (
                "SELECT pg_read_file('/etc/passwd')",
                "function `pg_read_file`",
            ),
            (
                "SELECT set_config('default_transaction_read_only', 'off', false)",
                "function `set_config`",
            ),
            ("SELECT load_extension('evil')", "function `load_extension`"),
            ("SELECT randomblob(1000000000)", "function `randomblob`"),
            ("SELECT pg_catalog.now()", "function `pg_catalog.now`"),
            ("SELECT * FROM requests FOR UPDATE", "locking"),
            ("SELECT * INTO copy FROM requests", "INTO"),
            ("SELECT * FROM generate_series(1, 10)", "table functions"),
            // A CTE cannot lend its name to a relation outside the ledger that an earlier
            // CTE reads (a non-recursive CTE sees only those before it).
            (
                "WITH a AS (SELECT * FROM pg_authid), pg_authid AS (SELECT 1) SELECT * FROM a",
                "not one of the ledger's",
            ),
            (
                "SELECT * FROM pg_authid, (WITH pg_authid AS (SELECT 1) SELECT 1) x",
                "not one of the ledger's",
            ),
        ];
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            for (sql, why) in cases {
                let message = refused(sql, dialect);
                assert!(
                    message.contains(why),
                    "{}: {sql}: {message}",
                    dialect.name()
                );
            }
        }
    }

    #[test]
    fn dialect_statements_that_write_or_escape_are_refused() {
        for sql in [
            "ATTACH DATABASE '/tmp/x.db' AS x",
            "PRAGMA query_only = OFF",
            "VACUUM",
            "VACUUM INTO '/tmp/copy.db'",
        ] {
            refused(sql, Dialect::Sqlite);
        }
        for sql in [
            "COPY requests TO PROGRAM 'rm -rf /'",
            "COPY (SELECT 1) TO '/tmp/x'",
            "WITH gone AS (DELETE FROM requests RETURNING *) SELECT * FROM gone",
            "WITH x AS (UPDATE requests SET cost_usd = 0 RETURNING id) SELECT * FROM x",
            "WITH x AS (INSERT INTO projects (id) VALUES ('p') RETURNING id) SELECT * FROM x",
            "SET default_transaction_read_only = off",
            "BEGIN",
            "COMMIT",
            "SELECT * FROM requests FOR SHARE",
            "SELECT dblink('host=x', 'select 1')",
            "SELECT lo_import('/etc/passwd')",
            "SELECT current_setting('data_directory')",
        ] {
            refused(sql, Dialect::Postgres);
        }
        // SQLite's own functions are not PostgreSQL's, and the other way round.
        refused("SELECT pg_sleep(1) FROM requests", Dialect::Sqlite);
        refused("SELECT strftime('%Y', 'now')", Dialect::Postgres);
    }

    #[test]
    fn a_recursive_query_that_never_ends_passes_the_parser_for_the_time_limit_to_stop() {
        let sql = "WITH RECURSIVE forever(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM forever) SELECT COUNT(*) FROM forever";
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            check(sql, dialect).unwrap();
        }
    }
}
