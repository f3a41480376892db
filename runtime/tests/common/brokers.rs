//! Real brokers for the adapter tests: the shared servers on loopback,
//! servers of a test's own (for restarts), and the checks that every
//! adapter must pass beyond the conformance suite.
//!
//! A shared server that does not answer skips the test with a message, or
//! fails it under `CHOREO_REQUIRE_BROKERS=1` (see [`super::server_missing`]).
//! What the tests create on the shared servers lives under names starting
//! with `conformance-` or `choreotest-`; each test process first removes
//! such leftovers older than [`LEFTOVER_AGE`] (from runs that died).

use std::collections::HashSet;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use choreo_runtime::broker::{
    dead_letter_topic, settle_all, Health, ObserveOptions, Settlement, SharedBroker,
    SubscribeOptions, Subscription, DLQ_REASON,
};
use choreo_runtime::Envelope;

use super::EVENTUALLY;

/// The shared NATS server.
pub const NATS_URL: &str = "nats://127.0.0.1:4222";
/// The shared Redis server.
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";
/// Names of what the tests make on the shared servers start with one of these.
pub const TEST_PREFIXES: [&str; 2] = ["conformance-", "choreotest-"];
/// Leftovers of earlier runs older than this are removed.
pub const LEFTOVER_AGE: Duration = Duration::from_secs(600);

/// A name prefix unique to one test.
pub fn test_prefix() -> String {
    format!("choreotest-{:012x}", fastrand::u64(..) >> 16)
}

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// The broker, or `None` after saying that `what` is missing (a failure
/// when servers are required).
fn reachable<B>(what: &str, connected: Result<B, impl std::fmt::Display>) -> Option<B> {
    connected.map_err(|e| super::server_missing(what, &e)).ok()
}

/// True for the first caller in this process.
fn first_time(flag: &AtomicBool) -> bool {
    !flag.swap(true, Ordering::SeqCst)
}

#[cfg(feature = "nats")]
pub mod nats {
    use super::*;
    use choreo_runtime::broker::{NatsBroker, NatsOptions};
    use futures::StreamExt;

    /// What the tests use: streams they create drop messages after an hour.
    pub fn options() -> NatsOptions {
        NatsOptions {
            max_age: Duration::from_secs(3600),
            ..NatsOptions::default()
        }
    }

    /// A broker on the shared server, or `None` (skip) when it is down.
    pub async fn shared() -> Option<NatsBroker> {
        static SWEPT: AtomicBool = AtomicBool::new(false);
        let connected = NatsBroker::connect_with(NATS_URL, options()).await;
        let b = reachable(&format!("NATS JetStream at {NATS_URL}"), connected)?;
        if first_time(&SWEPT) {
            sweep(&b).await;
        }
        Some(b)
    }

    /// Removes test streams of earlier runs.
    pub async fn sweep(broker: &NatsBroker) {
        let js = broker.jetstream();
        let cutoff = unix_now().saturating_sub(LEFTOVER_AGE).as_secs() as i64;
        let mut old = Vec::new();
        let mut streams = js.streams();
        while let Some(Ok(info)) = streams.next().await {
            let name = &info.config.name;
            if TEST_PREFIXES.iter().any(|p| name.starts_with(p))
                && info.created.unix_timestamp() < cutoff
            {
                old.push(name.clone());
            }
        }
        for name in old {
            let _ = js.delete_stream(&name).await;
        }
    }

    /// Deletes the stream of a test's topics.
    pub async fn delete_stream(broker: &NatsBroker, topic: &str) {
        let _ = broker
            .jetstream()
            .delete_stream(NatsBroker::stream_name(topic))
            .await;
    }

    /// A NATS server of the test's own, with JetStream storing in its own
    /// directory; `None` (skip) when the binary is missing.
    pub fn own_server() -> Option<OwnServer> {
        OwnServer::start("nats-server", |port, dir| {
            vec![
                "-a".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
                "-js".into(),
                "-sd".into(),
                dir.display().to_string(),
            ]
        })
    }
}

#[cfg(feature = "redis")]
pub mod redis {
    use super::*;
    use choreo_runtime::broker::{Broker, RedisBroker, RedisOptions};

