//! The `ecommerce` program: the shop of `ecommerce.choreo`, in one process
//! on the memory broker (the default), or one process per participant on
//! NATS. `src/main.rs` calls [`main_with`] with the process's arguments;
//! another program (a test harness, a supervisor) can call it with its
//! own.
//!
//! ```text
//! cargo run --release -p ecommerce                          # 1,000 orders, in one process
//! cargo run --release -p ecommerce -- --orders 10000 --users 1000 --products 500
//! ecommerce --broker nats://127.0.0.1:4222 --service payment  # one participant
//! ecommerce --broker nats://127.0.0.1:4222 --service ingress --orders 500
//! ```

use crate::{verify_shop, Catalogue, DataOptions, Error, Role, System};
use clap::Parser;
use example_support::{shutdown_signal, Deployment, INGRESS};
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The ecommerce example: orders placed over HTTP, stock reserved, credit
/// charged or declined, stock given back, parcels shipped — by six
/// participants that only exchange events.
#[derive(Debug, Parser)]
#[command(
    name = "ecommerce",
    version,
    max_term_width = 100,
    after_help = "Services (--service): Orders, Inventory, Payment, Seller, Logistics, \
                  Notifications, and ingress (the HTTP ingress and the tracker; with --orders \
                  it places them and prints the summary). See examples/ecommerce/README.md."
)]
struct Cli {
    /// Orders to place through the HTTP ingress, then print a summary and
    /// exit [default: 1000 in one process; none with --serve or
    /// `--service ingress`, which then serve until stopped]
    #[arg(long, value_name = "N")]
    orders: Option<usize>,
    /// Orders in flight at once (concurrent HTTP requests).
    #[arg(long, default_value_t = 64, value_name = "C", value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
    /// Seconds to wait for every order to settle.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    timeout: u64,
    /// Keep serving the HTTP ingress (on --listen) until Ctrl-C, after the
    /// orders if any.
    #[arg(long)]
    serve: bool,
    /// Write every order placed and how it ended to FILE as JSON.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    #[command(flatten)]
    data: DataOptions,
    #[command(flatten)]
    deployment: Deployment,
}

/// Runs the `ecommerce` program with `args` (the first is the program's
/// name, as with [`std::env::args_os`]) on a multi-thread Tokio runtime of
/// its own, and returns its exit code: 0 when the run did what was asked
/// and every check held, 1 when orders did not settle or a check failed,
/// 2 when it could not start (bad options, no broker, books or file);
/// `--help` and `--version` print and return 0. What it prints is what
/// the binary prints.
pub fn main_with<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    example_support::cli::run(args, main_async)
}

