//! Servers that require credentials, started by a test on free loopback
//! ports, and the secrets they require: for the tests that run the
//! examples and the services `choreoc new` makes with passwords and tokens
//! in their URLs and check that no output shows them.
//!
//! Each secret has characters a URL must percent-encode (`@`, `:`, `/`,
//! `%`) around a core of letters and digits that no output holds by
//! chance: the core stays the same raw, percent-encoded or cut, so that
//! [`assert_no_secret`] finds any of them.

use crate::testing::{skip, Finished, ServiceProcess, POSTGRES_URL};
use crate::HttpClient;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A secret of these tests.
#[derive(Debug, Clone, Copy)]
pub struct Secret {
    /// As the server takes it.
    pub raw: &'static str,
    /// Its letters and digits, in every form of it.
    pub core: &'static str,
}

impl Secret {
    /// As a URL carries it: every character but letters and digits
    /// percent-encoded.
    pub fn encoded(&self) -> String {
        utf8_percent_encode(self.raw, NON_ALPHANUMERIC).to_string()
    }
}

/// The Redis server's password (`--requirepass`).
pub const REDIS_PASSWORD: Secret = Secret {
    raw: "rpQ7Xk@s:w/rd%",
    core: "rpQ7Xk",
};
/// The password of the user [`NATS_USER`] of the first NATS server.
pub const NATS_PASSWORD: Secret = Secret {
    raw: "npW4Zt@s:w/rd%",
    core: "npW4Zt",
};
/// The token of the second NATS server (`--auth`).
pub const NATS_TOKEN: Secret = Secret {
    raw: "ntH8Jc@s:w/rd%",
    core: "ntH8Jc",
};
/// The password given to PostgreSQL (whose test server trusts loopback
/// connections: the password is carried, not checked).
pub const POSTGRES_PASSWORD: Secret = Secret {
    raw: "pgV3Lm@s:w/rd%",
    core: "pgV3Lm",
};
/// A password no server takes.
pub const WRONG_PASSWORD: Secret = Secret {
    raw: "wrB5Gy@s:w/rd%",
    core: "wrB5Gy",
};
/// Every secret of these tests.
pub const SECRETS: [Secret; 5] = [
    REDIS_PASSWORD,
    NATS_PASSWORD,
    NATS_TOKEN,
    POSTGRES_PASSWORD,
    WRONG_PASSWORD,
];
/// The user of the first NATS server.
pub const NATS_USER: &str = "choreo";

/// Panics, naming `what` (a process's output, an HTTP answer), when
/// `text` holds any secret: raw, percent-encoded or in part.
pub fn assert_no_secret(what: &str, text: &str) {
    for s in SECRETS {
        for form in [s.raw.to_owned(), s.encoded(), s.core.to_owned()] {
            assert!(
                !text.contains(&form),
                "{what} shows the secret `{form}`:\n{text}"
            );
        }
    }
}

/// A port on 127.0.0.1 that nothing listens on (just now).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// A Redis server with a password and two NATS servers with JetStream, one
/// with a user and password, one with a token, each on a free loopback
/// port; killed, and their files removed, when dropped.
pub struct SecuredServers {
    children: Vec<Child>,
    dir: PathBuf,
    redis: u16,
    nats_user: u16,
    nats_token: u16,
}

impl SecuredServers {
    /// Starts them and waits until each listens. `None` (the test skips,
    /// or fails under `CHOREO_REQUIRE_BROKERS=1`: see [`skip`]) when
    /// `redis-server` or `nats-server` cannot be started.
    pub fn start() -> Option<SecuredServers> {
        match SecuredServers::try_start() {
            Ok(s) => Some(s),
            Err(e) => {
                skip(&format!("cannot start servers with credentials: {e}"));
                None
            }
        }
    }

    fn try_start() -> std::io::Result<SecuredServers> {
        let dir = std::env::temp_dir().join(format!(
            "choreo-secured-{}",
            crate::testing::unique_prefix().trim_end_matches('.')
        ));
        std::fs::create_dir_all(&dir)?;
        let mut servers = SecuredServers {
            children: Vec::new(),
            dir: dir.clone(),
            redis: free_port()?,
            nats_user: free_port()?,
            nats_token: free_port()?,
        };
        let quiet = |cmd: &mut Command| {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        };
        let mut redis = Command::new("redis-server");
        redis.args(["--bind", "127.0.0.1", "--port"]);
        redis.arg(servers.redis.to_string());
        redis.args(["--requirepass", REDIS_PASSWORD.raw, "--save", "", "--dir"]);
        redis.arg(&dir);
        quiet(&mut redis);
        servers.children.push(redis.spawn()?);
        for (port, auth, name) in [
            (
                servers.nats_user,
                vec!["--user", NATS_USER, "--pass", NATS_PASSWORD.raw],
                "user",
            ),
            (servers.nats_token, vec!["--auth", NATS_TOKEN.raw], "token"),
        ] {
            let mut nats = Command::new("nats-server");
            nats.args(["-a", "127.0.0.1", "-p"]);
            nats.arg(port.to_string());
            nats.args(["-js", "-sd"]);
            nats.arg(dir.join(name));
            nats.args(auth);
            quiet(&mut nats);
            servers.children.push(nats.spawn()?);
        }
        for port in [servers.redis, servers.nats_user, servers.nats_token] {
            listening(port, Duration::from_secs(10))?;
        }
        Ok(servers)
    }

    /// The Redis server, with its password.
    pub fn redis_url(&self) -> String {
        format!(
            "redis://:{}@127.0.0.1:{}",
            REDIS_PASSWORD.encoded(),
            self.redis
        )
    }

