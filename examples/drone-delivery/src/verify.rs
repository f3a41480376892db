//! What must hold of a multi-process run's books, read from the
//! services' final states (printed as they stop, read back from
//! PostgreSQL with `--db`) and the driver's summary: no drone ever held or
//! flown for two deliveries at once, every drone free, every package
//! delivered, deleted or rejected once, delivery by delivery as the
//! delivery service recorded it, and in the numbers of the driver.

use crate::system::{fleet_of, flights_of, packages_of, DeliveryReport};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// How the driver's summary counts the deliveries' endings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Endings {
    /// Delivered.
    pub completed: usize,
    /// Cancelled before take-off.
    pub withdrawn: usize,
    /// Cancelled in flight.
    pub returned: usize,
    /// Package rejected.
    pub rejected: usize,
    /// No drone free.
    pub no_drone: usize,
    /// Commands dead-lettered for coming too late: all, cancels,
    /// reschedules.
    pub refused: (usize, usize, usize),
}

impl Endings {
    /// Reads the summary the driver prints (`completed   12 …`, `failed
    /// … (package rejected 5, no drone 4)`, `refused …`).
    pub fn parse(summary: &str) -> Result<Endings, String> {
        let line = |label: &str| {
            summary
                .lines()
                .map(str::trim_start)
                .find(|l| l.starts_with(label))
                .ok_or_else(|| format!("no `{label}` line in the summary"))
        };
        let numbers = |l: &str| -> Vec<usize> {
            l.split(|c: char| !c.is_ascii_digit())
                .filter_map(|w| w.parse().ok())
                .collect()
        };
        let first = |label: &str| -> Result<usize, String> {
            numbers(line(label)?)
                .first()
                .copied()
                .ok_or_else(|| format!("no number on the `{label}` line"))
        };
        let failed = numbers(line("failed")?);
        let refused = numbers(line("refused")?);
        let (Some(rejected), Some(no_drone), Some(r)) = (
            failed.get(1).copied(),
            failed.get(2).copied(),
            refused.get(..3),
        ) else {
            return Err("the `failed` or `refused` line has too few numbers".into());
        };
        Ok(Endings {
            completed: first("completed")?,
            withdrawn: first("withdrawn")?,
            returned: first("returned")?,
            rejected,
            no_drone,
            refused: (r[0], r[1], r[2]),
        })
    }

    /// Every ending counted.
    pub fn total(&self) -> usize {
        self.completed + self.withdrawn + self.returned + self.rejected + self.no_drone
    }
}

