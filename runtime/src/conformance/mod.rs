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
//! is skipped with a message on stderr. One more test,
//! `conformance_all_cases_at_once`, runs every case at the same time, each
//! on a broker of its own.
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
            report_skip(&format!("conformance case {case}"), "no broker");
            return;
        };
        match tokio::time::timeout(CASE_TIMEOUT, body(broker, ctx)).await {
            Ok(Outcome::Passed) => {}
            Ok(Outcome::Skipped(why)) => report_skip(&format!("conformance case {case}"), &why),
            Err(_) => panic!("conformance case {case} did not finish within {CASE_TIMEOUT:?}"),
        }
    });
}

/// Says that `what` skipped, and why, on the process's standard error
/// itself: the test harness captures (and hides, for a test that passes)
/// only what the print macros write, and a skip must show.
pub fn report_skip(what: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {what}: {why}");
}

/// One case for [`run_concurrently`]: its name and a [`run`] of it.
pub type NamedRun = (&'static str, Box<dyn FnOnce() + Send>);

/// Runs `cases` all at once, each on a thread of its own; fails, naming
/// every case that failed, once all have ended.
pub fn run_concurrently(cases: Vec<NamedRun>) {
    let started = std::time::Instant::now();
    let threads: Vec<_> = cases
        .into_iter()
        .map(|(name, case)| {
            let thread = std::thread::Builder::new()
                .name(format!("conformance-{name}"))
                .spawn(case)
                .unwrap_or_else(|e| panic!("cannot start a thread for {name}: {e}"));
            (name, thread)
        })
        .collect();
    let mut failed = Vec::new();
    for (name, thread) in threads {
        if let Err(panic) = thread.join() {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            failed.push(format!("{name}: {why}"));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of the cases run at once failed (after {:?}):\n{}",
        failed.len(),
        started.elapsed(),
        failed.join("\n")
    );
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
                conformance_one_subscription_many_topics => one_subscription_many_topics,
                conformance_concurrent_publishers => concurrent_publishers,
                conformance_concurrent_subscribe_and_unsubscribe => concurrent_subscribe_and_unsubscribe,
                conformance_resubscribe_many_times => resubscribe_many_times,
                conformance_start_position_of_a_new_group => start_position_of_a_new_group,
                conformance_unsubscribe_with_unacked_deliveries => unsubscribe_with_unacked_deliveries,
                conformance_publish_batch_mixed_topics => publish_batch_mixed_topics,
                conformance_health_while_open_and_after_close => health_while_open_and_after_close,
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

        /// Every case at once, each on a broker of its own under its own
        /// prefix (a stress test of the adapter and its server).
        #[test]
        fn conformance_all_cases_at_once() {
            $crate::conformance::run_concurrently(vec![
                $(
                    (
                        stringify!($case),
                        Box::new(|| {
                            $crate::conformance::$run(
                                stringify!($case),
                                || async { ($share)($make.await) },
                                $crate::conformance::cases::$case,
                            )
                        }) as Box<dyn FnOnce() + Send>,
                    ),
                )*
            ]);
        }
    };
}
