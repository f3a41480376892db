//! What each JetStream Key-Value operation costs the NATS server: the
//! CPU time nats-server spends per operation, beside the wall time and
//! this process's CPU, operation by operation, on a bucket made as the
//! runtime's NATS stores make theirs (`store::nats::bucket`, the `joins`
//! bucket's settings: no age limit, deletes by sequence allowed).
//!
//! Phases, each of N operations with 64 in flight on one connection:
//! 1. create on new keys (`update` at revision 0);
//! 2. put overwriting those keys;
//! 3. get existing keys (`entry`);
//! 4. get missing keys;
//! 5. compare-and-set (`update` at the current revision);
//! 6. delete of each key's one message by sequence (`STREAM.MSG.DELETE`
//!    with `no_erase`, as the joins store clears a fired slot), keys in
//!    random order;
//! 7. stream purge filtered by one key's subject, keys in random order,
//!    on a bucket holding the N keys.
//!
//! Phases 6 and 7 first put the keys again (not counted). The server's
//! CPU is read from `/proc/<pid>/stat` of the `nats-server` processes
//! (`pidof`) before and after each phase, in 10 ms clock ticks; whatever
//! else the server does meanwhile counts too. Without `pidof` or the
//! server on this machine the table has no server columns.
//!
//! Needs a NATS server with JetStream on 127.0.0.1:4222 (skipped with a
//! message when none answers). The bucket, named anew each run, is
//! deleted at the end.
//!
//! Run: `cargo bench -p choreo-runtime --features nats --bench nats_kv_ops`
//! (`-- --ops N`: operations per phase, default 20000).
// A bench: a failure to set up is a panic with its message.
#![allow(clippy::unwrap_used, missing_docs)]

use std::future::Future;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

#[path = "support/cpu.rs"]
mod cpu;
use cpu::cpu_of;

use async_nats::jetstream::{self, kv, response::Response, stream::StorageType};
use bytes::Bytes;
use futures::stream::{self, StreamExt};

const SERVER: &str = "127.0.0.1:4222";
/// Operations in flight.
const IN_FLIGHT: usize = 64;
/// A value the size of an inbox claim.
const VALUE: &[u8] = b"C1234567890123/42";

type Error = Box<dyn std::error::Error + Send + Sync>;

/// One phase measured.
struct Row {
    phase: &'static str,
    ops: usize,
    failed: usize,
    wall: Duration,
    client: Option<Duration>,
    server: Option<Duration>,
}

/// CPU and wall clock at one moment.
struct Snap {
    wall: Instant,
    client: Option<Duration>,
    server: Option<Duration>,
}

/// The nats-server processes to read the CPU of (none: not measured).
struct Meter {
    pids: Vec<String>,
}

impl Meter {
    fn find() -> Meter {
        let pids = std::process::Command::new("pidof")
            .arg("nats-server")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Meter { pids }
    }

    fn server(&self) -> Option<Duration> {
        if self.pids.is_empty() {
            return None;
        }
        self.pids.iter().map(|p| cpu_of(p)).sum()
    }

    fn snap(&self) -> Snap {
        Snap {
            client: cpu_of("self"),
            server: self.server(),
            wall: Instant::now(),
        }
    }

    /// Runs `op` on each of `order`'s key indexes, `IN_FLIGHT` at a time;
    /// an operation answers `None` when it failed, else a number (the new
    /// revision where there is one). The answers by index, and the row.
    async fn phase<F, Fut>(
        &self,
        phase: &'static str,
        order: &[usize],
        op: F,
    ) -> (Vec<Option<u64>>, Row)
    where
        F: Fn(usize) -> Fut,
        Fut: Future<Output = Option<u64>>,
    {
        let start = self.snap();
        let answers = all(order, op).await;
        let end = self.snap();
        let since =
            |a: Option<Duration>, b: Option<Duration>| a.zip(b).map(|(a, b)| b.saturating_sub(a));
        let row = Row {
            phase,
            ops: order.len(),
            failed: order.iter().filter(|&&i| answers[i].is_none()).count(),
            wall: end.wall - start.wall,
            client: since(start.client, end.client),
            server: since(start.server, end.server),
        };
        (answers, row)
    }
}

