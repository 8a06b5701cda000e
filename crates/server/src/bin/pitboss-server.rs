//! `pitboss-server`: the Pitboss server on its own, for a venue that keeps
//! it on a dedicated machine (the app can also host it in-process).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use pitboss_server::{Config, LimitConfig, Synchronous};

#[derive(Parser, Debug)]
#[command(
    name = "pitboss-server",
    version,
    about = "Pitboss venue server: tournament clock and floor incidents over the LAN"
)]
struct Args {
    /// Address and port to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:7878")]
    listen: SocketAddr,
    /// Folder for the store; created if missing.
    #[arg(long)]
    data: PathBuf,
    /// Join code for coordinators (random and printed when not given).
    #[arg(long)]
    coordinator_code: Option<String>,
    /// Join code for dealers (random and printed when not given).
    #[arg(long)]
    dealer_code: Option<String>,
    /// Join code for wall displays, which read only (random and printed when
    /// not given).
    #[arg(long)]
    display_code: Option<String>,
    /// Also create a demo event with a realistic no-limit hold'em structure.
    #[arg(long)]
    demo: bool,
    /// Changes kept per event so that clients can resume.
    #[arg(long, default_value_t = 10_000)]
    retention: u64,
    /// Store durability: full (survives power loss) or normal (faster).
    #[arg(long, default_value = "full", value_parser = parse_sync)]
    synchronous: Synchronous,
    /// How often each WebSocket is pinged, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    ws_ping_every_ms: u64,
    /// A WebSocket silent for this long (no pong, no frame) is closed and its
    /// subscriptions dropped, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    ws_dead_after_ms: u64,
    /// Ops per second one WebSocket may send (a token bucket).
    #[arg(long, default_value_t = LimitConfig::default().ops_per_second_per_connection)]
    ops_per_second_per_connection: u32,
    /// Ops one WebSocket may send at once before the rate applies.
    #[arg(long, default_value_t = LimitConfig::default().ops_burst_per_connection)]
    ops_burst_per_connection: u32,
    /// Ops per second one source address may send, over both transports.
    #[arg(long, default_value_t = LimitConfig::default().ops_per_second_per_address)]
    ops_per_second_per_address: u32,
    #[arg(long, default_value_t = LimitConfig::default().ops_burst_per_address)]
    ops_burst_per_address: u32,
    /// Join attempts (`POST /api/session`) per minute per source address.
    #[arg(long, default_value_t = LimitConfig::default().session_attempts_per_minute)]
    session_attempts_per_minute: u32,
    /// WebSockets one source address may hold open.
    #[arg(long, default_value_t = LimitConfig::default().max_connections_per_address)]
    max_connections_per_address: u32,
    /// TCP connections one source address may hold open (HTTP and
    /// WebSocket together), counted before any request is read.
    #[arg(long, default_value_t = LimitConfig::default().max_tcp_connections_per_address)]
    max_tcp_connections_per_address: u32,
    /// Turns every rate limit and connection cap off. Only for load tests
    /// that drive one server from one address on purpose.
    #[arg(long)]
    no_limits: bool,
    /// A session unused for this many seconds expires and its device must
    /// join again (default: 7 days).
    #[arg(long, default_value_t = pitboss_server::DEFAULT_SESSION_IDLE.as_secs())]
    session_idle_secs: u64,
    /// A name devices may reach this host by (a DNS name the venue set up),
    /// besides its addresses, `localhost` and its own host name; may be
    /// given more than once. Requests to any other name are refused.
    #[arg(long = "host-name")]
    host_names: Vec<String>,
}

fn parse_sync(s: &str) -> Result<Synchronous, String> {
    Synchronous::parse(s).ok_or_else(|| "expected full or normal".to_string())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "pitboss_server=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    anyhow::ensure!(args.retention >= 1, "--retention must be at least 1");
    let mut config = Config::new(args.listen, args.data);
    config.coordinator_code = args.coordinator_code;
    config.dealer_code = args.dealer_code;
    config.display_code = args.display_code;
    config.host_names = args.host_names;
    anyhow::ensure!(
        args.session_idle_secs >= 1,
        "--session-idle-secs must be at least 1"
    );
    config.session_idle = std::time::Duration::from_secs(args.session_idle_secs);
    config.limits = LimitConfig {
        enabled: !args.no_limits,
        ops_per_second_per_connection: args.ops_per_second_per_connection,
        ops_burst_per_connection: args.ops_burst_per_connection,
        ops_per_second_per_address: args.ops_per_second_per_address,
        ops_burst_per_address: args.ops_burst_per_address,
        session_attempts_per_minute: args.session_attempts_per_minute,
        max_connections_per_address: args.max_connections_per_address,
        max_tcp_connections_per_address: args.max_tcp_connections_per_address,
        ..LimitConfig::default()
    };
    config.demo = args.demo;
    config.retention = args.retention;
    config.synchronous = args.synchronous;
    anyhow::ensure!(
        args.ws_ping_every_ms >= 100 && args.ws_dead_after_ms > args.ws_ping_every_ms,
        "--ws-ping-every-ms must be at least 100 and --ws-dead-after-ms longer than it"
    );
    config.ws_ping_every = std::time::Duration::from_millis(args.ws_ping_every_ms);
    config.ws_dead_after = std::time::Duration::from_millis(args.ws_dead_after_ms);
    let server = pitboss_server::start(config).await?;
    server.announce();
    server.run_until_signal().await
}
