//! `choreo-monitor SPEC --broker URL`: follows a deployment of SPEC as an
//! observer and serves what it sees: a web page with the flow diagram and
//! live counts, a JSON API, and Prometheus metrics.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use choreo_compiler::diagnostic::render::{render_text, ColorMode};
use choreo_compiler::{check, CheckedSpec, SourceFile};
use choreo_monitor::{Flow, Monitor, MonitorOptions, WatchOptions};
use choreo_runtime::broker::{connect, StartPosition};
use choreo_runtime::secret::{redact, scrub};
use choreo_runtime::service::Topics;
use clap::Parser;

/// Follows a running choreography and shows every instance against its
/// spec: running (and waiting for what), succeeded, failed, stuck,
/// violated, dead-lettered. It reads what the services already publish,
/// from `--since` back, without a consumer group of its own.
#[derive(Debug, Parser)]
#[command(name = "choreo-monitor", version, max_term_width = 100)]
struct Cli {
    /// The `.choreo` spec of the deployment.
    spec: PathBuf,
    /// The deployment's broker: `nats://host:4222` or `redis://host:6379`.
    #[arg(long, value_name = "URL")]
    broker: String,
    /// The deployment's topic prefix (its services' `--prefix`).
    #[arg(long, default_value = "", value_name = "P")]
    prefix: String,
    /// Where to serve the page, the API and the metrics.
    #[arg(long, default_value = "127.0.0.1:7878", value_name = "ADDR")]
    listen: SocketAddr,
    /// An unsettled instance with no progress for this long is stuck.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = duration)]
    stuck_after: Duration,
    /// Rebuild from what the broker holds of this last stretch of time;
    /// an instance begun before it is shown as partial.
    #[arg(long, default_value = "1h", value_name = "DURATION", value_parser = duration)]
    since: Duration,
    /// Settled instances kept for looking up; older ones are only counted.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    keep_settled: usize,
}

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration ({e}); write it like `30s`, `5m` or `1h`"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    logs();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("choreo-monitor: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let spec = load(&cli.spec)?;
    let flow = Flow::new(&spec);
    if cli.broker.starts_with("memory") || !cli.broker.contains("://") {
        return Err(format!(
            "`{}` is not a shared broker: the monitor watches a deployment on nats:// or redis://; \
             the memory broker lives inside one process (the examples' `--monitor` serves it there)",
            redact(&cli.broker)
        ));
    }
    let broker = connect(&cli.broker).await.map_err(|e| {
        format!(
            "cannot reach the broker {}: {}",
            redact(&cli.broker),
            scrub(&e.to_string(), &cli.broker)
        )
    })?;
    let since = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::try_from(cli.since).unwrap_or(jiff::SignedDuration::MAX))
        .unwrap_or(jiff::Timestamp::MIN);
    let options = MonitorOptions {
        topics: Topics::new(&cli.prefix),
        start: StartPosition::Since(since),
        watch: WatchOptions {
            stuck_after: cli.stuck_after,
            keep_settled: cli.keep_settled,
            ..WatchOptions::default()
        },
    };
    let monitor = Arc::new(
        Monitor::start(flow, broker, options)
            .await
            .map_err(|e| format!("cannot follow the deployment: {e}"))?,
    );
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cli.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let stop = choreo_monitor::http::shutdown_signal();
    println!(
        "choreo-monitor: watching `{}` on {} (prefix `{}`), serving http://{addr}/",
        spec.name.text,
        redact(&cli.broker),
        cli.prefix
    );
    let site = choreo_monitor::http::Site::new(monitor.clone(), &spec);
    choreo_monitor::http::serve(site, listener, stop)
        .await
        .map_err(|e| format!("serving failed: {e}"))?;
    monitor.shutdown().await;
    Ok(())
}

fn load(path: &std::path::Path) -> Result<CheckedSpec, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let file = SourceFile::new(path.display().to_string(), text);
    check(&file)
        .into_checked()
        .map(|(spec, _)| spec)
        .map_err(|diagnostics| {
            let color = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                ColorMode::Always
            } else {
                ColorMode::Never
            };
            format!(
                "the spec does not check; `choreoc check {}` says:\n{}",
                path.display(),
                render_text(&file, &diagnostics, color)
            )
        })
}

fn logs() {
    let Ok(level) = std::env::var("RUST_LOG") else {
        return;
    };
    match level.trim().parse::<tracing::Level>() {
        Ok(level) => tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(level)
            .init(),
        Err(_) => eprintln!(
            "choreo-monitor: RUST_LOG takes a level (error, warn, info, debug, trace), not `{level}`; no logs"
        ),
    }
}