/// `op` on each of `order`'s indexes, `IN_FLIGHT` at a time, the answers
/// by index (`None` where not run or failed).
async fn all<F, Fut>(order: &[usize], op: F) -> Vec<Option<u64>>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Option<u64>>,
{
    let mut answers = vec![None; order.iter().max().map_or(0, |m| m + 1)];
    let op = &op;
    let mut done = stream::iter(order.iter().copied())
        .map(|i| async move { (i, op(i).await) })
        .buffer_unordered(IN_FLIGHT);
    while let Some((i, answer)) = done.next().await {
        answers[i] = answer;
    }
    answers
}

/// The bucket's stream as `store::nats::bucket` makes the joins bucket's.
async fn make_bucket(js: &jetstream::Context, name: &str) -> Result<kv::Store, Error> {
    let config = jetstream::stream::Config {
        name: format!("KV_{name}"),
        description: Some("choreo nats_kv_ops bench".into()),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        max_age: Duration::ZERO,
        duplicate_window: Duration::from_secs(120),
        storage: StorageType::File,
        num_replicas: 1,
        allow_rollup: true,
        deny_delete: false,
        deny_purge: false,
        allow_direct: true,
        discard: jetstream::stream::DiscardPolicy::New,
        ..Default::default()
    };
    js.create_stream(config).await?;
    Ok(js.get_key_value(name).await?)
}

/// The phases, one row each.
async fn measure(
    js: &jetstream::Context,
    kv: &kv::Store,
    meter: &Meter,
    n: usize,
) -> Result<Vec<Row>, Error> {
    let keys: Vec<String> = (0..n).map(|i| format!("scope.k{i:07}")).collect();
    let missing: Vec<String> = (0..n).map(|i| format!("scope.m{i:07}")).collect();
    let (keys, missing) = (&keys, &missing);
    let in_order: Vec<usize> = (0..n).collect();
    let mut shuffled = in_order.clone();
    fastrand::Rng::with_seed(7).shuffle(&mut shuffled);
    let put = |i: usize| async move { kv.put(&keys[i], Bytes::from_static(VALUE)).await.ok() };
    let mut rows = Vec::new();

    let (_, row) = meter
        .phase("1 create (update at rev 0)", &in_order, |i| async move {
            kv.update(&keys[i], Bytes::from_static(VALUE), 0).await.ok()
        })
        .await;
    rows.push(row);
    let (revisions, row) = meter.phase("2 put overwrite", &in_order, put).await;
    rows.push(row);
    let (_, row) = meter
        .phase("3 get existing", &in_order, |i| async move {
            kv.entry(&keys[i]).await.ok().flatten().map(|e| e.revision)
        })
        .await;
    rows.push(row);
    let (_, row) = meter
        .phase("4 get missing", &in_order, |i| async move {
            matches!(kv.entry(&missing[i]).await, Ok(None)).then_some(0)
        })
        .await;
    rows.push(row);
    let revisions = &revisions;
    let (_, row) = meter
        .phase("5 compare-and-set", &in_order, |i| async move {
            let revision = revisions[i]?;
            kv.update(&keys[i], Bytes::from_static(VALUE), revision)
                .await
                .ok()
        })
        .await;
    rows.push(row);

    let sequences = all(&in_order, put).await;
    let sequences = &sequences;
    let subject = format!("STREAM.MSG.DELETE.{}", kv.stream_name);
    let subject = &subject;
    let (_, row) = meter
        .phase("6 delete by seq, random order", &shuffled, |i| async move {
            let request = serde_json::json!({ "seq": sequences[i]?, "no_erase": true });
            let answer = js
                .request::<_, _, Response<serde_json::Value>>(subject.clone(), &request)
                .await
                .ok()?;
            match answer {
                Response::Ok(v) if v["success"] == true => Some(0),
                _ => None,
            }
        })
        .await;
    rows.push(row);

    all(&in_order, put).await;
    let (_, row) = meter
        .phase("7 purge by subject, random", &shuffled, |i| async move {
            let purged = kv
                .stream
                .purge()
                .filter(format!("{}{}", kv.prefix, keys[i]))
                .await
                .ok()?;
            (purged.success && purged.purged == 1).then_some(0)
        })
        .await;
    rows.push(row);
    Ok(rows)
}

