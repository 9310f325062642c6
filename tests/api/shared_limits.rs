//! Limits shared by several gateway instances: two gateways on one PostgreSQL ledger (the
//! counters in its `limit_counters`), and two sharing Redis (`[limits] redis_url`), each
//! stop together at one budget and one rate limit, where instances that each enforced the
//! whole limit would let through twice as much.

use crate::helpers::*;
use crate::limits::{chat, config, key_limits, one_call_cost, settled, ALPHA, T0};

/// The PostgreSQL server of the shared-ledger tests (whichever ledger the suite runs on).
fn postgres_base() -> String {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => std::env::var("TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
    }
}

/// `config` with its limit counters in the machine's Redis, under a key prefix of this test's own.
fn with_redis(config: String) -> String {
    let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("gw-test:{}:", uuid::Uuid::now_v7().simple());
    format!("{config}\n[limits]\nredis_url = \"{url}\"\nredis_prefix = \"{prefix}\"\n")
}

/// Sends chat requests to `apps` in turn until every one of them has refused twice in a row;
/// returns (admitted, refused) per app and the order of the answers.
async fn until_both_refuse(apps: &[&TestApp]) -> (Vec<(usize, usize)>, Vec<(usize, u16)>) {
    let mut counts = vec![(0, 0); apps.len()];
    let mut refusals_in_a_row = vec![0; apps.len()];
    let mut order = Vec::new();
    for turn in 0..200 {
        let i = turn % apps.len();
        let (status, _, body) = chat(apps[i], "gpt-4o", &[ALPHA]).await;
        order.push((i, status));
        match status {
            200 => {
                counts[i].0 += 1;
                refusals_in_a_row[i] = 0;
            }
            429 => {
                assert_eq!(body["error"]["code"], "insufficient_quota", "{body}");
                counts[i].1 += 1;
                refusals_in_a_row[i] += 1;
            }
            other => panic!("unexpected status {other}: {body}"),
        }
        if refusals_in_a_row.iter().all(|n| *n >= 2) {
            return (counts, order);
        }
    }
    panic!("the instances never both refused: {order:?}");
}

/// Two instances with `config`, on `db_url` each (one shared ledger, or each its own when
/// the counters live in Redis), with their clocks at T0; both stop at one budget of
/// `calls` calls: together they admit at most one budget's worth, plus what one request in
/// flight may overshoot, and the spend recorded says the same.
async fn two_instances_stop_together(
    config: &str,
    first_db: Option<&str>,
    second_db: Option<&str>,
    cost: f64,
    calls: f64,
) {
    let first = spawn_app_on(config, first_db).await;
    let second = spawn_app_on(config, second_db).await;
    assert_eq!(
        first.limits.shared_store(),
        second.limits.shared_store(),
        "both share one store"
    );
    assert!(first.limits.shared_store().is_some());
    for app in [&first, &second] {
        app.limits.clock.set(T0);
    }
    let (counts, order) = until_both_refuse(&[&first, &second]).await;
    let admitted: usize = counts.iter().map(|c| c.0).sum();
    #[allow(clippy::print_stdout)]
    {
        println!(
            "{:?} shared counters, a budget of {calls} calls: admitted {admitted} ({} + {}); answers {order:?}",
            first.limits.shared_store(),
            counts[0].0,
            counts[1].0
        );
    }
    // Each instance served its share: neither held the whole budget to itself.
    assert!(counts.iter().all(|c| c.0 >= 2), "{counts:?}");
    // One budget, not two: the calls it pays for, and at most one more per instance (the
    // request each lets start under the budget, from the last of its slice, and that ends
    // over it, as one instance does alone).
    assert!(
        (admitted as f64) <= calls.ceil() + 1.0,
        "admitted {admitted} calls on a budget of {calls}: {order:?}"
    );
    assert!(admitted as f64 >= calls.floor() - 1.0, "{order:?}");
    // Once one refuses, the other refuses within one more request of its own.
    let first_refusal = order.iter().position(|(_, s)| *s == 429).unwrap();
    let admitted_after: usize = order[first_refusal..]
        .iter()
        .filter(|(_, s)| *s == 200)
        .count();
    assert!(admitted_after <= 1, "{order:?}");
    // The shared view agrees across instances: both show one spend.
    settled(&first).await;
    settled(&second).await;
    let spent = |app: &TestApp| {
        let app = app.limits.clone();
        async move {
            app.refresh(None).await;
            app.views()[0].budget.as_ref().unwrap().clone()
        }
    };
    let (a, b) = (spent(&first).await, spent(&second).await);
    assert!(a.remaining_usd < cost, "{a:?}");
    assert!(b.remaining_usd < cost, "{b:?}");
}

