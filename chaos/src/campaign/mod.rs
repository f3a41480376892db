//! One campaign: the servers, proxies, participants and driver started,
//! faults injected from the seed while the driver places its instances,
//! then everything stopped and the books checked.
//!
//! [`options`] holds what a campaign runs, [`driver`] the process that
//! places the instances, [`injector`] the faults in flight and
//! [`dead_letters`] the watch on the dead-letter topics; this module puts
//! them together and writes the report.

mod dead_letters;
use dead_letters::bounds_exceeded;
mod driver;
mod injector;
mod options;

use choreo_runtime::sync::Recover;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use choreo_runtime::service::Topics;

use crate::duplicates::Duplicator;
use crate::example::Example;
use crate::faults::{Fault, Schedule};
use crate::fleet::Fleet;
use crate::net::Proxy;
use crate::report::{DeadLetter, Injected, Percentiles, Report};
use crate::servers::{nats_program, nats_version, ready, BrokerKind, Servers, NATS_SERVER_VAR};
use crate::soak::{self, Sample};
use choreo_runtime::store::nats::check_replicated_cas;
use driver::{Driver, Polled, Round};
use injector::{Injector, Stage};

pub use crate::example::settled_of;
pub use options::{parse_duration, Options};

/// A campaign that could not run (as opposed to one that ran and found a
/// problem, which its report says).
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    /// The servers.
    #[error("broker servers: {0}")]
    Servers(#[from] crate::servers::ServerError),
    /// A process or a file.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The broker, seen from the harness.
    #[error("{0}")]
    Broker(String),
}

