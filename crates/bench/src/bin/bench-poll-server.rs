//! `bench-poll-server`: the Pitboss server delivering changes by reading
//! them back from its store on a timer, as a database-backed pub/sub
//! adapter does. The benchmark's reference for what polling costs; venues
//! never run it: polling is built into `pitboss-server` only with its
//! `bench-polling` feature, which only this crate turns on.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::ensure;
use clap::Parser;
use pitboss_server::{Config, LimitConfig, Synchronous};

#[derive(Parser, Debug)]
#[command(
    name = "bench-poll-server",
    about = "Pitboss with polling delivery, for benchmarks"
)]
struct Args {
    #[arg(long)]
    listen: SocketAddr,
    /// Folder for the store; created if missing.
    #[arg(long)]
    data: PathBuf,
    #[arg(long)]
    coordinator_code: Option<String>,
    #[arg(long)]
    dealer_code: Option<String>,
    /// Store durability: full or normal.
    #[arg(long, default_value = "normal", value_parser = parse_sync)]
    synchronous: Synchronous,
    /// Changes kept per event so that clients can resume.
    #[arg(long, default_value_t = 10_000)]
    retention: u64,
    /// How often the store is read, in milliseconds.
    #[arg(long, default_value_t = 100)]
    poll_interval_ms: u64,
    /// Turns every rate limit and connection cap off: one load generator on
    /// one address stands in for thousands of screens.
    #[arg(long)]
    no_limits: bool,
    /// Also create the demo event.
    #[arg(long)]
    demo: bool,
}

fn parse_sync(s: &str) -> Result<Synchronous, String> {
    Synchronous::parse(s).ok_or_else(|| "expected full or normal".to_string())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(args.retention >= 1, "--retention must be at least 1");
    ensure!(
        args.poll_interval_ms >= 1,
        "--poll-interval-ms must be at least 1"
    );
    let mut config = Config::new(args.listen, args.data);
    config.coordinator_code = args.coordinator_code;
    config.dealer_code = args.dealer_code;
    config.limits = LimitConfig {
        enabled: !args.no_limits,
        ..LimitConfig::default()
    };
    config.demo = args.demo;
    config.retention = args.retention;
    config.synchronous = args.synchronous;
    config.poll_every = Some(Duration::from_millis(args.poll_interval_ms));
    let server = pitboss_server::start(config).await?;
    server.announce();
    server.run_until_signal().await
}
