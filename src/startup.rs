//! Builds the application: actors, shared state and the HTTP server bound to its own listener (port 0 works).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, Addr};
use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};

use crate::access::AdminGate;
use crate::actors::cost_ledger::{CostLedger, LedgerOptions, StopLedger};
use crate::actors::project_tracker::ProjectTracker;
use crate::actors::provider_registry::ProviderRegistry;
use crate::actors::sanitizer::SanitizerHandle;
use crate::actors::signal_collector::{SignalCollector, SignalOptions, StopSignals};
use crate::ledger::spool::Spool;
use crate::ledger::{replay, store};
use crate::metrics::Metrics;
use crate::pipeline::inbound::{BodyBudget, BodyLimits};
use crate::pipeline::meter::Recorder;
use crate::pipeline::upstream::UpstreamClients;
use crate::pipeline::Pipeline;
use crate::routes;
use crate::runtime::Runtime;
use crate::sanitizer::Sanitizer;
use crate::settings::Settings;
use crate::signals::recent::RecentRequests;
use crate::state::AppState;

/// Largest JSON body accepted by the admin endpoints.
const ADMIN_JSON_LIMIT: usize = 256 * 1024;

/// Raises the open-file limit to its hard maximum (as nginx's `worker_rlimit_nofile` does) and
/// warns when `max_connections` could still exhaust it: each proxied client connection holds an
/// upstream connection too.
fn check_descriptor_limit(max_connections: usize) {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::debug!(error = %e, "failed to raise the open-file limit");
        }
    }
    let current = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    let needed = (max_connections as u64)
        .saturating_mul(2)
        .saturating_add(256);
    if current < needed {
        tracing::warn!(
            open_files = current,
            max_connections,
            "the open-file limit is below what [server] max_connections needs (two descriptors per proxied connection): raise `ulimit -n` or lower max_connections"
        );
    }
}

/// A built, bound, not yet running gateway.
pub struct Application {
    port: u16,
    server: Server,
    ledger: Addr<CostLedger>,
    signals: Addr<SignalCollector>,
    state: web::Data<AppState>,
}

/// How long shutdown waits for the ledger to write what it holds. Not longer: what the
/// database does not take by then is safe in the spool, and written at the next start.
const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the gateway did not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ShutdownError {
    #[error("the database did not take {records} ledger records within 10 s of shutdown: they are kept in the spool {dir}, and the next start writes them")]
    RecordsInSpool { records: u64, dir: String },
    #[error("failed to stop the ledger: {0}")]
    Ledger(String),
    #[error("{0}")]
    Server(#[from] std::io::Error),
}

impl ShutdownError {
    /// The process's exit status: 75 (`EX_TEMPFAIL`, "try again later") when records wait in
    /// the spool for the database, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::RecordsInSpool { .. } => 75,
            Self::Ledger(_) | Self::Server(_) => 1,
        }
    }
}

impl Application {
    /// Opens the ledger, starts the actors and binds the listener; must run inside an actix system.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        // The port first: a port in use fails here, before any actor or timer has started.
        let address = format!("{}:{}", settings.server.host, settings.server.port);
        let listener = TcpListener::bind(&address).map_err(|e| {
            anyhow::anyhow!("failed to bind {address} ([server] host and port): {e}")
        })?;
        let port = listener.local_addr()?.port();
        let admin = AdminGate::new(settings.server.admin_token.clone(), &settings.server.host);
        if matches!(admin, AdminGate::Locked) {
            tracing::warn!(host = %settings.server.host, "listening beyond loopback without an admin token: the admin and analytics endpoints (providers, stats, records, projects, sources, metrics) answer 403 until [server] admin_token or admin_token_env is set");
        }
        let runtime = Runtime::build(&settings).map_err(anyhow::Error::msg)?;
        let sanitizer = if settings.sanitization.enabled {
            let engine = Sanitizer::new(&settings.sanitization).map_err(anyhow::Error::msg)?;
            Some(SanitizerHandle::start(
                engine,
                settings.sanitization.inline_scan_bytes,
            ))
        } else {
            None
        };

