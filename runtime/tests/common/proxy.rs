//! A loopback TCP proxy that a test puts between a service and its server,
//! to cut the connection: every open connection is reset and new ones are
//! refused for a while, as a network partition or a restarting server
//! does, without touching the server itself.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy; dropping it stops it.
pub struct Proxy {
    addr: SocketAddr,
    /// Bumped by each cut: connections opened before it end.
    epoch: watch::Sender<u64>,
    refusing: Arc<AtomicBool>,
    connections: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (epoch, _) = watch::channel(0u64);
        let refusing = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let epoch = epoch.clone();
            let refusing = refusing.clone();
            let connections = connections.clone();
            async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        continue;
                    };
                    if refusing.load(Ordering::SeqCst) {
                        // Closed at once: the client sees the server go.
                        let _ = client.set_zero_linger();
                        drop(client);
                        continue;
                    }
                    connections.fetch_add(1, Ordering::SeqCst);
                    let mut cut = epoch.subscribe();
                    tokio::spawn(async move {
                        let Ok(mut server) = TcpStream::connect(target).await else {
                            return;
                        };
                        let mut client = client;
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        tokio::select! {
                            _ = copy_bidirectional(&mut client, &mut server) => {}
                            _ = cut.changed() => {
                                // A reset, not a polite close: in-flight
                                // requests are lost, as in a partition.
                                let _ = client.set_zero_linger();
                                let _ = server.set_zero_linger();
                            }
                        }
                    });
                }
            }
        });
        Proxy {
            addr,
            epoch,
            refusing,
            connections,
            task,
        }
    }

    /// Where clients connect instead of the server.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many connections it has forwarded so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }

    /// Resets every open connection and refuses new ones for `down`, then
    /// forwards again.
    pub async fn cut_for(&self, down: Duration) {
        self.refusing.store(true, Ordering::SeqCst);
        self.epoch.send_modify(|e| *e += 1);
        tokio::time::sleep(down).await;
        self.refusing.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.epoch.send_modify(|e| *e += 1);
    }
}
