//! Helpers for the examples' end-to-end tests: finding the broker, a
//! prefix of the test's own, and service processes that are stopped the
//! way a supervisor stops them (SIGTERM) and killed if a test fails.

use std::fs::File;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The shared NATS server of the test machines.
pub const NATS_URL: &str = "nats://127.0.0.1:4222";

/// Whether the server of `url` (a broker, or the PostgreSQL server of
/// [`POSTGRES_URL`]) answers on TCP. When it does not, [`skip`]s: says so
/// and returns `false` (the test skips), or panics when
/// `CHOREO_REQUIRE_BROKERS=1` (CI must never pass without the test).
pub fn broker_available(url: &str) -> bool {
    // `scheme://user@host:port/path`: only `host:port` is dialled.
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let up = hostport
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok());
    if up {
        return true;
    }
    let shown = choreo_runtime::secret::redact(url);
    skip(&format!("no server answers at {shown}"));
    false
}

/// What a test needs is missing (`missing` says what; a URL in it masked
/// with [`choreo_runtime::secret::redact`]): panics when
/// `CHOREO_REQUIRE_BROKERS=1`, else says that the test skips. Every skip
/// of the examples' tests comes here.
///
/// The line goes to the process's standard error itself, not through
/// `eprintln!`: the test harness captures what the print macros write and
/// shows it only for a test that fails, and a skipped test passes.
pub fn skip(missing: &str) {
    let required = std::env::var("CHOREO_REQUIRE_BROKERS").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{missing}, and CHOREO_REQUIRE_BROKERS=1 requires it"
    );
    // libtest runs each test on a thread named after it.
    let test = std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .map_or_else(|| "a test".to_owned(), str::to_owned);
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED {test}: {missing} (set CHOREO_REQUIRE_BROKERS=1 to fail instead)"
    );
}

/// A topic prefix of this test's own (`choreotest-…`, a name the runtime's
/// broker tests sweep when left over).
pub fn unique_prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("choreotest-{:x}{:08x}.", std::process::id(), nanos)
}

/// Deletes the JetStream stream that holds the topics under `prefix`, and
/// the Key-Value buckets of the deployment's stores.
pub async fn delete_nats_stream(url: &str, prefix: &str) {
    use choreo_runtime::broker::NatsBroker;
    use choreo_runtime::store::{NatsKvStores, StoreOptions};
    if let Ok(b) = NatsBroker::connect(url).await {
        let js = b.jetstream();
        let _ = js.delete_stream(NatsBroker::stream_name(prefix)).await;
        for bucket in NatsKvStores::bucket_names(&StoreOptions::with_prefix(prefix)) {
            let _ = js.delete_stream(format!("KV_{bucket}")).await;
        }
    }
}

/// How many writes each of the deployment's Key-Value buckets under
/// `prefix` took since it was made (its stream's last sequence), by
/// bucket (`inbox`, `joins`, `bounds`); empty where NATS or the buckets
/// are missing.
pub async fn nats_kv_writes(url: &str, prefix: &str) -> Vec<(String, u64)> {
    use choreo_runtime::broker::NatsBroker;
    use choreo_runtime::store::{NatsKvStores, StoreOptions};
    let Ok(b) = NatsBroker::connect(url).await else {
        return Vec::new();
    };
    let js = b.jetstream();
    let mut out = Vec::new();
    let names = NatsKvStores::bucket_names(&StoreOptions::with_prefix(prefix));
    for (what, bucket) in ["inbox", "joins", "bounds"].into_iter().zip(names) {
        if let Ok(mut stream) = js.get_stream(format!("KV_{bucket}")).await {
            if let Ok(info) = stream.info().await {
                out.push((what.to_owned(), info.state.last_sequence));
            }
        }
    }
    out
}

/// The shared Redis server of the test machines.
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Deletes every key under `prefix` on the Redis server at `url`: the
/// deployment's streams (the broker prefixes them with `choreo:`) and its
/// stores' keys.
pub async fn delete_redis_keys(url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return;
    };
    for pattern in [format!("{prefix}*"), format!("choreo:{prefix}*")] {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(&pattern)
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        for key in keys {
            let _: Result<i64, _> = redis::cmd("DEL").arg(&key).query_async(&mut conn).await;
        }
    }
}

/// The shared PostgreSQL server of the test machines (trust
/// authentication, database `test`), for `--db`.
pub const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Drops the books' tables of the deployment under `prefix` in the
/// database at `url` ([`Books::drop_tables`](crate::books::Books::drop_tables)).
pub async fn drop_books(url: &str, prefix: &str) {
    if let Ok(books) = crate::books::Books::connect(url, prefix).await {
        let _ = books.drop_tables().await;
    }
}

