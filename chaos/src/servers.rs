//! The broker servers a campaign starts itself, on free loopback ports
//! with their data on disk, so that it may kill and restart them: one NATS
//! server with JetStream file storage, a three-node JetStream cluster, or
//! one Redis server with an append-only file synced on every write.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Which servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BrokerKind {
    /// One `nats-server` with JetStream.
    Nats,
    /// One `redis-server`.
    Redis,
    /// Three `nats-server`s in one JetStream cluster; streams and
    /// Key-Value buckets replicated three times (nats-server 2.9.21 or
    /// later: `CHOREO_NATS_SERVER` names one that is not on `PATH`).
    NatsCluster,
}

impl BrokerKind {
    /// How many servers.
    pub fn nodes(self) -> usize {
        match self {
            BrokerKind::NatsCluster => 3,
            _ => 1,
        }
    }

    /// The URL scheme.
    pub fn scheme(self) -> &'static str {
        match self {
            BrokerKind::Redis => "redis",
            _ => "nats",
        }
    }

    /// The program that runs a server: `redis-server`, or
    /// [`nats_program`].
    fn program(self) -> String {
        match self {
            BrokerKind::Redis => "redis-server".into(),
            _ => nats_program(),
        }
    }
}

/// The environment variable naming the NATS server program, where the
/// one on `PATH` will not do (too old for a replicated cluster's stores).
pub const NATS_SERVER_VAR: &str = "CHOREO_NATS_SERVER";

/// The NATS server program: [`NATS_SERVER_VAR`], or `nats-server` on
/// `PATH`.
pub fn nats_program() -> String {
    std::env::var(NATS_SERVER_VAR)
        .ok()
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| "nats-server".into())
}

/// The version [`nats_program`] reports (`nats-server: v2.9.10` gives
/// `2.9.10`); `None` when it cannot be run.
pub fn nats_version() -> Option<String> {
    let out = Command::new(nats_program())
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.trim().rsplit(' ').next()?.trim_start_matches('v');
    (!version.is_empty()).then(|| version.to_owned())
}

/// A server that could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The program is missing or would not start.
    #[error("cannot start `{program}` ({reason}); install it (Debian: apt-get install nats-server redis-server) or put it on PATH")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        reason: std::io::Error,
    },
    /// It started but did not answer.
    #[error("{what} did not answer on 127.0.0.1:{port} within {waited:?}; its log: {log}")]
    NotReady {
        /// Which server.
        what: String,
        /// Its client port.
        port: u16,
        /// How long it was given.
        waited: Duration,
        /// Where its output is.
        log: String,
    },
    /// Its directory.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// One server of the set.
struct Node {
    name: String,
    port: u16,
    cluster_port: u16,
    dir: PathBuf,
    child: Option<Child>,
    starts: usize,
}

/// The running servers; dropping them kills them and removes their data.
pub struct Servers {
    kind: BrokerKind,
    root: PathBuf,
    nodes: Vec<Node>,
    keep: bool,
}

/// A free TCP port on loopback (the listener is dropped at once; a
/// server started right after takes it).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

impl Servers {
    /// Starts the servers of `kind` with their data under `root` (made
    /// if missing) and waits until they answer.
    pub fn start(kind: BrokerKind, root: &Path) -> Result<Servers, ServerError> {
        std::fs::create_dir_all(root)?;
        let mut nodes = Vec::new();
        for i in 0..kind.nodes() {
            let name = format!("n{}", i + 1);
            let dir = root.join(&name);
            std::fs::create_dir_all(&dir)?;
            nodes.push(Node {
                name,
                port: free_port()?,
                cluster_port: free_port()?,
                dir,
                child: None,
                starts: 0,
            });
        }
        let mut servers = Servers {
            kind,
            root: root.to_owned(),
            nodes,
            keep: false,
        };
        for i in 0..servers.nodes.len() {
            servers.spawn(i)?;
        }
        for i in 0..servers.nodes.len() {
            servers.wait_listening(i, Duration::from_secs(20))?;
        }
        Ok(servers)
    }

