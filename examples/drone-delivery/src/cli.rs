//! The `drone-delivery` program: the drone delivery services,
//! all in one process on the in-memory broker, or one per process against
//! NATS. `src/main.rs` calls [`main_with`] with the process's arguments;
//! another program (a test harness, a supervisor) can call it with its
//! own.
//!
//! ```text
//! drone-delivery                                   # everything here; HTTP ingress on --listen
//! drone-delivery --deliveries 300                  # … and drive 300 deliveries through it
//! drone-delivery --broker nats://127.0.0.1:4222 --service drone-scheduler
//! drone-delivery --broker nats://127.0.0.1:4222 --service ingress --deliveries 300
//! drone-delivery --broker nats://127.0.0.1:4222 --db postgres://postgres@127.0.0.1/test --service flight
//! ```

use crate::driver::DriveOptions;
use crate::system::{Ingress, Node, Settings, PARTICIPANTS};
use choreo_runtime::service::Stores;
use clap::Parser;
use example_support::monitor::Beside;
use example_support::{shutdown_signal, Deployment, INGRESS};
use serde_json::json;
use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

/// The drone delivery services (ingestion, package, drone
/// scheduler, delivery, flight, notifications) and their HTTP ingress.
///
/// Without --service, everything runs in this process. With
/// --deliveries N, N deliveries are driven through the ingress and the
/// run ends with a summary whose last line is `settled N/N: …`; without
/// it, the ingress serves until Ctrl-C.
#[derive(Debug, Parser)]
#[command(name = "drone-delivery", version)]
struct Cli {
    #[command(flatten)]
    deployment: Deployment,
    /// Drive N deliveries through the HTTP ingress, print a summary and
    /// exit (everything in this process, or `--service ingress`).
    #[arg(long, value_name = "N")]
    deliveries: Option<usize>,
    /// The fleet's size (every process of a deployment must agree).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    drones: u64,
    /// Derives the fleet and the driven deliveries.
    #[arg(long, default_value_t = 8)]
    seed: u64,
    /// The flight time from pick-up to drop-off, in milliseconds.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    flight_ms: u64,
    /// The share of driven deliveries the client cancels (0 to 1).
    #[arg(long, default_value_t = 0.15, value_parser = share)]
    cancel_share: f64,
    /// The share of driven deliveries the client reschedules (0 to 1).
    #[arg(long, default_value_t = 0.15, value_parser = share)]
    reschedule_share: f64,
    /// Deliveries under way at once [default: twice the fleet].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    concurrency: Option<u64>,
    /// How long a driven run may take, in seconds.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    timeout: u64,
}

fn share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        Ok(v) => Err(format!("{v} is not a share between 0 and 1")),
        Err(e) => Err(e.to_string()),
    }
}

/// Why a run failed: exit 2 for what stops it from starting, 1 for a run
/// that did not settle.
enum Failure {
    Setup(String),
    Unsettled,
}

/// Runs the `drone-delivery` program with `args` (the first is the
/// program's name, as with [`std::env::args_os`]) on a multi-thread Tokio
/// runtime of its own, and returns its exit code: 0 when the run did what
/// was asked, 1 when deliveries did not settle, 2 when it could not start
/// (bad options, no broker, books or file); `--help` and `--version`
/// print and return 0. What it prints is what the binary prints.
pub fn main_with<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    example_support::cli::run(args, main_async)
}

