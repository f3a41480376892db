//! Drives deliveries through the HTTP ingress as clients would: each one
//! requested with `POST /deliveries`, a share rescheduled (`PUT`) and a
//! share cancelled (`DELETE`) at random moments, then followed until it
//! settles; and sums up how they ended.
//!
//! The requests are derived from a seed: about 5 % of the packages are
//! over the package service's weight limit (rejected), about 4 % heavier
//! than any drone lifts (no drone), the rest small, medium or large
//! packages the fleet can carry.

use crate::drone_delivery::{
    CancelDelivery, Location, PackageInfo, PackageSize, RescheduleDelivery, ScheduleDelivery,
};
use choreo_runtime::progress::{InstanceProgress, InstanceTracker};
use choreo_runtime::types::{Duration as SpecDuration, Timestamp};
use example_support::{HttpClient, Settler, Summary};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How a run goes.
#[derive(Debug, Clone, PartialEq)]
pub struct DriveOptions {
    /// Deliveries to request.
    pub deliveries: usize,
    /// Derives the requests and when they are rescheduled or cancelled.
    pub seed: u64,
    /// The share of deliveries cancelled.
    pub cancel_share: f64,
    /// The share of deliveries rescheduled.
    pub reschedule_share: f64,
    /// Deliveries under way at once (each waits for its delivery to
    /// settle before the next is requested).
    pub concurrency: usize,
    /// The flight time of the deployment: cancels and reschedules come
    /// within one and a half flight times of the request.
    pub flight_time: Duration,
    /// How long the run may take.
    pub timeout: Duration,
}

/// What the client does to one delivery after requesting it.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `PUT /deliveries/{id}`.
    Reschedule(RescheduleDelivery),
    /// `DELETE /deliveries/{id}`.
    Cancel(CancelDelivery),
}

/// One delivery of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The request.
    pub request: ScheduleDelivery,
    /// What follows, and how long after the request.
    pub actions: Vec<(Duration, Action)>,
}

fn jitter(rng: &mut fastrand::Rng, around: &Location, by: f64) -> Location {
    Location {
        latitude: around.latitude + (rng.f64() - 0.5) * by,
        longitude: around.longitude + (rng.f64() - 0.5) * by,
    }
}

fn in_hours(h: i64) -> Timestamp {
    let now = Timestamp::now();
    now.checked_add(SpecDuration::from_hours(h)).unwrap_or(now)
}

fn weight(rng: &mut fastrand::Rng, low: f64, high: f64) -> f64 {
    ((low + rng.f64() * (high - low)) * 10.0).round() / 10.0
}

/// The deliveries of a run of `options`, the same for a seed.
pub fn plans(options: &DriveOptions) -> Vec<Plan> {
    let mut rng = fastrand::Rng::with_seed(options.seed);
    let base = Location {
        latitude: 47.61,
        longitude: -122.33,
    };
    let flight = options.flight_time;
    (0..options.deliveries)
        .map(|i| {
            let roll = rng.f64();
            let (size, weight_kg) = if roll < 0.05 {
                (PackageSize::Large, weight(&mut rng, 26.0, 40.0))
            } else if roll < 0.09 {
                (PackageSize::Large, weight(&mut rng, 12.5, 24.0))
            } else {
                match rng.f64() {
                    r if r < 0.5 => (PackageSize::Small, weight(&mut rng, 0.2, 2.0)),
                    r if r < 0.85 => (PackageSize::Medium, weight(&mut rng, 1.0, 5.0)),
                    _ => (PackageSize::Large, weight(&mut rng, 3.0, 10.0)),
                }
            };
            let request = ScheduleDelivery {
                owner_id: format!("owner-{:02}", i % 17),
                pickup: jitter(&mut rng, &base, 0.05),
                dropoff: jitter(&mut rng, &base, 0.15),
                deadline: in_hours(2),
                package: PackageInfo {
                    size,
                    weight_kg,
                    tag: (rng.f64() < 0.2).then(|| "fragile".to_string()),
                },
            };
            let mut actions = Vec::new();
            if rng.f64() < options.reschedule_share {
                let at = flight.mul_f64(rng.f64());
                actions.push((
                    at,
                    Action::Reschedule(RescheduleDelivery {
                        dropoff: jitter(&mut rng, &base, 0.15),
                        deadline: in_hours(3),
                    }),
                ));
            }
            if rng.f64() < options.cancel_share {
                // A quarter at once (mostly before take-off), the rest
                // within one and a half flights (in flight, or too late).
                let at = if rng.f64() < 0.25 {
                    Duration::ZERO
                } else {
                    flight.mul_f64(1.5 * rng.f64())
                };
                actions.push((
                    at,
                    Action::Cancel(CancelDelivery {
                        reason: Some("changed my mind".into()),
                    }),
                ));
            }
            actions.sort_by_key(|(at, _)| *at);
            Plan { request, actions }
        })
        .collect()
}