    /// What the tests use: keys under `choreo-test:`.
    pub fn options() -> RedisOptions {
        RedisOptions {
            key_prefix: "choreo-test:".into(),
            ..RedisOptions::default()
        }
    }

    /// A broker on the shared server, or `None` (skip) when it is down.
    pub async fn shared() -> Option<RedisBroker> {
        shared_at(REDIS_URL).await
    }

    /// [`shared`] with the broker's own deduplication on, set by the URL.
    pub async fn shared_deduplicating() -> Option<RedisBroker> {
        let b = shared_at(&format!("{REDIS_URL}?dedup=2m")).await?;
        assert!(b.capabilities().native_dedup, "`?dedup=2m` turns it on");
        Some(b)
    }

    async fn shared_at(url: &str) -> Option<RedisBroker> {
        static SWEPT: AtomicBool = AtomicBool::new(false);
        let connected = RedisBroker::connect_with(url, options()).await;
        let b = reachable(&format!("Redis at {REDIS_URL}"), connected)?;
        if first_time(&SWEPT) {
            sweep(&b).await;
        }
        Some(b)
    }

    /// Removes test streams of earlier runs: untouched for longer than
    /// [`LEFTOVER_AGE`] (deduplication keys expire by themselves).
    pub async fn sweep(broker: &RedisBroker) {
        let mut conn = broker.connection();
        for prefix in TEST_PREFIXES {
            let pattern = format!("{}{prefix}*", options().key_prefix);
            let keys: Vec<String> = ::redis::cmd("KEYS")
                .arg(&pattern)
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
            for key in keys {
                let idle: Option<u64> = ::redis::cmd("OBJECT")
                    .arg("IDLETIME")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .unwrap_or(None);
                if idle.is_some_and(|s| s > LEFTOVER_AGE.as_secs()) {
                    let _: Result<(), _> =
                        ::redis::cmd("DEL").arg(&key).query_async(&mut conn).await;
                }
            }
        }
    }

    /// Deletes the streams of a test's topics (all under `prefix`).
    pub async fn delete_streams(broker: &RedisBroker, prefix: &str) {
        let mut conn = broker.connection();
        let keys: Vec<String> = ::redis::cmd("KEYS")
            .arg(format!("{}*", broker.stream_key(prefix)))
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        for key in keys {
            let _: Result<(), _> = ::redis::cmd("DEL").arg(&key).query_async(&mut conn).await;
        }
    }

    /// A Redis server of the test's own that appends every write to its
    /// AOF and fsyncs it before answering; `None` (skip) when the binary
    /// is missing.
    pub fn own_server() -> Option<OwnServer> {
        OwnServer::start("redis-server", |port, dir| {
            [
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--dir",
                &dir.display().to_string(),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect()
        })
    }
}

#[cfg(feature = "postgres")]
pub mod postgres {
    use super::*;