async fn main_async(cli: Cli) -> ExitCode {
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Unsettled) => ExitCode::from(1),
        Err(Failure::Setup(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn print_line(v: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let setup = |e: &dyn std::fmt::Display| Failure::Setup(e.to_string());
    let d = &cli.deployment;
    let service = d.service_or_ingress(&PARTICIPANTS).map_err(|e| setup(&e))?;
    if cli.deliveries.is_some() && !matches!(service, None | Some(INGRESS)) {
        return Err(Failure::Setup(
            "--deliveries drives the HTTP ingress: run it without --service, or with --service ingress"
                .into(),
        ));
    }
    let settings = Settings {
        seed: cli.seed,
        drones: usize::try_from(cli.drones).unwrap_or(usize::MAX),
        flight_time: Duration::from_millis(cli.flight_ms),
        ..Settings::default()
    };
    let broker = d.broker().await.map_err(|e| setup(&e))?;
    // The ingress alone keeps no inbox or joins.
    let stores = if service == Some(INGRESS) {
        Stores::memory()
    } else {
        d.stores().await.map_err(|e| setup(&e))?
    };
    let described = stores.description.clone();
    // The ingress alone keeps no books.
    let books = if service == Some(INGRESS) {
        None
    } else {
        d.books().await.map_err(|e| setup(&e))?
    };
    let books_shown = books
        .as_ref()
        .map_or_else(|| "memory".to_string(), |b| b.description());
    if service != Some(INGRESS) {
        println!("books: {books_shown}");
    }
    // The monitor goes beside the ingress, and starts first: it reads from
    // the oldest message the broker holds, so it misses nothing.
    let monitor = match (service, d.monitor) {
        (None | Some(INGRESS), Some(addr)) => Some(
            Beside::start(
                crate::SPEC_NAME,
                crate::SPEC,
                broker.clone(),
                &d.prefix,
                addr,
            )
            .await
            .map_err(|e| setup(&e))?,
        ),
        _ => None,
    };
    // With `--ack-wait` and `--claim-lease`.
    let options = d.service_options();
    let node = Node::start_with_books(
        &settings,
        service,
        broker.clone(),
        stores,
        options,
        Ingress {
            listen: d.listen,
            token: d.token.as_ref().map(|t| t.as_str().to_string()),
        },
        books,
    )
    .await
    .map_err(|e| setup(&e))?;
    // `--stats`, where participants run.
    let stats = match d.stats_writer(node.stats_readers()) {
        Ok(stats) => stats,
        Err(e) => {
            node.stop().await;
            return Err(setup(&e));
        }
    };
    let name = service.unwrap_or("all");
    let shown = choreo_runtime::secret::redact(&d.broker);
    let mut ready = json!({
        "service": name,
        "ready": true,
        "broker": shown,
        "prefix": d.prefix,
        "stores": described,
        "books": books_shown,
    });
    if let Some(url) = node.base_url() {
        ready["url"] = json!(url);
    }
    if let Some(m) = &monitor {
        ready["monitor"] = json!(m.url());
    }
    let mut result = Ok(());
    match cli.deliveries {
        Some(n) => {
            if let Some(m) = &monitor {
                println!("monitor on {}", m.url());
            }
            let concurrency = cli
                .concurrency
                .map_or(settings.drones.saturating_mul(2), |c| {
                    usize::try_from(c).unwrap_or(usize::MAX)
                });
            let options = DriveOptions {
                deliveries: n,
                seed: cli.seed,
                cancel_share: cli.cancel_share,
                reschedule_share: cli.reschedule_share,
                concurrency,
                flight_time: settings.flight_time,
                timeout: Duration::from_secs(cli.timeout),
            };
            match node.drive(&options).await {
                Ok(report) => {
                    println!("{report}");
                    if !report.complete() {
                        result = Err(Failure::Unsettled);
                    }
                }
                Err(e) => result = Err(setup(&e)),
            }
            node.stop().await;
            stop_stats(stats).await;
            // What the monitor shows of the run stays up until stopped.
            if let Some(m) = &monitor {
                let stop = shutdown_signal();
                eprintln!("the monitor goes on serving {}; Ctrl-C stops it", m.url());
                stop.await;
            }
        }
        None => {
            // Caught before the ready line: a SIGTERM right after it must
            // stop the node cleanly, not kill it.
            let stop = shutdown_signal();
            print_line(&ready);
            match node.base_url() {
                Some(url) => eprintln!(
                    "drone delivery ({name}) on {shown}; the ingress: {url}/deliveries \
                     (README.md has curl examples); Ctrl-C stops it"
                ),
                None => {
                    eprintln!("{name} running on {shown}, stores: {described}; Ctrl-C stops it")
                }
            }
            stop.await;
            let state = node.stop().await;
            stop_stats(stats).await;
            if !state.is_null() {
                print_line(&json!({ "service": name, "state": state }));
            }
        }
    }
    if let Some(m) = monitor {
        if let Err(e) = m.stop().await {
            eprintln!("warning: stopping the monitor: {e}");
        }
    }
    if let Err(e) = broker.close(Duration::from_secs(5)).await {
        eprintln!("warning: closing the broker: {e}");
    }
    result
}

/// Writes the final counts of `--stats`, once the services stopped.
async fn stop_stats(stats: Option<example_support::StatsWriter>) {
    if let Some(writer) = stats {
        if let Err(e) = writer.stop().await {
            eprintln!("warning: --stats: {e}");
        }
    }
}