/// Runs one campaign.
pub fn run(o: &Options) -> Result<Report, CampaignError> {
    if o.duration.is_some() && o.example == Example::DroneDelivery {
        return Err(CampaignError::Broker(
            "a soak (--duration) runs ecommerce or retries: drone-delivery's driver \
             derives its deliveries from the seed, and a second round would repeat them"
                .into(),
        ));
    }
    if o.broker == BrokerKind::NatsCluster {
        // The cluster's stores are replicated, which an older server does
        // not keep exclusive (see `check_replicated_cas`).
        if let Some(version) = nats_version() {
            check_replicated_cas(&version).map_err(|e| {
                CampaignError::Broker(format!(
                    "`{}`: {e}; name a newer one in {NATS_SERVER_VAR}",
                    nats_program()
                ))
            })?;
        }
    }
    let seed = o.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs() ^ u64::from(d.subsec_nanos()))
            % 1_000_000_000
    });
    let kinds = o.kinds();
    let started = Instant::now();
    let work = o.work_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("choreo-chaos-{}-{seed}", std::process::id()))
    });
    std::fs::create_dir_all(&work)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    println!(
        "chaos: {} on {:?}, {} instances, faults {:?}, seed {seed}, {} per participant; work in {}",
        o.example.name(),
        o.broker,
        o.orders,
        kinds,
        o.replicas,
        work.display()
    );
    let mut servers = Servers::start(o.broker, &work.join("servers"))?;
    if o.broker != BrokerKind::Redis {
        rt.block_on(ready(&servers, Duration::from_secs(30)))
            .map_err(CampaignError::Broker)?;
    }
    let proxies: Vec<Proxy> = (0..servers.len())
        .map(|i| rt.block_on(Proxy::start(servers.addr(i))))
        .collect::<Result<_, _>>()?;
    let via: Vec<_> = proxies.iter().map(Proxy::addr).collect();
    let (url, direct) = urls(o, &servers, &via);
    let prefix = format!("chaos-{seed}-{}.", std::process::id());
    if !o.no_db {
        rt.block_on(example_support::testing::drop_books(&o.db, &prefix));
    }
    let topics = TopicLists::of(o.example, &prefix);
    let dead_letters = Arc::new(Mutex::new(BTreeMap::new()));
    let watcher = rt.block_on(dead_letters::watch(
        &direct,
        topics.dead.clone(),
        dead_letters.clone(),
    ))?;
    let common = deployment_args(o, &url, &prefix, seed);
    let replicas = usize::try_from(o.replicas).unwrap_or(1);
    let mut fleet = Fleet::start(o.example, &work, common.clone(), replicas)?;
    let duplicator = if kinds.contains(&Fault::Duplicates) {
        Some(
            rt.block_on(Duplicator::start(&direct, topics.consumed.clone(), seed))
                .map_err(CampaignError::Broker)?,
        )
    } else {
        None
    };

    let n = usize::try_from(o.orders).unwrap_or(usize::MAX);
    let mut driver = Driver::start(o, &work, &common, n)?;
    let soak_until = o.duration.map(|d| Instant::now() + d);
    let mut samples: Vec<Sample> = Vec::new();
    let mut next_sample = Instant::now();
    println!(
        "chaos: {} processes ready; driving {n} instances",
        fleet.len()
    );
    let lapse = Duration::from_secs(o.ack_wait.max(o.claim_lease));
    let mut injector = Injector::new(Schedule::new(seed, &kinds), lapse, started);
    let mut problems = Vec::new();
    let mut supervisor = Supervisor::default();
    let mut stage = Stage {
        fleet: &mut fleet,
        servers: &mut servers,
        proxies: &proxies,
        duplicator: duplicator.as_ref(),
        rt: &rt,
        broker: o.broker,
        prefix: &prefix,
        problems: &mut problems,
    };
    loop {
        let more = soak_until.is_some_and(|t| Instant::now() < t);
        if let Polled::Done = driver.poll(more, &mut supervisor.log)? {
            break;
        }
        let now = Instant::now();
        if o.duration.is_some() && now >= next_sample {
            next_sample = now + o.sample_every;
            let at_s = now.duration_since(started).as_secs_f64();
            let counts = soak::broker_counts(o.broker, &direct, &prefix, &topics.all);
            let counts = rt.block_on(counts);
            if let Some(s) = soak::sample(stage.fleet, counts, at_s, driver.settled()) {
                samples.push(s);
            }
        }
        injector.tick(&mut stage, now);
        supervisor.restart_exited(&mut stage, &mut injector, now);
        std::thread::sleep(Duration::from_millis(50));
    }

    // The driver is done: every fault ends, and the services are given
    // the time to finish what they hold before they are stopped.
    injector.end_all(&mut stage);
    supervisor.all_up(&mut stage);
    injector.watch_out(stage.fleet, lapse + Duration::from_secs(5));
    fleet.quiesce(Duration::from_secs(60));
    let per_round = driver.per_round();
    let rounds = driver.finish()?;
    for r in rounds.iter().filter(|r| r.summary.trim().is_empty()) {
        problems.push(format!("the driver failed: {}", r.error));
    }
    let report_file = work.join("driver-report.json");
    let summary = Round::merge(&rounds, &report_file);
    let totals = fleet.total();
    let stopped = fleet.stop_all(Duration::from_secs(30));
    for s in stopped.iter().filter(|s| !s.success) {
        problems.push(format!(
            "{} did not stop cleanly: {}",
            s.participant, s.last_line
        ));
    }
    // Dead letters published just before the end reach the watcher.
    std::thread::sleep(Duration::from_millis(500));
    watcher.abort();
    let placed: usize = rounds.iter().map(|r| r.placed).sum();
    let outcome = o.example.outcome(
        placed.max(per_round),
        seed,
        &summary,
        &report_file,
        &stopped,
    );
    if o.duration.is_some() {
        problems.extend(soak::growing(&samples));
        let svg = o.report.with_extension("svg");
        let title = format!("{} on {:?}", o.example.name(), o.broker);
        if let Err(e) = soak::plot(&samples, &title, &svg) {
            problems.push(format!("cannot draw {}: {e}", svg.display()));
        }
    }

    let (timeline, mut proof) = injector.into_parts();
    proof.takeovers = totals.taken_over();
    proof.duplicates_delivered = totals.duplicates;
    proof.duplicates_injected = duplicator.as_ref().map_or(0, Duplicator::injected);
    proof.retried_after_503 = summary
        .lines()
        .find_map(|l| l.trim().strip_prefix("retried after 503: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    problems.extend(unproven(&kinds, &timeline));
    let kill_recovery: Vec<u64> = timeline
        .iter()
        .filter(|e| e.kind == Fault::Kill)
        .filter_map(|e| e.recovered_ms)
        .collect();
    let dead_letters: Vec<DeadLetter> = dead_letters.locked().values().cloned().collect();
    let mut double_effects = outcome.double_effects;
    double_effects.extend(bounds_exceeded(&dead_letters));
    let report = Report {
        command: o.command(seed),
        example: o.example,
        broker: o.broker,
        seed,
        replicas,
        faults: kinds,
        seconds: started.elapsed().as_secs_f64(),
        placed: outcome.placed,
        settled: outcome.settled,
        lost: outcome.placed.saturating_sub(outcome.settled),
        double_effects,
        dead_letters,
        recovery_after_kill_ms: Percentiles::of(kill_recovery),
        timeline,
        proof,
        problems,
        supervised: supervisor.log,
        instances: outcome.instances,
        summary: outcome.summary,
        samples,
    };
    if !o.no_db {
        rt.block_on(example_support::testing::drop_books(&o.db, &prefix));
    }
    drop(proxies);
    if !report.passed() {
        // Left for a look into what went wrong, with the processes' output.
        servers.keep();
    }
    drop(servers);
    if report.passed() && o.work_dir.is_none() {
        let _ = std::fs::remove_dir_all(&work);
    }
    Ok(report)
}

/// The broker URL the services use (through the proxies `via`) and the
/// one the harness uses (straight to the servers); a soak's carry the
/// streams' retention, so that what they hold stays flat (whoever makes a
/// stream first decides its settings, the harness's own connections
/// included).
fn urls(o: &Options, servers: &Servers, via: &[std::net::SocketAddr]) -> (String, String) {
    let mut url = servers.url_via(via);
    let mut direct = servers.url();
    if o.duration.is_some() {
        let secs = o.retention.as_secs().max(1);
        let setting = match o.broker {
            BrokerKind::Redis => format!("maxlen={}", secs * 100),
            _ => format!("max_age={secs}s"),
        };
        for u in [&mut url, &mut direct] {
            u.push(if u.contains('?') { '&' } else { '?' });
            u.push_str(&setting);
        }
    }
    (url, direct)
}

/// The arguments every process of the deployment takes: broker, prefix,
/// timings, books, the example's data and, in a soak, the stores' windows.
fn deployment_args(o: &Options, url: &str, prefix: &str, seed: u64) -> Vec<String> {
    let mut common: Vec<String> = [
        "--broker",
        url,
        "--prefix",
        prefix,
        "--ack-wait",
        &o.ack_wait.to_string(),
        "--claim-lease",
        &o.claim_lease.to_string(),
    ]
    .map(String::from)
    .to_vec();
    if !o.no_db {
        common.extend(["--db".to_string(), o.db.clone()]);
    }
    common.extend(o.example.data_args(seed));
    if o.duration.is_some() {
        let secs = o.retention.as_secs().max(1).to_string();
        common.extend([
            "--done-window".to_string(),
            secs.clone(),
            "--join-window".to_string(),
            secs,
        ]);
    }
    common
}

/// The deployment's topics, as the harness watches them.
struct TopicLists {
    /// Topics some participant consumes (what duplicates are made of).
    consumed: Vec<String>,
    /// The dead-letter topics.
    dead: Vec<String>,
    /// Every topic, dead letters and progress notices included (what a
    /// soak counts).
    all: Vec<String>,
}

impl TopicLists {
    fn of(example: Example, prefix: &str) -> Self {
        let topics = Topics::new(prefix.to_owned());
        let topology = example.topology();
        let consumed = topology
            .types()
            .filter(|t| !topology.consumers_of(t).is_empty())
            .map(|t| topics.for_type(t))
            .collect();
        let dead: Vec<String> = topology
            .types()
            .map(|t| {
                format!(
                    "{}{}",
                    topics.for_type(t),
                    choreo_runtime::broker::DEAD_LETTER_SUFFIX
                )
            })
            .collect();
        let mut all: Vec<String> = topology.types().map(|t| topics.for_type(t)).collect();
        all.extend(dead.iter().cloned());
        all.push(topics.progress(topology.choreography()));
        TopicLists {
            consumed,
            dead,
            all,
        }
    }
}

/// What a supervisor does for the fleet: a process that exited by itself
/// is started again a second later (one whose start the broker's absence
/// refused, mostly); only one that keeps exiting is a problem.
#[derive(Default)]
struct Supervisor {
    /// Exits by member.
    exits: BTreeMap<usize, usize>,
    /// Every restart, for the report.
    log: Vec<String>,
}

/// Exits of one member after which it is reported as a problem.
const EXITS_TOO_MANY: usize = 20;

impl Supervisor {
    fn restart_exited(&mut self, stage: &mut Stage<'_>, injector: &mut Injector, now: Instant) {
        let (fleet, problems) = (&mut *stage.fleet, &mut *stage.problems);
        for (i, last) in fleet.exited() {
            let n = self.exits.entry(i).or_insert(0);
            *n += 1;
            self.log
                .push(format!("{} exited ({last}); started again", fleet.label(i)));
            if *n == EXITS_TOO_MANY {
                problems.push(format!("{} keeps exiting: {last}", fleet.label(i)));
            }
            injector.restart_at(i, now + Duration::from_secs(1));
        }
    }

    /// Has every process up again at the end, within a minute (a start
    /// may fail once more if a server was just restarted).
    fn all_up(&mut self, stage: &mut Stage<'_>) {
        let (fleet, problems) = (&mut *stage.fleet, &mut *stage.problems);
        let up_by = Instant::now() + Duration::from_secs(60);
        while Instant::now() < up_by {
            let exited = fleet.exited();
            if exited.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
            for (i, last) in exited {
                self.log
                    .push(format!("{} exited ({last}); started again", fleet.label(i)));
                if let Err(e) = fleet.restart(i) {
                    problems.push(format!("restarting {}: {e}", fleet.label(i)));
                }
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    }
}

/// The fault kinds chosen that were never injected, or never bit.
fn unproven(kinds: &[Fault], timeline: &[Injected]) -> Vec<String> {
    let mut problems = Vec::new();
    for kind in kinds {
        let of_kind: Vec<&Injected> = timeline.iter().filter(|e| e.kind == *kind).collect();
        if of_kind.is_empty() {
            problems.push(format!(
                "no {kind:?} fault was injected (the run was too short)"
            ));
        } else if !of_kind.iter().any(|e| e.bit) {
            problems.push(format!(
                "no {kind:?} fault bit: {} injected, none hit work in flight",
                of_kind.len()
            ));
        }
    }
    problems
}
