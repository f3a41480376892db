//! `choreo-monitor`: follows a running choreography from outside and
//! classifies every instance against its spec: running (and waiting for
//! what), succeeded, failed, stuck, violated (with the reason),
//! dead-lettered, or partial (begun before the monitor could see it).
//!
//! The monitor needs nothing from the services beyond what they publish
//! already: the events and commands on the spec's topics, the dead letters,
//! and the progress notices, which say which participant's reaction handled
//! which event and what it emitted (an envelope's `source` is whatever its
//! publisher wrote, so it decides nothing here).
//!
//! [`flow`] reads the spec by the names the services use on the wire;
//! [`watch`] holds every instance and classifies it, fed observation by
//! observation with the time each was made, so that it runs the same live
//! and on a replay; [`follow`] feeds it from a broker ([`Monitor`]);
//! [`http`] serves it: a JSON API, Prometheus metrics, a live feed and a
//! web page. The `choreo-monitor` binary puts them together for a
//! deployment on NATS or Redis (see docs/monitor.md).

pub mod flow;
pub mod follow;
pub mod http;
pub mod watch;

pub use flow::Flow;
pub use follow::{Lag, Monitor, MonitorOptions};
pub use watch::{InstanceState, InstanceView, ReactionStats, Summary, Watch, WatchOptions};
