//! Servers given as `NAME=URL` (`prod=nats://broker:4222`).
//!
//! The document keeps what names the broker: the host (with its port; a
//! NATS URL's comma-separated cluster as it is), the Redis database as the
//! pathname, and whether the scheme asks for TLS. Credentials
//! (`user:password@`) and the query's settings are dropped: a published
//! contract has no place for a password. No error repeats the URL either,
//! only the server's name.
//!
//! The URL is split by hand rather than by the `url` crate: a NATS URL
//! names a cluster as `nats://a:4222,b:4222`, which is no URL to it.

use super::document::{Extensions, Json, Server};
use super::Broker;

/// One `--server NAME=URL`, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// The server's key in the document.
    pub name: String,
    /// The URL's scheme (`nats`, `tls`, `redis`, `rediss`).
    pub scheme: String,
    /// `host:port`, or a NATS cluster's `a:4222,b:4222`.
    pub host: String,
    /// The path after the host (`/0`), empty when none.
    pub path: String,
}

/// A `--server` that could not be read. The messages name the server but
/// never show its URL, which may hold a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerError {
    /// No `=`, or nothing before it.
    #[error("a server is given as NAME=URL, as in `prod=nats://broker:4222`")]
    Form,
    /// A name AsyncAPI does not allow.
    #[error("server name `{0}` may only have letters, digits, `_` and `-`")]
    Name(String),
    /// The same name twice.
    #[error("server `{0}` is given twice")]
    Duplicate(String),
    /// Not `scheme://host…`.
    #[error("the URL of server `{0}` is not of the form `scheme://host:port`")]
    Url(String),
    /// A scheme the broker does not take.
    #[error("the URL of server `{name}` has scheme `{scheme}`, but {broker} takes {expected}")]
    Scheme {
        /// The server.
        name: String,
        /// Its scheme.
        scheme: String,
        /// The broker.
        broker: &'static str,
        /// The schemes it takes.
        expected: &'static str,
    },
}

impl Broker {
    /// The URL schemes the runtime connects to this broker with, the TLS
    /// one second.
    pub fn schemes(self) -> [&'static str; 2] {
        match self {
            Broker::Nats => ["nats", "tls"],
            Broker::Redis => ["redis", "rediss"],
        }
    }
}

impl ServerSpec {
    /// Reads `NAME=URL` for `broker`.
    pub fn parse(arg: &str, broker: Broker) -> Result<ServerSpec, ServerError> {
        let (name, url) = arg.split_once('=').ok_or(ServerError::Form)?;
        if name.is_empty() {
            return Err(ServerError::Form);
        }
        let name_ok = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !name_ok {
            return Err(ServerError::Name(name.to_owned()));
        }
        let bad_url = || ServerError::Url(name.to_owned());
        let (scheme, rest) = url.split_once("://").ok_or_else(bad_url)?;
        let scheme = scheme.to_ascii_lowercase();
        // Anything but a scheme's letters might be a secret: not shown.
        let scheme_ok = !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        if !scheme_ok {
            return Err(bad_url());
        }
        if !broker.schemes().contains(&scheme.as_str()) {
            return Err(ServerError::Scheme {
                name: name.to_owned(),
                scheme,
                broker: broker.protocol(),
                expected: match broker {
                    Broker::Nats => "`nats://` and `tls://`",
                    Broker::Redis => "`redis://` and `rediss://`",
                },
            });
        }
        let end = rest.find(['?', '#']).unwrap_or(rest.len());
        let rest = &rest[..end];
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        // Credentials end at the last `@`: a password may hold another.
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host_ok = !host.is_empty()
            && !host.starts_with(':')
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._:,[]".contains(c));
        if !host_ok {
            return Err(bad_url());
        }
        Ok(ServerSpec {
            name: name.to_owned(),
            scheme,
            host: host.to_owned(),
            path: if path == "/" {
                String::new()
            } else {
                path.to_owned()
            },
        })
    }

    /// The server object for `broker`.
    pub fn server(&self, broker: Broker) -> Server {
        let mut extensions = Extensions::new();
        if self.scheme == broker.schemes()[1] {
            extensions.insert("x-choreo-tls".to_owned(), Json(true.into()));
        }
        Server {
            host: self.host.clone(),
            protocol: broker.protocol(),
            pathname: (!self.path.is_empty()).then(|| self.path.clone()),
            extensions,
        }
    }
}

/// Reads every `--server`, refusing a name given twice.
pub fn parse_all(args: &[String], broker: Broker) -> Result<Vec<ServerSpec>, ServerError> {
    let mut out: Vec<ServerSpec> = Vec::with_capacity(args.len());
    for arg in args {
        let server = ServerSpec::parse(arg, broker)?;
        if out.iter().any(|s| s.name == server.name) {
            return Err(ServerError::Duplicate(server.name));
        }
        out.push(server);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_settings_never_reach_the_server() {
        let s = ServerSpec::parse(
            "prod=nats://alice:s3cr@t@a:4222,b:4222?creds_file=/x",
            Broker::Nats,
        )
        .expect("valid");
        assert_eq!(s.host, "a:4222,b:4222");
        assert_eq!(s.path, "");
        let r = ServerSpec::parse("cache=rediss://:pw@redis:6380/2?dedup=2m", Broker::Redis)
            .expect("valid");
        assert_eq!((r.host.as_str(), r.path.as_str()), ("redis:6380", "/2"));
        let server = r.server(Broker::Redis);
        assert_eq!(server.protocol, "redis");
        assert!(server.extensions.contains_key("x-choreo-tls"));
    }

    #[test]
    fn malformed_servers_are_refused_without_showing_the_url() {
        let secret = "hunter2";
        for (arg, broker) in [
            ("prod", Broker::Nats),
            ("=nats://a:4222", Broker::Nats),
            ("pr od=nats://a:4222", Broker::Nats),
            ("prod=a:4222", Broker::Nats),
            ("prod=redis://u:hunter2@a:6379", Broker::Nats),
            ("prod=nats://u:hunter2@", Broker::Nats),
            ("prod=nats://u:hunter2@a b", Broker::Nats),
            ("prod=u:hunter2@a://b", Broker::Nats),
        ] {
            let err = ServerSpec::parse(arg, broker).expect_err(arg);
            assert!(!err.to_string().contains(secret), "{err}");
        }
        let twice = parse_all(
            &["a=nats://x:1".to_owned(), "a=nats://y:1".to_owned()],
            Broker::Nats,
        );
        assert_eq!(twice, Err(ServerError::Duplicate("a".to_owned())));
    }
}
