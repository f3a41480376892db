//! The monitor beside an example: its flow from the example's spec, and
//! for tests, a monitor watching a broker from the start and a wait until
//! it counts every instance settled.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use choreo_compiler::{check, CheckedSpec, SourceFile};
use choreo_monitor::http::{router, Site};
use choreo_monitor::{Flow, Monitor, MonitorOptions, Summary};
use choreo_runtime::broker::{BrokerError, SharedBroker, StartPosition};
use choreo_runtime::service::Topics;

use crate::{serve, DeploymentError, Server};

/// The flow of an example's spec. The examples check their spec at build
/// time, so a spec that does not check here is a bug of the example, not
/// of its user: it is reported as an error all the same.
pub fn flow(name: &str, text: &str) -> Result<Flow, String> {
    checked(name, text).map(|spec| Flow::new(&spec))
}

fn checked(name: &str, text: &str) -> Result<CheckedSpec, String> {
    check(&SourceFile::new(name, text))
        .into_checked()
        .map(|(spec, _)| spec)
        .map_err(|_| format!("the spec `{name}` does not check"))
}

/// A monitor of `flow` on `broker`, for the deployment under `prefix`,
/// watching from the oldest message the broker holds.
pub async fn watch(flow: Flow, broker: SharedBroker, prefix: &str) -> Result<Monitor, BrokerError> {
    let options = MonitorOptions {
        topics: Topics::new(prefix),
        start: StartPosition::Earliest,
        ..MonitorOptions::default()
    };
    Monitor::start(flow, broker, options).await
}

/// Waits until `monitor` counts `n` instances settled or dead-lettered, or
/// `timeout` passes, and returns the summary then.
pub async fn settled(monitor: &Monitor, n: u64, timeout: Duration) -> Summary {
    let started = Instant::now();
    loop {
        let s = monitor.summary();
        let count = |state: &str| s.instances.get(state).copied().unwrap_or(0);
        let done = count("succeeded") + count("failed") + count("dead_lettered");
        if done >= n || started.elapsed() > timeout {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The monitor served beside an example's ingress (`--monitor ADDR`).
pub struct Beside {
    site: Site,
    server: Server,
}

impl Beside {
    /// Starts a monitor of the spec `text` (named `name`) on `broker` for
    /// the deployment under `prefix`, watching from the oldest message the
    /// broker holds, and serves its page, API and metrics on `addr`.
    pub async fn start(
        name: &str,
        text: &str,
        broker: SharedBroker,
        prefix: &str,
        addr: SocketAddr,
    ) -> Result<Beside, DeploymentError> {
        let spec = checked(name, text).map_err(DeploymentError::Options)?;
        let monitor = watch(Flow::new(&spec), broker, prefix).await.map_err(|e| {
            DeploymentError::Options(format!("the monitor cannot follow the broker: {e}"))
        })?;
        let monitor = Arc::new(monitor);
        let site = Site::new(monitor, &spec);
        let server = serve(router(site.clone()), addr)
            .await
            .map_err(|e| DeploymentError::Options(format!("the monitor cannot serve: {e}")))?;
        Ok(Beside { site, server })
    }

    /// The monitor.
    pub fn monitor(&self) -> &Arc<Monitor> {
        self.site.monitor()
    }

    /// `http://ADDR/`, its page.
    pub fn url(&self) -> String {
        format!("{}/", self.server.base_url())
    }

    /// Stops serving (live feeds end first, so that no open page holds
    /// the server up), then following.
    pub async fn stop(self) -> std::io::Result<()> {
        self.site.close();
        self.server.shutdown().await?;
        self.site.monitor().shutdown().await;
        Ok(())
    }
}
