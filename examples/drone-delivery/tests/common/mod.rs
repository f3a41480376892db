//! What the end-to-end tests check after a run.
#![allow(clippy::unwrap_used, dead_code)]

use choreo_runtime::service::{Stores, Topics};
use choreo_runtime::SharedBroker;
use drone_delivery::delivery::Ending;
use drone_delivery::driver::{DriveOptions, Fate, Report};
use drone_delivery::system::{Node, Participants, Settings};
use example_support::testing::unique_prefix;
use std::collections::BTreeSet;
use std::time::Duration;

/// The reactions that may refuse a command, dead-lettering it: a cancel
/// or a reschedule that came too late for its delivery.
pub const REFUSING: [&str; 2] = ["on_cancel_delivery", "on_reschedule_delivery"];

/// Every participant and the ingress in this process on `broker`, under a
/// prefix of the test's own, the ingress on a free port.
pub async fn start_in_process(settings: &Settings, broker: SharedBroker) -> Node {
    Node::start(
        settings,
        None,
        broker,
        Stores::memory(),
        Topics::new(unique_prefix()),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

/// A run small enough for `cargo test`, with a visible mix.
pub fn drive_options(deliveries: usize, flight: Duration, drones: usize) -> DriveOptions {
    DriveOptions {
        deliveries,
        seed: 11,
        cancel_share: 0.3,
        reschedule_share: 0.3,
        concurrency: drones * 2,
        flight_time: flight,
        timeout: Duration::from_secs(240),
    }
}

fn set(v: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    v.into_iter().collect()
}

/// What must hold of any run, from the driver's side alone.
pub fn check_report(report: &Report, n: usize) {
    let text = report.to_string();
    let last = text.lines().last().unwrap();
    assert!(
        last.starts_with(&format!("settled {n}/{n}: ")),
        "last line: {last}\n{text}"
    );
    assert!(report.complete(), "{text}");
    assert_eq!(report.deliveries.len(), n);
    assert_eq!(report.count(Fate::Unsettled), 0);
    // The data decides some endings: 5 % too heavy, 4 % heavier than any
    // drone; the client's cancels the others.
    assert!(report.count(Fate::Completed) > n / 2, "{text}");
    assert!(report.count(Fate::PackageRejected) > 0, "{text}");
    assert!(report.count(Fate::NoDrone) > 0, "{text}");
    assert!(
        report.count(Fate::Withdrawn) + report.count(Fate::Returned) > 0,
        "{text}"
    );
    for d in &report.deliveries {
        // Only a cancelled delivery is withdrawn or returned, only a
        // rescheduled one changes course.
        if matches!(d.fate, Fate::Withdrawn | Fate::Returned) {
            assert!(d.cancel_sent, "{d:?}");
        }
        if d.rescheduled {
            assert!(d.reschedule_sent, "{d:?}");
        }
        // Nothing is dead-lettered but commands refused as too late.
        for (reaction, reason) in &d.dead_letters {
            assert!(
                REFUSING.contains(&reaction.as_str()),
                "{reaction}: {reason}"
            );
            assert!(
                d.cancel_sent || d.reschedule_sent,
                "{reaction}: {reason} for a delivery the client left alone"
            );
        }
    }
    assert!(
        report
            .deliveries
            .iter()
            .any(|d| d.fate == Fate::Completed && d.rescheduled),
        "no rescheduled delivery completed\n{text}"
    );
}

/// What must hold of an in-process run, against every participant's
/// state.
pub fn check_state(report: &Report, p: &Participants, drones: usize) {
    let fleet = p.scheduler.report();
    assert_eq!(fleet.drones, drones);
    assert_eq!(fleet.assigned, 0, "drones still held: {:?}", fleet.holding);
    assert_eq!(fleet.stats.violations, 0);
    assert!(fleet.stats.max_assigned <= drones);
    assert_eq!(fleet.stats.assignments, fleet.stats.releases);
    let flights = p.flights.stats();
    assert_eq!(flights.violations, 0, "a drone flew two deliveries at once");
    assert_eq!(flights.in_air, 0);
    assert!(flights.max_in_air <= drones);
    assert_eq!(flights.landed as usize, report.count(Fate::Completed));
    assert_eq!(
        (flights.turned_back + flights.cancelled_on_ground) as usize,
        report.count(Fate::Returned)
    );

    // Packages: kept for the deliveries that happened, deleted for those
    // that did not, never made for the rejected ones.
    let packages = p.packages.report();
    assert_eq!(set(packages.live), set(report.keys(Fate::Completed)));
    let mut not_happened = report.keys(Fate::NoDrone);
    not_happened.extend(report.keys(Fate::Withdrawn));
    not_happened.extend(report.keys(Fate::Returned));
    assert_eq!(set(packages.deleted), set(not_happened));
    assert_eq!(
        set(packages.rejected),
        set(report.keys(Fate::PackageRejected))
    );

    // The delivery service's own record agrees with the events.
    assert_eq!(p.deliveries.open(), 0);
    let endings = p.deliveries.endings();
    assert_eq!(endings.len(), report.deliveries.len());
    for d in &report.deliveries {
        let ending = &endings[&d.key];
        let fate = match ending {
            Ending::Completed { .. } => Fate::Completed,
            Ending::PackageRejected { .. } => Fate::PackageRejected,
            Ending::NoDrone { .. } => Fate::NoDrone,
            Ending::Withdrawn => Fate::Withdrawn,
            Ending::Returned { .. } => Fate::Returned,
        };
        assert_eq!(fate, d.fate, "{}: {ending:?}", d.key);
    }
    assert_eq!(p.ingestion.requests() as usize, report.deliveries.len());
}
