//! Least privilege from the spec: a NATS server and a Redis server, each
//! started here on a free loopback port with the users that `choreoc
//! export permissions` derives from `ecommerce.choreo`, run the shop with
//! every participant and the ingress in a process of its own under its own
//! user. Every order settles, the servers refused nothing the services
//! did, and a client with a participant's credentials that publishes an
//! event the participant does not emit is refused by the server.
//!
//! Needs `nats-server` (JetStream; 2.9 or later) and `redis-server` (7.0
//! or later, for ACL selectors) on the `PATH` or in /usr/sbin or /usr/bin;
//! skips without them unless CHOREO_REQUIRE_BROKERS=1.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use choreo_compiler::export::permissions::nats::NatsPermissions;
use choreo_compiler::export::permissions::redis::{password_hash, RedisAcl};
use choreo_compiler::export::permissions::{
    password_variable, Deployment, Usage, ADMIN_USER, INGRESS_USER,
};
use choreo_compiler::{check, SourceFile};
use choreo_runtime::broker::NatsBroker;
use ecommerce::PARTICIPANTS;
use example_support::testing::{skip, unique_prefix, ServiceProcess};
use futures::TryStreamExt;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `name` on the `PATH`, or where Debian puts it (`/usr/sbin` is not on
/// every user's `PATH`).
fn program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into()])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
const ORDERS: usize = 60;

/// The event a participant does not emit that the test tries to publish
/// as Payment: Inventory's.
const FORGED: &str = "Ecommerce.v1.StockReserved";

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ecommerce"))
}

fn usage() -> Usage {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ecommerce.choreo");
    let text = std::fs::read_to_string(&path).unwrap();
    let (spec, _) = check(&SourceFile::new("ecommerce.choreo", text))
        .into_checked()
        .unwrap();
    Usage::of(&spec, &Deployment::default())
}

/// Every user: the participants, the ingress and the admin.
fn users() -> Vec<String> {
    PARTICIPANTS
        .iter()
        .map(|p| p.to_string())
        .chain([INGRESS_USER.to_owned(), ADMIN_USER.to_owned()])
        .collect()
}