        let metrics =
            Arc::new(Metrics::new().map_err(|e| anyhow::anyhow!("failed to set up metrics: {e}"))?);
        let db_options = &settings.database;
        // The spool first: a second instance on the same directory stops here, before it
        // touches the database.
        let mut spool = Spool::open(&db_options.spool_dir, db_options.spool_segment_bytes)?;
        let db = store::connect(&db_options.url).await.map_err(|e| {
            let left = match spool.segments() {
                0 => String::new(),
                n => format!(
                    " ({n} spool segment file(s) of an earlier run wait in {} to be written)",
                    spool.dir().display()
                ),
            };
            anyhow::anyhow!("failed to open the ledger database ([database] url): {e}{left}")
        })?;
        crate::ledger::priority::lower_db_threads();
        // Before the server accepts anything: what the last run left is written first.
        replay::replay(&db, &mut spool, db_options.batch_size).await?;
        // Then the limits learn what the ledger holds: spend survives a restart.
        seed_limits(&db, &runtime.limits).await.map_err(|e| {
            anyhow::anyhow!(
                "failed to read the spend of the limited keys and projects from the ledger: {e}"
            )
        })?;
        share_limits(&settings.limits, &db, &runtime.limits).await?;
        let (ledger, inbox) = CostLedger::launch(
            db.clone(),
            LedgerOptions {
                flush_interval: Duration::from_millis(db_options.flush_interval_ms),
                batch_size: db_options.batch_size,
                max_pending: db_options.max_pending,
                retention_days: db_options.retention_days,
            },
            metrics.clone(),
            spool,
        )
        .map_err(|e| anyhow::anyhow!("failed to start the ledger's spooler thread: {e}"))?;
        let recent = Arc::new(RecentRequests::new(settings.signals.recent_requests));
        let signal_options = &settings.signals;
        let signals = SignalCollector::launch(
            db.clone(),
            SignalOptions {
                flush_interval: Duration::from_millis(signal_options.flush_interval_ms),
                batch_size: signal_options.batch_size,
                max_pending: signal_options.max_pending,
                publish_interval: Duration::from_millis(signal_options.publish_interval_ms),
            },
            recent.clone(),
            runtime.signal_figures.clone(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("failed to load the evidence of the stored signals: {e}"))?;
        let projects = ProjectTracker::new(db).start();

        let registry = ProviderRegistry::new(
            runtime.providers,
            settings.provider_defaults.clone(),
            runtime.default_tls,
            runtime.catalog.clone(),
        );
        let providers = registry.snapshot_handle();
        let router = crate::actors::router::Router::new(
            runtime.routing.live.clone(),
            Duration::from_millis(settings.routing.live_refresh_ms),
        )
        .start();
        let analytics = &settings.analytics;
        let writer = analytics.model.as_ref().map(|id| {
            // A profile's id is a profile: the router picks the model under it.
            if runtime.routing.profile(id).is_ok() {
                crate::ask::Writer::Profile(id.clone())
            } else {
                crate::ask::Writer::Model(id.clone())
            }
        });
        let analyst = crate::ask::Analyst::new(
            writer,
            analytics.max_rows,
            Duration::from_millis(analytics.timeout_ms),
            &db_options.url,
        );
        let state = web::Data::new(AppState {
            pipeline: Pipeline {
                keys: runtime.keys,
                sanitizer,
                registry: registry.start(),
                providers,
                catalog: runtime.catalog,
                routing: runtime.routing,
                body_limits: BodyLimits {
                    max_bytes: settings.server.max_body_bytes,
                    timeout: Duration::from_millis(settings.server.body_timeout_ms),
                    budget: Arc::new(BodyBudget::new(settings.server.max_buffered_body_bytes)),
                },
                recorder: Recorder {
                    ledger: inbox,
                    pricing: runtime.pricing,
                    metrics,
                    router,
                    recent,
                    limits: runtime.limits.clone(),
                },
                limits: runtime.limits,
            },
            ledger: ledger.clone(),
            projects,
            signals: signals.clone(),
            analyst,
            signal_figures: runtime.signal_figures,
            metrics_public: settings.server.metrics_public,
            started_at: Instant::now(),
            port,
        });
        let admin = web::Data::new(admin);

        let max_header_bytes = settings.server.max_header_bytes;
        let shared = state.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap_fn(move |req, service| {
                    crate::request_context::stamp(req, service, max_header_bytes)
                })
                .app_data(state.clone())
                .app_data(admin.clone())
                // awc clients are per worker: each worker keeps its own upstream connections.
                .app_data(web::Data::new(UpstreamClients::default()))
                .app_data(
                    web::JsonConfig::default()
                        .limit(ADMIN_JSON_LIMIT)
                        .error_handler(routes::json_error),
                )
                .app_data(web::QueryConfig::default().error_handler(routes::query_error))
                .configure(routes::configure)
                .service(crate::openapi::openapi_json)
                .default_service(web::to(crate::openapi::unknown_route))
        })
        .listen(listener)?;
        let workers = match settings.server.workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        server = server
            .workers(workers)
            // actix counts connections per worker.
            .max_connections(settings.server.max_connections.div_ceil(workers));
        check_descriptor_limit(settings.server.max_connections);
        tracing::info!(%address, port, "llm-gateway listening");
        Ok(Self {
            port,
            server: server.run(),
            ledger,
            signals,
            state: shared,
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the process is told to stop (SIGINT/SIGTERM): stops accepting, finishes
    /// in-flight requests, spools the last records and writes them to the database within
    /// 10 s. Records the database did not take are left in the spool: that is an error
    /// ([`ShutdownError::RecordsInSpool`]), so the process exits non-zero.
    pub async fn run_until_stopped(self) -> Result<(), ShutdownError> {
        let served = self.server.await;
        tracing::info!("server stopped; writing the pending signals and ledger records");
        // The unused slices of shared limits go back, for the other instances to spend.
        self.state.pipeline.limits.give_back().await;
        let stop = StopSignals {
            within: SHUTDOWN_FLUSH_TIMEOUT,
        };
        match self.signals.send(stop).await {
            Ok(0) => {}
            Ok(left) => {
                tracing::error!(
                    signals = left,
                    "quality signals lost: the database did not take them within 10 s of shutdown"
                )
            }
            Err(e) => tracing::error!(error = %e, "failed to stop the signal collector"),
        }
        let stop = StopLedger {
            within: SHUTDOWN_FLUSH_TIMEOUT,
        };
        // An error is logged once, by the caller (main), with the count and the directory.
        match self.ledger.send(stop).await {
            Ok(stopped) if stopped.unwritten == 0 => tracing::info!("ledger flushed"),
            Ok(stopped) => {
                return Err(ShutdownError::RecordsInSpool {
                    records: stopped.unwritten,
                    dir: stopped.spool_dir.display().to_string(),
                })
            }
            Err(e) => return Err(ShutdownError::Ledger(e.to_string())),
        }
        Ok(served?)
    }

    /// The shared state, with the pipeline: callers inside the process (and tests) can run a
    /// call through `state().pipeline.call(…)` without the HTTP server.
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// The ledger actor (tests use it to wait for records).
    pub fn ledger(&self) -> Addr<CostLedger> {
        self.ledger.clone()
    }

    /// The signal collector (tests use it to wait for signals to be written).
    pub fn signals(&self) -> Addr<SignalCollector> {
        self.signals.clone()
    }
}

/// Shares the limit counters with the other instances: in Redis when `[limits] redis_url` is
/// set, else in a PostgreSQL ledger's `limit_counters`; a SQLite ledger keeps them here.
async fn share_limits(
    options: &crate::settings::LimitsSettings,
    db: &sea_orm::DatabaseConnection,
    limits: &crate::limits::Limiter,
) -> anyhow::Result<()> {
    use crate::limits::shared::{PgStore, RedisStore, Store};
    use secrecy::ExposeSecret;
    if limits.is_empty() {
        return Ok(());
    }
    let store: Arc<dyn Store> = match &options.redis_url {
        Some(url) => Arc::new(
            RedisStore::connect(url.expose_secret(), &options.redis_prefix)
                .await
                .map_err(|e| anyhow::anyhow!("failed to connect to the limits' Redis: {e}"))?,
        ),
        None if db.get_database_backend() == sea_orm::DbBackend::Postgres => {
            Arc::new(PgStore::new(db.clone()))
        }
        None => return Ok(()),
    };
    tracing::info!(
        store = store.name(),
        lease_share = options.lease_share,
        "limit counters shared with every instance"
    );
    limits
        .share(store, options.lease_share)
        .map_err(anyhow::Error::msg)
}

/// How far back start-up looks for each model's typical output.
const TYPICAL_OUTPUT_WINDOW_MS: i64 = 7 * 86_400_000;

/// Gives the limiter the spend of each limited key and project in its budget's current window,
/// and each model's typical output, from the ledger (its hourly rollups, so it stays fast).
async fn seed_limits(
    db: &sea_orm::DatabaseConnection,
    limits: &crate::limits::Limiter,
) -> Result<(), sea_orm::DbErr> {
    use crate::limits::Subject;
    if limits.is_empty() {
        return Ok(());
    }
    let windows = limits.budget_windows();
    let mut starts: Vec<i64> = windows.iter().map(|(_, start)| *start).collect();
    starts.sort_unstable();
    starts.dedup();
    for start in starts {
        let groups = store::group_sums(
            db,
            store::Window {
                since_ms: (start > 0).then_some(start),
                until_ms: None,
            },
        )
        .await?;
        for (subject, _) in windows.iter().filter(|(_, s)| *s == start) {
            let spent: f64 = groups
                .iter()
                .filter(|g| match subject {
                    Subject::Key(label) => &g.key_label == label,
                    Subject::Project(id) => &g.project == id,
                })
                .map(|g| g.sums.cost_usd)
                .sum();
            limits.seed(subject.clone(), start, spent);
        }
    }
    let since = limits.clock.now_ms() - TYPICAL_OUTPUT_WINDOW_MS;
    let groups = store::group_sums(
        db,
        store::Window {
            since_ms: Some(since),
            until_ms: None,
        },
    )
    .await?;
    for g in groups {
        let (requests, output) = (g.sums.requests, g.sums.output_tokens);
        limits.note_output(
            &g.model,
            u64::try_from(requests).unwrap_or(0),
            u64::try_from(output).unwrap_or(0),
        );
    }
    Ok(())
}