async fn main_async(cli: Cli) -> ExitCode {
    logs();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ecommerce: {e}");
            match e {
                Error::Deployment(_) | Error::Broker(_) | Error::Io(_) | Error::Books(_) => {
                    ExitCode::from(2)
                }
                _ => ExitCode::FAILURE,
            }
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, Error> {
    let d = &cli.deployment;
    match d.service_or_ingress(&crate::PARTICIPANTS)? {
        None => everything(&cli).await,
        Some(INGRESS) => ingress(&cli).await,
        Some(participant) => {
            let system = System::start(d, cli.data, Role::Participant(participant)).await?;
            // Caught before the line that says it runs: a SIGTERM right
            // after it must stop the service cleanly, not kill it.
            let stop = shutdown_signal();
            println!("books: {}", system.books.as_deref().unwrap_or("none"));
            println!(
                "{participant} running on {} (prefix `{}`), stores: {}; SIGTERM or Ctrl-C stops it",
                choreo_runtime::secret::redact(&d.broker),
                d.prefix,
                system.stores.as_deref().unwrap_or("none")
            );
            flush();
            stop.await;
            let shop = system.shop.clone();
            system.stop().await?;
            // One JSON line, the last of the output: what a test or an
            // operator checks the run against (the books as stored, with
            // `--db`).
            let state = shop.final_state(participant).await?;
            println!("{}", serde_json::to_string(&state).unwrap_or_default());
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn everything(cli: &Cli) -> Result<ExitCode, Error> {
    let n = cli.orders.unwrap_or(if cli.serve { 0 } else { 1000 });
    let system = System::start(&cli.deployment, cli.data, Role::Everything).await?;
    // Every participant ran here: their final state is checked too.
    let ok = n == 0 || drive(cli, &system, n, true).await?;
    finish(system, cli.serve, ok).await
}

async fn ingress(cli: &Cli) -> Result<ExitCode, Error> {
    let system = System::start(&cli.deployment, cli.data, Role::Ingress).await?;
    let Some(n) = cli.orders else {
        return finish(system, true, true).await;
    };
    let ok = drive(cli, &system, n, false).await?;
    finish(system, cli.serve, ok).await
}

/// Places `n` orders through the ingress and prints how they ended (and,
/// with `check`, how the participants' final state compares with the
/// data); whether all settled and every check held.
async fn drive(cli: &Cli, system: &System, n: usize, check: bool) -> Result<bool, Error> {
    let d = &cli.deployment;
    println!(
        "{}",
        headline(n, &system.catalogue, &d.broker, d.duplicates)
    );
    if let Some(books) = &system.books {
        println!("books: {books}");
    }
    if let Some(url) = system.monitor_url() {
        println!("monitor on {url}");
        flush();
    }
    let (summary, records) = system
        .drive(n, cli.concurrency.into(), Duration::from_secs(cli.timeout))
        .await?;
    write_report(cli, &records)?;
    let mut ok = summary.complete();
    if check {
        let verdict = verify_shop(&system.shop, &records).await;
        for line in &verdict.lines {
            println!("{line}");
        }
        println!(
            "failed: {} declined for credit, {} out of stock",
            verdict.declined, verdict.out_of_stock
        );
        for p in &verdict.problems {
            println!("PROBLEM: {p}");
        }
        ok &= verdict.ok();
    }
    println!("{summary}");
    Ok(ok)
}

/// Serves the ingress until stopped when `serve`, then stops the system.
async fn finish(system: System, serve: bool, ok: bool) -> Result<ExitCode, Error> {
    if serve {
        serve_until_stopped(&system).await;
    }
    system.stop().await?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn headline(n: usize, c: &Catalogue, broker: &str, duplicates: bool) -> String {
    let o = c.options;
    let broker = choreo_runtime::secret::redact(broker);
    format!(
        "ecommerce: {n} orders by {} customers of {} products (seed {}) on {broker}{}",
        o.users,
        o.products,
        o.seed,
        if duplicates {
            ", every event delivered twice"
        } else {
            ""
        }
    )
}

/// Says where the system serves and returns what completes when it is
/// asked to stop; the signals are caught before anything is said.
fn serve_until_stopped(system: &System) -> impl std::future::Future<Output = ()> {
    let stop = shutdown_signal();
    if let Some(url) = system.base_url() {
        println!("HTTP ingress on {url}: POST /orders, GET /orders/{{id}}; Ctrl-C stops it");
    }
    if let Some(url) = system.monitor_url() {
        println!("monitor on {url}: the page, /api/summary, /api/instances, /metrics");
    }
    flush();
    stop
}

fn write_report(cli: &Cli, records: &[crate::OrderRecord]) -> Result<(), Error> {
    if let Some(path) = &cli.report {
        let json = serde_json::to_vec(records).map_err(std::io::Error::other)?;
        std::fs::write(path, json).map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
        })?;
    }
    Ok(())
}

/// With `RUST_LOG=LEVEL` (`error`, `warn`, `info`, `debug`, `trace`), the
/// logs at that level and above go to standard error (services starting,
/// handlers retried, stores, broker or books not answering), to look into
/// a run. Without it nothing is logged, so the output stays what the tests
/// read.
fn logs() {
    let Ok(level) = std::env::var("RUST_LOG") else {
        return;
    };
    match level.trim().parse::<tracing::Level>() {
        // `try_init`: a second run in one process keeps the first's.
        Ok(level) => {
            let _ = tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_max_level(level)
                .try_init();
        }
        Err(_) => eprintln!("ecommerce: RUST_LOG takes a level (error, warn, info, debug, trace), not `{level}`; no logs"),
    }
}

fn flush() {
    let _ = std::io::stdout().flush();
}
