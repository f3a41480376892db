//! A Redis URL read into a client, with TLS: the one function the broker
//! and the stores share.
//!
//! `redis://[user:password@]host:port[/db][?setting=value&…]`, and
//! `rediss://…` for TLS (rustls; the server's certificate must chain to the
//! system's CAs, or to `tls_ca`'s, and name the host). Settings:
//!
//! | setting | what it does |
//! | --- | --- |
//! | `dedup=2m`, `maxlen=N` | the broker's (see [`RedisBroker::connect_with`](super::RedisBroker::connect_with)); the stores ignore them |
//! | `tls_ca=PATH` | the CA certificates (PEM) the server's must chain to, instead of the system's |
//! | `tls_cert=PATH`, `tls_key=PATH` | a client certificate and its key (PEM), for servers that verify clients (`tls-auth-clients yes`) |
//! | `protocol=resp3` | the Redis client's own |
//!
//! Any other setting is an error naming these, rather than one silently
//! ignored. No error shows the URL's password.

use std::path::Path;

use ::redis::{Client, ClientTlsConfig, TlsCertificates};

/// The settings this module reads, for the error naming them.
const SETTINGS: &str = "`dedup`, `maxlen`, `tls_ca`, `tls_cert`, `tls_key` and `protocol`";

/// The contents of the file a setting names; the error says which.
fn read(setting: &str, path: &str) -> Result<Vec<u8>, String> {
    if path.is_empty() {
        return Err(format!("`{setting}=` needs a file path"));
    }
    std::fs::read(Path::new(path)).map_err(|e| format!("`{setting}={path}`: {e}"))
}

/// A client for `url`: its TLS files read, choreo's settings taken out.
/// The error names the URL without credentials.
pub(crate) fn client(url: &str) -> Result<Client, String> {
    let shown = crate::store::describe(url);
    let bad = |reason: String| format!("Redis URL `{shown}`: {reason}");
    let Ok(mut parsed) = url::Url::parse(url) else {
        // Not a URL this code can read: the client says what is wrong,
        // which its errors do without the password.
        return Client::open(url).map_err(|e| bad(e.to_string()));
    };
    let (mut ca, mut cert, mut key, mut kept) = (None, None, None, Vec::new());
    for (k, v) in parsed.query_pairs() {
        match &*k {
            "dedup" | "maxlen" => {}
            "tls_ca" => ca = Some(read("tls_ca", &v).map_err(bad)?),
            "tls_cert" => cert = Some(read("tls_cert", &v).map_err(bad)?),
            "tls_key" => key = Some(read("tls_key", &v).map_err(bad)?),
            "protocol" => kept.push((k.into_owned(), v.into_owned())),
            other => {
                return Err(bad(format!(
                    "unknown setting `{other}` (there are {SETTINGS})"
                )))
            }
        }
    }
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    let client_tls = match (cert, key) {
        (Some(client_cert), Some(client_key)) => Some(ClientTlsConfig {
            client_cert,
            client_key,
        }),
        (None, None) => None,
        _ => return Err(bad("`tls_cert` and `tls_key` go together".into())),
    };
    if ca.is_none() && client_tls.is_none() {
        return Client::open(parsed.as_str()).map_err(|e| bad(e.to_string()));
    }
    if parsed.scheme() != "rediss" {
        return Err(bad(
            "`tls_ca`, `tls_cert` and `tls_key` need TLS: a `rediss://` URL".into(),
        ));
    }
    Client::build_with_tls(
        parsed.as_str(),
        TlsCertificates {
            client_tls,
            root_cert: ca,
        },
    )
    .map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_and_files_read() {
        assert!(client("redis://127.0.0.1:6379/0?dedup=2m&maxlen=10").is_ok());
        assert!(client("rediss://127.0.0.1:6379").is_ok());
        for (url, said) in [
            ("redis://:hunter2@h?tsl_ca=/x", "unknown setting `tsl_ca`"),
            (
                "rediss://:hunter2@h?tls_ca=/no/such.pem",
                "tls_ca=/no/such.pem",
            ),
            ("rediss://:hunter2@h?tls_ca=", "needs a file path"),
            ("rediss://:hunter2@h?tls_cert=/etc/hostname", "go together"),
            ("redis://:hunter2@h?tls_ca=/etc/hostname", "`rediss://`"),
        ] {
            let e = client(url).err().unwrap_or_default();
            assert!(e.contains(said) && !e.contains("hunter2"), "{url}: {e}");
        }
    }
}