/// How a delivery ended, as the events of its instance tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// The package reached its drop-off.
    Completed,
    /// No package could be made.
    PackageRejected,
    /// No drone could be had.
    NoDrone,
    /// Cancelled before take-off.
    Withdrawn,
    /// Cancelled in flight: the drone brought the package back.
    Returned,
    /// Did not settle in time.
    Unsettled,
}

impl Fate {
    /// The fate of the instance `p` (`Unsettled` unless it settled).
    pub fn of(p: Option<&InstanceProgress>) -> Fate {
        let Some(p) = p.filter(|p| p.settled) else {
            return Fate::Unsettled;
        };
        let has = |name: &str| p.events.iter().any(|e| short(&e.ty) == name);
        if has("DeliveryCompleted") {
            Fate::Completed
        } else if has("PackageReturned") {
            Fate::Returned
        } else if has("DeliveryWithdrawn") {
            Fate::Withdrawn
        } else if has("PackageRejected") {
            Fate::PackageRejected
        } else if has("NoDroneAvailable") {
            Fate::NoDrone
        } else {
            Fate::Unsettled
        }
    }
}

fn short(ty: &str) -> &str {
    ty.rsplit('.').next().unwrap_or(ty)
}

/// One delivery of a finished run.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryOutcome {
    /// Its key.
    pub key: String,
    /// How it ended.
    pub fate: Fate,
    /// The client cancelled it.
    pub cancel_sent: bool,
    /// The client rescheduled it.
    pub reschedule_sent: bool,
    /// A `DeliveryRescheduled` was emitted (the reschedule was taken).
    pub rescheduled: bool,
    /// Its dead-lettered events: the reaction that refused each, and why.
    pub dead_letters: Vec<(String, String)>,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Report {
    /// Settled instances by first terminal event, and the throughput.
    pub summary: Summary,
    /// Each delivery, in request order (those whose request failed are
    /// missing).
    pub deliveries: Vec<DeliveryOutcome>,
    /// Requests the ingress did not accept.
    pub http_errors: Vec<String>,
    /// Lines printed before the summary (the fleet's, when known).
    pub notes: Vec<String>,
}

impl Report {
    /// Deliveries that ended so.
    pub fn count(&self, fate: Fate) -> usize {
        self.deliveries.iter().filter(|d| d.fate == fate).count()
    }

    /// The keys of the deliveries that ended so, sorted.
    pub fn keys(&self, fate: Fate) -> Vec<String> {
        let mut k: Vec<String> = self
            .deliveries
            .iter()
            .filter(|d| d.fate == fate)
            .map(|d| d.key.clone())
            .collect();
        k.sort();
        k
    }

    /// Every delivery settled and every request was accepted.
    pub fn complete(&self) -> bool {
        self.summary.complete()
            && self.http_errors.is_empty()
            && self.deliveries.iter().all(|d| d.fate != Fate::Unsettled)
    }
}

