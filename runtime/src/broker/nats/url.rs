//! A NATS URL read: the servers, choreo's settings, TLS and credentials;
//! and the one connect function the broker and the Key-Value stores share.
//!
//! `nats://[user:password@|token@]host:port[,host:port…][?setting=value&…]`,
//! `tls://…` for TLS (the client refuses a server without it). Settings:
//!
//! | setting | what it does |
//! | --- | --- |
//! | `replicas=N` | replicas of the streams and buckets made (1 to 5) |
//! | `max_age=7d` | retention of the streams of events (`0`: none) |
//! | `tls=required` | TLS, as `tls://` does |
//! | `tls_ca=PATH` | the CA certificates (PEM) the server's must chain to, instead of the system's |
//! | `tls_cert=PATH`, `tls_key=PATH` | a client certificate and its key (PEM), for servers that verify clients |
//! | `nkey_seed_file=PATH` | authenticate with the nkey whose seed (`SU…`) the file holds |
//! | `creds_file=PATH` | authenticate with a credentials file (user JWT and nkey seed) |
//!
//! A user name with a password in the URL authenticates with both; a user
//! name alone is a token. Secrets stay out of the URL where a file can hold
//! them; no error shows the URL's credentials.

use std::path::PathBuf;
use std::time::Duration;

use crate::broker::BrokerError;

/// What a NATS URL's query sets: `nats://a:4222,b:4222?replicas=3&max_age=7d`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlSettings {
    /// `replicas=N` (1 to 5): replicas of the streams and Key-Value
    /// buckets a deployment makes, for a cluster
    /// ([`NatsOptions::replicas`](super::NatsOptions::replicas),
    /// [`StoreOptions::replicas`](crate::store::StoreOptions::replicas)).
    pub replicas: Option<usize>,
    /// `max_age=DURATION` (`7d`, `12h`; `0` for none): the retention of the
    /// streams of events
    /// ([`NatsOptions::max_age`](super::NatsOptions::max_age)).
    pub max_age: Option<Duration>,
    /// `tls=required` (or a `tls://` server): no connection without TLS.
    pub tls_required: bool,
    /// `tls_ca=PATH`: the CA certificates (PEM) to trust instead of the
    /// system's.
    pub tls_ca: Option<PathBuf>,
    /// `tls_cert=PATH` and `tls_key=PATH`: a client certificate and its
    /// private key (PEM).
    pub tls_client: Option<(PathBuf, PathBuf)>,
    /// `nkey_seed_file=PATH`: the file holding the nkey seed to sign in
    /// with.
    pub nkey_seed_file: Option<PathBuf>,
    /// `creds_file=PATH`: a credentials file (JWT and seed).
    pub creds_file: Option<PathBuf>,
}

/// The settings this module reads, for the error naming them.
const SETTINGS: &str = "`replicas`, `max_age`, `tls`, `tls_ca`, `tls_cert`, `tls_key`, \
                        `nkey_seed_file` and `creds_file`";

/// Splits a NATS URL into the servers the client dials and the settings of
/// its query. Any other query key is an error naming the ones there are,
/// rather than a setting silently ignored.
pub fn url_settings(url: &str) -> Result<(String, UrlSettings), BrokerError> {
    let Some((servers, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), UrlSettings::default()));
    };
    let bad = |reason: String| {
        BrokerError::InvalidOptions(format!(
            "NATS URL `{}`: {reason}",
            crate::store::describe(url)
        ))
    };
    let mut settings = UrlSettings::default();
    let (mut cert, mut key) = (None, None);
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let path = || {
            if v.is_empty() {
                Err(bad(format!("`{k}=` needs a file path")))
            } else {
                Ok(PathBuf::from(&*v))
            }
        };
        match &*k {
            "replicas" => {
                let n = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=5).contains(n))
                    .ok_or_else(|| bad(format!("`replicas={v}` is not a number from 1 to 5")))?;
                settings.replicas = Some(n);
            }
            "max_age" => {
                let age = if v == "0" {
                    Duration::ZERO
                } else {
                    v.parse::<jiff::SignedDuration>()
                        .ok()
                        .and_then(|d| Duration::try_from(d).ok())
                        .ok_or_else(|| {
                            bad(format!(
                                "`max_age={v}` is not a duration such as `7d` or `12h`"
                            ))
                        })?
                };
                settings.max_age = Some(age);
            }
            "tls" => match &*v {
                "required" => settings.tls_required = true,
                _ => return Err(bad(format!("`tls={v}`: the one value is `required`"))),
            },
            "tls_ca" => settings.tls_ca = Some(path()?),
            "tls_cert" => cert = Some(path()?),
            "tls_key" => key = Some(path()?),
            "nkey_seed_file" => settings.nkey_seed_file = Some(path()?),
            "creds_file" => settings.creds_file = Some(path()?),
            other => {
                return Err(bad(format!(
                    "unknown setting `{other}` (there are {SETTINGS})"
                )))
            }
        }
    }
    settings.tls_client = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => return Err(bad("`tls_cert` and `tls_key` go together".into())),
    };
    if settings.nkey_seed_file.is_some() && settings.creds_file.is_some() {
        return Err(bad(
            "`nkey_seed_file` and `creds_file` are two ways to sign in: give one".into(),
        ));
    }
    Ok((servers.to_owned(), settings))
}