/// A password of the run's own for `user` (letters and digits only, so
/// that it goes into a URL as it is).
fn password(user: &str) -> String {
    static SALT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let salt = SALT.get_or_init(|| unique_prefix().replace(['-', '.'], ""));
    format!("pw{}{salt}", user.to_lowercase())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A directory of the test's own, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(what: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "choreo-permissions-{what}-{}",
            unique_prefix().trim_end_matches('.')
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server process, killed when dropped; its output goes to `log`.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn start(command: &mut Command, log: PathBuf, port: u16) -> Server {
        let out = std::fs::File::create(&log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let server = Server { child, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the server did not listen on {port}: {}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts every participant under its own user (`url` of the user's name)
/// and waits until each runs.
fn start_participants(url: impl Fn(&str) -> String) -> Vec<ServiceProcess> {
    let mut started = Vec::new();
    for p in PARTICIPANTS {
        let u = url(p);
        started.push(ServiceProcess::spawn(p, bin(), &["--broker", &u, "--service", p]).unwrap());
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for s in &mut started {
        while !s.stdout_so_far().contains("running on") {
            assert!(s.running(), "`{}` exited before it ran", s.name());
            assert!(Instant::now() < deadline, "`{}` did not start", s.name());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    started
}

/// Places the orders through the ingress under its own user, and checks
/// that every one settled and every participant stops cleanly.
fn run_the_shop(services: Vec<ServiceProcess>, ingress_url: &str) {
    let orders = ORDERS.to_string();
    let driver = ServiceProcess::spawn(
        "ingress",
        bin(),
        &[
            "--broker",
            ingress_url,
            "--service",
            "ingress",
            "--orders",
            &orders,
        ],
    )
    .unwrap()
    .wait(Duration::from_secs(90))
    .unwrap();
    assert!(driver.success, "{}\n{}", driver.stdout, driver.stderr);
    let last = driver.stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!("settled {ORDERS}/{ORDERS}: OrderCompleted ")),
        "{last}"
    );
    for s in services {
        let name = s.name().to_owned();
        let done = s.stop(Duration::from_secs(30)).unwrap();
        assert!(done.success, "{name}: {}", done.stderr);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn on_nats_every_participant_under_its_own_user_settles_and_cannot_forge() {
    let Some(nats_server) = program("nats-server") else {
        skip("no nats-server");
        return;
    };
    let dir = Scratch::new("nats");
    let usage = usage();
    let perms = NatsPermissions::of(&usage);
    std::fs::write(dir.0.join("users.conf"), perms.render_config(&usage)).unwrap();
    let port = free_port();
    let conf = dir.0.join("server.conf");
    std::fs::write(
        &conf,
        format!(
            "listen: 127.0.0.1:{port}\njetstream {{ store_dir: {:?} }}\ninclude \"users.conf\"\n",
            dir.0.join("js").display().to_string()
        ),
    )
    .unwrap();
    let mut command = Command::new(nats_server);
    command.arg("-c").arg(&conf);
    for u in users() {
        command.env(password_variable(&u), password(&u));
    }
    let server = Server::start(&mut command, dir.0.join("server.log"), port);
    let url = |user: &str| format!("nats://{user}:{}@127.0.0.1:{port}", password(user));

    // The admin makes the streams and buckets, running every participant
    // and the ingress once.
    let admin = ServiceProcess::spawn(
        "admin",
        bin(),
        &["--broker", &url(ADMIN_USER), "--orders", "0"],
    )
    .unwrap()
    .wait(Duration::from_secs(60))
    .unwrap();
    assert!(admin.success, "{}\n{}", admin.stdout, admin.stderr);
    runtime().block_on(async {
        let b = NatsBroker::connect(&url(ADMIN_USER)).await.unwrap();
        let names = perms
            .setup
            .streams
            .iter()
            .map(|s| s.name.clone())
            .chain(perms.setup.buckets.iter().map(|b| format!("KV_{b}")));
        for name in names {
            let info = b.jetstream().get_stream(&name).await;
            assert!(info.is_ok(), "the setup's stream `{name}` is not there");
        }
        // The services make their own consumers (their permissions pin
        // each one's filter): those of the admin's run go.
        for s in &perms.setup.streams {
            let stream = b.jetstream().get_stream(&s.name).await.unwrap();
            let consumers: Vec<String> = stream.consumer_names().try_collect().await.unwrap();
            for c in consumers {
                stream.delete_consumer(&c).await.unwrap();
            }
        }
    });

    let services = start_participants(url);
    run_the_shop(services, &url(INGRESS_USER));
    // Nothing the services did was refused.
    let log = server.log();
    assert!(
        !log.contains("Violation"),
        "the server refused something a service needed:\n{log}"
    );

    // Payment's credentials cannot publish Inventory's event.
    let refused = runtime().block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let client = async_nats::ConnectOptions::with_user_and_password(
            "Payment".into(),
            password("Payment"),
        )
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(e) = event {
                    let _ = tx.send(e.to_string());
                }
            }
        })
        .connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
        client.publish(FORGED, "forged".into()).await.unwrap();
        client.flush().await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .ok()
            .flatten()
    });
    let refused = refused.expect("the server said nothing of the forged publish");
    assert!(
        refused.to_lowercase().contains("permissions violation") && refused.contains(FORGED),
        "{refused}"
    );
    // The server logs what it refuses, as the check above assumes.
    let log = server.log();
    assert!(
        log.contains("Violation") && log.contains(FORGED),
        "the refusal is not in the server's log:\n{log}"
    );
}

#[test]
fn on_redis_every_participant_under_its_own_user_settles_and_cannot_forge() {
    let Some(redis_server) = program("redis-server") else {
        skip("no redis-server");
        return;
    };
    let dir = Scratch::new("redis");
    let usage = usage();
    let acl = RedisAcl::with_default_keys(&usage).render(|u| Some(password_hash(&password(u))));
    let acl_file = dir.0.join("users.acl");
    std::fs::write(&acl_file, acl).unwrap();
    let port = free_port();
    let mut command = Command::new(redis_server);
    command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(&dir.0)
        .arg("--aclfile")
        .arg(&acl_file);
    let _server = Server::start(&mut command, dir.0.join("server.log"), port);
    let url = |user: &str| format!("redis://{user}:{}@127.0.0.1:{port}", password(user));

    let services = start_participants(url);
    run_the_shop(services, &url(INGRESS_USER));

    runtime().block_on(async {
        // Nothing the services did was refused.
        let admin = redis::Client::open(url(ADMIN_USER)).unwrap();
        let mut conn = admin.get_multiplexed_async_connection().await.unwrap();
        let denied: Vec<redis::Value> = redis::cmd("ACL")
            .arg("LOG")
            .query_async(&mut conn)
            .await
            .unwrap();
        // The one refusal expected: the broker asks whether appendonly is
        // on (`CONFIG GET`), which no service user may read.
        let needed: Vec<&redis::Value> = denied
            .iter()
            .filter(|entry| !format!("{entry:?}").contains("config|get"))
            .collect();
        assert!(
            needed.is_empty(),
            "the server refused something a service needed: {needed:?}"
        );

        // Payment's credentials cannot publish Inventory's event.
        let payment = redis::Client::open(url("Payment")).unwrap();
        let mut conn = payment.get_multiplexed_async_connection().await.unwrap();
        let forged: Result<String, redis::RedisError> = redis::cmd("XADD")
            .arg(format!("choreo:{FORGED}"))
            .arg("*")
            .arg("event")
            .arg("forged")
            .query_async(&mut conn)
            .await;
        let e = forged.expect_err("the forged publish was accepted");
        assert_eq!(e.code(), Some("NOPERM"), "{e}");
    });
}
