//! The options every example binary takes, and what they make: the
//! broker, the stores, the books, the topic names and the service options.

use crate::books::{Books, BooksError};
use crate::stats::StatsWriter;
use choreo_runtime::broker::memory::MemoryBroker;
use choreo_runtime::service::{ServiceOptions, StatsReader, Stores, Topics};
use choreo_runtime::store::{StoreError, StoreOptions};
use choreo_runtime::SharedBroker;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// What `--service` takes besides a participant's name: the HTTP ingress,
/// with its instance tracker (and the driver, where a run drives one).
pub const INGRESS: &str = "ingress";

/// Where and how an example runs.
#[derive(Debug, Clone, clap::Args)]
pub struct Deployment {
    /// The broker: `memory://` runs every participant in this process;
    /// `nats://127.0.0.1:4222` or `redis://127.0.0.1:6379` share a real
    /// broker between processes.
    #[arg(long, default_value = "memory://", value_name = "URL")]
    pub broker: String,
    /// Run only this participant (one process per participant, against a
    /// shared broker). Without it every participant runs here.
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// A prefix for every topic, so that several deployments share one
    /// broker without seeing each other's events.
    #[arg(long, default_value = "", value_name = "PREFIX")]
    pub prefix: String,
    /// Deliver every event twice (the memory broker only): shows that no
    /// handler acts twice on one event.
    #[arg(long)]
    pub duplicates: bool,
    /// The address of the HTTP ingress (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Where the services keep their inbox, join slots and `@bounded`
    /// counters: `memory://`, `nats://…` (JetStream Key-Value),
    /// `redis://…` or `postgres://user@host/db` [default: the broker's own
    /// server, so that a restarted or second process finds them; memory on
    /// the memory broker]
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Where the participants keep their books (what they hold, such as
    /// stock and credit, and their decision per instance):
    /// `postgres://user@host/db` keeps them in PostgreSQL, in tables named
    /// after --prefix, so that a killed participant repeats its decisions
    /// and a restarted one goes on from what is stored [default: memory,
    /// lost with the process]
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
    /// Serve choreo-monitor's page, API and metrics on ADDR, beside the
    /// ingress (in the process that runs it): every instance of the run
    /// against the spec, live.
    #[arg(long, value_name = "ADDR")]
    pub monitor: Option<SocketAddr>,
    /// How long a delivery taken by a process that dies, or stops
    /// answering, waits before the broker hands it to another member, in
    /// seconds (fractions allowed) [default: the runtime's, 30]. On NATS
    /// a consumer group keeps the ack wait it was made with (by the first
    /// process of a deployment): give every process the same.
    #[arg(long, value_name = "SECS", value_parser = positive_secs)]
    pub ack_wait: Option<Duration>,
    /// How long an event a service took stays claimed if its process dies,
    /// in seconds (fractions allowed) [default: the runtime's, 60].
    /// Shorter than the ack wait, the event is taken over as soon as it
    /// comes again.
    #[arg(long, value_name = "SECS", value_parser = positive_secs)]
    pub claim_lease: Option<Duration>,
    /// How long the stores keep done-marks and `@bounded` counters, in
    /// seconds: as long as an event can come again (the streams'
    /// retention, the broker's deduplication window, redeliveries)
    /// [default: 7 days].
    #[arg(long, value_name = "SECS", value_parser = positive_secs)]
    pub done_window: Option<Duration>,
    /// How long a join that has not fired waits after its latest arrival,
    /// in seconds, before the stores forget it: as long as a join's events
    /// may lie apart [default: for ever]. Without one, the joins of orders
    /// that ended before their second event stay in the stores.
    #[arg(long, value_name = "SECS", value_parser = positive_secs)]
    pub join_window: Option<Duration>,
    /// Write the counts of the services this process runs to FILE as JSON
    /// (`{"pid", "at_ms", "services": {"Payment": {…}}}`) every 200 ms and
    /// once more when they stop, each time to FILE.tmp renamed to FILE. A
    /// process that runs no participant (`--service ingress`) writes
    /// nothing.
    #[arg(long, value_name = "FILE")]
    pub stats: Option<PathBuf>,
    /// Let only requests with `Authorization: Bearer TOKEN` into the HTTP
    /// ingress (`401` for any other); the run's own client sends it. From
    /// the environment rather than the command line, where other users
    /// can read it [default: no check]
    #[arg(long, env = "CHOREO_TOKEN", value_name = "TOKEN", hide_env_values = true, value_parser = non_empty)]
    pub token: Option<Token>,
}

/// A bearer token (`--token`), never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A token that is not empty.
    pub fn new(token: &str) -> Result<Token, String> {
        if token.trim().is_empty() {
            return Err("the token is empty".into());
        }
        Ok(Token(token.to_string()))
    }

    /// The token.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

fn non_empty(s: &str) -> Result<Token, String> {
    Token::new(s)
}

/// The longest `--ack-wait` or `--claim-lease`: a year.
const MAX_SECS: f64 = 365.0 * 24.0 * 3600.0;

/// Parses a number of seconds more than zero (`30`, `0.5`).
pub fn positive_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if secs.is_nan() || secs <= 0.0 {
        return Err(format!("{s} seconds: must be more than 0"));
    }
    if secs > MAX_SECS {
        return Err(format!("{s} seconds: must be at most a year ({MAX_SECS})"));
    }
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{s} seconds: must be more than 0"))
}