/// Starts `bin` once per name of `services`, with the arguments `common`
/// followed by `--service <name>`, and waits until each has written `ready`
/// to its standard output (the examples print it once their consumer
/// groups exist). An error names the service that exited or was not ready
/// within `timeout`; the processes started are then killed as they are
/// dropped.
pub fn spawn_until_ready(
    bin: &Path,
    services: &[&str],
    common: &[&str],
    ready: &str,
    timeout: Duration,
) -> std::io::Result<Vec<ServiceProcess>> {
    let mut started = Vec::with_capacity(services.len());
    for name in services {
        let mut args = common.to_vec();
        args.extend(["--service", name]);
        started.push(ServiceProcess::spawn(name, bin, &args)?);
    }
    let deadline = Instant::now() + timeout;
    for p in &mut started {
        while !p.stdout_so_far().contains(ready) {
            if !p.running() {
                return Err(std::io::Error::other(format!(
                    "service `{}` exited before it was ready",
                    p.name()
                )));
            }
            if Instant::now() >= deadline {
                return Err(std::io::Error::other(format!(
                    "service `{}` was not ready within {timeout:?}",
                    p.name()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(started)
}

/// A child process, killed when dropped. Its output goes to files, so
/// that a chatty service never blocks on a full pipe.
pub struct ServiceProcess {
    name: String,
    child: Option<Child>,
    stdout: PathBuf,
    stderr: PathBuf,
}

/// What a stopped process printed.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Its exit status was success.
    pub success: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl ServiceProcess {
    /// Starts `bin args…` with its output captured.
    pub fn spawn(name: &str, bin: &Path, args: &[&str]) -> std::io::Result<Self> {
        ServiceProcess::spawn_with_env(name, bin, args, &[])
    }

    /// [`ServiceProcess::spawn`] with environment variables set (`RUST_LOG`).
    pub fn spawn_with_env(
        name: &str,
        bin: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> std::io::Result<Self> {
        let base = std::env::temp_dir().join(format!(
            "choreo-example-{}-{}-{name}",
            std::process::id(),
            unique_prefix().trim_end_matches('.')
        ));
        let stdout = base.with_extension("out");
        let stderr = base.with_extension("err");
        let child = Command::new(bin)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(File::create(&stdout)?)
            .stderr(File::create(&stderr)?)
            .spawn()?;
        Ok(ServiceProcess {
            name: name.to_string(),
            child: Some(child),
            stdout,
            stderr,
        })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// What it has written to standard output so far.
    pub fn stdout_so_far(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// What it has written to standard error so far.
    pub fn stderr_so_far(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits for it to exit by itself (up to `timeout`, then kills it).
    pub fn wait(mut self, timeout: Duration) -> std::io::Result<Finished> {
        self.finish(timeout)
    }

    /// Kills it with SIGKILL, as a crash does: it gets no chance to finish
    /// or settle anything.
    pub fn kill(mut self) -> std::io::Result<Finished> {
        if let Some(child) = self.child.as_mut() {
            child.kill()?;
        }
        self.finish(Duration::from_secs(10))
    }

    /// Asks it to stop with SIGTERM (as a supervisor would), waits up to
    /// `timeout` for it to drain and exit, then kills it.
    pub fn stop(mut self, timeout: Duration) -> std::io::Result<Finished> {
        if let Some(child) = &self.child {
            // The workspace forbids `unsafe`, so no libc::kill: the `kill`
            // command sends the signal.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        self.finish(timeout)
    }

    fn finish(&mut self, timeout: Duration) -> std::io::Result<Finished> {
        let mut child = self
            .child
            .take()
            .ok_or_else(|| std::io::Error::other("the process was already stopped"))?;
        let deadline = Instant::now() + timeout;
        while matches!(child.try_wait(), Ok(None)) {
            if Instant::now() >= deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let status = child.wait()?;
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        Ok(Finished {
            success: status.success(),
            stdout: read(&self.stdout),
            stderr: read(&self.stderr),
        })
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            // Left for a failed test to be looked into.
            eprintln!(
                "service `{}` killed; its output: {} and {}",
                self.name,
                self.stdout.display(),
                self.stderr.display()
            );
            return;
        }
        let _ = std::fs::remove_file(&self.stdout);
        let _ = std::fs::remove_file(&self.stderr);
    }
}