/// Checks the final states of the services (by participant: `DroneScheduler`,
/// `Flight`, `Package`, `Delivery`, `Ingestion`, `Notifications`) of a run
/// of `n` deliveries with `drones` drones against each other and against
/// the driver's `endings`: what does not hold, one line each (empty when
/// everything does). A line is a double effect (a drone held twice, a
/// package deleted twice) or a lost one (a drone never freed, a delivery
/// without its ending).
pub fn check_books(
    n: usize,
    drones: usize,
    endings: &Endings,
    states: &BTreeMap<String, Value>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            problems.push(what);
        }
    };
    let e = endings;
    check(
        e.total() == n,
        format!("the driver counts {} endings of {n} deliveries", e.total()),
    );
    check(
        e.refused.0 == e.refused.1 + e.refused.2,
        format!(
            "dead letters other than late commands: {} refused, {} cancels, {} reschedules",
            e.refused.0, e.refused.1, e.refused.2
        ),
    );
    let state = |name: &str| states.get(name).cloned().unwrap_or(Value::Null);
    for (name, s) in states {
        check(
            s.get("error").is_none(),
            format!("{name}: books unreadable: {s}"),
        );
    }
    let Some(fleet) = fleet_of(&state("DroneScheduler")) else {
        return vec!["no fleet report from DroneScheduler".into()];
    };
    check(
        fleet.drones == drones,
        format!("{} drones, not {drones}", fleet.drones),
    );
    check(
        fleet.assigned == 0,
        format!("drones still held: {:?}", fleet.holding),
    );
    check(
        fleet.stats.violations == 0 && fleet.stats.max_assigned <= drones,
        format!("a drone held for two deliveries at once: {fleet:?}"),
    );
    check(
        fleet.stats.assignments == fleet.stats.releases,
        format!(
            "{} assignments but {} releases",
            fleet.stats.assignments, fleet.stats.releases
        ),
    );
    let Some(flights) = flights_of(&state("Flight")) else {
        return vec!["no flight report from Flight".into()];
    };
    // Every flight, and every drone kept on the ground by a cancel that
    // reached the flight service first, ended a delivery; each had its
    // drone (the others withdrawn while it was assigned).
    let flown = flights.flights + flights.cancelled_on_ground;
    check(
        flown as usize == e.completed + e.returned,
        format!(
            "{flown} flights for {} deliveries completed or returned: {flights:?}",
            e.completed + e.returned
        ),
    );
    check(
        fleet.stats.assignments >= flown,
        format!(
            "{flown} flights with {} assignments",
            fleet.stats.assignments
        ),
    );
    check(
        flights.violations == 0 && flights.in_air == 0 && flights.max_in_air <= drones,
        format!("a drone flown twice at once or still flying: {flights:?}"),
    );
    check(
        flights.landed as usize == e.completed,
        format!("{} landings, {} completed", flights.landed, e.completed),
    );
    check(
        (flights.turned_back + flights.cancelled_on_ground) as usize == e.returned,
        format!("{flights:?} for {} returned", e.returned),
    );
    let Some(packages) = packages_of(&state("Package")) else {
        return vec!["no package report from Package".into()];
    };
    let Ok(deliveries) = serde_json::from_value::<DeliveryReport>(state("Delivery")) else {
        return vec!["no delivery report from Delivery".into()];
    };
    check(
        deliveries.open == 0,
        format!("{} deliveries still open", deliveries.open),
    );
    check(
        deliveries.endings.len() == n,
        format!("{} endings recorded of {n}", deliveries.endings.len()),
    );
    let keys = |names: &[&str]| -> BTreeSet<String> {
        deliveries
            .endings
            .iter()
            .filter(|(_, e)| names.contains(&e.name()))
            .map(|(k, _)| k.clone())
            .collect()
    };
    // The books agree with each other, delivery by delivery, and with
    // the driver's counts.
    for (name, want) in [
        ("completed", e.completed),
        ("returned", e.returned),
        ("withdrawn", e.withdrawn),
        ("package_rejected", e.rejected),
        ("no_drone", e.no_drone),
    ] {
        let got = keys(&[name]).len();
        check(
            got == want,
            format!("{got} deliveries {name} in the books, {want} by the driver"),
        );
    }
    let set = |v: Vec<String>| v.into_iter().collect::<BTreeSet<_>>();
    let (live, deleted, refused) = (
        set(packages.live),
        set(packages.deleted),
        set(packages.rejected),
    );
    check(
        live.len() + deleted.len() + refused.len() == n,
        format!(
            "{} packages live, {} deleted, {} rejected of {n}",
            live.len(),
            deleted.len(),
            refused.len()
        ),
    );
    check(
        live == keys(&["completed"]),
        "the live packages are not the completed deliveries".into(),
    );
    check(
        deleted == keys(&["no_drone", "withdrawn", "returned"]),
        "the deleted packages are not the deliveries that ended without one".into(),
    );
    check(
        refused == keys(&["package_rejected"]),
        "the rejected packages are not the deliveries rejected".into(),
    );
    let ingestion = state("Ingestion");
    check(
        ingestion["requests"] == n,
        format!("Ingestion took {} requests of {n}", ingestion["requests"]),
    );
    let sent = &state("Notifications")["sent"];
    check(
        sent["DeliveryCompleted"] == e.completed && sent["PackageDeleted"] == deleted.len(),
        format!(
            "notifications sent {sent}, for {} completed and {} deleted",
            e.completed,
            deleted.len()
        ),
    );
    problems
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_summary_reads_back() {
        let text = "10 deliveries requested: 3 rescheduled and 3 cancelled by their client\n\
            \x20 completed        5  (1 after a reschedule, 0 landed before the cancel)\n\
            \x20 failed           2  (package rejected 1, no drone 1)\n\
            \x20 withdrawn        2  (cancelled before take-off)\n\
            \x20 returned         1  (cancelled in flight, the drone turned back)\n\
            \x20 refused          3  commands that came too late (dead-lettered): 2 cancels, 1 reschedules\n\
            settled 10/10: …";
        let e = Endings::parse(text).unwrap();
        assert_eq!(
            e,
            Endings {
                completed: 5,
                withdrawn: 2,
                returned: 1,
                rejected: 1,
                no_drone: 1,
                refused: (3, 2, 1)
            }
        );
        assert_eq!(e.total(), 10);
        assert!(Endings::parse("settled 0/0").is_err());
    }

    #[test]
    fn missing_books_are_a_problem_not_a_pass() {
        let e = Endings::default();
        let p = check_books(0, 3, &e, &BTreeMap::new());
        assert_eq!(p, ["no fleet report from DroneScheduler"]);
    }
}
