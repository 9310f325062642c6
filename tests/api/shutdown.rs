//! SIGTERM under load: the gateway stops accepting, finishes what is in flight, writes the ledger,
//! exits 0; every request that got an answer has its record, and a restart reports the same stats.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use entities::requests;
use sea_orm::{EntityTrait, PaginatorTrait};

use crate::helpers::*;

fn start_gateway(config: &std::path::Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_llm-gateway"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "--port",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_until_up(client: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        if client.get(format!("{base}/health")).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the gateway did not start");
}

/// One request; its id when the whole answer arrived.
async fn call(client: reqwest::Client, base: String, i: usize) -> Option<String> {
    let (path, body, headers): (&str, serde_json::Value, Vec<(&str, String)>) = match i % 3 {
        0 => (
            "/v1/chat/completions",
            chat_body("gpt-4o", true),
            vec![
                ("x-mock-chunks", "10".into()),
                ("x-mock-chunk-delay-ms", "30".into()),
            ],
        ),
        1 => (
            "/v1/messages",
            messages_body("claude-sonnet-4-20250514", true),
            vec![
                ("x-mock-chunks", "10".into()),
                ("x-mock-chunk-delay-ms", "30".into()),
            ],
        ),
        _ => (
            "/v1/chat/completions",
            chat_body("gpt-4o", false),
            vec![("x-mock-delay-ms", format!("{}", 50 + (i % 5) * 50))],
        ),
    };
    let mut request = client
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .header("x-project", "load")
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    answered_id(request).await
}

#[actix_web::test]
async fn sigterm_under_load_loses_no_record_of_an_answered_request() {
    let mock = MockUpstream::start_on("127.0.0.1:0", 2).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db_url = fresh_database_url(dir.path()).await;
    let config = format!(
        "{}\n[database]\nurl = \"{db_url}\"\nspool_dir = \"{}\"\n",
        four_providers(&mock),
        dir.path().join("spool").display()
    );
    let (_config_dir, config_path) = write_config(&config);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut gateway = start_gateway(&config_path, port);
    wait_until_up(&client, &base).await;

    let calls: Vec<_> = (0..60)
        .map(|i| actix_rt::spawn(call(client.clone(), base.clone(), i)))
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    Command::new("kill")
        .args(["-TERM", &gateway.id().to_string()])
        .status()
        .unwrap();
    let mut answered = Vec::new();
    for call in calls {
        if let Some(id) = call.await.unwrap() {
            answered.push(id);
        }
    }
    let status = gateway.wait().unwrap();

    assert!(status.success(), "exit 0 after SIGTERM: {status}");
    assert!(
        answered.len() >= 20,
        "the in-flight requests were finished, not cut: {} answered",
        answered.len()
    );
    let db = sea_orm::Database::connect(db_url.as_str()).await.unwrap();
    for id in &answered {
        assert!(
            requests::Entity::find_by_id(id.clone())
                .one(&db)
                .await
                .unwrap()
                .is_some(),
            "request {id} was answered but not recorded"
        );
    }
    let recorded = requests::Entity::find().count(&db).await.unwrap();

    // A restart on the same database reports what was recorded.
    let mut again = start_gateway(&config_path, port);
    wait_until_up(&client, &base).await;
    let stats: serde_json::Value = client
        .get(format!("{base}/v1/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let _ = again.kill();
    let _ = again.wait();
    assert_eq!(stats["total_requests"], recorded);
}
