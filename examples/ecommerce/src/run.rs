//! Running the shop: the HTTP ingress in front of the generated one, the
//! participants, the tracker, and the driver that places orders over HTTP
//! and waits for them to settle.

use crate::data::{Catalogue, DataOptions};
use crate::ecommerce::{self, Key, PlaceOrder};
use crate::participants::Shop;
use crate::verify::OrderRecord;
use choreo_runtime::http::axum;
use choreo_runtime::progress::{InstanceTracker, TrackerOptions};
use choreo_runtime::service::{ServiceError, ServiceHandle, ServiceStats};
use choreo_runtime::sync::Recover;
use choreo_runtime::{BrokerError, SharedBroker};
use example_support::books::BooksError;
use example_support::client::ClientError;
use example_support::monitor::Beside;
use example_support::settle::describe_progress;
use example_support::{
    serve, Deployment, DeploymentError, HttpClient, Server, Settler, StatsWriter, Summary,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Why a run could not go on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The deployment options, or the broker is not there.
    #[error(transparent)]
    Deployment(#[from] DeploymentError),
    /// The broker refused a subscription.
    #[error("broker: {0}")]
    Broker(#[from] BrokerError),
    /// A participant did not start or stop.
    #[error("service: {0}")]
    Service(#[from] ServiceError),
    /// The ingress could not listen.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The ingress did not take an order.
    #[error("placing an order: {0}")]
    Client(#[from] ClientError),
    /// The books (`--db`) cannot be opened or read.
    #[error("{0}")]
    Books(#[from] BooksError),
}

/// The HTTP ingress: the generated routes (`POST /orders`,
/// `GET /orders/{id}`), behind a check of each order against the
/// catalogue, so that an order of a product or by a customer that does not
/// exist is answered `400` with the reason and never reaches the broker.
pub fn ingress(
    catalogue: Arc<Catalogue>,
    commands: ecommerce::Commands,
    tracker: Arc<InstanceTracker>,
) -> axum::Router {
    ecommerce::http::router(commands, tracker)
        .layer(axum::middleware::from_fn_with_state(catalogue, check_order))
        // Outermost, so that the check reads a body under the same limit.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
}

/// The body limit of an order (they are a few hundred bytes): the
/// generated ingress's default, so that the check in front of it answers
/// a larger body as it would.
const MAX_BODY: usize = choreo_runtime::http::DEFAULT_BODY_LIMIT;

async fn check_order(
    axum::extract::State(catalogue): axum::extract::State<Arc<Catalogue>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{Method, StatusCode};
    if request.method() != Method::POST || request.uri().path() != "/orders" {
        return next.run(request).await;
    }
    use axum::extract::FromRequest;
    let (parts, body) = request.into_parts();
    let read = axum::body::Bytes::from_request(
        axum::extract::Request::from_parts(parts.clone(), body),
        &(),
    )
    .await;
    // Past the limit: `413`, as the generated route would answer.
    let bytes = match choreo_runtime::http::read_body(read, MAX_BODY) {
        Ok(b) => b,
        Err(response) => return response,
    };
    // A body that is not a PlaceOrder at all is left to the generated
    // route, which names what is wrong with it.
    if let Ok(order) = serde_json::from_slice::<PlaceOrder>(&bytes) {
        if let Err(reason) = catalogue.validate(&order) {
            return choreo_runtime::http::error(StatusCode::BAD_REQUEST, reason);
        }
    }
    next.run(axum::extract::Request::from_parts(parts, bytes.into()))
        .await
}

/// A running deployment, or the part of one this process runs: the
/// participants (all, one, or none), and for the ingress the tracker and
/// the HTTP server.
pub struct System {
    /// The data.
    pub catalogue: Arc<Catalogue>,
    /// The participants' state (only the ones started here change).
    pub shop: Shop,
    /// The broker.
    pub broker: SharedBroker,
    /// What the participants here keep their inbox and joins in (`None`
    /// when none runs here).
    pub stores: Option<String>,
    /// What the participants here keep their books in (`memory`, or
    /// PostgreSQL with `--db`; `None` when none runs here).
    pub books: Option<String>,
    handles: Vec<ServiceHandle>,
    gateway: Option<Gateway>,
    monitor: Option<Beside>,
    /// `--stats`: the participants' counts written to a file.
    stats: Option<StatsWriter>,
}

struct Gateway {
    tracker: Arc<InstanceTracker>,
    server: Server,
    // `--token`, which the run's own client sends.
    token: Option<String>,
}

/// What to start in a [`System`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role<'a> {
    /// Every participant and the ingress (one process, usually on the
    /// memory broker).
    Everything,
    /// One participant.
    Participant(&'a str),
    /// The ingress and the tracker alone.
    Ingress,
}

impl System {
    /// Connects to the deployment's broker and starts `role`.
    pub async fn start(
        deployment: &Deployment,
        data: DataOptions,
        role: Role<'_>,
    ) -> Result<Self, Error> {
        let broker = deployment.broker().await?;
        Self::start_on(broker, deployment, data, role).await
    }

    /// Starts `role` on a broker already connected.
    pub async fn start_on(
        broker: SharedBroker,
        deployment: &Deployment,
        data: DataOptions,
        role: Role<'_>,
    ) -> Result<Self, Error> {
        let catalogue = Arc::new(Catalogue::generate(data));
        let only = match role {
            Role::Participant(p) => Some(p),
            _ => None,
        };
        // Only the participants that keep books there connect to `--db`.
        let books = match role {
            Role::Everything | Role::Participant("Inventory" | "Payment") => {
                deployment.books().await?
            }
            Role::Participant(_) | Role::Ingress => None,
        };
        let shop = Shop::open(catalogue.clone(), books.as_ref(), only).await?;
        // The monitor goes beside the ingress, and starts first: it reads
        // from the oldest message the broker holds, so it misses nothing.
        let monitor = match (role, deployment.monitor) {
            (Role::Everything | Role::Ingress, Some(addr)) => Some(
                Beside::start(
                    crate::SPEC_NAME,
                    crate::SPEC,
                    broker.clone(),
                    &deployment.prefix,
                    addr,
                )
                .await?,
            ),
            _ => None,
        };
        let options = deployment.service_options();
        // Participants first: their groups must exist before the first
        // command is published.
        let (handles, stores) = match role {
            Role::Everything | Role::Participant(_) => {
                let stores = deployment.stores().await?;
                let described = stores.description.clone();
                let handles = shop.start(broker.clone(), stores, options, only).await?;
                (handles, Some(described))
            }
            Role::Ingress => (Vec::new(), None),
        };
        let stats =
            deployment.stats_writer(handles.iter().map(ServiceHandle::stats_reader).collect())?;
        let gateway = match role {
            Role::Participant(_) => None,
            Role::Everything | Role::Ingress => {
                let tracker = Arc::new(
                    InstanceTracker::start(
                        ecommerce::topology(),
                        broker.clone(),
                        TrackerOptions {
                            topics: deployment.topics(),
                            ..TrackerOptions::default()
                        },
                    )
                    .await?,
                );
                let commands =
                    ecommerce::Commands::with_topics(broker.clone(), deployment.topics());
                let router = ingress(catalogue.clone(), commands, tracker.clone());
                let server = serve(deployment.guard(router), deployment.listen).await?;
                Some(Gateway {
                    tracker,
                    server,
                    token: deployment.token.as_ref().map(|t| t.as_str().to_string()),
                })
            }
        };
        let books = stores.as_ref().map(|_| shop.books(only));
        Ok(System {
            catalogue,
            shop,
            broker,
            stores,
            books,
            handles,
            gateway,
            monitor,
            stats,
        })
    }

    /// The monitor's page (`http://ADDR/`), if this process serves it
    /// (`--monitor`).
    pub fn monitor_url(&self) -> Option<String> {
        self.monitor.as_ref().map(Beside::url)
    }

    /// The ingress's URL (`http://127.0.0.1:PORT`), if this process runs it.
    pub fn base_url(&self) -> Option<String> {
        self.gateway.as_ref().map(|g| g.server.base_url())
    }

    /// The tracker, if this process runs the ingress.
    pub fn tracker(&self) -> Option<&Arc<InstanceTracker>> {
        self.gateway.as_ref().map(|g| &g.tracker)
    }

    /// Places the first `n` orders of the data through the ingress over
    /// HTTP, `concurrency` at a time, and waits up to `timeout` for them to
    /// settle. An order answered `503` (not sent: the broker is away) is
    /// placed again, after a back-off, until `timeout` from the start;
    /// the summary counts those tries ([`Summary::retried`]). Needs the
    /// ingress in this process.
    pub async fn drive(
        &self,
        n: usize,
        concurrency: usize,
        timeout: Duration,
    ) -> Result<(Summary, Vec<OrderRecord>), Error> {
        let (Some(base), Some(tracker)) = (self.base_url(), self.tracker()) else {
            return Err(Error::Deployment(DeploymentError::Options(
                "placing orders needs the ingress in this process".into(),
            )));
        };
        let orders = self.catalogue.orders(n);
        // Started before the first order, so that none settles unseen.
        let settler = Settler::start(tracker, n as u64, "orders");
        let token = self.gateway.as_ref().and_then(|g| g.token.as_deref());
        let client = HttpClient::new(base)
            .with_token(token)
            .retry_until(tokio::time::Instant::now() + timeout);
        let keys = place(&client, &orders, concurrency).await?;
        let texts: Vec<String> = keys.iter().map(ToString::to_string).collect();
        let mut summary = settler.wait(&texts, timeout).await;
        summary.retried = client.retried();
        // Where the orders that did not settle stopped, for the logs.
        for key in summary.unsettled.iter().take(20) {
            match tracker.instance(key) {
                Some(p) => eprintln!("not settled: {}", describe_progress(&p)),
                None => eprintln!("not settled: {key}: the tracker saw none of its events"),
            }
        }
        let records = keys
            .iter()
            .zip(orders)
            .map(|(key, order)| OrderRecord {
                key: *key,
                amount: self
                    .catalogue
                    .price(order.product_id, order.quantity)
                    .unwrap_or_default(),
                outcome: settler.ending(&key.to_string()).map(|e| e.event),
                order,
            })
            .collect();
        Ok((summary, records))
    }

    /// Stops what runs here: the ingress, then the participants (each
    /// finishes what it took; with `--stats` their final counts are
    /// written), then the broker.
    pub async fn stop(self) -> Result<Vec<ServiceStats>, Error> {
        if let Some(m) = self.monitor {
            m.stop().await?;
        }
        if let Some(g) = self.gateway {
            g.server.shutdown().await?;
            if let Ok(tracker) = Arc::try_unwrap(g.tracker) {
                tracker.shutdown().await;
            }
        }
        let mut stats = Vec::new();
        for h in self.handles {
            stats.push(h.shutdown().await?);
        }
        if let Some(writer) = self.stats {
            if let Err(e) = writer.stop().await {
                eprintln!("warning: --stats: {e}");
            }
        }
        self.broker.close(Duration::from_secs(5)).await?;
        Ok(stats)
    }
}

/// POSTs `orders` to the ingress `concurrency` at a time; the instance
/// keys it gave them, in the same order.
pub async fn place(
    client: &HttpClient,
    orders: &[PlaceOrder],
    concurrency: usize,
) -> Result<Vec<Key>, Error> {
    let orders: Arc<[PlaceOrder]> = orders.into();
    let next = Arc::new(AtomicUsize::new(0));
    let keys = Arc::new(Mutex::new(vec![Key::nil(); orders.len()]));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.clamp(1, orders.len().max(1)) {
        let (client, orders, next, keys) =
            (client.clone(), orders.clone(), next.clone(), keys.clone());
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(order) = orders.get(i) else {
                    return Ok::<(), Error>(());
                };
                let accepted = client.post("/orders", order).await?;
                let key = accepted.key.parse::<Key>().map_err(|e| {
                    DeploymentError::Options(format!("the ingress answered a bad key: {e}"))
                })?;
                if let Some(slot) = lock(&keys).get_mut(i) {
                    *slot = key;
                }
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        match done {
            Ok(r) => r?,
            Err(e) => return Err(Error::Io(std::io::Error::other(e))),
        }
    }
    let keys = lock(&keys).clone();
    Ok(keys)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.locked()
}
