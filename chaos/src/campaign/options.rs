//! What a campaign runs: its command line, and the line that runs it again.

use std::path::PathBuf;
use std::time::Duration;

use crate::example::Example;
use crate::faults::Fault;
use crate::servers::BrokerKind;

/// What a campaign runs.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// The example to run, one process per participant (and replica).
    #[arg(long, value_enum, default_value = "ecommerce")]
    pub example: Example,
    /// The broker servers the campaign starts (on free loopback ports).
    #[arg(long, value_enum, default_value = "nats")]
    pub broker: BrokerKind,
    /// Instances (orders or deliveries) the driver places.
    #[arg(long, default_value_t = 600, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub orders: u64,
    /// The fault kinds, comma-separated [default: all of them].
    #[arg(long, value_enum, value_delimiter = ',', value_name = "KINDS")]
    pub faults: Vec<Fault>,
    /// The seed of the fault schedule and the data [default: from the
    /// clock, printed].
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Processes per participant (competing consumers).
    #[arg(long, default_value_t = 1, value_name = "R", value_parser = clap::value_parser!(u64).range(1..=4))]
    pub replicas: u64,
    /// Instances in flight at once.
    #[arg(long, default_value_t = 12, value_name = "C")]
    pub concurrency: usize,
    /// The services' ack wait, in seconds (a pause outlasts it).
    #[arg(long, default_value_t = 4, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=600))]
    pub ack_wait: u64,
    /// The services' claim lease, in seconds (a pause outlasts it).
    #[arg(long, default_value_t = 4, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=600))]
    pub claim_lease: u64,
    /// How long the driver may take to see every instance settle.
    #[arg(long, default_value_t = 150, value_name = "SECS")]
    pub timeout: u64,
    /// Where the participants keep their books (PostgreSQL): the double
    /// effects are counted from them.
    #[arg(
        long,
        default_value = "postgres://postgres@127.0.0.1:5432/test",
        value_name = "URL"
    )]
    pub db: String,
    /// Keep the books in memory rather than in PostgreSQL (for a soak
    /// without faults, beside other users of the server).
    #[arg(long)]
    pub no_db: bool,
    /// Where to write the JSON report.
    #[arg(long, default_value = "chaos-report.json", value_name = "FILE")]
    pub report: PathBuf,
    /// Soak: drive instances in rounds, back to back, for this long
    /// (`30m`, `90s`, `2h`), sampling memory, stores and streams;
    /// ecommerce and retries only [default: one round of --orders].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Inject no faults (a soak of the steady state).
    #[arg(long, conflicts_with = "faults")]
    pub no_faults: bool,
    /// How often a soak samples.
    #[arg(long, default_value = "15s", value_name = "DURATION", value_parser = parse_duration)]
    pub sample_every: Duration,
    /// The streams' retention and the stores' window in a soak, so that
    /// what they hold stays flat: NATS streams keep messages this long
    /// (`?max_age=`), Redis streams about this many seconds' worth of
    /// entries at the soak's rate (`?maxlen=`), and done-marks and joins
    /// that have not fired are kept this long (`--done-window`,
    /// `--join-window`).
    #[arg(long, default_value = "5m", value_name = "DURATION", value_parser = parse_duration)]
    pub retention: Duration,
    /// Where the servers' data and the processes' output go [default: a
    /// new directory under the temporary directory, removed after a
    /// campaign that holds].
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
}

impl Options {
    /// The fault kinds chosen (all of them when none is named).
    pub fn kinds(&self) -> Vec<Fault> {
        if self.no_faults {
            return Vec::new();
        }
        if self.faults.is_empty() {
            Fault::ALL.to_vec()
        } else {
            let mut k = self.faults.clone();
            k.sort_unstable();
            k.dedup();
            k
        }
    }

    /// The command line that runs this campaign again.
    pub fn command(&self, seed: u64) -> String {
        let kinds: Vec<&str> = self
            .kinds()
            .iter()
            .map(|k| match k {
                Fault::Kill => "kill",
                Fault::Pause => "pause",
                Fault::BrokerRestart => "broker-restart",
                Fault::Net => "net",
                Fault::Duplicates => "duplicates",
            })
            .collect();
        let faults = if kinds.is_empty() {
            "--no-faults".to_string()
        } else {
            format!("--faults {}", kinds.join(","))
        };
        let mut soak = self
            .duration
            .map(|d| {
                format!(
                    " --duration {}s --retention {}s",
                    d.as_secs(),
                    self.retention.as_secs()
                )
            })
            .unwrap_or_default();
        if self.no_db {
            soak.push_str(" --no-db");
        }
        format!(
            "cargo run --release -p choreo-chaos -- --example {} --broker {} --orders {} {faults} --seed {seed} --replicas {} --concurrency {}{soak}",
            self.example.name(),
            match self.broker {
                BrokerKind::Nats => "nats",
                BrokerKind::Redis => "redis",
                BrokerKind::NatsCluster => "nats-cluster",
            },
            self.orders,
            self.replicas,
            self.concurrency
        )
    }
}

/// `30m`, `90s`, `2h`, `1500ms`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 30m, 90s or 2h"))?;
    let secs = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("`{text}`: the unit is ms, s, m or h")),
    };
    Ok(Duration::from_secs(secs))
}
