//! The broker conformance suite: written once, run against every adapter.
//!
//! An adapter crate (or this one, for the memory broker) expands
//!
//! ```ignore
//! choreo_runtime::conformance_suite!(memory, async { choreo_runtime::MemoryBroker::new() });
//! ```
//!
//! into a module `memory` with one `#[test]` per case, each named
//! `conformance_<case>`. The expression is evaluated afresh for every case
//! and may give any [`Broker`](crate::Broker) or a
//! [`SharedBroker`]. Every case puts its topics and
//! groups under a unique prefix, so cases and runs may overlap on one
//! server. A case whose [capability](crate::Capabilities) the adapter lacks
//! is skipped with a message on stderr.
//!
//! An adapter whose server may be missing (tests on a developer's machine)
//! writes `conformance_suite!(nats, if_available: async { … })` with an
//! expression giving `Option<SharedBroker>`: `None` skips every case.

pub mod cases;
pub mod stores;

use std::future::Future;
use std::time::Duration;

use crate::broker::SharedBroker;

/// How a case ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every assertion held.
    Passed,
    /// The adapter lacks what the case checks.
    Skipped(String),
}

/// The whole of one case's run: the prefix that isolates it.
#[derive(Debug, Clone)]
pub struct CaseContext {
    /// Unique to this run of this case; put it in front of every topic and group.
    pub prefix: String,
}

impl CaseContext {
    /// A topic or group name under this case's prefix.
    pub fn name(&self, local: &str) -> String {
        format!("{}.{local}", self.prefix)
    }
}

/// The longest a case may take before it fails as hung.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs one case on a fresh runtime: builds the broker, runs, reports.
/// Used by [`conformance_suite!`](crate::conformance_suite); panics (fails
/// the test) on a failed assertion or after [`CASE_TIMEOUT`].
pub fn run<MakeFut, CaseFut>(
    case: &str,
    make: impl FnOnce() -> MakeFut,
    body: impl FnOnce(SharedBroker, CaseContext) -> CaseFut,
) where
    MakeFut: Future<Output = SharedBroker>,
    CaseFut: Future<Output = Outcome>,
{
    run_if_available(case, || async { Some(make().await) }, body)
}

/// [`run`] for a broker that may be missing (a server that is not
/// running): when `make` gives `None` the case is skipped — `make` says
/// why on stderr, or fails itself where a missing server is an error.
pub fn run_if_available<MakeFut, CaseFut>(
    case: &str,
    make: impl FnOnce() -> MakeFut,
    body: impl FnOnce(SharedBroker, CaseContext) -> CaseFut,
) where
    MakeFut: Future<Output = Option<SharedBroker>>,
    CaseFut: Future<Output = Outcome>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("cannot start a tokio runtime: {e}"));
    let ctx = CaseContext {
        prefix: format!("conformance-{case}-{:016x}", fastrand::u64(..)),
    };
    rt.block_on(async move {
        let Some(broker) = make().await else {
            eprintln!("conformance case {case} skipped: no broker");
            return;
        };
        match tokio::time::timeout(CASE_TIMEOUT, body(broker, ctx)).await {
            Ok(Outcome::Passed) => {}
            Ok(Outcome::Skipped(why)) => eprintln!("conformance case {case} skipped: {why}"),
            Err(_) => panic!("conformance case {case} did not finish within {CASE_TIMEOUT:?}"),
        }
    });
}

/// Expands to one test per conformance case; see the [module docs](self).
#[macro_export]
macro_rules! conformance_suite {
    (@cases $name:ident, $run:ident, $share:expr, $make:expr) => {
        mod $name {
            $crate::__conformance_tests!(
                $run, $share, $make;
                conformance_basic_delivery => basic_delivery,
                conformance_attribute_round_trip => attribute_round_trip,
                conformance_topic_isolation => topic_isolation,
                conformance_fan_out_across_groups => fan_out_across_groups,
                conformance_competing_consumers => competing_consumers,
                conformance_redelivery_on_nack => redelivery_on_nack,
                conformance_nack_delay_honoured => nack_delay_honoured,
                conformance_redelivery_after_consumer_dies => redelivery_after_consumer_dies,
                conformance_keep_alive_holds_a_delivery => keep_alive_holds_a_delivery,
                conformance_dead_letter_after_max_deliveries => dead_letter_after_max_deliveries,
                conformance_explicit_dead_letter => explicit_dead_letter,
                conformance_per_key_order => per_key_order,
                conformance_max_in_flight => max_in_flight,
                conformance_duplicate_publish_handled_once => duplicate_publish_handled_once,
                conformance_unsubscribe_stops_delivery => unsubscribe_stops_delivery,
                conformance_close_loses_nothing => close_loses_nothing,
                conformance_observe_from_earliest => observe_from_earliest,
                conformance_observe_since_a_time => observe_since_a_time,
                conformance_observe_from_latest => observe_from_latest,
                conformance_observer_is_apart_from_groups => observer_is_apart_from_groups,
                conformance_observer_unsubscribe_stops_it => observer_unsubscribe_stops_it,
                conformance_observer_ends_on_close => observer_ends_on_close,
            );
        }
    };
    ($name:ident, if_available: $make:expr) => {
        $crate::conformance_suite!(@cases $name, run_if_available, |b| b, $make);
    };
    ($name:ident, $make:expr) => {
        $crate::conformance_suite!(
            @cases $name,
            run,
            $crate::broker::IntoSharedBroker::into_shared,
            $make
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($run:ident, $share:expr, $make:expr; $($test:ident => $case:ident,)*) => {
        $(
            #[test]
            fn $test() {
                $crate::conformance::$run(
                    stringify!($case),
                    || async { ($share)($make.await) },
                    $crate::conformance::cases::$case,
                );
            }
        )*
    };
}
