//! A PostgreSQL connection string read with its TLS settings, as libpq
//! names them, over rustls.
//!
//! tokio-postgres reads `sslmode` `disable`, `prefer` and `require` only,
//! and no certificate files. This module takes out of the string, URL
//! (`postgres://app@db/x?sslmode=verify-full&sslrootcert=/etc/ca.pem`) or
//! key-value (`host=db sslmode=verify-full sslrootcert=/etc/ca.pem`):
//!
//! | setting | what it does |
//! | --- | --- |
//! | `sslmode=verify-full` | TLS, the server's certificate chaining to the CAs below and naming the host |
//! | `sslmode=require`, `sslmode=verify-ca` | the same: choreo never talks TLS to a server it has not verified |
//! | `sslmode=disable`, `sslmode=prefer` (the default) | no TLS, as before |
//! | `sslrootcert=PATH` | the CA certificates (PEM) to trust; `system` (or none given) for the system's |
//! | `sslcert=PATH`, `sslkey=PATH` | a client certificate and its key (PEM) |
//!
//! Everything else goes to tokio-postgres as it was.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::StoreError;

/// TLS settings taken out of a connection string.
#[derive(Debug, Default, PartialEq, Eq)]
struct TlsSettings {
    /// `sslmode` asks for a verified TLS connection.
    verify: bool,
    /// `sslrootcert` (`None`: the system's).
    root_cert: Option<String>,
    /// `sslcert` and `sslkey`.
    client: (Option<String>, Option<String>),
}

impl TlsSettings {
    /// Takes `key=value` if it is one of ours; `false` for the rest.
    fn take(&mut self, key: &str, value: &str) -> Result<bool, String> {
        match key {
            "sslmode" => match value {
                "verify-full" | "verify-ca" | "require" => self.verify = true,
                // tokio-postgres reads these itself (`prefer` with no TLS
                // connector is a plain connection).
                "disable" | "prefer" => return Ok(false),
                other => {
                    return Err(format!(
                        "`sslmode={other}` is not one of `disable`, `prefer`, `require`, `verify-ca`, `verify-full`"
                    ))
                }
            },
            "sslrootcert" if value != "system" => self.root_cert = Some(value.to_owned()),
            "sslrootcert" => self.root_cert = None,
            "sslcert" => self.client.0 = Some(value.to_owned()),
            "sslkey" => self.client.1 = Some(value.to_owned()),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Splits a key-value connection string into its pairs, with libpq's
/// quoting (`key='a value'`, `\'` and `\\` inside quotes); `None` when it
/// is not well formed (tokio-postgres then says why).
fn pairs(text: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Some(out);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        chars.next_if_eq(&'=')?;
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next()? {
                    '\'' => break,
                    '\\' => value.push(chars.next()?),
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.push(chars.next()?);
                } else {
                    value.push(c);
                }
            }
        }
        out.push((key, value));
    }
}

/// `value` quoted for a key-value string.
fn quoted(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The string without the TLS settings, and those settings.
fn split(text: &str) -> Result<(String, TlsSettings), String> {
    let mut tls = TlsSettings::default();
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        let Ok(mut url) = url::Url::parse(text) else {
            return Ok((text.to_owned(), tls));
        };
        let mut kept = Vec::new();
        for (k, v) in url.query_pairs() {
            if !tls.take(&k, &v)? {
                kept.push((k.into_owned(), v.into_owned()));
            }
        }
        if tls == TlsSettings::default() {
            return Ok((text.to_owned(), tls));
        }
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
        return Ok((url.into(), tls));
    }
    let Some(all) = pairs(text) else {
        return Ok((text.to_owned(), tls));
    };
    let mut kept = Vec::new();
    let mut taken = false;
    for (k, v) in all {
        if tls.take(&k, &v)? {
            taken = true;
        } else {
            kept.push(format!("{k}={}", quoted(&v)));
        }
    }
    if !taken {
        // Nothing of ours: the string goes on exactly as given.
        return Ok((text.to_owned(), tls));
    }
    Ok((kept.join(" "), tls))
}