#[actix_web::test]
async fn two_instances_on_one_postgresql_stop_together_at_one_budget() {
    let mock = MockUpstream::start().unwrap();
    let cost = one_call_cost(&mock).await;
    let calls = 8.5;
    let limits = format!("max_budget_usd = {}", cost * calls);
    let config = config(&mock, &limits, "");
    // A fresh PostgreSQL database both instances write their ledger to.
    let db = fresh_postgres_url(&postgres_base()).await;
    two_instances_stop_together(&config, Some(&db), Some(&db), cost, calls).await;
}

#[actix_web::test]
async fn two_instances_sharing_redis_stop_together_at_one_budget() {
    let mock = MockUpstream::start().unwrap();
    let cost = one_call_cost(&mock).await;
    let calls = 8.5;
    let limits = format!("max_budget_usd = {}", cost * calls);
    let config = with_redis(config(&mock, &limits, ""));
    // Each instance its own ledger: only Redis is shared.
    two_instances_stop_together(&config, None, None, cost, calls).await;
}

#[actix_web::test]
async fn two_instances_sharing_redis_stop_together_at_one_rate_limit() {
    let mock = MockUpstream::start().unwrap();
    let config = with_redis(config(&mock, "rpm = 10", ""));
    let first = spawn_app(&config).await;
    let second = spawn_app(&config).await;
    for app in [&first, &second] {
        app.limits.clock.set(T0 + 5_000);
    }
    let mut statuses = Vec::new();
    for turn in 0..30 {
        let app = if turn % 2 == 0 { &first } else { &second };
        statuses.push(chat(app, "gpt-4o", &[ALPHA]).await.0);
    }
    let admitted = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(admitted, 10, "one rpm of 10 across both: {statuses:?}");
    assert!(statuses[..10].iter().all(|s| *s == 200), "{statuses:?}");
    // The next minute, both admit again.
    for app in [&first, &second] {
        app.limits.clock.set(T0 + 65_000);
        assert_eq!(chat(app, "gpt-4o", &[ALPHA]).await.0, 200);
    }
}

#[actix_web::test]
async fn keys_report_where_the_counters_live() {
    let mock = MockUpstream::start().unwrap();
    let config = with_redis(config(&mock, "max_budget_usd = 5\nrpm = 100", ""));
    let app = spawn_app(&config).await;
    assert_eq!(chat(&app, "gpt-4o", &[ALPHA]).await.0, 200);
    let (keys, alpha) = key_limits(&app, "alpha").await;
    assert_eq!(alpha["limits"]["counters"], "redis", "{alpha}");
    assert_eq!(alpha["limits"]["requests_this_minute"], 1, "{alpha}");
    let spent = alpha["limits"]["budget"]["spent_usd"].as_f64().unwrap();
    assert!(spent > 0.0, "{alpha}");
    // The URL (which may hold a password) is never shown.
    assert!(!keys.to_string().contains("redis://"), "{keys}");
}

/// A Redis of the test's own (the machine's `redis-server` on a free port), killed on drop.
struct OwnRedis(std::process::Child, u16);

impl OwnRedis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Owned at once, so that a panic below still kills and waits for it.
        let redis = Self(
            std::process::Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("redis-server is installed (.ci/run installs it)"),
            port,
        );
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return redis;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("redis-server did not listen on {port}");
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[actix_web::test]
async fn when_redis_goes_away_each_instance_keeps_the_limits_by_itself() {
    let mock = MockUpstream::start().unwrap();
    let mut redis = OwnRedis::start();
    let config = format!(
        "{}\n[limits]\nredis_url = \"redis://127.0.0.1:{}\"\n",
        config(&mock, "rpm = 4", ""),
        redis.1
    );
    let app = spawn_app(&config).await;
    app.limits.clock.set(T0 + 1_000);
    assert_eq!(chat(&app, "gpt-4o", &[ALPHA]).await.0, 200);
    assert_eq!(chat(&app, "gpt-4o", &[ALPHA]).await.0, 200);
    // Redis goes away: requests are not refused for it, nor do they hang; the instance keeps
    // the rpm on its own counters (which counted the two above).
    let _ = redis.0.kill();
    let _ = redis.0.wait();
    let started = std::time::Instant::now();
    let statuses = [
        chat(&app, "gpt-4o", &[ALPHA]).await.0,
        chat(&app, "gpt-4o", &[ALPHA]).await.0,
        chat(&app, "gpt-4o", &[ALPHA]).await.0,
    ];
    assert_eq!(statuses, [200, 200, 429], "rpm 4 kept locally");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}
