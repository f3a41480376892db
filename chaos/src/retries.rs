//! The third choreography a campaign runs: `specs/retries.choreo`, a
//! gateway that fails each payment a set number of times and a retry loop
//! `@bounded(3)`. Neither example has a bounded cycle; this one checks,
//! under replicas and kills, that the bound counts each round once: a
//! round counted twice (a redelivered firing taken for a new one) makes the
//! runtime dead-letter the last round, and that payment never settles.
//!
//! Its command line takes the examples' deployment options; with
//! `--service ingress --orders N` it sends N `Charge` commands straight to
//! the broker (retrying a refused publish, as the examples' drivers retry
//! a `503`), follows them until they settle and prints the examples'
//! summary; with `--report FILE` it writes each payment and how it ended.

use clap::Parser;
use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use choreo_runtime::progress::{InstanceTracker, TrackerOptions};
use choreo_runtime::service::{HandlerError, ServiceHandle};
use example_support::{shutdown_signal, Deployment, Settler, INGRESS};

choreo_runtime::choreo!(file = "specs/retries.choreo");

use retries::{
    gateway::OnChargeRequestedOutcome, retrier::OnChargeFailedOutcome, Charge, ChargeFailed,
    ChargeRequested, Charged, Context, GaveUp,
};

/// The participants.
pub const PARTICIPANTS: [&str; 3] = ["Api", "Gateway", "Retrier"];

/// Rounds before the retrier gives up (the spec's `@bounded(3)`).
pub const ROUNDS: u32 = 3;

/// One payment placed, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// The instance key.
    pub key: String,
    /// How many times the gateway fails it.
    pub fails: u32,
    /// Its terminal event, if it settled.
    pub outcome: Option<String>,
}

impl Record {
    /// How it must end: charged after `fails` failures, or given up
    /// after three.
    pub fn expected(&self) -> &'static str {
        if self.fails < ROUNDS {
            "Charged"
        } else {
            "GaveUp"
        }
    }
}

/// How many times the gateway fails payment `i` of a run seeded `seed`:
/// 0 to 3, about evenly.
pub fn fails_of(seed: u64, i: usize) -> u32 {
    let mut rng = fastrand::Rng::with_seed(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    rng.u32(0..=ROUNDS)
}

struct Api;
impl retries::Api for Api {
    async fn on_charge(&self, _: Context, c: Charge) -> Result<ChargeRequested, HandlerError> {
        Ok(ChargeRequested {
            fails: c.fails,
            round: 0,
        })
    }
}

struct Gateway;
impl retries::Gateway for Gateway {
    async fn on_charge_requested(
        &self,
        _: Context,
        r: ChargeRequested,
    ) -> Result<OnChargeRequestedOutcome, HandlerError> {
        // The gateway's answer takes a moment, as a remote one does: the
        // campaign's kills and pauses then find payments in flight.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        Ok(if r.round < r.fails {
            OnChargeRequestedOutcome::ChargeFailed(ChargeFailed {
                fails: r.fails,
                round: r.round,
            })
        } else {
            OnChargeRequestedOutcome::Charged(Charged { round: r.round })
        })
    }
}

struct Retrier;
impl retries::Retrier for Retrier {
    async fn on_charge_failed(
        &self,
        _: Context,
        f: ChargeFailed,
    ) -> Result<OnChargeFailedOutcome, HandlerError> {
        Ok(if f.round + 1 < ROUNDS {
            OnChargeFailedOutcome::ChargeRequested(ChargeRequested {
                fails: f.fails,
                round: f.round + 1,
            })
        } else {
            OnChargeFailedOutcome::GaveUp(GaveUp { rounds: ROUNDS })
        })
    }
}

/// The command line of the retries choreography.
#[derive(Debug, Parser)]
#[command(name = "retries")]
struct Cli {
    /// Payments to send (with `--service ingress`).
    #[arg(long)]
    orders: Option<usize>,
    /// Payments in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seconds to wait for every payment to settle.
    #[arg(long, default_value_t = 150)]
    timeout: u64,
    /// The seed of how often each payment fails.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write every payment and how it ended to FILE as JSON.
    #[arg(long)]
    report: Option<std::path::PathBuf>,
    #[command(flatten)]
    deployment: Deployment,
}

/// Runs the command line `args` (`args[0]` the program's name).
pub fn main_with<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    example_support::cli::run(args, |cli: Cli| async move {
        match run(cli).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("retries: {e}");
                ExitCode::from(2)
            }
        }
    })
}

