//! The campaign's network faults, on a loopback echo server: latency
//! delays, a blackhole holds traffic (and lets it through afterwards, as a
//! link that comes back), and a reset ends open connections and refuses
//! new ones until cleared.
#![allow(clippy::unwrap_used)]

use choreo_chaos::net::{Condition, Proxy};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn echo_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

async fn round_trip(s: &mut TcpStream, within: Duration) -> Option<Duration> {
    let t = Instant::now();
    s.write_all(b"ping").await.ok()?;
    let mut buf = [0u8; 4];
    match tokio::time::timeout(within, s.read_exact(&mut buf)).await {
        Ok(Ok(_)) if &buf == b"ping" => Some(t.elapsed()),
        _ => None,
    }
}

#[tokio::test]
async fn latency_blackhole_and_reset_do_what_they_say() {
    let proxy = Proxy::start(echo_server().await).await.unwrap();
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    let long = Duration::from_secs(5);
    assert!(round_trip(&mut s, long).await.is_some());
    assert_eq!(proxy.connections(), 1);

    // Each direction waits: a round trip takes at least twice the latency.
    proxy.set(Condition::Latency(Duration::from_millis(150)));
    let took = round_trip(&mut s, long).await.unwrap();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    proxy.set(Condition::Clear);

    // Nothing comes back while the link is a blackhole; what was sent is
    // delivered once it clears.
    proxy.set(Condition::Blackhole);
    assert!(round_trip(&mut s, Duration::from_millis(400))
        .await
        .is_none());
    proxy.set(Condition::Clear);
    let mut buf = [0u8; 4];
    tokio::time::timeout(long, s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"ping");

    // A reset ends the connection, and new ones are refused until cleared.
    proxy.set(Condition::Refusing);
    let mut buf = [0u8; 4];
    let read = tokio::time::timeout(long, s.read(&mut buf)).await.unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let mut again = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(round_trip(&mut again, Duration::from_millis(500))
        .await
        .is_none());
    proxy.set(Condition::Clear);
    let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(round_trip(&mut fresh, long).await.is_some());
}