impl Default for Deployment {
    /// What the options are when none is given.
    fn default() -> Self {
        Deployment {
            broker: "memory://".into(),
            service: None,
            prefix: String::new(),
            duplicates: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            store: None,
            db: None,
            monitor: None,
            ack_wait: None,
            claim_lease: None,
            done_window: None,
            join_window: None,
            stats: None,
            token: None,
        }
    }
}

/// A deployment that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    /// The broker URL or server.
    #[error(transparent)]
    Connect(#[from] choreo_runtime::broker::ConnectError),
    /// Options that do not go together.
    #[error("{0}")]
    Options(String),
    /// The stores' URL or server.
    #[error("{0}")]
    Stores(#[from] StoreError),
    /// The books' URL or server.
    #[error("{0}")]
    Books(#[from] BooksError),
    /// `--service` names no participant.
    #[error("there is no service `{given}`; the services are: {}", .known.join(", "))]
    UnknownService {
        /// What was asked for.
        given: String,
        /// What there is.
        known: Vec<String>,
    },
}

impl Deployment {
    /// The service this process runs, checked against `known` (compared
    /// without regard to case, `-` and `_`); `None` for all of them.
    pub fn service<'a>(&self, known: &[&'a str]) -> Result<Option<&'a str>, DeploymentError> {
        let Some(given) = &self.service else {
            return Ok(None);
        };
        let norm = |s: &str| {
            s.chars()
                .filter(|c| *c != '-' && *c != '_')
                .flat_map(char::to_lowercase)
                .collect::<String>()
        };
        known
            .iter()
            .find(|k| norm(k) == norm(given))
            .map(|k| Some(*k))
            .ok_or_else(|| DeploymentError::UnknownService {
                given: given.clone(),
                known: known.iter().map(|k| k.to_string()).collect(),
            })
    }

    /// [`Deployment::service`] over the `participants` and [`INGRESS`].
    pub fn service_or_ingress<'a>(
        &self,
        participants: &[&'a str],
    ) -> Result<Option<&'a str>, DeploymentError> {
        let mut known = participants.to_vec();
        known.push(INGRESS);
        self.service(&known)
    }

    /// Connects to the broker (`--duplicates` on the memory broker makes
    /// it deliver every event twice).
    pub async fn broker(&self) -> Result<SharedBroker, DeploymentError> {
        let memory = matches!(
            self.broker
                .split_once("://")
                .map_or(self.broker.as_str(), |(s, _)| s),
            "" | "memory"
        );
        if self.duplicates && !memory {
            return Err(DeploymentError::Options(format!(
                "--duplicates works on the memory broker only, not on `{}`",
                choreo_runtime::secret::redact(&self.broker)
            )));
        }
        if memory && self.service.is_some() {
            return Err(DeploymentError::Options(
                "--service runs one participant against a shared broker; \
                 with the memory broker nothing else would see its events \
                 (give --broker nats://… or redis://…)"
                    .into(),
            ));
        }
        if self.duplicates {
            return Ok(Arc::new(MemoryBroker::with_duplicates()));
        }
        Ok(choreo_runtime::connect(&self.broker).await?)
    }

    /// The stores of `--store`, or of the broker's own server: a real
    /// broker gets durable stores unless told otherwise.
    pub async fn stores(&self) -> Result<Stores, DeploymentError> {
        let mut options = StoreOptions::with_prefix(self.prefix.clone());
        if let Some(window) = self.done_window {
            options.window = window;
        }
        options.join_window = self.join_window;
        Ok(match &self.store {
            Some(url) => Stores::connect(url, &options).await?,
            None => Stores::for_broker(&self.broker, &options).await?,
        })
    }

    /// The books of `--db`, connected, with tables named after `--prefix`;
    /// `None` without `--db` (the books stay in memory).
    pub async fn books(&self) -> Result<Option<Books>, DeploymentError> {
        let Some(url) = &self.db else {
            return Ok(None);
        };
        let scheme = url.split_once("://").map_or("", |(s, _)| s);
        if !matches!(scheme, "postgres" | "postgresql") {
            return Err(DeploymentError::Options(format!(
                "--db takes a PostgreSQL URL (postgres://user@host/db), not `{}`",
                choreo_runtime::secret::redact(url)
            )));
        }
        Ok(Some(Books::connect(url, &self.prefix).await?))
    }

    /// `router` behind the `--token` check, if one is given.
    pub fn guard(
        &self,
        router: choreo_runtime::http::axum::Router,
    ) -> choreo_runtime::http::axum::Router {
        match &self.token {
            Some(token) => router.layer(choreo_runtime::http::bearer(token.as_str())),
            None => router,
        }
    }

    /// The topic names of this deployment.
    pub fn topics(&self) -> Topics {
        Topics::new(self.prefix.clone())
    }

    /// Service options with this deployment's topics, and its
    /// `--ack-wait` and `--claim-lease` where given.
    pub fn service_options(&self) -> ServiceOptions {
        let mut options = ServiceOptions {
            topics: self.topics(),
            ..ServiceOptions::default()
        };
        if let Some(wait) = self.ack_wait {
            options.ack_wait = wait;
        }
        if let Some(lease) = self.claim_lease {
            options.claim_lease = lease;
        }
        options
    }

    /// Starts writing `--stats` for `services` (the participants this
    /// process runs): `None` without `--stats`, or without services. An
    /// error when the file cannot be written. Needs a Tokio runtime.
    pub fn stats_writer(
        &self,
        services: Vec<StatsReader>,
    ) -> Result<Option<StatsWriter>, DeploymentError> {
        let Some(path) = &self.stats else {
            return Ok(None);
        };
        if services.is_empty() {
            return Ok(None);
        }
        StatsWriter::start(path, services)
            .map(Some)
            .map_err(|e| DeploymentError::Options(format!("--stats: {e}")))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        d: Deployment,
    }

    fn parse(args: &[&str]) -> Deployment {
        Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
            .unwrap()
            .d
    }

    #[test]
    fn service_names_match_loosely_and_unknown_ones_are_listed() {
        let d = parse(&["--service", "drone-scheduler", "--broker", "nats://x"]);
        assert_eq!(
            d.service(&["Delivery", "DroneScheduler"]).unwrap(),
            Some("DroneScheduler")
        );
        let d = parse(&["--service", "paymnt"]);
        let e = d.service(&["Orders", "Payment"]).unwrap_err().to_string();
        assert_eq!(
            e,
            "there is no service `paymnt`; the services are: Orders, Payment"
        );
        // The ingress is one of the services too, and listed with them.
        let d = parse(&["--service", "Ingress"]);
        assert_eq!(d.service_or_ingress(&["Orders"]).unwrap(), Some(INGRESS));
        let d = parse(&["--service", "shipping"]);
        let e = d.service_or_ingress(&["Orders"]).unwrap_err().to_string();
        assert!(e.ends_with("the services are: Orders, ingress"), "{e}");
    }

    #[tokio::test]
    async fn duplicates_need_the_memory_broker_and_service_needs_a_shared_one() {
        let d = parse(&["--duplicates", "--broker", "nats://127.0.0.1:1"]);
        let e = d.broker().await.err().unwrap().to_string();
        assert!(e.contains("memory broker only"), "{e}");
        let d = parse(&["--service", "Payment"]);
        let e = d.broker().await.err().unwrap().to_string();
        assert!(e.contains("shared broker"), "{e}");
        // Duplicates or not, one participant alone on a memory broker
        // would wait forever.
        let d = parse(&["--duplicates", "--service", "Payment"]);
        let e = d.broker().await.err().unwrap().to_string();
        assert!(e.contains("shared broker"), "{e}");
        let d = parse(&["--duplicates"]);
        assert!(d.broker().await.is_ok());
    }

    #[test]
    fn ack_wait_and_claim_lease_go_into_the_service_options_and_must_be_positive() {
        let d = parse(&["--ack-wait", "2", "--claim-lease", "0.5"]);
        let o = d.service_options();
        assert_eq!(o.ack_wait, Duration::from_secs(2));
        assert_eq!(o.claim_lease, Duration::from_millis(500));
        let defaults = parse(&[]).service_options();
        let runtime = ServiceOptions::default();
        assert_eq!(
            (defaults.ack_wait, defaults.claim_lease),
            (runtime.ack_wait, runtime.claim_lease)
        );
        for bad in ["0", "-1", "0.0", "nan", "soon", "1e300"] {
            for option in ["--ack-wait", "--claim-lease"] {
                let e = Cli::try_parse_from(["x".to_string(), format!("{option}={bad}")])
                    .err()
                    .unwrap()
                    .to_string();
                assert!(e.contains(option) && e.contains("seconds"), "{e}");
            }
        }
        let e = Cli::try_parse_from(["x", "--ack-wait", "0"])
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("must be more than 0"), "{e}");
    }

    #[test]
    fn the_default_is_what_no_option_gives() {
        let parsed = parse(&[]);
        let d = Deployment::default();
        assert_eq!(
            format!("{parsed:?}"),
            format!("{d:?}"),
            "Deployment::default() drifted from the options' defaults"
        );
    }

    #[tokio::test]
    async fn db_takes_postgres_urls_only_and_is_none_without() {
        assert!(parse(&[]).books().await.unwrap().is_none());
        let d = parse(&["--db", "redis://u:pw@127.0.0.1:6379"]);
        let e = d.books().await.unwrap_err().to_string();
        assert!(e.contains("PostgreSQL URL"), "{e}");
        assert!(!e.contains("pw"), "{e}");
        let d = parse(&["--db", "postgres://u:pw@127.0.0.1:1/x"]);
        let e = d.books().await.unwrap_err().to_string();
        assert!(e.contains("127.0.0.1:1") && !e.contains("pw"), "{e}");
    }
}
