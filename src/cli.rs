//! Command-line flags.

use std::path::PathBuf;

use clap::Parser;

/// A self-hostable gateway for LLM providers.
#[derive(Debug, Parser)]
#[command(name = "llm-gateway", version, about)]
pub struct Cli {
    /// Path to TOML config file [default: config.toml]
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Override listen port [default: from config, 8930]
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    pub port: Option<u16>,
}