    /// The NATS server with a user, with its password.
    pub fn nats_user_url(&self) -> String {
        format!(
            "nats://{NATS_USER}:{}@127.0.0.1:{}",
            NATS_PASSWORD.encoded(),
            self.nats_user
        )
    }

    /// The NATS server with a token, with its token.
    pub fn nats_token_url(&self) -> String {
        format!(
            "nats://{}@127.0.0.1:{}",
            NATS_TOKEN.encoded(),
            self.nats_token
        )
    }

    /// The test machines' PostgreSQL ([`POSTGRES_URL`]), with a password.
    pub fn postgres_url(&self) -> String {
        POSTGRES_URL.replacen(
            "postgres@",
            &format!("postgres:{}@", POSTGRES_PASSWORD.encoded()),
            1,
        )
    }

    /// Each server with a wrong password or token, and one URL whose
    /// password is not percent-encoded at all (Redis' own, raw).
    pub fn wrong_urls(&self) -> Vec<String> {
        let wrong = WRONG_PASSWORD.encoded();
        vec![
            format!("redis://:{wrong}@127.0.0.1:{}", self.redis),
            format!("nats://{NATS_USER}:{wrong}@127.0.0.1:{}", self.nats_user),
            format!("nats://{wrong}@127.0.0.1:{}", self.nats_token),
            format!("redis://:{}@127.0.0.1:{}", REDIS_PASSWORD.raw, self.redis),
        ]
    }
}

/// URLs with secrets to servers that are not there (a closed port), one
/// per kind: Redis, NATS with a user, NATS with a token, PostgreSQL.
pub fn unreachable_urls() -> std::io::Result<Vec<String>> {
    let port = free_port()?;
    Ok(vec![
        format!("redis://:{}@127.0.0.1:{port}", REDIS_PASSWORD.encoded()),
        format!(
            "nats://{NATS_USER}:{}@127.0.0.1:{port}",
            NATS_PASSWORD.encoded()
        ),
        format!("nats://{}@127.0.0.1:{port}", NATS_TOKEN.encoded()),
        format!(
            "postgres://postgres:{}@127.0.0.1:{port}/test",
            POSTGRES_PASSWORD.encoded()
        ),
    ])
}

/// Runs `bin args…` with every log at debug level (the client libraries'
/// too), until it exits or `timeout` passes (then it is killed); what it
/// printed, checked by [`assert_no_secret`] before it is returned.
pub fn run_checked(name: &str, bin: &Path, args: &[&str], timeout: Duration) -> Finished {
    let p = ServiceProcess::spawn_with_env(name, bin, args, &[("RUST_LOG", "debug")])
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let done = p
        .wait(timeout)
        .unwrap_or_else(|e| panic!("{name} did not finish: {e}"));
    assert_no_secret(&format!("{name}'s standard output"), &done.stdout);
    assert_no_secret(&format!("{name}'s standard error"), &done.stderr);
    done
}

/// Starts `bin args…` (logs at debug level), waits until its standard
/// output or error has a line with `marker` (up to `timeout`), and returns
/// the process and that line.
pub fn start_until(
    name: &str,
    bin: &Path,
    args: &[&str],
    marker: &str,
    timeout: Duration,
) -> (ServiceProcess, String) {
    let mut p = ServiceProcess::spawn_with_env(name, bin, args, &[("RUST_LOG", "debug")])
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let deadline = Instant::now() + timeout;
    loop {
        let printed = p.stdout_so_far() + &p.stderr_so_far();
        if let Some(line) = printed.lines().find(|l| l.contains(marker)) {
            return (p, line.to_owned());
        }
        if !p.running() || Instant::now() >= deadline {
            let done = p.stop(Duration::from_secs(5));
            panic!("{name} never printed `{marker}`: {done:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The first `http://…` address in `line`, without a trailing `/`, `:`
/// or `,`.
pub fn address_in(line: &str) -> String {
    let start = line.find("http://").unwrap_or(line.len());
    line[start..]
        .split(|c: char| c.is_whitespace() || c == '"')
        .next()
        .unwrap_or_default()
        .trim_end_matches([':', ',', '/', '.'])
        .to_owned()
}

/// `GET` of each path on `base`: every status and body, one after the
/// other, checked by [`assert_no_secret`] before it is returned. Fails
/// when a request cannot be made.
pub fn http_answers(base: &str, paths: &[&str]) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("no runtime: {e}"));
    let client = HttpClient::new(base.to_owned());
    let mut answers = String::new();
    for path in paths {
        let (status, body) = rt
            .block_on(client.raw(reqwest::Method::GET, path, ""))
            .unwrap_or_else(|e| panic!("GET {base}{path}: {e}"));
        answers.push_str(&format!("GET {path}: {status}\n{body}\n"));
    }
    assert_no_secret(&format!("the HTTP answers of {base}"), &answers);
    answers
}

/// Waits until something listens on `port` of 127.0.0.1.
fn listening(port: u16, timeout: Duration) -> std::io::Result<()> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + timeout;
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if Instant::now() >= deadline {
            return Err(std::io::Error::other(format!(
                "nothing listens on port {port} after {timeout:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

impl Drop for SecuredServers {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_a_secret_is_found() {
        for s in SECRETS {
            assert!(s.raw.contains(s.core) && s.encoded().contains(s.core));
            for text in [s.raw.to_owned(), s.encoded(), format!("x {} y", s.core)] {
                let found = std::panic::catch_unwind(|| assert_no_secret("t", &text));
                assert!(found.is_err(), "{text}");
            }
        }
        assert_no_secret("t", "redis://:***@127.0.0.1:1");
    }
}