    /// The directory of PostgreSQL's server binaries (Debian keeps them
    /// under `/usr/lib/postgresql/<major>/bin`).
    pub fn bin_dir() -> std::io::Result<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("postgres").is_file())
            .collect();
        found.sort();
        found
            .pop()
            .ok_or_else(|| std::io::Error::other("no /usr/lib/postgresql/*/bin/postgres"))
    }

    /// Runs `program` as the `postgres` user: PostgreSQL refuses to run as
    /// root. `setpriv` replaces itself with the program, so that killing it
    /// kills the server.
    pub fn as_postgres(program: &Path) -> Vec<String> {
        vec![
            "--reuid=postgres".into(),
            "--regid=postgres".into(),
            "--init-groups".into(),
            program.display().to_string(),
        ]
    }

    /// A PostgreSQL server of the test's own: a fresh cluster (`initdb`,
    /// trust authentication) in its own directory, run as `postgres`;
    /// `None` (skip) when the binaries, the user or the rights are missing.
    pub fn own_server() -> Option<OwnServer> {
        let bin = match bin_dir() {
            Ok(b) => b,
            Err(e) => {
                super::super::server_missing("PostgreSQL's server binaries", &e);
                return None;
            }
        };
        let (initdb, postgres) = (bin.join("initdb"), bin.join("postgres"));
        OwnServer::start_prepared(
            "setpriv",
            |dir| {
                let status = Command::new("chown")
                    .args(["postgres:postgres", &dir.display().to_string()])
                    .status()?;
                if !status.success() {
                    return Err(std::io::Error::other(
                        "cannot give the directory to `postgres`",
                    ));
                }
                let out = Command::new("setpriv")
                    .args(as_postgres(&initdb))
                    .args(["-D", &dir.join("data").display().to_string()])
                    .args(["-A", "trust", "-U", "postgres", "--no-sync"])
                    .output()?;
                if out.status.success() {
                    Ok(())
                } else {
                    Err(std::io::Error::other(format!(
                        "initdb failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    )))
                }
            },
            move |port, dir| server_args(&postgres, port, dir),
        )
    }

    /// `setpriv`'s arguments that run `postgres` as its user on the
    /// cluster in `dir/data`, on `port` of the loopback, with its socket
    /// in `dir`.
    pub fn server_args(postgres: &Path, port: u16, dir: &Path) -> Vec<String> {
        let mut args = as_postgres(postgres);
        args.extend([
            "-D".into(),
            dir.join("data").display().to_string(),
            "-p".into(),
            port.to_string(),
            "-k".into(),
            dir.display().to_string(),
            "-c".into(),
            "listen_addresses=127.0.0.1".into(),
        ]);
        args
    }
}

/// A server process a test runs itself, on a free port of the loopback
/// with a data directory of its own; killed and its directory removed
/// when dropped.
pub struct OwnServer {
    binary: &'static str,
    args: Vec<String>,
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl OwnServer {
    /// Starts `binary` with the arguments `args(port, dir)` and waits until
    /// it accepts connections; `None` (skip) when it cannot be started.
    pub fn start(binary: &'static str, args: impl Fn(u16, &Path) -> Vec<String>) -> Option<Self> {
        OwnServer::start_prepared(binary, |_| Ok(()), args)
    }

    /// [`OwnServer::start`], after `prepare(dir)` (an `initdb`, say).
    pub fn start_prepared(
        binary: &'static str,
        prepare: impl FnOnce(&Path) -> std::io::Result<()>,
        args: impl Fn(u16, &Path) -> Vec<String>,
    ) -> Option<Self> {
        let port = match TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
            Ok(a) => a.port(),
            Err(e) => {
                super::server_missing("a free loopback port", &e);
                return None;
            }
        };
        let dir =
            std::env::temp_dir().join(format!("choreo-{binary}-{port}-{:08x}", fastrand::u32(..)));
        if let Err(e) = std::fs::create_dir_all(&dir) {
            super::server_missing("a temporary directory", &e);
            return None;
        }
        if let Err(e) = prepare(&dir) {
            super::server_missing(&format!("a data directory for `{binary}`"), &e);
            let _ = std::fs::remove_dir_all(&dir);
            return None;
        }
        let mut server = OwnServer {
            binary,
            args: args(port, &dir),
            port,
            dir,
            child: None,
        };
        if let Err(e) = server.spawn() {
            super::server_missing(&format!("the `{binary}` binary"), &e);
            return None;
        }
        Some(server)
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        // A process group of its own, so that `kill` takes the server's
        // children with it (PostgreSQL's backends).
        let child = Command::new(self.binary)
            .args(&self.args)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(std::io::Error::other(format!(
                    "{} exited at start: {status}",
                    self.binary
                )));
            }
            if std::time::Instant::now() > deadline {
                return Err(std::io::Error::other(format!(
                    "{} did not listen on port {} within 20 s",
                    self.binary, self.port
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// `kill -9` of the server's whole process group: it gets no chance
    /// to flush anything. PostgreSQL's backends outlive a killed
    /// postmaster for a moment, and one of them could still answer a
    /// pooled connection's query as if the server were up; a machine that
    /// loses power loses them all at once.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", c.id())])
                .stderr(Stdio::null())
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port and data directory. A
    /// server killed with SIGKILL may hold on to resources for a moment
    /// (PostgreSQL's backends outlive their postmaster briefly): a start
    /// that fails at once is tried again, for up to 20 s.
    pub fn restart(&mut self) {
        self.kill();
        let mut tries = 0;
        while let Err(e) = self.spawn() {
            tries += 1;
            assert!(tries < 20, "the server does not restart: {e}");
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn message(n: u64) -> Envelope {
    Envelope::builder("Test.Event", format!("k{}", n % 5))
        .id(format!("m{n:05}"))
        .source("choreo-tests")
        .build()
}

/// A consumer that acks everything and records the ids it saw.
fn collect(
    mut sub: Box<dyn Subscription>,
) -> (Arc<Mutex<HashSet<String>>>, tokio::task::JoinHandle<()>) {
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let s = seen.clone();
    let task = tokio::spawn(async move {
        loop {
            match sub.next_batch(64).await {
                Ok(Some(batch)) => {
                    s.lock()
                        .unwrap()
                        .extend(batch.iter().map(|d| d.envelope().id().to_string()));
                    let _ = settle_all(batch.into_iter().map(|d| (d, Settlement::Ack))).await;
                }
                Ok(None) => return,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    (seen, task)
}

/// The broker's server is killed (`kill -9`) in the middle of a stream of
/// publishes and started again: every publish that returned `Ok` is
/// delivered, and the subscription goes on after the restart.
pub async fn restart_mid_stream(server: &mut OwnServer, broker: SharedBroker, topic: &str) {
    let mut o = SubscribeOptions::new(format!("{topic}.group"), [topic]);
    o.ack_wait = Duration::from_secs(5);
    let sub = broker.subscribe(o).await.expect("subscribe");
    let (seen, consumer) = collect(sub);
    let confirmed = Arc::new(Mutex::new(Vec::<(u64, bool)>::new()));
    let restarted = Arc::new(AtomicBool::new(false));
    let (c, r, b, t) = (
        confirmed.clone(),
        restarted.clone(),
        broker.clone(),
        topic.to_owned(),
    );
    let total = 800u64;
    let publisher = tokio::spawn(async move {
        let mut failed = 0;
        for n in 0..total {
            let after = r.load(Ordering::SeqCst);
            let sent =
                tokio::time::timeout(Duration::from_secs(10), b.publish(&t, message(n))).await;
            match sent {
                Ok(Ok(())) => c.lock().unwrap().push((n, after)),
                _ => failed += 1,
            }
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        failed
    });
    // Kill the server once a quarter is confirmed, restart it a moment later.
    while confirmed.lock().unwrap().len() < (total / 4) as usize {
        assert!(!publisher.is_finished(), "publishing stopped early");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.restart();
    restarted.store(true, Ordering::SeqCst);
    let failed = publisher.await.expect("publisher");
    let confirmed: Vec<(u64, bool)> = confirmed.lock().unwrap().clone();
    eprintln!(
        "restart: {} publishes confirmed, {failed} failed around the restart",
        confirmed.len()
    );
    assert!(
        confirmed.iter().any(|(_, after)| *after),
        "publishing resumed after the restart"
    );
    let want: HashSet<String> = confirmed
        .iter()
        .map(|(n, _)| message(*n).id().to_string())
        .collect();
    all_delivered(&want, &seen).await;
    consumer.abort();
}

/// Publishers that retry what fails keep publishing while the broker's
/// server is killed (`kill -9`) and started again, twice: every publish
/// that returned `Ok`, before, between and after the kills, reaches the
/// group; the broker says it is unhealthy while the server is down and
/// healthy again once it is back.
pub async fn restarts_with_retrying_publishers(
    server: &mut OwnServer,
    broker: SharedBroker,
    topic: &str,
) {
    let mut o = SubscribeOptions::new(format!("{topic}.group"), [topic]);
    o.ack_wait = Duration::from_secs(5);
    let sub = broker.subscribe(o).await.expect("subscribe");
    let (seen, consumer) = collect(sub);
    assert_eq!(
        broker.health().await,
        Health::Healthy,
        "healthy at the start"
    );
    // Each confirmed publish as (publisher, n), with the phase it was
    // confirmed in (0 before the first kill, 1 between, 2 after).
    let confirmed = Arc::new(Mutex::new(Vec::<(u64, u64, u8)>::new()));
    let phase = Arc::new(std::sync::atomic::AtomicU8::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut publishers = Vec::new();
    for p in 0..4u64 {
        let (c, ph, st, b, t) = (
            confirmed.clone(),
            phase.clone(),
            stop.clone(),
            broker.clone(),
            topic.to_owned(),
        );
        publishers.push(tokio::spawn(async move {
            let mut failures = 0u64;
            let mut n = 0u64;
            'messages: while !st.load(Ordering::SeqCst) {
                // The same message (same id) until it is confirmed.
                loop {
                    let sent =
                        tokio::time::timeout(Duration::from_secs(10), b.publish(&t, retried(p, n)))
                            .await;
                    if let Ok(Ok(())) = sent {
                        c.lock().unwrap().push((p, n, ph.load(Ordering::SeqCst)));
                        break;
                    }
                    failures += 1;
                    if st.load(Ordering::SeqCst) {
                        break 'messages;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            failures
        }));
    }
    let count = |phase: u8| {
        confirmed
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, _, ph)| *ph == phase)
            .count()
    };
    /// Waits until `what` holds, for up to 30 s.
    async fn until(what: &str, mut ok: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !ok() {
            assert!(tokio::time::Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    async fn health_becomes(broker: &SharedBroker, healthy: bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let h = broker.health().await;
            let done = if healthy {
                h == Health::Healthy
            } else {
                matches!(h, Health::Unhealthy(_))
            };
            if done {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "health stays {h:?} (want {})",
                if healthy { "healthy" } else { "unhealthy" }
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for kill in 0..2u8 {
        until(&format!("publishing in phase {kill}"), || {
            count(kill) >= 100
        })
        .await;
        server.kill();
        health_becomes(&broker, false).await;
        // Down for longer than a publish waits (2 s): some fail, and are
        // retried.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        server.restart();
        health_becomes(&broker, true).await;
        phase.store(kill + 1, Ordering::SeqCst);
    }
    until("publishing after the second restart", || count(2) >= 100).await;
    stop.store(true, Ordering::SeqCst);
    let mut failures = 0;
    for p in publishers {
        failures += tokio::time::timeout(Duration::from_secs(60), p)
            .await
            .expect("publishers stop")
            .expect("publisher");
    }
    let confirmed: Vec<(u64, u64, u8)> = confirmed.lock().unwrap().clone();
    eprintln!(
        "two restarts: {} publishes confirmed ({} / {} / {} per phase), {failures} failed attempts retried",
        confirmed.len(),
        count(0),
        count(1),
        count(2)
    );
    assert!(failures > 0, "no publish failed while the server was down");
    let want: HashSet<String> = confirmed
        .iter()
        .map(|(p, n, _)| retried(*p, *n).id().to_string())
        .collect();
    all_delivered(&want, &seen).await;
    consumer.abort();
}

/// Waits (up to 60 s) until every id of `want` is in `seen`, else fails
/// naming the first ten missing.
async fn all_delivered(want: &HashSet<String>, seen: &Mutex<HashSet<String>>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let missing: Vec<String> = {
            let seen = seen.lock().unwrap();
            let mut m: Vec<String> = want.difference(&seen).cloned().collect();
            m.sort();
            m
        };
        if missing.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} confirmed publishes never delivered, first {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Message `n` of publisher `p` of [`restarts_with_retrying_publishers`].
fn retried(p: u64, n: u64) -> Envelope {
    Envelope::builder("Test.Event", format!("k{p}"))
        .id(format!("p{p}-m{n:05}"))
        .source("choreo-tests")
        .build()
}

/// A durable consumer that was offline — its process gone, the group kept —
/// receives, when it comes back, exactly what was published meanwhile.
pub async fn offline_consumer_catches_up<F, Fut>(connect: F, prefix: &str)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = SharedBroker>,
{
    let topic = format!("{prefix}.invoices");
    let group = format!("{prefix}.billing");
    let options = || {
        let mut o = SubscribeOptions::new(group.clone(), [topic.clone()]);
        o.ack_wait = Duration::from_secs(5);
        o
    };
    let first = connect().await;
    let mut sub = first.subscribe(options()).await.expect("subscribe");
    first.publish(&topic, message(0)).await.expect("publish");
    let got = next_ids(&mut sub, 1).await;
    assert_eq!(got, ["m00000"]);
    sub.unsubscribe().await.expect("unsubscribe");
    drop(sub);
    // The process goes away: its connections with it.
    first.close(Duration::from_secs(5)).await.expect("close");
    drop(first);
    // Published while no member of the group runs anywhere.
    let publisher = connect().await;
    for n in 1..=10 {
        publisher
            .publish(&topic, message(n))
            .await
            .expect("publish");
    }
    drop(publisher);
    let again = connect().await;
    let mut sub = again.subscribe(options()).await.expect("subscribe again");
    let got = next_ids(&mut sub, 10).await;
    let want: Vec<String> = (1..=10).map(|n| message(n).id().to_string()).collect();
    assert_eq!(
        got, want,
        "what was missed, in order, and nothing acked before"
    );
    let more = tokio::time::timeout(Duration::from_millis(500), sub.next_batch(10)).await;
    assert!(!matches!(more, Ok(Ok(Some(_)))), "nothing more: {more:?}");
}

/// The ids of the next `n` deliveries, acked.
async fn next_ids(sub: &mut Box<dyn Subscription>, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < n {
        let batch = tokio::time::timeout(EVENTUALLY, sub.next_batch(n - out.len()))
            .await
            .expect("deliveries in time")
            .expect("next_batch")
            .expect("subscription open");
        for d in batch {
            assert_eq!(d.attempt(), 1, "a first delivery");
            out.push(d.envelope().id().to_string());
            d.ack().await.expect("ack");
        }
    }
    out
}

/// Raw bytes that are not an envelope, put on `topic` by `put_raw`, are
/// not handed to the group but dead-lettered, byte for byte, with the
/// decode error; the consumer goes on with the next message.
pub async fn undecodable_is_dead_lettered<Fut>(broker: SharedBroker, topic: &str, put_raw: Fut)
where
    Fut: std::future::Future<Output = ()>,
{
    let raw = RAW.to_vec();
    let mut dlq = broker
        .subscribe(SubscribeOptions::new(
            format!("{topic}.dlq-reader"),
            [dead_letter_topic(topic)],
        ))
        .await
        .expect("subscribe dlq");
    let mut sub = broker
        .subscribe(SubscribeOptions::new(format!("{topic}.group"), [topic]))
        .await
        .expect("subscribe");
    put_raw.await;
    broker.publish(topic, message(1)).await.expect("publish");
    assert_eq!(
        next_ids(&mut sub, 1).await,
        ["m00001"],
        "the consumer skips the bad message and goes on"
    );
    let batch = tokio::time::timeout(EVENTUALLY, dlq.next_batch(1))
        .await
        .expect("a dead letter in time")
        .expect("next_batch")
        .expect("open");
    let dead = batch[0].envelope();
    assert_eq!(dead.ty(), choreo_runtime::broker::UNDECODABLE_TYPE);
    assert_eq!(&dead.payload().to_json().expect("data")[..], &raw[..]);
    let reason = dead.extension(DLQ_REASON).unwrap_or("");
    assert!(reason.contains("not an envelope"), "reason: {reason}");
}

/// The raw bytes [`undecodable_is_dead_lettered`] expects.
pub const RAW: &[u8] = b"{not an envelope \xff";

/// An observer skips a message that is not an envelope (it dead-letters
/// nothing: the groups do) and goes on; `put_raw` puts [`RAW`] on `topic`.
pub async fn observer_skips_undecodable<Fut>(broker: SharedBroker, topic: &str, put_raw: Fut)
where
    Fut: std::future::Future<Output = ()>,
{
    broker.publish(topic, message(1)).await.expect("publish");
    put_raw.await;
    broker.publish(topic, message(2)).await.expect("publish");
    let mut obs = broker
        .observe(ObserveOptions::new([topic]))
        .await
        .expect("observe");
    assert_eq!(
        next_ids(&mut obs, 2).await,
        ["m00001", "m00002"],
        "the observer skips the bad message and goes on"
    );
    let more = tokio::time::timeout(Duration::from_millis(500), obs.next_batch(10)).await;
    assert!(more.is_err(), "nothing more: {more:?}");
    obs.unsubscribe().await.expect("unsubscribe");
}

/// `connect` of a URL whose server does not answer fails, in bounded
/// time, with an error naming the URL.
pub async fn unreachable_url_is_a_clear_error(scheme: &str) {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("{scheme}://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let err = match tokio::time::timeout(Duration::from_secs(20), choreo_runtime::connect(&url))
        .await
        .expect("connect gives up in bounded time")
    {
        Ok(_) => panic!("connected to nothing at {url}"),
        Err(e) => e,
    };
    assert!(
        err.to_string().contains(&url),
        "the error names the URL: {err}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
}