async fn run(cli: Cli) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let d = &cli.deployment;
    let mut known = PARTICIPANTS.to_vec();
    known.push(INGRESS);
    let service = d.service(&known)?;
    let broker = d.broker().await?;
    let options = d.service_options();
    if service != Some(INGRESS) {
        let stores = d.stores().await?;
        let described = stores.description.clone();
        let handle: Vec<ServiceHandle> = match service {
            Some("Api") => vec![
                retries::api::definition(Api)
                    .start(broker.clone(), stores, options)
                    .await?,
            ],
            Some("Gateway") => vec![
                retries::gateway::definition(Gateway)
                    .start(broker.clone(), stores, options)
                    .await?,
            ],
            Some(_) => vec![
                retries::retrier::definition(Retrier)
                    .start(broker.clone(), stores, options)
                    .await?,
            ],
            None => {
                retries::start_all(broker.clone(), stores, options, Api, Gateway, Retrier).await?
            }
        };
        let stats = d.stats_writer(handle.iter().map(ServiceHandle::stats_reader).collect())?;
        // A service catches SIGTERM before it says it runs, so that the
        // harness's signal right after that line stops it cleanly.
        let stop = service.map(|_| shutdown_signal());
        println!(
            "{} running on {}, stores: {described}",
            service.unwrap_or("every participant"),
            choreo_runtime::secret::redact(&d.broker)
        );
        if let Some(stop) = stop {
            stop.await;
        }
        let ok = match cli.orders {
            Some(n) if service.is_none() => drive(&cli, broker.clone(), n).await?,
            _ => true,
        };
        for h in handle {
            h.shutdown().await?;
        }
        if let Some(s) = stats {
            s.stop().await?;
        }
        println!(
            "{{\"service\":\"{}\",\"state\":{{}}}}",
            service.unwrap_or("all")
        );
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    let n = cli.orders.unwrap_or(0);
    let ok = drive(&cli, broker, n).await?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Sends `n` payments, follows them until they settle, prints the
/// summary and checks each ending against its `fails`.
async fn drive(
    cli: &Cli,
    broker: choreo_runtime::SharedBroker,
    n: usize,
) -> Result<bool, Box<dyn std::error::Error>> {
    let d = &cli.deployment;
    let tracker = Arc::new(
        InstanceTracker::start(
            retries::topology(),
            broker.clone(),
            TrackerOptions {
                topics: d.topics(),
                ..TrackerOptions::default()
            },
        )
        .await?,
    );
    let settler = Settler::start(&tracker, n as u64, "payments");
    let commands = retries::Commands::with_topics(broker, d.topics());
    let deadline = Instant::now() + Duration::from_secs(cli.timeout);
    let mut records = Vec::with_capacity(n);
    let mut retried = 0u64;
    let gate = Arc::new(tokio::sync::Semaphore::new(cli.concurrency.max(1)));
    for i in 0..n {
        let key = uuid::Uuid::new_v4();
        let fails = fails_of(cli.seed, i);
        // A publish the broker refused (a restart, a cut) is sent again.
        let mut wait = Duration::from_millis(50);
        while commands.charge(&key, Charge { fails }).await.is_err() {
            if Instant::now() >= deadline {
                break;
            }
            retried += 1;
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(2));
        }
        records.push(Record {
            key: key.to_string(),
            fails,
            outcome: None,
        });
        // At most `concurrency` unsettled at once.
        let permit = gate.clone().acquire_owned().await?;
        let t = tracker.clone();
        let k = key.to_string();
        tokio::spawn(async move {
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = t.wait_settled(&k, left).await;
            drop(permit);
        });
    }
    let keys: Vec<String> = records.iter().map(|r| r.key.clone()).collect();
    let left = deadline.saturating_duration_since(Instant::now());
    let mut summary = settler.wait(&keys, left).await;
    summary.retried = retried;
    let mut wrong = 0;
    for r in &mut records {
        r.outcome = settler.ending(&r.key).map(|e| e.event);
        if r.outcome.is_some() && r.outcome.as_deref() != Some(r.expected()) {
            wrong += 1;
            println!(
                "PROBLEM: payment {} failing {} times ended {:?}",
                r.key, r.fails, r.outcome
            );
        }
    }
    if let Some(path) = &cli.report {
        std::fs::write(path, serde_json::to_vec(&records)?)?;
    }
    println!("{summary}");
    Ok(summary.complete() && wrong == 0)
}