    /// Which servers these are.
    pub fn kind(&self) -> BrokerKind {
        self.kind
    }

    /// How many servers.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Never: there is at least one server.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The client address of server `i`.
    pub fn addr(&self, i: usize) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.nodes[i].port))
    }

    /// The name of server `i` (`n1`…), as a cluster knows it.
    pub fn name(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    /// The broker URL of clients that reach the servers at `addrs` (the
    /// servers' own, or proxies in front of them): on the cluster, every
    /// stream and bucket the deployment makes gets three replicas.
    pub fn url_via(&self, addrs: &[SocketAddr]) -> String {
        let list: Vec<String> = addrs
            .iter()
            .map(|a| format!("{}://{a}", self.kind.scheme()))
            .collect();
        match self.kind {
            BrokerKind::NatsCluster => format!("{}?replicas=3", list.join(",")),
            _ => list.join(","),
        }
    }

    /// The URL of the servers themselves.
    pub fn url(&self) -> String {
        let addrs: Vec<SocketAddr> = (0..self.len()).map(|i| self.addr(i)).collect();
        self.url_via(&addrs)
    }

    /// Kills server `i` with SIGKILL, as a crash or a lost machine does.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts server `i` again (on its port, with its data) and waits
    /// until it listens.
    pub fn restart(&mut self, i: usize) -> Result<(), ServerError> {
        self.kill(i);
        self.spawn(i)?;
        self.wait_listening(i, Duration::from_secs(30))
    }

    /// Whether server `i` is running.
    pub fn running(&mut self, i: usize) -> bool {
        self.nodes[i]
            .child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    fn spawn(&mut self, i: usize) -> Result<(), ServerError> {
        let program = self.kind.program();
        let routes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.cluster_port))
            .collect();
        let node = &mut self.nodes[i];
        node.starts += 1;
        let log = node.dir.join(format!("server-{}.log", node.starts));
        let mut cmd = Command::new(&program);
        match self.kind {
            BrokerKind::Redis => {
                // Every write is fsynced before the reply: a server killed
                // loses nothing it acknowledged.
                cmd.args(["--port", &node.port.to_string(), "--bind", "127.0.0.1"])
                    .args(["--dir", &node.dir.display().to_string()])
                    .args(["--appendonly", "yes", "--appendfsync", "always"])
                    .args(["--save", "", "--daemonize", "no", "--protected-mode", "no"]);
            }
            BrokerKind::Nats | BrokerKind::NatsCluster => {
                cmd.args(["-a", "127.0.0.1", "-p", &node.port.to_string()])
                    .args(["-n", &node.name, "-js"])
                    .args(["-sd", &node.dir.display().to_string()]);
                if self.kind == BrokerKind::NatsCluster {
                    // No cluster addresses advertised to clients: they
                    // reach the servers only where they are told to (the
                    // harness's proxies), so that a network fault reaches
                    // every connection.
                    cmd.args(["--cluster_name", "chaos"])
                        .args([
                            "--cluster",
                            &format!("nats://127.0.0.1:{}", node.cluster_port),
                        ])
                        .args(["--routes", &routes.join(",")])
                        .arg("--no_advertise");
                }
            }
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(File::create(&log)?)
            .stderr(File::create(log.with_extension("err"))?)
            .spawn()
            .map_err(|reason| ServerError::Spawn { program, reason })?;
        node.child = Some(child);
        Ok(())
    }

    fn wait_listening(&mut self, i: usize, within: Duration) -> Result<(), ServerError> {
        let deadline = Instant::now() + within;
        let addr = self.addr(i);
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            let exited = !self.running(i);
            if exited || Instant::now() >= deadline {
                let node = &self.nodes[i];
                return Err(ServerError::NotReady {
                    what: format!("{} {}", self.kind.program(), node.name),
                    port: node.port,
                    waited: within,
                    log: node
                        .dir
                        .join(format!("server-{}.log", node.starts))
                        .display()
                        .to_string(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Keeps the servers' data and logs when they are dropped (they are
    /// stopped all the same), to look into a campaign that failed.
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// Where the servers keep their data and logs.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

/// A connection to server `i` alone, or `None` when it does not answer
/// within a second.
async fn client_of(servers: &Servers, i: usize) -> Option<async_nats::Client> {
    async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(1))
        .connect(format!("nats://{}", servers.addr(i)))
        .await
        .ok()
}

/// The server (by index into `servers`) that leads JetStream stream
/// `stream` now, from the stream's cluster information; `None` when no
/// server answers or the stream has no leader (an election under way).
pub async fn stream_leader(servers: &Servers, stream: &str) -> Option<usize> {
    for i in 0..servers.len() {
        let Some(client) = client_of(servers, i).await else {
            continue;
        };
        let js = async_nats::jetstream::new(client);
        let Ok(mut s) = js.get_stream(stream).await else {
            continue;
        };
        let Ok(info) = s.info().await else {
            continue;
        };
        let leader = info.cluster.as_ref().and_then(|c| c.leader.clone())?;
        return (0..servers.len()).find(|j| servers.name(*j) == leader);
    }
    None
}

/// Whether the cluster is whole: JetStream answers on every server (each
/// knows a metadata leader), and stream `stream` has a leader with every
/// other server a current replica. `false` when a server does not answer.
pub async fn cluster_whole(servers: &Servers, stream: &str) -> bool {
    let mut info = None;
    for i in 0..servers.len() {
        let Some(client) = client_of(servers, i).await else {
            return false;
        };
        if !jetstream_answers(&client).await {
            return false;
        }
        if info.is_none() {
            let js = async_nats::jetstream::new(client);
            let Ok(mut s) = js.get_stream(stream).await else {
                return false;
            };
            let Ok(i) = s.info().await else {
                return false;
            };
            info = Some(i.clone());
        }
    }
    let Some(cluster) = info.and_then(|i| i.cluster) else {
        return false;
    };
    cluster.leader.is_some()
        && cluster.replicas.len() + 1 == servers.len()
        && cluster.replicas.iter().all(|r| r.current && !r.offline)
}

/// Waits (up to `within` in all) until every server's JetStream answers
/// and, on a cluster, until a stream replicated on every server can be
/// placed: a metadata leader may answer before it knows every peer, and a
/// stream made then is refused ("no suitable peers for placement"). The
/// error names what did not become ready.
pub async fn ready(servers: &Servers, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    for i in 0..servers.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if !jetstream_ready(servers, i, left).await {
            return Err(format!(
                "JetStream on {} did not become ready",
                servers.name(i)
            ));
        }
    }
    if servers.len() < 2 {
        return Ok(());
    }
    let mut last = String::from("no server answered");
    while Instant::now() < deadline {
        match place_probe(servers).await {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!(
        "the cluster could not place a stream on all {} servers: {last}",
        servers.len()
    ))
}

/// Makes and removes a stream replicated on every server.
async fn place_probe(servers: &Servers) -> Result<(), String> {
    let client = client_of(servers, 0)
        .await
        .ok_or_else(|| format!("{} does not answer", servers.name(0)))?;
    let js = async_nats::jetstream::new(client);
    let name = "chaos_placement_probe";
    js.create_stream(async_nats::jetstream::stream::Config {
        name: name.into(),
        subjects: vec!["chaos.placement.probe".into()],
        num_replicas: servers.len(),
        storage: async_nats::jetstream::stream::StorageType::Memory,
        ..Default::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    js.delete_stream(name).await.map_err(|e| e.to_string())?;
    Ok(())
}

/// Waits (up to `within`) until JetStream answers on server `i` with a
/// leader for its metadata (a cluster elects one after a start), by
/// asking for the account's information.
pub async fn jetstream_ready(servers: &Servers, i: usize, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(client) = client_of(servers, i).await {
            if jetstream_answers(&client).await {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// Whether JetStream answers on `client`'s server with the account's
/// information, which needs a metadata leader in a cluster.
async fn jetstream_answers(client: &async_nats::Client) -> bool {
    let Ok(answer) = client.request("$JS.API.INFO", bytes::Bytes::new()).await else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&answer.payload)
        .is_ok_and(|v| v.get("error").is_none())
}
