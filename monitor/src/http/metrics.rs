//! `GET /metrics`: the summary's counts in the Prometheus (OpenMetrics)
//! text format, built afresh at each scrape from the monitor's state.

use std::sync::atomic::AtomicU64;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::Site;
use crate::{Lag, Summary};

type Labels = Vec<(&'static str, String)>;

/// The text of one scrape.
pub fn render(summary: &Summary, lag: &Lag) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::with_prefix("choreo_monitor");
    let instances = Family::<Labels, Gauge>::default();
    for (state, n) in &summary.instances {
        instances
            .get_or_create(&vec![("state", (*state).to_owned())])
            .set(i64::try_from(*n).unwrap_or(i64::MAX));
    }
    registry.register("instances", "Instances by state, now", instances);

    let events = Family::<Labels, Counter>::default();
    for (name, n) in &summary.events {
        events
            .get_or_create(&vec![("event", name.clone())])
            .inc_by(*n);
    }
    registry.register("events", "Events and commands seen, by spec name", events);
    let violations = Family::<Labels, Gauge>::default();
    for (name, n) in &summary.violations {
        violations
            .get_or_create(&vec![("event", name.clone())])
            .set(i64::try_from(*n).unwrap_or(i64::MAX));
    }
    registry.register(
        "violations",
        "Violations, by the offending event",
        violations,
    );
    let dead = Family::<Labels, Gauge>::default();
    for (name, n) in &summary.dead_letters {
        dead.get_or_create(&vec![("event", name.clone())])
            .set(i64::try_from(*n).unwrap_or(i64::MAX));
    }
    registry.register("dead_letters", "Dead letters, by event", dead);

    let handled = Family::<Labels, Counter>::default();
    let waiting = Family::<Labels, Gauge>::default();
    let dead_lettered = Family::<Labels, Counter>::default();
    let stuck = Family::<Labels, Gauge>::default();
    let latency = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    for r in &summary.reactions {
        let labels = vec![
            ("participant", r.participant.clone()),
            ("trigger", r.trigger.clone()),
        ];
        handled.get_or_create(&labels).inc_by(r.handled);
        waiting.get_or_create(&labels).set(count(r.waiting));
        dead_lettered.get_or_create(&labels).inc_by(r.dead_lettered);
        stuck.get_or_create(&labels).set(count(r.stuck));
        for (quantile, value) in [("0.5", r.p50_ms), ("0.99", r.p99_ms)] {
            if let Some(ms) = value {
                let mut l = labels.clone();
                l.push(("quantile", quantile.to_owned()));
                latency.get_or_create(&l).set(ms / 1000.0);
            }
        }
    }
    registry.register(
        "reaction_handled",
        "Events each reaction reported done",
        handled,
    );
    registry.register(
        "reaction_waiting",
        "Events each reaction has yet to report, now",
        waiting,
    );
    registry.register(
        "reaction_dead_lettered",
        "Events each reaction gave up on",
        dead_lettered,
    );
    registry.register(
        "reaction_stuck",
        "Instances stuck waiting for each reaction, now",
        stuck,
    );
    registry.register(
        "reaction_latency_seconds",
        "From an event's publication to the notice of its handling, by quantile",
        latency,
    );
    let behind = Gauge::<f64, AtomicU64>::default();
    behind.set(lag.p99_ms / 1000.0);
    registry.register(
        "lag_p99_seconds",
        "How far behind the deployment the monitor is (99th percentile)",
        behind,
    );
    let mut out = String::new();
    encode(&mut out, &registry)?;
    Ok(out)
}

pub(super) async fn metrics(State(site): State<Site>) -> Response {
    let m = site.monitor();
    match render(&m.summary(), &m.lag()) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => super::api::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the metrics could not be written",
        ),
    }
}
