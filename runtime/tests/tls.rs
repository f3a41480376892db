//! TLS and credentials against servers this test starts itself, on free
//! loopback ports, with a CA and certificates it makes (rcgen): Redis over
//! `rediss://` with a password, NATS over TLS with a user and password, a
//! token or an nkey, PostgreSQL with `sslmode=verify-full` and a password.
//! Each shows that a broker round trip (where there is a broker) and the
//! stores work, that a server certificate from another CA is refused, and
//! that no error shows the password. A missing server binary skips the
//! test visibly (fails it under `CHOREO_REQUIRE_BROKERS=1`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use choreo_runtime::broker::SharedBroker;
use choreo_runtime::envelope::EventId;
use choreo_runtime::store::{Claim, PgStores, StoreOptions, Stores};
use choreo_runtime::Envelope;
use common::brokers::postgres::{as_postgres, bin_dir, server_args};
use common::brokers::{test_prefix, OwnServer};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

/// A password with characters that need percent-encoding in a URL.
const PASSWORD: &str = "s3cret pw/+&";
const PASSWORD_IN_URL: &str = "s3cret%20pw%2F%2B%26";

/// The certificates of a test, in a directory of their own (removed on
/// drop): a CA, a server certificate it signed for `localhost` and
/// `127.0.0.1`, and another CA that signed nothing of these.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new() -> Pki {
        let dir = std::env::temp_dir().join(format!("choreo-tls-{:012x}", fastrand::u64(..) >> 16));
        std::fs::create_dir_all(&dir).unwrap();
        let pki = Pki { dir };
        let ca = Pki::ca("choreo test CA");
        pki.write("ca.pem", &ca.pem());
        pki.write("other-ca.pem", &Pki::ca("another CA").pem());
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        pki.write("server.pem", &cert.pem());
        pki.write("server.key", &key.serialize_pem());
        pki
    }

    fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.join(name), text).unwrap();
    }

    /// The path of one of the files, as a URL's query may hold it.
    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A broker on `url`: an event published comes back to a subscriber;
/// then the stores on the same URL ([`Stores::of_broker`]) work.
async fn broker_and_stores_work(url: &str) {
    let broker: SharedBroker = match choreo_runtime::connect(url).await {
        Ok(b) => b,
        Err(e) => panic!("connecting: {e}"),
    };
    let prefix = test_prefix();
    let topic = format!("{prefix}.Secured");
    let mut sub = common::reader(&broker, "tls", &topic).await;
    let sent = Envelope::builder("Test.Secured", "k1")
        .id("tls-1")
        .source("choreo-tests")
        .build();
    broker.publish(&topic, sent).await.unwrap();
    let got = common::next(&mut sub).await;
    assert_eq!(got.id().to_string(), "tls-1", "the round trip over TLS");
    sub.unsubscribe().await.unwrap();
    let options = StoreOptions {
        prefix: format!("{prefix}-"),
        ..StoreOptions::default()
    };
    let stores = Stores::of_broker(&broker, &options).await.unwrap();
    stores_work(&stores).await;
    broker.close(Duration::from_secs(1)).await.unwrap();
}

/// One claim, completion and firing count on `stores`, in a scope of
/// their own.
async fn stores_work(stores: &Stores) {
    let scope = test_prefix();
    let id = EventId::from("tls-event");
    let lease = Duration::from_secs(30);
    let inbox = &stores.inbox;
    assert_eq!(
        inbox.claim(&scope, &id, lease).await.unwrap(),
        Claim::Acquired
    );
    inbox.complete(&scope, &id).await.unwrap();
    assert_eq!(inbox.claim(&scope, &id, lease).await.unwrap(), Claim::Done);
    assert_eq!(
        stores.state.record_firing(&scope, "i1", "f").await.unwrap(),
        1
    );
}

/// `connect(url)` fails, with an error that says what and shows no
/// password.
async fn refused(url: &str, said: &[&str]) -> String {
    let err = match choreo_runtime::connect(url).await {
        Ok(_) => panic!("connected to {}", choreo_runtime::store::describe(url)),
        Err(e) => e.to_string(),
    };
    assert_no_secret(&err);
    let lower = err.to_lowercase();
    assert!(
        said.iter().any(|s| lower.contains(s)),
        "the error says {said:?}: {err}"
    );
    err
}

fn assert_no_secret(text: &str) {
    for secret in [PASSWORD, PASSWORD_IN_URL, "s3cret"] {
        assert!(!text.contains(secret), "a secret shown: {text}");
    }
}

/// What an error about a server certificate says, in rustls' words.
const BAD_CERTIFICATE: &[&str] = &["invalid peer certificate: unknownissuer"];

// ---- Redis ----

