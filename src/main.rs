//! The `llm-gateway` binary: parse flags, load settings, start telemetry, run the library's application.

use clap::Parser;

// mimalloc: faster than glibc's allocator under many small allocations across threads, and it
// returns memory, so RSS stays flat under sustained load (measured in bench/).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use llm_gateway::cli::Cli;
use llm_gateway::settings::{self, ConfigSource};
use llm_gateway::startup::Application;
use llm_gateway::telemetry;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let source = match cli.config {
        Some(path) => ConfigSource {
            path,
            explicit: true,
        },
        None => ConfigSource {
            path: settings::default_config_path().to_path_buf(),
            explicit: false,
        },
    };
    let mut settings = match settings::load(&source) {
        Ok(s) => s,
        Err(e) => {
            // Before telemetry (its format is part of the settings): printed once, plainly.
            eprintln!("llm-gateway: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    telemetry::init(settings.log.format);
    tracing::info!(from = %settings.origin, "configuration loaded");
    if let Some(port) = cli.port {
        settings.server.port = port;
    }
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!("{e:#}");
            return std::process::ExitCode::from(1);
        }
    };
    match app.run_until_stopped().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            std::process::ExitCode::from(e.exit_code())
        }
    }
}
