//! The store conformance suite: what every inbox and state store does,
//! written once and run against memory, NATS Key-Value, Redis and
//! PostgreSQL.
//!
//! ```ignore
//! choreo_runtime::store_conformance_suite!(
//!     memory,
//!     |_options| async { Some(choreo_runtime::service::Stores::memory()) },
//!     |_options| async {}
//! );
//! ```
//!
//! expands into a module `memory` with one `#[test]` per case, named
//! `store_<case>`. The first closure makes stores for the [`StoreOptions`]
//! it is given (a prefix of the case's own, and a window); `None` skips
//! the case (a missing server, which the closure reports). A case that
//! needs two replicas calls it twice with the same options: durable stores
//! must then share their state, memory stores cannot (those cases skip for
//! memory, which is one process's by design). The second closure removes
//! what the case left on the server under its prefix, pass or fail.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::Outcome;
use crate::envelope::{Envelope, EventId};
use crate::store::{Claim, Firings, InboxStore, JoinArrival, Seen, StoreOptions, Stores};

/// Makes stores for a case; `None` when their server is missing.
pub type MakeStores = Arc<
    dyn Fn(StoreOptions) -> std::pin::Pin<Box<dyn Future<Output = Option<Stores>> + Send>>
        + Send
        + Sync,
>;

/// The longest a store case may take before it fails as hung.
pub const STORE_CASE_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs one case on a fresh runtime (see the [module docs](self)).
pub fn run<F, Fut, C, CFut, CaseFut>(
    case: &str,
    make: F,
    cleanup: C,
    body: impl FnOnce(MakeStores, StoreOptions) -> CaseFut + Send + 'static,
) where
    F: Fn(StoreOptions) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<Stores>> + Send + 'static,
    C: FnOnce(StoreOptions) -> CFut,
    CFut: Future<Output = ()>,
    CaseFut: Future<Output = Outcome> + Send + 'static,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("cannot start a tokio runtime: {e}"));
    let make: MakeStores = Arc::new(move |o| Box::pin(make(o)));
    let options = StoreOptions::with_prefix(format!("storetest-{:012x}.", fastrand::u64(..) >> 16));
    rt.block_on(async move {
        // On a task of its own, so that the clean-up runs after a failed
        // assertion too.
        let ran = tokio::spawn(tokio::time::timeout(
            STORE_CASE_TIMEOUT,
            body(make, options.clone()),
        ))
        .await;
        cleanup(options).await;
        match ran {
            Ok(Ok(Outcome::Passed)) => {}
            Ok(Ok(Outcome::Skipped(why))) => {
                super::report_skip(&format!("store conformance case {case}"), &why)
            }
            Ok(Err(_)) => {
                panic!("store conformance case {case} did not finish within {STORE_CASE_TIMEOUT:?}")
            }
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    });
}