fn redis_server(pki: &Pki) -> Option<OwnServer> {
    let (cert, key, ca) = (
        pki.path("server.pem"),
        pki.path("server.key"),
        pki.path("ca.pem"),
    );
    OwnServer::start("redis-server", move |port, dir| {
        [
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "no",
            "--requirepass",
            PASSWORD,
            "--dir",
            &dir.display().to_string(),
            "--save",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    })
}

#[tokio::test]
async fn redis_over_tls_with_a_password() {
    let pki = Pki::new();
    let Some(server) = redis_server(&pki) else {
        return;
    };
    let at = format!("127.0.0.1:{}", server.port);
    let url = format!(
        "rediss://:{PASSWORD_IN_URL}@{at}?tls_ca={}",
        pki.path("ca.pem")
    );
    broker_and_stores_work(&url).await;
    let options = StoreOptions {
        prefix: format!("{}-", test_prefix()),
        ..StoreOptions::default()
    };
    let stores = Stores::connect(&url, &options).await.unwrap();
    stores_work(&stores).await;

    // Another CA's server certificate, a plain connection to the TLS
    // port and a wrong password are refused.
    let other = format!(
        "rediss://:{PASSWORD_IN_URL}@{at}?tls_ca={}",
        pki.path("other-ca.pem")
    );
    refused(&other, BAD_CERTIFICATE).await;
    let err = Stores::connect(&other, &options)
        .await
        .err()
        .unwrap()
        .to_string();
    assert_no_secret(&err);
    assert!(
        err.contains("invalid peer certificate: UnknownIssuer"),
        "{err}"
    );
    refused(
        &format!("redis://:{PASSWORD_IN_URL}@{at}"),
        &["redis connect"],
    )
    .await;
    refused(
        &format!("rediss://:wrong@{at}?tls_ca={}", pki.path("ca.pem")),
        &["password authentication failed"],
    )
    .await;
}

// ---- NATS ----

/// A NATS server with JetStream, TLS (the test's certificate) and the
/// `authorization` block given.
fn nats_server(pki: &Pki, authorization: String) -> Option<OwnServer> {
    let config = format!(
        "tls {{\n  cert_file: {:?}\n  key_file: {:?}\n}}\nauthorization {{\n{authorization}\n}}\n",
        pki.path("server.pem"),
        pki.path("server.key"),
    );
    OwnServer::start_prepared(
        "nats-server",
        move |dir| std::fs::write(dir.join("nats.conf"), &config),
        |port, dir| {
            vec![
                "-c".into(),
                dir.join("nats.conf").display().to_string(),
                "-a".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
                "-js".into(),
                "-sd".into(),
                dir.join("js").display().to_string(),
            ]
        },
    )
}

#[tokio::test]
async fn nats_over_tls_with_a_user_and_password() {
    let pki = Pki::new();
    let users = format!("  users: [ {{ user: app, password: {PASSWORD:?} }} ]");
    let Some(server) = nats_server(&pki, users) else {
        return;
    };
    let ca = pki.path("ca.pem");
    let port = server.port;
    broker_and_stores_work(&format!(
        "tls://app:{PASSWORD_IN_URL}@127.0.0.1:{port}?tls_ca={ca}"
    ))
    .await;
    // `tls=required` on a `nats://` URL is the same.
    let options = StoreOptions {
        prefix: format!("{}-", test_prefix()),
        ..StoreOptions::default()
    };
    let stores = Stores::connect(
        &format!("nats://app:{PASSWORD_IN_URL}@127.0.0.1:{port}?tls=required&tls_ca={ca}"),
        &options,
    )
    .await
    .unwrap();
    stores_work(&stores).await;

    let other = pki.path("other-ca.pem");
    refused(
        &format!("tls://app:{PASSWORD_IN_URL}@127.0.0.1:{port}?tls_ca={other}"),
        BAD_CERTIFICATE,
    )
    .await;
    refused(
        &format!("tls://app:wrong@127.0.0.1:{port}?tls_ca={ca}"),
        &["authorization violation"],
    )
    .await;
}

#[tokio::test]
async fn nats_over_tls_with_a_token() {
    let pki = Pki::new();
    let Some(server) = nats_server(&pki, "  token: \"t0ken-s3cret\"".into()) else {
        return;
    };
    let ca = pki.path("ca.pem");
    let port = server.port;
    broker_and_stores_work(&format!("tls://t0ken-s3cret@127.0.0.1:{port}?tls_ca={ca}")).await;
    let err = refused(
        &format!("tls://not-it@127.0.0.1:{port}?tls_ca={ca}"),
        &["authorization violation"],
    )
    .await;
    assert!(
        !err.contains("t0ken-s3cret") && !err.contains("not-it"),
        "{err}"
    );
}

#[tokio::test]
async fn nats_over_tls_with_an_nkey() {
    let pki = Pki::new();
    let user = nkeys::KeyPair::new_user();
    let seed = user.seed().unwrap();
    pki.write("user.nk", &format!("{seed}\n"));
    let users = format!("  users: [ {{ nkey: {} }} ]", user.public_key());
    let Some(server) = nats_server(&pki, users) else {
        return;
    };
    let (ca, seed_file) = (pki.path("ca.pem"), pki.path("user.nk"));
    let port = server.port;
    broker_and_stores_work(&format!(
        "tls://127.0.0.1:{port}?tls_ca={ca}&nkey_seed_file={seed_file}"
    ))
    .await;
    // Another user's seed signs in as nobody the server knows.
    pki.write("other.nk", &nkeys::KeyPair::new_user().seed().unwrap());
    let err = refused(
        &format!(
            "tls://127.0.0.1:{port}?tls_ca={ca}&nkey_seed_file={}",
            pki.path("other.nk")
        ),
        &["authorization violation"],
    )
    .await;
    assert!(!err.contains(&seed), "{err}");
}

// ---- PostgreSQL ----

/// The directory of PostgreSQL's server binaries.
fn run(cmd: &mut Command) -> std::io::Result<()> {
    let out = cmd.output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

/// A PostgreSQL cluster of the test's own that takes only TLS connections
/// from the loopback (`hostssl`, SCRAM password of `postgres`).
fn postgres_server(pki: &Pki) -> Option<OwnServer> {
    let bin = match bin_dir() {
        Ok(b) => b,
        Err(e) => {
            common::server_missing("PostgreSQL's server binaries", &e);
            return None;
        }
    };
    let (initdb, postgres) = (bin.join("initdb"), bin.join("postgres"));
    let (cert, key) = (pki.path("server.pem"), pki.path("server.key"));
    OwnServer::start_prepared(
        "setpriv",
        move |dir| {
            let data = dir.join("data");
            std::fs::write(dir.join("pw"), PASSWORD)?;
            run(Command::new("chown").args([
                "-R",
                "postgres:postgres",
                &dir.display().to_string(),
            ]))?;
            run(Command::new("setpriv")
                .args(as_postgres(&initdb))
                .args(["-D", &data.display().to_string(), "-U", "postgres"])
                .args(["-A", "scram-sha-256", "--no-sync", "--pwfile"])
                .arg(dir.join("pw")))?;
            std::fs::copy(&cert, data.join("server.crt"))?;
            std::fs::copy(&key, data.join("server.key"))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                data.join("server.key"),
                std::fs::Permissions::from_mode(0o600),
            )?;
            run(Command::new("chown").args([
                "postgres:postgres",
                &data.join("server.crt").display().to_string(),
                &data.join("server.key").display().to_string(),
            ]))?;
            std::fs::write(
                data.join("pg_hba.conf"),
                "hostssl all all 127.0.0.1/32 scram-sha-256\n",
            )?;
            let mut conf = std::fs::OpenOptions::new()
                .append(true)
                .open(data.join("postgresql.conf"))?;
            use std::io::Write;
            writeln!(
                conf,
                "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nfsync = off"
            )?;
            Ok(())
        },
        move |port, dir| server_args(&postgres, port, dir),
    )
}

#[tokio::test]
async fn postgres_with_verify_full() {
    let pki = Pki::new();
    let Some(server) = postgres_server(&pki) else {
        return;
    };
    let port = server.port;
    let ca = pki.path("ca.pem");
    let options = StoreOptions {
        prefix: format!("{}-", test_prefix()),
        ..StoreOptions::default()
    };
    let url = format!(
        "postgres://postgres:{PASSWORD_IN_URL}@127.0.0.1:{port}/postgres?sslmode=verify-full&sslrootcert={ca}"
    );
    // The server may still be starting (it listens before it accepts).
    let mut tries = 0;
    let stores = loop {
        match Stores::connect(&url, &options).await {
            Ok(s) => break s,
            Err(e) if tries < 50 && e.to_string().contains("starting up") => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    stores_work(&stores).await;
    // The key-value form reads the same settings.
    let kv = format!(
        "host=127.0.0.1 port={port} user=postgres password='{PASSWORD}' dbname=postgres sslmode=verify-full sslrootcert='{ca}'"
    );
    let table_prefix = choreo_runtime::store::postgres::table_prefix(&options.prefix);
    let kv_stores = PgStores::connect_with(&kv, &table_prefix, &options)
        .await
        .unwrap();
    stores_work(&Stores::new(
        std::sync::Arc::new(kv_stores.inbox()),
        std::sync::Arc::new(kv_stores.state()),
        "PostgreSQL",
    ))
    .await;

    let store_refused = |text: String, said: &'static [&'static str]| {
        let options = options.clone();
        async move {
            let err = Stores::connect(&text, &options)
                .await
                .err()
                .unwrap()
                .to_string();
            assert_no_secret(&err);
            let lower = err.to_lowercase();
            assert!(said.iter().any(|s| lower.contains(s)), "{said:?}: {err}");
        }
    };
    // Another CA's certificate; a certificate for another host name (the
    // TCP connection goes to 127.0.0.1, the name checked is `host`); a
    // wrong password; no TLS (the server takes none: `hostssl` only).
    store_refused(url.replace("ca.pem", "other-ca.pem"), BAD_CERTIFICATE).await;
    store_refused(
        format!(
            "postgres://postgres:{PASSWORD_IN_URL}@elsewhere.example:{port}/postgres?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={ca}"
        ),
        &["certificate not valid for name \"elsewhere.example\""],
    )
    .await;
    store_refused(
        url.replace(PASSWORD_IN_URL, "wrong"),
        &["password authentication failed"],
    )
    .await;
    store_refused(
        format!("postgres://postgres:{PASSWORD_IN_URL}@127.0.0.1:{port}/postgres?sslmode=disable"),
        &["no encryption"],
    )
    .await;
}