/// How a URL's user information signs in.
#[derive(Clone, PartialEq, Eq)]
// No `Debug`: it holds secrets.
enum UserInfo {
    None,
    UserAndPassword(String, String),
    Token(String),
}

/// The servers of a URL's comma-separated list (`nats://a:4222,nats://b:4222`),
/// each parsed on its own (async-nats reads a string as one address), and
/// the credentials in their user information, taken out of the addresses
/// (async-nats does not read them there). Servers with different
/// credentials are an error.
fn servers_and_user(servers: &str) -> Result<(Vec<async_nats::ServerAddr>, UserInfo), String> {
    let mut user = None;
    let mut addrs = Vec::new();
    for s in servers.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let shown = crate::store::describe(s);
        let not_an_address =
            |e: &dyn std::fmt::Display| format!("`{shown}` is not a NATS server address: {e}");
        let with_scheme = if s.contains("://") {
            s.to_owned()
        } else {
            format!("nats://{s}")
        };
        let mut parsed = url::Url::parse(&with_scheme).map_err(|e| not_an_address(&e))?;
        let decode = |text: &str| {
            percent_decoded(text).ok_or_else(|| {
                format!("`{shown}`: the user information is not percent-encoded UTF-8")
            })
        };
        let this = match (parsed.username(), parsed.password()) {
            ("", None) => UserInfo::None,
            (u, Some(p)) => UserInfo::UserAndPassword(decode(u)?, decode(p)?),
            (t, None) => UserInfo::Token(decode(t)?),
        };
        match &user {
            None => user = Some(this),
            Some(u) if *u == this => {}
            Some(_) => {
                return Err(format!(
                    "`{shown}` has other credentials than the servers before it: give them once, the same for all"
                ))
            }
        }
        // Cannot fail on a URL with a host; one without is refused below.
        let _ = parsed.set_username("");
        let _ = parsed.set_password(None);
        let addr = parsed
            .as_str()
            .parse::<async_nats::ServerAddr>()
            .map_err(|e| not_an_address(&e))?;
        addrs.push(addr);
    }
    Ok((addrs, user.unwrap_or(UserInfo::None)))
}

fn percent_decoded(text: &str) -> Option<String> {
    url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
}

/// A file a setting names, checked before the client reads it, so that a
/// wrong path is said as such (rather than as a failed connection).
fn existing(setting: &str, path: &std::path::Path) -> Result<PathBuf, String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(path.to_owned()),
        Ok(_) => Err(format!("`{setting}={}` is not a file", path.display())),
        Err(e) => Err(format!("`{setting}={}`: {e}", path.display())),
    }
}

