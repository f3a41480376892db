//! The monitor over HTTP: a JSON API fixed for scripts, Prometheus
//! metrics, a live feed of server-sent events, and a web page that shows
//! the spec's flow diagram with live counts, the stuck and violated
//! instances, and each instance's path and sequence.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the page; `GET /instances/{key}` the page of one instance |
//! | `GET /api/summary` | [`Summary`](crate::Summary) as JSON |
//! | `GET /api/instances?state=&limit=` | the newest instances first, each with its key, state and reason |
//! | `GET /api/instances/{key}` | one instance: timeline, what it waits for, violations |
//! | `GET /api/live` | server-sent events: a snapshot every half second |
//! | `GET /metrics` | the counts in Prometheus' text format |
//!
//! Everything the page needs is compiled in: deployments are often
//! offline, so nothing comes from a CDN.

mod api;
mod live;
mod metrics;
mod page;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::routing::get;
use axum::Router;
use choreo_compiler::CheckedSpec;
use tokio::sync::watch;

use crate::Monitor;

/// What the HTTP side serves: one monitor and its spec's diagram.
#[derive(Clone)]
pub struct Site {
    inner: Arc<Inner>,
}

struct Inner {
    monitor: Arc<Monitor>,
    /// The page, with the diagram and the spec's name in it.
    page: String,
    /// Set when the server stops: live feeds end, so that a graceful
    /// shutdown does not wait for browsers that never hang up.
    closed: watch::Sender<bool>,
    /// The live feed's last snapshot, as JSON, and when it was made.
    snapshot: Mutex<Option<(Instant, Arc<str>)>>,
}

impl Site {
    /// The site of `monitor`, which watches a deployment of `spec`.
    pub fn new(monitor: Arc<Monitor>, spec: &CheckedSpec) -> Site {
        let page = page::render(spec);
        let (closed, _) = watch::channel(false);
        Site {
            inner: Arc::new(Inner {
                monitor,
                page,
                closed,
                snapshot: Mutex::new(None),
            }),
        }
    }

    /// The monitor served.
    pub fn monitor(&self) -> &Arc<Monitor> {
        &self.inner.monitor
    }

    /// Ends every live feed, now and from now on: call it before a
    /// graceful shutdown of a server that serves [`router`].
    pub fn close(&self) {
        self.inner.closed.send_replace(true);
    }
}

/// Every route of the site.
pub fn router(site: Site) -> Router {
    Router::new()
        .route("/", get(page::index))
        .route("/instances/{key}", get(page::index))
        .route("/assets/app.js", get(page::script))
        .route("/assets/style.css", get(page::style))
        .route("/api/summary", get(api::summary))
        .route("/api/instances", get(api::instances))
        .route("/api/instances/{key}", get(api::instance))
        .route("/api/live", get(live::feed))
        .route("/metrics", get(metrics::metrics))
        .fallback(api::not_found)
        .with_state(site)
}

/// Serves `site` on `listener` until `shutdown` completes; then ends the
/// live feeds and finishes the requests under way.
pub async fn serve(
    site: Site,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let closing = site.clone();
    axum::serve(listener, router(site))
        .with_graceful_shutdown(async move {
            shutdown.await;
            closing.close();
        })
        .await
}

/// Completes on Ctrl-C or SIGTERM: how a server is asked to stop.
///
/// The signals are caught from the moment this is called, not from the
/// first poll: a service calls it before it says it is ready, so that a
/// supervisor's SIGTERM sent right after that line stops it cleanly
/// instead of killing it with the signal's default action.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (term, interrupt) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        tokio::select! {
            () = next_signal(term) => {},
            () = next_signal(interrupt) => {},
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Waits for the next signal of `listener`; forever when it could not be
/// set up, so that the other signal still stops the server.
#[cfg(unix)]
async fn next_signal(listener: Option<tokio::signal::unix::Signal>) {
    match listener {
        Some(mut listener) => {
            listener.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}
