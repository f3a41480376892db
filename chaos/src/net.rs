//! A loopback TCP proxy between the services and one broker server, that
//! a campaign turns bad: latency on every chunk, every connection reset
//! and new ones refused, or traffic held (a blackhole) for seconds.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

/// What the proxy does to traffic now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Forwards at once.
    Clear,
    /// Holds every chunk this long before forwarding it.
    Latency(Duration),
    /// Forwards nothing and accepts connections it never serves: the
    /// clients' requests time out, as when a link drops packets.
    Blackhole,
    /// Resets every connection and refuses new ones.
    Refusing,
}

/// A running proxy; dropping it stops it and every connection through it.
pub struct Proxy {
    addr: SocketAddr,
    condition: watch::Sender<Condition>,
    /// Bumped by each reset: connections opened before it end.
    epoch: watch::Sender<u64>,
    connections: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (condition, _) = watch::channel(Condition::Clear);
        let (epoch, _) = watch::channel(0u64);
        let connections = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let condition = condition.subscribe();
            let epoch = epoch.clone();
            let connections = connections.clone();
            async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    if *condition.borrow() == Condition::Refusing {
                        reset(client);
                        continue;
                    }
                    connections.fetch_add(1, Ordering::Relaxed);
                    let (condition, cut) = (condition.clone(), epoch.subscribe());
                    tokio::spawn(forward(client, target, condition, cut));
                }
            }
        });
        Ok(Proxy {
            addr,
            condition,
            epoch,
            connections,
            task,
        })
    }

    /// Where clients connect instead of the server.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted and forwarded so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Sets what the proxy does from now on. `Refusing` also resets every
    /// open connection.
    pub fn set(&self, condition: Condition) {
        if condition == Condition::Refusing {
            self.epoch.send_modify(|e| *e += 1);
        }
        self.condition.send_replace(condition);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.epoch.send_modify(|e| *e += 1);
    }
}

/// Closes `stream` with a reset rather than a polite close: in-flight
/// requests are lost, as in a partition.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
}

async fn forward(
    client: TcpStream,
    target: SocketAddr,
    condition: watch::Receiver<Condition>,
    mut cut: watch::Receiver<u64>,
) {
    let Ok(server) = TcpStream::connect(target).await else {
        reset(client);
        return;
    };
    // Whenever the proxy lets go of a connection, it resets it (a cut
    // drops both sides mid-stream).
    for s in [&client, &server] {
        let _ = s.set_nodelay(true);
        let _ = s.set_zero_linger();
    }
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let up = pump(cr, sw, condition.clone());
    let down = pump(sr, cw, condition);
    tokio::select! {
        _ = async { tokio::join!(up, down) } => {}
        _ = cut.changed() => {}
    }
}

/// Copies one direction, under the proxy's condition.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    condition: watch::Receiver<Condition>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Held while the link is down; delayed while it is slow.
        loop {
            let now = *condition.borrow();
            match now {
                Condition::Clear => break,
                Condition::Latency(d) => {
                    tokio::time::sleep_until(Instant::now() + d).await;
                    break;
                }
                Condition::Blackhole => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Condition::Refusing => return,
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