/// The certificates of a PEM file a setting names; the error says which.
fn certificates(setting: &str, path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("`{setting}={path}`: {e}"))?;
    if certs.is_empty() {
        return Err(format!("`{setting}={path}` holds no PEM certificate"));
    }
    Ok(certs)
}

/// The rustls configuration `tls` asks for.
fn client_config(tls: &TlsSettings) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    match &tls.root_cert {
        Some(path) => {
            for cert in certificates("sslrootcert", path)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("`sslrootcert={path}`: {e}"))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(
                    "`sslmode` asks for TLS, and the system has no CA certificates: give `sslrootcert=PATH`"
                        .into(),
                );
            }
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots);
    match &tls.client {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(cert), Some(key)) => {
            let chain = certificates("sslcert", cert)?;
            let key =
                PrivateKeyDer::from_pem_file(key).map_err(|e| format!("`sslkey={key}`: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("`sslcert` and `sslkey`: {e}"))
        }
        _ => Err("`sslcert` and `sslkey` go together".into()),
    }
}

/// The configuration of a connection string, and the TLS connector its
/// `sslmode` asks for (`None`: a plain connection).
pub(crate) fn config(
    text: &str,
) -> Result<(tokio_postgres::Config, Option<MakeRustlsConnect>), StoreError> {
    let bad =
        |reason: String| StoreError::Config(format!("PostgreSQL connection string: {reason}"));
    let (rest, tls) = split(text).map_err(bad)?;
    let mut pg: tokio_postgres::Config = rest.parse().map_err(|e| bad(format!("{e}")))?;
    if !tls.verify {
        if tls != TlsSettings::default() {
            return Err(bad(
                "`sslrootcert`, `sslcert` and `sslkey` need `sslmode=verify-full`".into(),
            ));
        }
        return Ok((pg, None));
    }
    pg.ssl_mode(SslMode::Require);
    let config = client_config(&tls).map_err(bad)?;
    Ok((pg, Some(MakeRustlsConnect::new(config))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_strings_keep_their_quoting() {
        let (rest, tls) =
            split(r"host=db password='a b\'c' sslmode=verify-full sslrootcert='/etc/my ca.pem'")
                .unwrap();
        assert_eq!(rest, r"host='db' password='a b\'c'");
        assert!(tls.verify);
        assert_eq!(tls.root_cert.as_deref(), Some("/etc/my ca.pem"));
        let pg: tokio_postgres::Config = rest.parse().unwrap();
        assert_eq!(pg.get_password(), Some(&b"a b'c"[..]));
    }

    #[test]
    fn urls_lose_only_the_tls_settings() {
        let (rest, tls) = split(
            "postgres://app:pw@db:5433/x?sslmode=verify-full&sslrootcert=%2Fca.pem&application_name=a",
        )
        .unwrap();
        assert_eq!(rest, "postgres://app:pw@db:5433/x?application_name=a");
        assert_eq!(tls.root_cert.as_deref(), Some("/ca.pem"));
        let (rest, tls) = split("postgres://app@db/x?sslmode=prefer").unwrap();
        assert_eq!(rest, "postgres://app@db/x?sslmode=prefer");
        assert!(!tls.verify);
        let plain = "host=db user=app options='-c x=y'";
        assert_eq!(split(plain).unwrap().0, plain);
    }

    #[test]
    fn plain_strings_stay_plain_and_bad_ones_are_said() {
        let (_, tls) = config("host=127.0.0.1 user=postgres sslmode=disable").unwrap();
        assert!(tls.is_none());
        for (text, said) in [
            (
                "postgres://u:hunter2@h/x?sslmode=verify",
                "`sslmode=verify`",
            ),
            (
                "postgres://u:hunter2@h/x?sslmode=verify-full&sslrootcert=/no/ca.pem",
                "sslrootcert=/no/ca.pem",
            ),
            (
                "postgres://u:hunter2@h/x?sslrootcert=/etc/hostname",
                "need `sslmode",
            ),
            (
                "postgres://u:hunter2@h/x?sslmode=verify-full&sslrootcert=/etc/hostname",
                "no PEM certificate",
            ),
        ] {
            let e = config(text)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains(said) && !e.contains("hunter2"), "{text}: {e}");
        }
    }
}