/// Ends with the summary's line `settled N/N: …`.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n =
            |p: &dyn Fn(&DeliveryOutcome) -> bool| self.deliveries.iter().filter(|d| p(d)).count();
        writeln!(
            f,
            "{} deliveries requested: {} rescheduled and {} cancelled by their client",
            self.deliveries.len(),
            n(&|d| d.reschedule_sent),
            n(&|d| d.cancel_sent)
        )?;
        writeln!(
            f,
            "  completed   {:>6}  ({} after a reschedule, {} landed before the cancel)",
            self.count(Fate::Completed),
            n(&|d| d.fate == Fate::Completed && d.rescheduled),
            n(&|d| d.fate == Fate::Completed && d.cancel_sent)
        )?;
        writeln!(
            f,
            "  failed      {:>6}  (package rejected {}, no drone {})",
            self.count(Fate::PackageRejected) + self.count(Fate::NoDrone),
            self.count(Fate::PackageRejected),
            self.count(Fate::NoDrone)
        )?;
        writeln!(
            f,
            "  withdrawn   {:>6}  (cancelled before take-off)",
            self.count(Fate::Withdrawn)
        )?;
        writeln!(
            f,
            "  returned    {:>6}  (cancelled in flight, the drone turned back)",
            self.count(Fate::Returned)
        )?;
        let refused = |reaction: &str| {
            self.deliveries
                .iter()
                .flat_map(|d| &d.dead_letters)
                .filter(|(r, _)| r == reaction)
                .count()
        };
        writeln!(
            f,
            "  refused     {:>6}  commands that came too late (dead-lettered): {} cancels, {} reschedules",
            self.summary.dead_letters,
            refused("on_cancel_delivery"),
            refused("on_reschedule_delivery")
        )?;
        for e in self.http_errors.iter().take(5) {
            writeln!(f, "request failed: {e}")?;
        }
        for note in &self.notes {
            writeln!(f, "{note}")?;
        }
        write!(f, "{}", self.summary)
    }
}

/// A run that could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    /// Nothing answers at the ingress.
    #[error("the ingress at {0} does not answer")]
    Unreachable(String),
    /// The participants' books cannot be read for the summary.
    #[error("{0}")]
    Books(String),
}

struct Sent {
    key: String,
    ids: Vec<String>,
    cancel_sent: bool,
    reschedule_sent: bool,
}

/// Requests the deliveries of `options` from the ingress at `base_url`,
/// follows them on `tracker` until each has settled with every command
/// sent to it seen, and sums up. A command answered `503` (not sent: the
/// broker is away) is sent again, after a back-off, until the run's
/// timeout; the summary counts those tries ([`Summary::retried`]).
pub async fn drive(
    base_url: &str,
    tracker: Arc<InstanceTracker>,
    options: &DriveOptions,
) -> Result<Report, DriveError> {
    drive_with(HttpClient::new(base_url), tracker, options).await
}