fn print(rows: &[Row], measured: bool) {
    let per_op = |d: Option<Duration>, ops: usize| {
        d.map_or("n/a".to_owned(), |d| {
            format!("{:.1}", d.as_secs_f64() * 1e6 / ops as f64)
        })
    };
    if measured {
        println!(
            "{:<32}{:>8}{:>9}{:>10}{:>14}{:>16}{:>16}",
            "phase", "ops", "wall s", "ops/s", "server CPU s", "server µs/op", "client µs/op"
        );
    } else {
        println!(
            "{:<32}{:>8}{:>9}{:>10}{:>16}",
            "phase", "ops", "wall s", "ops/s", "client µs/op"
        );
    }
    for r in rows {
        let wall = r.wall.as_secs_f64();
        let head = format!(
            "{:<32}{:>8}{:>9.2}{:>10.0}",
            r.phase,
            r.ops,
            wall,
            r.ops as f64 / wall
        );
        if measured {
            println!(
                "{head}{:>14}{:>16}{:>16}",
                r.server
                    .map_or("n/a".to_owned(), |s| format!("{:.2}", s.as_secs_f64())),
                per_op(r.server, r.ops),
                per_op(r.client, r.ops)
            );
        } else {
            println!("{head}{:>16}", per_op(r.client, r.ops));
        }
    }
    for r in rows.iter().filter(|r| r.failed > 0) {
        println!("{}: {} of {} operations failed", r.phase, r.failed, r.ops);
    }
}

/// `--ops N` (or `--ops=N`) from the command line; other arguments (cargo
/// adds `--bench`) are ignored.
fn ops_argument() -> Result<usize, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut n = 20_000;
    for (i, a) in args.iter().enumerate() {
        let value = match a.strip_prefix("--ops") {
            Some("") => args.get(i + 1).map(String::as_str),
            Some(v) => v.strip_prefix('='),
            None => continue,
        };
        n = value
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("--ops wants a number of operations above 0, got {value:?}"))?;
    }
    Ok(n)
}

fn main() {
    // `cargo test --benches` runs this binary with no work to do.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let n = match ops_argument() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let addr: SocketAddr = SERVER.parse().unwrap();
    if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
        println!("nats_kv_ops: no NATS server answers on {SERVER}; skipped");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = async_nats::connect(format!("nats://{SERVER}"))
            .await
            .unwrap();
        let js = jetstream::new(client);
        let name = format!("bench_kv_ops_{:08x}", fastrand::u32(..));
        let meter = Meter::find();
        let measured = meter.server().is_some();
        println!(
            "bucket {name}; {n} operations per phase, {IN_FLIGHT} in flight; {}",
            if measured {
                format!("nats-server pid {}", meter.pids.join(" "))
            } else {
                "nats-server's pid not found: its CPU is not measured".to_owned()
            }
        );
        let rows = match make_bucket(&js, &name).await {
            Ok(kv) => measure(&js, &kv, &meter, n).await,
            Err(e) => Err(e),
        };
        // Deleted on the way out after a failure too.
        if let Err(e) = js.delete_stream(format!("KV_{name}")).await {
            println!("could not delete stream KV_{name}: {e}");
        }
        match rows {
            Ok(rows) => print(&rows, measured),
            Err(e) => panic!("nats_kv_ops: {e}"),
        }
    });
}