/// Connects `base` (name, time-outs) to the `servers` of a URL read by
/// [`url_settings`], with its TLS and credentials. The error shows no
/// secret.
pub(crate) async fn connect(
    base: async_nats::ConnectOptions,
    servers: &str,
    settings: &UrlSettings,
) -> Result<async_nats::Client, String> {
    let (addrs, user) = servers_and_user(servers)?;
    let tls = settings.tls_required
        || settings.tls_ca.is_some()
        || settings.tls_client.is_some()
        || addrs.iter().any(|a| a.tls_required());
    let mut options = base.require_tls(tls);
    if let Some(ca) = &settings.tls_ca {
        options = options.add_root_certificates(existing("tls_ca", ca)?);
    }
    if let Some((cert, key)) = &settings.tls_client {
        options =
            options.add_client_certificate(existing("tls_cert", cert)?, existing("tls_key", key)?);
    }
    let signs_in_by_file = settings.nkey_seed_file.is_some() || settings.creds_file.is_some();
    if signs_in_by_file && user != UserInfo::None {
        return Err(
            "credentials both in the URL and in a file (`nkey_seed_file`, `creds_file`): give one"
                .into(),
        );
    }
    options = match user {
        UserInfo::None => options,
        // A user's replies come on an inbox of its own, so that its
        // permissions can keep other users from reading them.
        UserInfo::UserAndPassword(u, p) => options
            .custom_inbox_prefix(super::inbox_prefix(&u))
            .user_and_password(u, p),
        UserInfo::Token(t) => options.token(t),
    };
    if let Some(path) = &settings.nkey_seed_file {
        let path = existing("nkey_seed_file", path)?;
        let seed = std::fs::read_to_string(&path)
            .map_err(|e| format!("`nkey_seed_file={}`: {e}", path.display()))?;
        // The seed's own text is never shown: only whether it is one.
        let seed = seed.trim();
        if !seed.starts_with('S') {
            return Err(format!(
                "`nkey_seed_file={}` holds no nkey seed (one line starting with `S`)",
                path.display()
            ));
        }
        options = options.nkey(seed.to_owned());
    }
    if let Some(path) = &settings.creds_file {
        let path = existing("creds_file", path)?;
        options = options
            .credentials_file(&path)
            .await
            .map_err(|e| format!("`creds_file={}`: {e}", path.display()))?;
    }
    // async-nats says what failed (its kind and source) without the
    // credentials it was given.
    options.connect(addrs).await.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_list_is_parsed_one_address_at_a_time() {
        let (addrs, _) =
            servers_and_user("nats://u:pw@a:1, nats://u:pw@b:2,nats://u:pw@c:3").unwrap();
        assert_eq!(addrs.len(), 3);
        let e = servers_and_user("nats://u:pw@a:1,nats://u:pw@b:x")
            .err()
            .unwrap();
        assert!(e.contains("b:x") && !e.contains("pw"), "{e}");
    }

    #[test]
    fn credentials_come_out_of_the_addresses() {
        let (addrs, user) = servers_and_user("nats://app:p%40ss@a:1,tls://app:p%40ss@b:2").unwrap();
        assert!(user == UserInfo::UserAndPassword("app".into(), "p@ss".into()));
        assert!(addrs.iter().all(|a| a.username().is_none()));
        assert!(addrs[1].tls_required());
        let (_, user) = servers_and_user("nats://s3cr3t@a:1").unwrap();
        assert!(user == UserInfo::Token("s3cr3t".into()));
        let (addrs, user) = servers_and_user("a:1").unwrap();
        assert!(user == UserInfo::None && addrs.len() == 1);
        let e = servers_and_user("nats://u:one@a:1,nats://u:two@b:2")
            .err()
            .unwrap();
        assert!(!e.contains("one") && !e.contains("two"), "{e}");
    }

    #[test]
    fn url_settings_set_replicas_and_age_and_refuse_the_rest() {
        let (servers, s) = url_settings("nats://a:1,b:2?replicas=3&max_age=12h").unwrap();
        assert_eq!(servers, "nats://a:1,b:2");
        assert_eq!(s.replicas, Some(3));
        assert_eq!(s.max_age, Some(Duration::from_secs(12 * 3600)));
        let (servers, s) = url_settings("nats://a:1").unwrap();
        assert_eq!(
            (servers.as_str(), s),
            ("nats://a:1", UrlSettings::default())
        );
        assert_eq!(
            url_settings("nats://a?max_age=0").unwrap().1.max_age,
            Some(Duration::ZERO)
        );
        for bad in [
            "replicas=0",
            "replicas=9",
            "replicas=x",
            "max_age=soon",
            "tls=1",
            "tls_ca=",
            "tls_cert=/c.pem",
            "nkey_seed_file=/a&creds_file=/b",
            "password=x",
        ] {
            let e = url_settings(&format!("nats://u:secret@a?{bad}"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(bad.split('=').next().unwrap()), "{e}");
            assert!(!e.contains("secret"), "{e}");
        }
    }

    #[test]
    fn tls_and_credential_files_are_read_from_the_query() {
        let (_, s) = url_settings(
            "tls://h:4222?tls_ca=%2Fetc%2Fca.pem&tls_cert=/c.pem&tls_key=/k.pem&nkey_seed_file=/s.nk&tls=required",
        )
        .unwrap();
        assert_eq!(s.tls_ca, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(
            s.tls_client,
            Some((PathBuf::from("/c.pem"), PathBuf::from("/k.pem")))
        );
        assert_eq!(s.nkey_seed_file, Some(PathBuf::from("/s.nk")));
        assert!(s.tls_required);
    }

    #[tokio::test]
    async fn missing_files_and_mixed_credentials_are_said_before_dialling() {
        let (servers, s) = url_settings("nats://127.0.0.1:1?tls_ca=/no/such/ca.pem").unwrap();
        let e = connect(async_nats::ConnectOptions::new(), &servers, &s)
            .await
            .unwrap_err();
        assert!(e.contains("tls_ca=/no/such/ca.pem"), "{e}");
        let (servers, s) =
            url_settings("nats://u:hunter2@127.0.0.1:1?creds_file=/etc/hostname").unwrap();
        let e = connect(async_nats::ConnectOptions::new(), &servers, &s)
            .await
            .unwrap_err();
        assert!(e.contains("give one") && !e.contains("hunter2"), "{e}");
    }
}