/// [`drive`] through `client` (with its token, if the ingress needs one).
pub async fn drive_with(
    client: HttpClient,
    tracker: Arc<InstanceTracker>,
    options: &DriveOptions,
) -> Result<Report, DriveError> {
    let base_url = client.base().to_string();
    // Probe: a bad id is answered 400 by a live ingress.
    if client
        .raw(
            choreo_runtime::http::axum::http::Method::GET,
            "/deliveries/probe",
            "",
        )
        .await
        .is_err()
    {
        return Err(DriveError::Unreachable(base_url));
    }
    let deadline = Instant::now() + options.timeout;
    // A command answered `503` (not sent: the broker is away) is sent
    // again until the run's deadline.
    let client = client.retry_until(deadline);
    let settler = Settler::start(&tracker, options.deliveries as u64, "deliveries");
    let slots = Arc::new(tokio::sync::Semaphore::new(options.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, plan) in plans(options).into_iter().enumerate() {
        let (client, tracker, slots) = (client.clone(), tracker.clone(), slots.clone());
        tasks.spawn(async move {
            let _slot = slots.acquire_owned().await;
            let accepted = client
                .post("/deliveries", &plan.request)
                .await
                .map_err(|e| e.to_string())?;
            let start = Instant::now();
            let path = format!("/deliveries/{}", accepted.key);
            let mut sent = Sent {
                key: accepted.key,
                ids: vec![accepted.event_id],
                cancel_sent: false,
                reschedule_sent: false,
            };
            for (at, action) in plan.actions {
                tokio::time::sleep_until(start + at).await;
                let answer = match &action {
                    Action::Reschedule(r) => {
                        sent.reschedule_sent = true;
                        client.put(&path, r).await
                    }
                    Action::Cancel(c) => {
                        sent.cancel_sent = true;
                        client.delete(&path, c).await
                    }
                };
                sent.ids.push(answer.map_err(|e| e.to_string())?.event_id);
            }
            settled_with(&tracker, &sent.key, &sent.ids, deadline).await;
            Ok::<(usize, Sent), String>((i, sent))
        });
    }
    let mut sent = Vec::with_capacity(options.deliveries);
    let mut http_errors = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok(s)) => sent.push(s),
            Ok(Err(e)) => http_errors.push(e),
            Err(e) => http_errors.push(e.to_string()),
        }
    }
    sent.sort_by_key(|(i, _)| *i);
    let keys: Vec<String> = sent.iter().map(|(_, s)| s.key.clone()).collect();
    let left = deadline.saturating_duration_since(Instant::now());
    let mut summary = settler.wait(&keys, left).await;
    // Requests the ingress refused never became instances: not settled.
    summary.total += http_errors.len();
    let deliveries: Vec<DeliveryOutcome> = sent
        .into_iter()
        .map(|(_, s)| {
            let p = tracker.instance(&s.key);
            DeliveryOutcome {
                fate: Fate::of(p.as_ref()),
                rescheduled: p.as_ref().is_some_and(|p| {
                    p.events
                        .iter()
                        .any(|e| short(&e.ty) == "DeliveryRescheduled")
                }),
                dead_letters: p
                    .map(|p| {
                        p.dead_letters
                            .into_iter()
                            .map(|d| (d.reaction.to_string(), d.reason))
                            .collect()
                    })
                    .unwrap_or_default(),
                key: s.key,
                cancel_sent: s.cancel_sent,
                reschedule_sent: s.reschedule_sent,
            }
        })
        .collect();
    // Dead letters as the tracker has them now: a command refused late
    // may have come after the settler first saw its instance settle.
    summary.dead_letters = deliveries.iter().map(|d| d.dead_letters.len()).sum();
    summary.retried = client.retried();
    // What the first deliveries that did not settle wait for.
    let notes = deliveries
        .iter()
        .filter(|d| d.fate == Fate::Unsettled)
        .take(5)
        .map(|d| unsettled(&d.key, tracker.instance(&d.key).as_ref()))
        .collect();
    Ok(Report {
        summary,
        deliveries,
        http_errors,
        notes,
    })
}

/// What the delivery `key`, not settled, has seen and waits for.
fn unsettled(key: &str, p: Option<&InstanceProgress>) -> String {
    let Some(p) = p else {
        return format!("{key}: never seen by the tracker");
    };
    let events: Vec<&str> = p.events.iter().map(|e| short(&e.ty)).collect();
    let pending: Vec<String> = p
        .pending
        .iter()
        .map(|r| {
            format!(
                "{}.{} of {} {}",
                r.participant,
                r.reaction,
                short(&r.event_type),
                r.event_id
            )
        })
        .collect();
    let mut line = format!(
        "{key}: events {}; pending {}",
        events.join(", "),
        if pending.is_empty() {
            "nothing".to_string()
        } else {
            pending.join(", ")
        }
    );
    if p.outcome.is_none() {
        line.push_str("; no terminal event");
    }
    for d in &p.dead_letters {
        line.push_str(&format!("; dead letter {}: {}", d.reaction, d.reason));
    }
    line
}

/// Waits until instance `key` has settled with every one of `ids` seen
/// (a command sent late may reach the tracker after the instance first
/// settled), or `deadline`.
async fn settled_with(tracker: &InstanceTracker, key: &str, ids: &[String], deadline: Instant) {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(p) = tracker.wait_settled(key, left).await else {
            return;
        };
        let seen = |id: &String| p.events.iter().any(|e| e.id.to_string() == *id);
        if ids.iter().all(seen) || Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Counts by fate, for reports.
pub fn fates(report: &Report) -> BTreeMap<Fate, usize> {
    let mut m = BTreeMap::new();
    for d in &report.deliveries {
        *m.entry(d.fate).or_default() += 1;
    }
    m
}