/// Expands to one test per store conformance case; see the
/// [module docs](self).
#[macro_export]
macro_rules! store_conformance_suite {
    ($name:ident, $make:expr, $cleanup:expr) => {
        mod $name {
            $crate::__store_conformance_tests!(
                $make, $cleanup;
                store_claims_are_exclusive_per_scope => claims_are_exclusive_per_scope,
                store_a_lapsed_claim_is_taken_over => a_lapsed_claim_is_taken_over,
                store_a_claim_retried_by_its_owner_is_its_own => a_claim_retried_by_its_owner_is_its_own,
                store_a_look_writes_nothing => a_look_writes_nothing,
                store_release_frees_a_claim_but_never_a_done_mark => release_frees_a_claim_but_never_a_done_mark,
                store_done_marks_are_idempotent => done_marks_are_idempotent,
                store_batches_answer_in_order_and_repeats_are_busy => batches_answer_in_order_and_repeats_are_busy,
                store_ids_and_scopes_of_any_text_stay_apart => ids_and_scopes_of_any_text_stay_apart,
                store_the_first_arrival_per_slot_wins => the_first_arrival_per_slot_wins,
                store_a_join_is_completed_by_one_arrival => a_join_is_completed_by_one_arrival,
                store_a_join_fires_once_under_racing_replicas => a_join_fires_once_under_racing_replicas,
                store_a_cleared_join_starts_afresh => a_cleared_join_starts_afresh,
                store_bounds_count_every_firing_across_replicas => bounds_count_every_firing_across_replicas,
                store_a_firing_counted_again_counts_once => a_firing_counted_again_counts_once,
                store_done_marks_and_counters_expire_after_the_window => done_marks_and_counters_expire_after_the_window,
                store_a_waiting_join_is_forgotten_after_the_join_window => a_waiting_join_is_forgotten_after_the_join_window,
                store_state_is_shared_by_replicas => state_is_shared_by_replicas,
            );
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_tests {
    ($make:expr, $cleanup:expr; $($test:ident => $case:ident,)*) => {
        $(
            #[test]
            fn $test() {
                $crate::conformance::stores::run(
                    stringify!($case),
                    $make,
                    $cleanup,
                    $crate::conformance::stores::$case,
                );
            }
        )*
    };
}

/// The stores of a case, or the case skips (their server is missing).
macro_rules! stores {
    ($make:expr, $options:expr) => {
        match $make($options.clone()).await {
            Some(s) => s,
            None => return Outcome::Skipped("no store".into()),
        }
    };
}

/// A second replica's stores beside `first`, or `None` for stores that
/// are one process's.
async fn replica(first: &Stores, make: &MakeStores, options: &StoreOptions) -> Option<Stores> {
    if first.description == "memory" {
        return None;
    }
    Some(
        make(options.clone())
            .await
            .unwrap_or_else(|| panic!("the second replica's stores are missing")),
    )
}

/// A second replica's stores beside `first`, or `first` itself for
/// stores that are one process's (the case then runs on one).
async fn replica_or_same(first: &Stores, make: &MakeStores, options: &StoreOptions) -> Stores {
    replica(first, make, options)
        .await
        .unwrap_or_else(|| first.clone())
}

const ONE_PROCESS: &str = "memory stores are one process's: replicas share nothing";
const LEASE: Duration = Duration::from_secs(30);

fn env(id: &str) -> Envelope {
    Envelope::builder("Test.Event", "instance").id(id).build()
}

macro_rules! check {
    ($e:expr) => {
        $e.unwrap_or_else(|e| panic!("{}: {e}", stringify!($e)))
    };
}

/// A claim is the holder's alone; other scopes do not see it; done reads
/// done.
pub async fn claims_are_exclusive_per_scope(make: MakeStores, options: StoreOptions) -> Outcome {
    let s = stores!(make, options);
    let a = EventId::now();
    assert_eq!(check!(s.inbox.claim("s", &a, LEASE).await), Claim::Acquired);
    assert_eq!(check!(s.inbox.claim("s", &a, LEASE).await), Claim::Busy);
    assert_eq!(check!(s.inbox.claim("t", &a, LEASE).await), Claim::Acquired);
    check!(s.inbox.complete("s", &a).await);
    assert_eq!(check!(s.inbox.claim("s", &a, LEASE).await), Claim::Done);
    assert_eq!(check!(s.inbox.claim("t", &a, LEASE).await), Claim::Busy);
    Outcome::Passed
}

/// A claim retried by its owner (its first answer lost on the way) is
/// the owner's again; anyone else finds it busy; a repeat in one batch is
/// busy; a done id is done whoever asks.
pub async fn a_claim_retried_by_its_owner_is_its_own(
    make: MakeStores,
    options: StoreOptions,
) -> Outcome {
    let s = stores!(make, options);
    if s.description == "memory" {
        return Outcome::Skipped("an in-process store loses no answer".into());
    }
    let lease = Duration::from_secs(30);
    let id = EventId::now();
    let claim = |owner| {
        let (inbox, id) = (s.inbox.clone(), id.clone());
        async move { inbox.claim_as("s", &id, lease, owner).await.expect("claim") }
    };
    assert_eq!(claim(7).await, Claim::Acquired);
    assert_eq!(claim(7).await, Claim::Acquired, "its owner's retry");
    assert_eq!(claim(8).await, Claim::Busy, "another owner");
    assert_eq!(
        s.inbox.claim("s", &id, lease).await.expect("claim"),
        Claim::Busy,
        "no owner"
    );
    let twice = s
        .inbox
        .claim_many_as("s", &[id.clone(), id.clone()], lease, 7)
        .await
        .expect("claim");
    assert_eq!(
        twice,
        [Claim::Acquired, Claim::Busy],
        "a repeat in one batch"
    );
    s.inbox.complete("s", &id).await.expect("complete");
    assert_eq!(claim(7).await, Claim::Done);
    Outcome::Passed
}

/// A claim whose holder died lapses after its lease; another delivery
/// (here another replica) takes it over, and the first holder's late
/// completion still counts.
pub async fn a_lapsed_claim_is_taken_over(make: MakeStores, options: StoreOptions) -> Outcome {
    let s = stores!(make, options);
    let other = replica_or_same(&s, &make, &options).await;
    let a = EventId::now();
    let short = Duration::from_millis(400);
    assert_eq!(check!(s.inbox.claim("s", &a, short).await), Claim::Acquired);
    assert_eq!(check!(other.inbox.claim("s", &a, LEASE).await), Claim::Busy);
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        check!(other.inbox.claim("s", &a, LEASE).await),
        Claim::Acquired
    );
    assert_eq!(check!(s.inbox.claim("s", &a, LEASE).await), Claim::Busy);
    check!(other.inbox.complete("s", &a).await);
    assert_eq!(check!(s.inbox.claim("s", &a, short).await), Claim::Done);
    Outcome::Passed
}

/// A look reads what the inbox holds and writes nothing: an unseen id
/// stays claimable; a live claim (another replica's too) reads claimed, a
/// lapsed one unseen; an id completed without a claim (a first delivery
/// the runtime looked at) reads done; a repeat in one look is claimed.
pub async fn a_look_writes_nothing(make: MakeStores, options: StoreOptions) -> Outcome {
    let s = stores!(make, options);
    let other = replica_or_same(&s, &make, &options).await;
    let (a, b, c) = (EventId::now(), EventId::now(), EventId::now());
    let look = |inbox: Arc<dyn InboxStore>, ids: Vec<EventId>| async move {
        inbox.look_many("s", &ids).await.expect("look")
    };
    assert_eq!(look(s.inbox.clone(), vec![a.clone()]).await, [Seen::Unseen]);
    assert_eq!(
        check!(other.inbox.claim("s", &a, LEASE).await),
        Claim::Acquired,
        "a look leaves no claim"
    );
    assert_eq!(
        look(s.inbox.clone(), vec![a.clone()]).await,
        [Seen::Claimed]
    );
    check!(other.inbox.complete("s", &a).await);
    // Handled after a look: completed without a claim.
    check!(s.inbox.complete("s", &b).await);
    let short = Duration::from_millis(800);
    assert_eq!(check!(s.inbox.claim("s", &c, short).await), Claim::Acquired);
    assert_eq!(
        look(
            other.inbox.clone(),
            vec![a.clone(), b.clone(), c.clone(), c.clone()]
        )
        .await,
        [Seen::Done, Seen::Done, Seen::Claimed, Seen::Claimed]
    );
    let fresh = EventId::now();
    assert_eq!(
        look(s.inbox.clone(), vec![fresh.clone(), fresh.clone()]).await,
        [Seen::Unseen, Seen::Claimed],
        "a repeat in one look"
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(
        look(other.inbox.clone(), vec![c.clone()]).await,
        [Seen::Unseen],
        "a lapsed claim"
    );
    assert_eq!(check!(s.inbox.claim("s", &b, LEASE).await), Claim::Done);
    assert_eq!(
        check!(s.inbox.claim("t", &b, LEASE).await),
        Claim::Acquired,
        "another scope"
    );
    assert_eq!(
        look(s.inbox.clone(), vec![EventId::now()]).await,
        [Seen::Unseen]
    );
    assert!(look(s.inbox.clone(), Vec::new()).await.is_empty());
    Outcome::Passed
}

/// Releasing gives a claim back at once; releasing a done id keeps it done.
pub async fn release_frees_a_claim_but_never_a_done_mark(
    make: MakeStores,
    options: StoreOptions,
) -> Outcome {
    let s = stores!(make, options);
    let (a, b) = (EventId::now(), EventId::now());
    assert_eq!(check!(s.inbox.claim("s", &a, LEASE).await), Claim::Acquired);
    check!(s.inbox.release("s", &a).await);
    assert_eq!(check!(s.inbox.claim("s", &a, LEASE).await), Claim::Acquired);
    check!(s.inbox.claim("s", &b, LEASE).await);
    check!(s.inbox.complete("s", &b).await);
    check!(s.inbox.release("s", &b).await);
    assert_eq!(check!(s.inbox.claim("s", &b, LEASE).await), Claim::Done);
    // Releasing what was never claimed is no error.
    check!(s.inbox.release("s", &EventId::now()).await);
    Outcome::Passed
}

/// Marking done twice, or without a claim, is the same as once.
pub async fn done_marks_are_idempotent(make: MakeStores, options: StoreOptions) -> Outcome {
    let s = stores!(make, options);
    let (a, b) = (EventId::now(), EventId::now());
    check!(s.inbox.claim("s", &a, LEASE).await);
    check!(s.inbox.complete("s", &a).await);
    check!(s.inbox.complete("s", &a).await);
    check!(s.inbox.complete_many("s", &[b.clone(), b.clone()]).await);
    assert_eq!(
        check!(s.inbox.claim_many("s", &[a, b], LEASE).await),
        [Claim::Done, Claim::Done]
    );
    check!(s.inbox.complete_many("s", &[]).await);
    check!(s.inbox.release_many("s", &[]).await);
    assert!(check!(s.inbox.claim_many("s", &[], LEASE).await).is_empty());
    Outcome::Passed
}

/// A batch gets one answer per id, in order; an id repeated in it is
/// claimed once.
pub async fn batches_answer_in_order_and_repeats_are_busy(
    make: MakeStores,
    options: StoreOptions,
) -> Outcome {
    let s = stores!(make, options);
    let (a, done, busy, fresh) = (
        EventId::now(),
        EventId::now(),
        EventId::now(),
        EventId::now(),
    );
    check!(s.inbox.complete("s", &done).await);
    check!(s.inbox.claim("s", &busy, LEASE).await);
    let ids = [a.clone(), a, done, busy, fresh];
    assert_eq!(
        check!(s.inbox.claim_many("s", &ids, LEASE).await),
        [
            Claim::Acquired,
            Claim::Busy,
            Claim::Done,
            Claim::Busy,
            Claim::Acquired
        ]
    );
    // A hundred at once, as a delivery batch brings them.
    let many: Vec<EventId> = (0..100).map(|_| EventId::now()).collect();
    let claims = check!(s.inbox.claim_many("s", &many, LEASE).await);
    assert!(claims.iter().all(|c| *c == Claim::Acquired), "{claims:?}");
    check!(s.inbox.complete_many("s", &many).await);
    let claims = check!(s.inbox.claim_many("s", &many, LEASE).await);
    assert!(claims.iter().all(|c| *c == Claim::Done), "{claims:?}");
    Outcome::Passed
}

/// Ids, scopes and instances of any text (spaces, `.`, `:`, `/`, non-ASCII)
/// work, and two pairs that concatenate alike stay apart.
pub async fn ids_and_scopes_of_any_text_stay_apart(
    make: MakeStores,
    options: StoreOptions,
) -> Outcome {
    let s = stores!(make, options);
    let odd = [
        ("a:b", "c"),
        ("a", "b:c"),
        ("x.y", "z"),
        ("x", "y.z"),
        ("Shop/Pay ment/on_é", "id with spaces/ü*>"),
    ];
    for (scope, id) in odd {
        let id = EventId::from(id);
        assert_eq!(
            check!(s.inbox.claim(scope, &id, LEASE).await),
            Claim::Acquired,
            "{scope} {id}"
        );
    }
    check!(s.inbox.complete("a:b", &EventId::from("c")).await);
    assert_eq!(
        check!(s.inbox.claim("a", &EventId::from("b:c"), LEASE).await),
        Claim::Busy
    );
    let e = env("e");
    assert!(check!(s.state.join_arrive("j:k", "i", 0, 2, &e).await).is_none());
    assert!(check!(s.state.join_arrive("j", "k:i", 1, 2, &e).await).is_none());
    check!(s.state.record_firing("b:x", "y", "f").await);
    assert_eq!(
        check!(s.state.firings("b", "x:y", "f").await),
        Firings::default()
    );
    Outcome::Passed
}

/// The first envelope in a slot stays; the join completes when every slot
/// is filled, with the slots in order; instances are apart.
pub async fn the_first_arrival_per_slot_wins(make: MakeStores, options: StoreOptions) -> Outcome {
    let s = stores!(make, options);
    let st = &s.state;
    let b1 = env("b1");
    assert!(check!(st.join_arrive("j", "k", 1, 2, &b1).await).is_none());
    assert!(check!(st.join_arrive("j", "k", 1, 2, &env("b2")).await).is_none());
    assert!(check!(st.join_arrive("j", "other", 0, 2, &env("x")).await).is_none());
    let all = check!(st.join_arrive("j", "k", 0, 2, &env("a")).await)
        .unwrap_or_else(|| panic!("both slots are filled"));
    let ids: Vec<String> = all.iter().map(|e| e.id().to_string()).collect();
    assert_eq!(ids, ["a", "b1"]);
    // Asked again (a redelivery), the join still reads complete.
    let again = check!(st.join_arrive("j", "k", 1, 2, &env("b3")).await)
        .unwrap_or_else(|| panic!("still complete"));
    assert_eq!(again[1].id().to_string(), "b1");
    // What comes back is the envelope that arrived, whole.
    assert_eq!(again[1], b1);
    assert!(st.join_arrive("j", "k", 2, 2, &env("z")).await.is_err());
    Outcome::Passed
}

/// `instances` joins of two slots, each arrived at by `a` in slot 0 and
/// `b` in slot 1 at the same moment: per instance, its name and the two
/// answers.
async fn race<T, F, Fut>(a: &Stores, b: &Stores, instances: usize, arrive: F) -> Vec<(String, T, T)>
where
    T: Send + 'static,
    F: Fn(Stores, String, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    let mut races = Vec::new();
    for i in 0..instances {
        let instance = format!("instance-{i}");
        let (x, y, arrive) = (a.clone(), b.clone(), arrive.clone());
        let (i1, i2) = (instance.clone(), instance.clone());
        races.push(tokio::spawn(async move {
            let (first, second) = tokio::join!(arrive(x, i1, 0), arrive(y, i2, 1));
            (instance, first, second)
        }));
    }
    let mut out = Vec::with_capacity(instances);
    for r in races {
        out.push(check!(r.await));
    }
    out
}

/// A join is completed by one arrival: two replicas racing on many
/// instances, at most one of the two calls is told it completed the join
/// (stores that cannot tell say `Full` to both), and no other is told the
/// completing envelope was its own. Asked again, the envelope told it
/// completed the join is told it was, any other envelope never; an age,
/// where given, is a moment.
pub async fn a_join_is_completed_by_one_arrival(
    make: MakeStores,
    options: StoreOptions,
) -> Outcome {
    let a = stores!(make, options);
    let b = replica_or_same(&a, &make, &options).await;
    let arrive = |s: Stores, instance: String, slot: usize| async move {
        let e = env(&format!("{instance}-{slot}"));
        check!(s.state.join_arrival("join", &instance, slot, 2, &e).await)
    };
    for (instance, first, second) in race(&a, &b, 20, arrive).await {
        let answers = [&first, &second];
        let completed = answers
            .iter()
            .filter(|a| matches!(a, JoinArrival::Completed(_)))
            .count();
        let full = answers
            .iter()
            .filter(|a| matches!(a, JoinArrival::Full { .. }))
            .count();
        assert!(completed <= 1, "{instance}: completed twice: {answers:?}");
        // Both may read it full (a store whose arrival is an insert and
        // a read), never neither.
        assert!(completed + full >= 1, "{instance}: {answers:?}");
        for answer in answers {
            if let JoinArrival::Full {
                all,
                completed_by_this,
                age,
            } = answer
            {
                assert!(!completed_by_this, "{instance}: each slot arrived once");
                assert_eq!(all.len(), 2);
                assert!(age.is_none_or(|age| age < LEASE), "{instance}: {age:?}");
            }
        }
        // Asked again by both envelopes, and by a third in slot 1.
        let completer = if matches!(first, JoinArrival::Completed(_)) {
            Some(0)
        } else if matches!(second, JoinArrival::Completed(_)) {
            Some(1)
        } else {
            None
        };
        for slot in 0..2 {
            match arrive(a.clone(), instance.clone(), slot).await {
                JoinArrival::Full {
                    completed_by_this, ..
                } => {
                    // A store that tells an arrival it completed the join
                    // knows that envelope again.
                    assert_eq!(
                        completed_by_this,
                        completer == Some(slot),
                        "{instance}: slot {slot}, completed by {completer:?}"
                    );
                }
                other => panic!("{instance}: asked again, {other:?}"),
            }
        }
        let stranger = env(&format!("{instance}-stranger"));
        match check!(
            a.state
                .join_arrival("join", &instance, 1, 2, &stranger)
                .await
        ) {
            JoinArrival::Full {
                completed_by_this, ..
            } => assert!(!completed_by_this, "{instance}: a stranger"),
            other => panic!("{instance}: a stranger, {other:?}"),
        }
    }
    Outcome::Passed
}

/// Two replicas receive the two events of a join for many instances at the
/// same moment: every join is seen complete by at least one of them, and
/// fires exactly once (the firing's inbox claim).
pub async fn a_join_fires_once_under_racing_replicas(
    make: MakeStores,
    options: StoreOptions,
) -> Outcome {
    let a = stores!(make, options);
    let Some(b) = replica(&a, &make, &options).await else {
        return Outcome::Skipped(ONE_PROCESS.into());
    };
    let arrive = |s: Stores, instance: String, slot: usize| async move {
        let e = env(&format!("{instance}-{slot}"));
        let all = check!(s.state.join_arrive("join", &instance, slot, 2, &e).await);
        match all {
            None => (false, false),
            Some(_) => {
                let firing = EventId::from(format!("{instance}/fired"));
                let claim = check!(s.inbox.claim("join", &firing, LEASE).await);
                (true, claim == Claim::Acquired)
            }
        }
    };
    for (instance, first, second) in race(&a, &b, 40, arrive).await {
        assert!(
            first.0 || second.0,
            "{instance}: nobody saw the join complete"
        );
        assert_eq!(
            usize::from(first.1) + usize::from(second.1),
            1,
            "{instance}: the join fired {} times",
            usize::from(first.1) + usize::from(second.1)
        );
    }
    Outcome::Passed
}

/// Clearing a fired join removes its slots: the next arrival waits again.
pub async fn a_cleared_join_starts_afresh(make: MakeStores, options: StoreOptions) -> Outcome {
    let s = stores!(make, options);
    let st = &s.state;
    check!(st.join_arrive("j", "k", 0, 2, &env("a")).await);
    assert!(check!(st.join_arrive("j", "k", 1, 2, &env("b")).await).is_some());
    check!(st.join_clear("j", "k").await);
    assert!(check!(st.join_arrive("j", "k", 0, 2, &env("c")).await).is_none());
    let all = check!(st.join_arrive("j", "k", 1, 2, &env("d")).await)
        .unwrap_or_else(|| panic!("complete again"));
    assert_eq!(all[0].id().to_string(), "c");
    // Clearing what is not there is no error.
    check!(st.join_clear("j", "never").await);
    Outcome::Passed
}

/// Concurrent firings from two replicas are each counted once.
pub async fn bounds_count_every_firing_across_replicas(
    make: MakeStores,
    options: StoreOptions,
) -> Outcome {
    let a = stores!(make, options);
    let b = replica_or_same(&a, &make, &options).await;
    let mut firings = Vec::new();
    for i in 0..20 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        firings.push(tokio::spawn(async move {
            check!(
                s.state
                    .record_firing("bounded", "k", &format!("f{i}"))
                    .await
            )
        }));
    }
    let mut counts = HashSet::new();
    for f in firings {
        assert!(counts.insert(check!(f.await)), "a count was given twice");
    }
    assert_eq!(counts, (1..=20).collect::<HashSet<u64>>());
    assert_eq!(
        check!(a.state.firings("bounded", "k", "f3").await).count,
        20
    );
    assert_eq!(
        check!(b.state.firings("bounded", "k", "f3").await).count,
        20
    );
    assert_eq!(
        check!(a.state.firings("bounded", "other", "f3").await),
        Firings::default()
    );
    Outcome::Passed
}

/// A firing counted again (its delivery came back after a kill between
/// the count and the ack, possibly to the other replica) leaves the count
/// as it is, even when both copies count at once; the store knows which
/// firings it counted.
pub async fn a_firing_counted_again_counts_once(
    make: MakeStores,
    options: StoreOptions,
) -> Outcome {
    let a = stores!(make, options);
    let b = replica_or_same(&a, &make, &options).await;
    let mut firings = Vec::new();
    for i in 0..10 {
        for s in [a.clone(), b.clone()] {
            firings.push(tokio::spawn(async move {
                check!(
                    s.state
                        .record_firing("bounded", "k", &format!("f{i}"))
                        .await
                )
            }));
        }
    }
    for f in firings {
        let count = check!(f.await);
        assert!((1..=10).contains(&count), "count {count} of 10 firings");
    }
    for i in 0..10 {
        assert_eq!(
            check!(b.state.firings("bounded", "k", &format!("f{i}")).await),
            Firings {
                count: 10,
                counted: true
            },
            "firing f{i} ({})",
            a.description
        );
    }
    assert_eq!(
        check!(a.state.firings("bounded", "k", "f10").await),
        Firings {
            count: 10,
            counted: false
        }
    );
    assert_eq!(
        check!(a.state.record_firing("bounded", "k", "f10").await),
        11
    );
    assert_eq!(
        check!(a.state.record_firing("bounded", "k", "f0").await),
        11
    );
    // Counted in one instance, not in another.
    assert_eq!(
        check!(a.state.firings("bounded", "other", "f0").await),
        Firings::default()
    );
    Outcome::Passed
}

/// Done-marks and counters are forgotten after the window; a waiting
/// join slot is not.
pub async fn done_marks_and_counters_expire_after_the_window(
    make: MakeStores,
    options: StoreOptions,
) -> Outcome {
    let mut options = options;
    // The case's prefix is its own, so its stores are made with this window.
    options.window = Duration::from_secs(1);
    let s = stores!(make, options);
    if s.description == "memory" {
        return Outcome::Skipped(
            "memory inboxes forget by count (the last 100,000 ids per reaction), not by time"
                .into(),
        );
    }
    let a = EventId::now();
    check!(s.inbox.complete("s", &a).await);
    check!(s.state.record_firing("b", "k", "f").await);
    check!(s.state.join_arrive("j", "k", 0, 2, &env("waiting")).await);
    assert_eq!(check!(s.inbox.claim("s", &a, LEASE).await), Claim::Done);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let gone = check!(s.inbox.claim("s", &a, LEASE).await) == Claim::Acquired
            && check!(s.state.firings("b", "k", "f").await) == Firings::default();
        if gone {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "done-marks and counters still there 20 s after a 1 s window ({})",
            s.description
        );
    }
    let all = check!(s.state.join_arrive("j", "k", 1, 2, &env("late")).await);
    assert!(all.is_some(), "the waiting join slot was forgotten");
    Outcome::Passed
}

/// A join that has not fired is kept within the join window and
/// forgotten after it: a late arrival finds it empty and waits afresh.
pub async fn a_waiting_join_is_forgotten_after_the_join_window(
    make: MakeStores,
    options: StoreOptions,
) -> Outcome {
    const JOIN_WINDOW: Duration = Duration::from_secs(2);
    let mut options = options;
    options.join_window = Some(JOIN_WINDOW);
    let s = stores!(make, options);
    if s.description == "memory" {
        return Outcome::Skipped("in-memory joins live as long as their process".into());
    }
    assert_eq!(
        check!(s.state.join_arrive("j", "stale", 0, 2, &env("old")).await),
        None
    );
    // Within the window a join is whole.
    check!(s.state.join_arrive("j", "quick", 0, 2, &env("a")).await);
    let all = check!(s.state.join_arrive("j", "quick", 1, 2, &env("b")).await);
    assert!(all.is_some(), "a join forgotten within its window");
    // Past it, and past a PostgreSQL sweep (every half window at most,
    // run by a write) and NATS' expiry timer.
    tokio::time::sleep(JOIN_WINDOW * 3).await;
    check!(s.inbox.complete("sweep", &EventId::now()).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let late = check!(s.state.join_arrive("j", "stale", 1, 2, &env("late")).await);
    assert!(
        late.is_none(),
        "a join was still whole {:?} after a {JOIN_WINDOW:?} join window ({})",
        JOIN_WINDOW * 3,
        s.description
    );
    let afresh = check!(s.state.join_arrive("j", "stale", 0, 2, &env("new")).await)
        .unwrap_or_else(|| panic!("the late arrival waits afresh ({})", s.description));
    let ids: Vec<String> = afresh.iter().map(|e| e.id().to_string()).collect();
    assert_eq!(ids, ["new", "late"]);
    Outcome::Passed
}

/// What one replica writes, the other reads: claims, done-marks, join
/// slots and counters.
pub async fn state_is_shared_by_replicas(make: MakeStores, options: StoreOptions) -> Outcome {
    let a = stores!(make, options);
    let Some(b) = replica(&a, &make, &options).await else {
        return Outcome::Skipped(ONE_PROCESS.into());
    };
    let id = EventId::now();
    check!(a.inbox.claim("s", &id, LEASE).await);
    assert_eq!(check!(b.inbox.claim("s", &id, LEASE).await), Claim::Busy);
    check!(a.inbox.complete("s", &id).await);
    assert_eq!(check!(b.inbox.claim("s", &id, LEASE).await), Claim::Done);
    check!(a.state.join_arrive("j", "k", 0, 2, &env("a")).await);
    let all = check!(b.state.join_arrive("j", "k", 1, 2, &env("b")).await)
        .unwrap_or_else(|| panic!("b sees a's slot"));
    assert_eq!(all[0].id().to_string(), "a");
    check!(a.state.record_firing("bounded", "k", "f").await);
    assert_eq!(
        check!(b.state.firings("bounded", "k", "f").await),
        Firings {
            count: 1,
            counted: true
        }
    );
    Outcome::Passed
}
