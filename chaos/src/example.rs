//! The examples a campaign runs: how each is started, driven and checked
//! against its books at the end.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

/// An example choreography.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Example {
    /// `examples/ecommerce`: orders, stock, payment, shipping.
    Ecommerce,
    /// `examples/drone-delivery`: packages, drones, flights, with
    /// cancels and reschedules.
    DroneDelivery,
    /// `chaos/specs/retries.choreo`: a retry loop `@bounded(3)`
    /// ([`crate::retries`]).
    Retries,
}

/// How a run ended, from the driver's side and the books.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Outcome {
    /// Instances the driver had accepted (202).
    pub placed: usize,
    /// Of those, how many settled.
    pub settled: usize,
    /// Each instance's key and how it ended (`None`: it did not settle).
    pub instances: BTreeMap<String, Option<String>>,
    /// Where the books do not add up: a charge, a reservation, a drone
    /// or a package taken or given twice (or lost).
    pub double_effects: Vec<String>,
    /// The driver's own summary.
    pub summary: String,
}

impl Example {
    /// Its name, as the `example` subcommand takes it.
    pub fn name(self) -> &'static str {
        match self {
            Example::Ecommerce => "ecommerce",
            Example::DroneDelivery => "drone-delivery",
            Example::Retries => "retries",
        }
    }

    /// Its participants.
    pub fn participants(self) -> &'static [&'static str] {
        match self {
            Example::Ecommerce => &ecommerce::PARTICIPANTS,
            Example::DroneDelivery => &drone_delivery::system::PARTICIPANTS,
            Example::Retries => &crate::retries::PARTICIPANTS,
        }
    }

    /// The example of `name` (as [`Example::name`] gives it).
    pub fn named(name: &str) -> Option<Example> {
        [Example::Ecommerce, Example::DroneDelivery, Example::Retries]
            .into_iter()
            .find(|e| e.name() == name)
    }

    /// Its spec's text.
    pub fn spec(self) -> &'static str {
        match self {
            Example::Ecommerce => ecommerce::SPEC,
            Example::DroneDelivery => drone_delivery::SPEC,
            Example::Retries => include_str!("../specs/retries.choreo"),
        }
    }

    /// Its events, commands and reactions, as the generated code has them.
    pub fn topology(self) -> choreo_runtime::progress::Topology {
        match self {
            Example::Ecommerce => ecommerce::ecommerce::topology(),
            Example::DroneDelivery => drone_delivery::drone_delivery::topology(),
            Example::Retries => crate::retries::retries::topology(),
        }
    }

    /// What a participant prints once its consumer groups exist.
    pub fn ready_marker(self) -> &'static str {
        match self {
            Example::Ecommerce | Example::Retries => "running on",
            Example::DroneDelivery => "\"ready\":true",
        }
    }

    /// Runs the example's own command line with `args` (`args[0]` the
    /// program's name), in this process.
    pub fn main_with(self, args: Vec<OsString>) -> ExitCode {
        match self {
            Example::Ecommerce => ecommerce::cli::main_with(args),
            Example::DroneDelivery => drone_delivery::cli::main_with(args),
            Example::Retries => crate::retries::main_with(args),
        }
    }

    /// The data options every process of a run gets (so that all derive
    /// the same catalogue or fleet).
    pub fn data_args(self, seed: u64) -> Vec<String> {
        let seed = (seed % 1_000_000).to_string();
        match self {
            Example::Ecommerce => vec![
                "--users".into(),
                "200".into(),
                "--products".into(),
                "60".into(),
                "--seed".into(),
                seed,
            ],
            Example::DroneDelivery => vec![
                "--drones".into(),
                DRONES.to_string(),
                "--flight-ms".into(),
                "300".into(),
                "--seed".into(),
                seed,
            ],
            Example::Retries => vec!["--seed".into(), seed],
        }
    }

    /// The driver's options for `n` instances, `concurrency` at once,
    /// reporting to `report`.
    pub fn driver_args(self, n: usize, concurrency: usize, report: &Path) -> Vec<String> {
        let (n, c) = (n.to_string(), concurrency.to_string());
        match self {
            Example::Ecommerce | Example::Retries => vec![
                "--orders".into(),
                n,
                "--concurrency".into(),
                c,
                "--report".into(),
                report.display().to_string(),
            ],
            Example::DroneDelivery => vec![
                "--deliveries".into(),
                n,
                "--concurrency".into(),
                c,
                "--cancel-share".into(),
                "0.3".into(),
                "--reschedule-share".into(),
                "0.3".into(),
            ],
        }
    }

    /// Reads how a run of `n` ended: the driver's output `summary`, its
    /// report file (ecommerce), and the participants' final states.
    pub fn outcome(
        self,
        n: usize,
        seed: u64,
        summary: &str,
        report: &Path,
        stopped: &[Stopped],
    ) -> Outcome {
        let mut out = Outcome {
            summary: summary.to_owned(),
            ..Outcome::default()
        };
        let settled = settled_of(summary);
        let (settled, placed) = settled.unwrap_or((0, n));
        out.settled = settled;
        out.placed = placed;
        match self {
            Example::Ecommerce => ecommerce_books(&mut out, seed, report, stopped),
            Example::DroneDelivery => drone_books(&mut out, n, summary, stopped),
            Example::Retries => retries_books(&mut out, report),
        }
        out
    }
}

