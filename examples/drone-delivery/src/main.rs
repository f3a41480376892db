//! `drone-delivery`: the drone delivery services of seed 000, all in one
//! process on the in-memory broker, or one per process against NATS.
//!
//! ```text
//! drone-delivery                                   # everything here; HTTP ingress on --listen
//! drone-delivery --deliveries 300                  # … and drive 300 deliveries through it
//! drone-delivery --broker nats://127.0.0.1:4222 --service drone-scheduler
//! drone-delivery --broker nats://127.0.0.1:4222 --service ingress --deliveries 300
//! drone-delivery --broker nats://127.0.0.1:4222 --db postgres://postgres@127.0.0.1/test --service flight
//! ```

use choreo_runtime::service::Stores;
use clap::Parser;
use drone_delivery::driver::DriveOptions;
use drone_delivery::system::{Node, Settings, PARTICIPANTS};
use example_support::monitor::Beside;
use example_support::{shutdown_signal, Deployment, INGRESS};
use serde_json::json;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

/// The drone delivery services of seed 000 (ingestion, package, drone
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
    /// How long an event a service took stays claimed if its process dies,
    /// in seconds [default: the runtime's, 60]. Shorter than the broker's
    /// ack wait (30 s), the event is taken over as soon as it comes again.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    claim_lease: Option<u64>,
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

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
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
                drone_delivery::SPEC_NAME,
                drone_delivery::SPEC,
                broker.clone(),
                &d.prefix,
                addr,
            )
            .await
            .map_err(|e| setup(&e))?,
        ),
        _ => None,
    };
    let mut options = d.service_options();
    if let Some(secs) = cli.claim_lease {
        options.claim_lease = Duration::from_secs(secs);
    }
    let node = Node::start_with_books(
        &settings,
        service,
        broker.clone(),
        stores,
        options,
        d.listen,
        books,
    )
    .await
    .map_err(|e| setup(&e))?;
    let name = service.unwrap_or("all");
    let shown = choreo_runtime::store::describe(&d.broker);
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
            // What the monitor shows of the run stays up until stopped.
            if let Some(m) = &monitor {
                eprintln!("the monitor goes on serving {}; Ctrl-C stops it", m.url());
                shutdown_signal().await;
            }
        }
        None => {
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
            shutdown_signal().await;
            let state = node.stop().await;
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
