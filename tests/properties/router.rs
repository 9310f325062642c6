//! The Router decides alike whether it starts from a profile's prepared set (the request
//! path, also when the set is rebuilt from the previous one) or runs every layer in full (the
//! traced answer of `POST /v1/route`), for any request.

use std::collections::HashMap;
use std::sync::Arc;

use llm_gateway::api::ApiFormat;
use llm_gateway::catalog::{Capabilities, Capability};
use llm_gateway::providers::snapshot::RegistrySnapshot;
use llm_gateway::providers::ProviderKind;
use llm_gateway::router::needs::Needs;
use llm_gateway::router::RouteQuery;
use llm_gateway::runtime::Runtime;
use llm_gateway::settings::{self, ConfigSource};
use proptest::prelude::*;

// Near-equal candidates are drawn at random by load: off, so that a decision is a function of
// the request.
const CONFIG: &str = r#"
[routing]
near_equal = 0

[[providers]]
id = "openai"
provider_type = "openai"
api_key = "sk-test"

[[providers]]
id = "anthropic"
provider_type = "anthropic"
api_key = "sk-ant-test"

[[providers]]
id = "local"
provider_type = "local"
endpoint = "http://127.0.0.1:9"
"#;

fn runtime() -> (Runtime, Arc<RegistrySnapshot>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, CONFIG).unwrap();
    let source = ConfigSource {
        path,
        explicit: true,
    };
    let settings = settings::load_with_env(&source, Vec::new()).unwrap();
    let runtime = Runtime::build(&settings).unwrap();
    let mut reported: Vec<String> = runtime
        .catalog
        .models()
        .iter()
        .filter(|c| c.provider_type == ProviderKind::Local)
        .map(|c| c.id.clone())
        .collect();
    reported.push("my-finetune:latest".into());
    let snapshot = Arc::new(RegistrySnapshot {
        providers: runtime.providers.clone(),
        discovered: HashMap::from([("local".to_string(), Arc::new(reported))]),
        contexts: HashMap::from([(
            "local".to_string(),
            Arc::new(HashMap::from([("llama3.1:8b".to_string(), 16_384)])),
        )]),
    });
    (runtime, snapshot)
}

fn needs() -> impl Strategy<Value = Needs> {
    (
        prop::collection::vec(prop::sample::select(Capability::ALL.to_vec()), 0..3),
        prop_oneof![0u64..2_000, 2_000u64..300_000, 300_000u64..2_000_000],
        prop::option::of(1u64..200_000),
    )
        .prop_map(|(caps, prompt_tokens, max_tokens)| Needs {
            capabilities: Capabilities::of(&caps),
            prompt_tokens,
            max_tokens,
            min_context: None,
            conversation: None,
        })
}

proptest! {
    #![proptest_config(crate::config(64))]

    #[test]
    fn the_prepared_path_and_the_traced_path_route_alike(needs in needs(), anthropic in any::<bool>()) {
        let (runtime, snapshot) = runtime();
        let routing = &runtime.routing;
        let today = llm_gateway::router::today();
        let api = Some(if anthropic { ApiFormat::Anthropic } else { ApiFormat::OpenAi });
        for profile in routing.profiles.by_id.values() {
            let query = |explain| RouteQuery { api, profile, needs, today: today.clone(), task: None, pinned: None, balance: true, explain };
            let targets = |explain: bool| match routing.route(&snapshot, &runtime.catalog, &query(explain)) {
                Ok(d) => Ok(d.targets.iter().map(|t| (t.provider.id.clone(), t.model.clone(), t.score)).collect::<Vec<_>>()),
                Err(none) => Err(none.summary()),
            };
            let first = targets(false);
            // Again, now from the prepared set the first built.
            prop_assert_eq!(&first, &targets(false), "profile {}", profile.id);
            prop_assert_eq!(&first, &targets(true), "profile {}", profile.id);
        }
    }
}

proptest! {
    // Two runtimes per case: fewer cases.
    #![proptest_config(crate::config(16))]

    /// After the providers change (one removed) while the live figures and signals stand, a
    /// prepared set is rebuilt from the previous one, each remaining candidate keeping its
    /// figures: it routes as a fresh router's first build over the new providers, and as
    /// the traced path.
    #[test]
    fn a_rebuild_over_changed_providers_routes_as_a_fresh_build(needs in needs(), removed in 0usize..3) {
        let (fresh, _) = runtime();
        let (runtime, snapshot) = runtime();
        let today = llm_gateway::router::today();
        let mut providers = snapshot.providers.clone();
        providers.remove(removed);
        let changed = Arc::new(RegistrySnapshot {
            providers,
            discovered: snapshot.discovered.clone(),
            contexts: snapshot.contexts.clone(),
        });
        for (id, profile) in &runtime.routing.profiles.by_id {
            let query = |profile, explain| RouteQuery { api: Some(ApiFormat::OpenAi), profile, needs, today: today.clone(), task: None, pinned: None, balance: true, explain };
            let targets = |runtime: &Runtime, snapshot: &Arc<RegistrySnapshot>, profile, explain: bool| {
                match runtime.routing.route(snapshot, &runtime.catalog, &query(profile, explain)) {
                    Ok(d) => Ok(d.targets.iter().map(|t| (t.provider.id.clone(), t.model.clone(), t.score)).collect::<Vec<_>>()),
                    Err(none) => Err(none.summary()),
                }
            };
            // The set over the first providers, then its rebuild over the changed ones.
            let _ = targets(&runtime, &snapshot, profile, false);
            let rebuilt = targets(&runtime, &changed, profile, false);
            let first_build = targets(&fresh, &changed, &fresh.routing.profiles.by_id[id], false);
            prop_assert_eq!(&rebuilt, &first_build, "profile {}", id);
            prop_assert_eq!(&rebuilt, &targets(&runtime, &changed, profile, true), "profile {}", id);
        }
    }
}