/// The drones of a drone-delivery campaign.
const DRONES: usize = 12;

fn ecommerce_books(out: &mut Outcome, seed: u64, report: &Path, stopped: &[Stopped]) {
    use ecommerce::{verify, Catalogue, DataOptions, FinalState, Finals, OrderRecord};
    let Some(records) = read_records::<OrderRecord>(out, report) else {
        return;
    };
    for r in &records {
        out.instances.insert(r.key.to_string(), r.outcome.clone());
    }
    // Inventory and Payment keep their books in PostgreSQL: any of their
    // processes prints them as stored. The others' counts are in memory,
    // lost with a killed process, and not checked here.
    let state = |name: &str| {
        stopped
            .iter()
            .filter(|s| s.participant == name)
            .find_map(|s| serde_json::from_str::<FinalState>(&s.last_line).ok())
    };
    let (Some(FinalState::Inventory(inventory)), Some(FinalState::Payment(payment))) =
        (state("Inventory"), state("Payment"))
    else {
        out.double_effects
            .push("Inventory or Payment printed no books as it stopped".into());
        return;
    };
    let catalogue = Catalogue::generate(DataOptions {
        seed: seed % 1_000_000,
        users: 200,
        products: 60,
    });
    let verdict = verify(
        &catalogue,
        &records,
        &Finals {
            inventory: Some(&inventory),
            payment: Some(&payment),
            ..Finals::default()
        },
    );
    // Orders that did not settle are counted as lost, not here.
    out.double_effects.extend(
        verdict
            .problems
            .into_iter()
            .filter(|p| !p.ends_with("orders did not settle")),
    );
}

fn drone_books(out: &mut Outcome, n: usize, summary: &str, stopped: &[Stopped]) {
    use drone_delivery::system::FinalState;
    use drone_delivery::verify::{check_books, Endings};
    let mut states = BTreeMap::new();
    for s in stopped {
        if let Ok(f) = serde_json::from_str::<FinalState>(&s.last_line) {
            states.insert(f.service, f.state);
        }
    }
    if let Some(Ok(d)) = states
        .get("Delivery")
        .map(|v| serde_json::from_value::<drone_delivery::system::DeliveryReport>(v.clone()))
    {
        for (k, e) in d.endings {
            out.instances.insert(k, Some(e.name().to_owned()));
        }
    }
    match Endings::parse(summary) {
        Ok(endings) => out
            .double_effects
            .extend(check_books(n, DRONES, &endings, &states)),
        Err(e) => out
            .double_effects
            .push(format!("the driver's summary cannot be read: {e}")),
    }
}

fn retries_books(out: &mut Outcome, report: &Path) {
    use crate::retries::Record;
    let Some(records) = read_records::<Record>(out, report) else {
        return;
    };
    for r in records {
        // A round counted twice by the bound dead-letters the last one:
        // the payment does not settle (lost). One that settles must end
        // as its failures say.
        if r.outcome.is_some() && r.outcome.as_deref() != Some(r.expected()) {
            out.double_effects.push(format!(
                "payment {} failing {} times ended {:?}, not {}",
                r.key,
                r.fails,
                r.outcome,
                r.expected()
            ));
        }
        out.instances.insert(r.key, r.outcome);
    }
}

/// The driver's per-instance records in `report`; a report that cannot be
/// read is a problem of the books (nothing can be checked).
fn read_records<T: serde::de::DeserializeOwned>(
    out: &mut Outcome,
    report: &Path,
) -> Option<Vec<T>> {
    let read = std::fs::read(report)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()));
    match read {
        Ok(r) => Some(r),
        Err(e) => {
            out.double_effects
                .push(format!("the driver's report cannot be read: {e}"));
            None
        }
    }
}

/// What a stopped member printed last: the participant's final state.
#[derive(Debug, Clone)]
pub struct Stopped {
    /// The participant.
    pub participant: &'static str,
    /// Whether it exited with success.
    pub success: bool,
    /// The last line of its standard output.
    pub last_line: String,
}

/// `settled X/N…` on the last line of a driver's summary.
pub fn settled_of(summary: &str) -> Option<(usize, usize)> {
    let last = summary.trim_end().lines().last()?;
    let (x, rest) = last.strip_prefix("settled ")?.split_once('/')?;
    let n = rest.split(|c: char| !c.is_ascii_digit()).next()?;
    Some((x.parse().ok()?, n.parse().ok()?))
}
