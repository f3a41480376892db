//! Secrets in broker, store and database URLs: the one place that decides
//! what of a URL may be shown ([`redact`]) and that takes a URL's secrets
//! out of any other text, such as a client library's error ([`scrub`]).
//!
//! Every message, log field and health text that names a URL shows it
//! through [`redact`]; every error of a client library that was handed the
//! URL goes through [`scrub`] before it is shown, since such errors may
//! quote the URL or the password.
//!
//! What counts as a secret, conservatively (more hidden rather than less):
//! - the password of the userinfo (`redis://user:PASSWORD@host`); the user
//!   name stays visible;
//! - a userinfo without `:` as a whole (`nats://TOKEN@host`: NATS reads it
//!   as a token);
//! - the value of every query parameter whose name says it is one
//!   ([`is_secret_key`]: `password=`, `token=`, `auth_token=`, `nkey=`,
//!   `sslpassword=`…);
//! - the same keys in a PostgreSQL key-value connection string
//!   (`host=db password=…`).
//!
//! The userinfo ends at the **last** `@` of a URL, not at the first `/`:
//! a password with an unencoded `/`, `?` or `#` in it is hidden whole
//! (the host after it is still shown). Several URLs separated by commas
//! (`nats://a:4222,nats://b:4222`) are each redacted; a comma is taken as
//! a separator only before another `scheme://`, so that a password with a
//! comma in it is not cut in two.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

/// What stands for a hidden secret.
pub const HIDDEN: &str = "***";

/// `url` as it may be shown: its password, token and secret query values
/// replaced by `***`. Takes any text (several comma-separated URLs, no
/// scheme, a key-value connection string, nonsense) and never panics.
///
/// ```
/// use choreo_runtime::secret::redact;
/// assert_eq!(redact("redis://app:p%40ss@db:6379/0"), "redis://app:***@db:6379/0");
/// assert_eq!(redact("nats://s3cr3t@h:4222"), "nats://***@h:4222");
/// assert_eq!(redact("postgres://db/x?password=pw&sslmode=require"), "postgres://db/x?password=***&sslmode=require");
/// ```
pub fn redact(url: &str) -> String {
    // A key-value string with an `@` in it is read as both: a key-value
    // string, then a URL whose userinfo ends at that `@`.
    let kv;
    let url = if is_key_values(url) {
        kv = key_values(url, |_, _| {});
        kv.as_str()
    } else {
        url
    };
    let mut out = String::with_capacity(url.len());
    for (i, item) in items(url).into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&one(item, &mut |_| {}));
    }
    out
}

/// `text` (an error of a client library, a log line) with every secret of
/// `url` taken out: the password, token and secret query values, as they
/// are written in the URL, percent-decoded and percent-encoded (of both),
/// each replaced by `***`.
///
/// ```
/// use choreo_runtime::secret::scrub;
/// let url = "redis://:p%40ss@db:6379";
/// assert_eq!(scrub("auth p@ss refused for redis://:p%40ss@db:6379", url), "auth *** refused for redis://:***@db:6379");
/// ```
pub fn scrub(text: &str, url: &str) -> String {
    let mut forms: Vec<String> = Vec::new();
    for secret in secrets(url) {
        let decoded = percent_decode_str(&secret).decode_utf8_lossy().into_owned();
        forms.push(utf8_percent_encode(&decoded, USERINFO).to_string());
        forms.push(utf8_percent_encode(&decoded, percent_encoding::NON_ALPHANUMERIC).to_string());
        forms.push(decoded);
        // As written, encoded once more (a library that encodes what it
        // was given).
        forms.push(utf8_percent_encode(&secret, USERINFO).to_string());
        forms.push(utf8_percent_encode(&secret, percent_encoding::NON_ALPHANUMERIC).to_string());
        forms.push(secret);
    }
    forms.retain(|f| !f.is_empty());
    // Longest first, so that a secret's encoded form is hidden whole
    // rather than around a shorter form inside it.
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms.dedup();
    let mut out = text.to_owned();
    for form in &forms {
        if out.contains(form.as_str()) {
            out = out.replace(form.as_str(), HIDDEN);
        }
    }
    out
}

/// The secrets `url` holds, as written in it.
fn secrets(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    if is_key_values(url) {
        key_values(url, |_, value| found.push(value.to_owned()));
    }
    for item in items(url) {
        one(item, &mut |secret| found.push(secret.to_owned()));
    }
    found
}

/// Whether a query or connection-string key names a secret (compared
/// without case, `-` read as `_`): anything with `pass`, `pwd`, `token`,
/// `secret`, `nkey`, `seed`, `auth`, `credential`, `api_key`, `apikey`,
/// `private` or `signature` in it.
pub fn is_secret_key(key: &str) -> bool {
    let key = percent_decode_str(key)
        .decode_utf8_lossy()
        .to_ascii_lowercase()
        .replace('-', "_");
    [
        "pass",
        "pwd",
        "token",
        "secret",
        "nkey",
        "seed",
        "auth",
        "credential",
        "api_key",
        "apikey",
        "private",
        "signature",
    ]
    .iter()
    .any(|word| key.contains(word))
}

/// The characters percent-encoded in a userinfo (RFC 3986 and what the
/// `url` crate encodes there), for the encoded form of a secret.
const USERINFO: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b':')
    .add(b';')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'?')
    .add(b'@')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// The length of the scheme `s` starts with, if it starts with
/// `scheme://` (a letter, then letters, digits, `+`, `-`, `.`).
fn scheme_len(s: &str) -> Option<usize> {
    let end = s.find("://")?;
    let scheme = &s[..end];
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(end)
}

/// `url` cut at the commas that come before another URL of the same
/// scheme (`nats://a,nats://b`): a password would need that very text in
/// it to be cut. Other lists stay whole, and are hidden up to their last
/// `@`.
fn items(url: &str) -> Vec<&str> {
    let trimmed = url.trim_start();
    let Some(n) = scheme_len(trimmed) else {
        return vec![url];
    };
    let scheme = &trimmed[..n + 3];
    let mut items = Vec::new();
    let mut start = 0;
    for (i, _) in url.match_indices(',') {
        if url[i + 1..].trim_start().starts_with(scheme) {
            items.push(&url[start..i]);
            start = i + 1;
        }
    }
    items.push(&url[start..]);
    items
}

/// One URL redacted; `secret` is called with each secret hidden.
fn one(item: &str, secret: &mut dyn FnMut(&str)) -> String {
    let lead = item.len() - item.trim_start().len();
    let (head, rest) = match scheme_len(&item[lead..]) {
        Some(n) => item.split_at(lead + n + 3),
        None => item.split_at(0),
    };
    // The query as a URL parser reads it, from the first `?`: its secret
    // values whole, even with an `@` in them, for `scrub`.
    if let Some((_, query)) = rest.split_once('?') {
        push_query(&mut String::new(), query, false, secret);
    }
    let mut out = String::with_capacity(item.len());
    out.push_str(head);
    let Some(at) = rest.rfind('@') else {
        push_path_and_query(&mut out, rest, secret);
        return out;
    };
    let userinfo = &rest[..at];
    match userinfo.split_once(':') {
        Some((user, password)) if plain_user(user) => {
            secret(password);
            out.push_str(user);
            out.push(':');
        }
        _ => secret(userinfo),
    }
    out.push_str(HIDDEN);
    out.push('@');
    let after = &rest[at + 1..];
    // An `@` inside a secret query value: what follows it is the rest of
    // that value.
    let inside_secret = userinfo.split_once('?').is_some_and(|(_, query)| {
        let last = query.rsplit('&').next().unwrap_or(query);
        last.split_once('=').is_some_and(|(k, _)| is_secret_key(k))
    });
    if inside_secret {
        push_query(&mut out, after, true, secret);
    } else {
        push_path_and_query(&mut out, after, secret);
    }
    out
}

/// Host, path and query, the query's secret values hidden.
fn push_path_and_query(out: &mut String, s: &str, secret: &mut dyn FnMut(&str)) {
    match s.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            push_query(out, query, false, secret);
        }
        None => out.push_str(s),
    }
}

/// Whether a user name may be shown as it is: no character that would
/// show it is not one (a `/`, `?`, `,` of a password cut wrong).
fn plain_user(user: &str) -> bool {
    !user.contains(['/', '?', '#', ',', '&', '=', ' '])
}

/// A query (and its `#fragment`) with the values of secret keys hidden.
/// A piece without `=` right after a secret one is taken as the rest of
/// its value (an unencoded `&` in a password) and hidden with it, and so
/// is a fragment right after one (an unencoded `#`). `continuing`: the
/// query starts inside a secret value, whose rest is hidden up to the
/// next `&`.
fn push_query(out: &mut String, query: &str, continuing: bool, secret: &mut dyn FnMut(&str)) {
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let mut hiding = false;
    for (i, pair) in query.split('&').enumerate() {
        if i == 0 && continuing {
            secret(pair);
            out.push_str(HIDDEN);
            hiding = true;
            continue;
        }
        let (key, value) = match pair.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (pair, None),
        };
        if hiding && value.is_none() && !pair.is_empty() {
            secret(pair);
            continue;
        }
        if i > 0 {
            out.push('&');
        }
        match value {
            Some(v) if is_secret_key(key) => {
                secret(v);
                out.push_str(key);
                out.push('=');
                out.push_str(HIDDEN);
                hiding = true;
            }
            _ => {
                out.push_str(pair);
                hiding = false;
            }
        }
    }
    if let Some(fragment) = fragment {
        out.push('#');
        if hiding && !fragment.is_empty() {
            secret(fragment);
            out.push_str(HIDDEN);
        } else {
            out.push_str(fragment);
        }
    }
}

/// Whether `s` is a key-value connection string (PostgreSQL's
/// `host=db user=app password=…`) rather than a URL: it starts with a
/// word and `=` (a URL starts with `scheme://` or a host).
fn is_key_values(s: &str) -> bool {
    let s = s.trim_start();
    let key_end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    key_end > 0 && s[key_end..].trim_start().starts_with('=')
}

/// A key-value connection string with the values of secret keys hidden
/// (quoted values `'…'` with `\` escapes included); `secret` is called with
/// each value hidden.
fn key_values(s: &str, mut secret: impl FnMut(&str, &str)) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    loop {
        // Spaces between pairs, kept.
        let spaces = rest.len() - rest.trim_start().len();
        out.push_str(&rest[..spaces]);
        rest = &rest[spaces..];
        if rest.is_empty() {
            break;
        }
        let Some(eq) = rest.find('=') else {
            // No more pairs: a word without a value, shown as it is
            // unless a secret could hide in it.
            out.push_str(rest);
            break;
        };
        let key = rest[..eq].trim_end();
        out.push_str(&rest[..=eq]);
        rest = &rest[eq + 1..];
        let spaces = rest.len() - rest.trim_start().len();
        out.push_str(&rest[..spaces]);
        rest = &rest[spaces..];
        let end = value_end(rest);
        let value = &rest[..end];
        if is_secret_key(key) {
            let bare = value.strip_prefix('\'').unwrap_or(value);
            let bare = bare.strip_suffix('\'').unwrap_or(bare);
            secret(key, bare);
            out.push_str(HIDDEN);
        } else {
            out.push_str(value);
        }
        rest = &rest[end..];
    }
    out
}

/// Where the value at the start of `s` ends: a quoted value at its closing
/// quote (or the end, unclosed), any other at the next space.
fn value_end(s: &str) -> usize {
    if let Some(quoted) = s.strip_prefix('\'') {
        let mut escaped = false;
        for (i, c) in quoted.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '\'' => return i + 2,
                _ => {}
            }
        }
        return s.len();
    }
    s.find(char::is_whitespace).unwrap_or(s.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn redacted_urls() {
        let cases = [
            // Userinfo: the user stays, the password goes.
            ("redis://user:pw@h:6379/0", "redis://user:***@h:6379/0"),
            ("redis://:pw@h:6379", "redis://:***@h:6379"),
            (
                "postgres://app:s3cret@db:5432/x",
                "postgres://app:***@db:5432/x",
            ),
            // A bare userinfo is a token (NATS) or a user: hidden.
            ("nats://TOKEN@h:4222", "nats://***@h:4222"),
            ("nats://s3cr3t@127.0.0.1:4222", "nats://***@127.0.0.1:4222"),
            // Percent-encoded userinfo, and a password whose `@`, `:`,
            // `/` and `%` were not encoded at all.
            (
                "redis://u%40x:p%40ss%3Aw%2Frd%25@h:1",
                "redis://u%40x:***@h:1",
            ),
            ("redis://:p@ss:w/rd%@h:1/0", "redis://:***@h:1/0"),
            ("redis://u:a?b#c@h", "redis://u:***@h"),
            // No secret: unchanged.
            ("redis://h:6379/0", "redis://h:6379/0"),
            ("memory://", "memory://"),
            ("", ""),
            ("nats://a:4222,nats://b:4222", "nats://a:4222,nats://b:4222"),
            // Several URLs, each redacted.
            (
                "nats://u:p1@a:4222,nats://u:p2@b:4222",
                "nats://u:***@a:4222,nats://u:***@b:4222",
            ),
            ("nats://t1@a, nats://t2@b", "nats://***@a, nats://***@b"),
            // A comma not before a scheme is part of a password.
            ("redis://:pa,ss@h", "redis://:***@h"),
            ("redis://:pa,nats://ss@h", "redis://:***@h"),
            ("nats://a,tls://u:p@b", "nats://***@b"),
            ("nats://u:p@a:4222,b:4222", "nats://u:***@a:4222,b:4222"),
            // Without a scheme.
            ("u:pw@h:4222", "u:***@h:4222"),
            ("tok@h:4222", "***@h:4222"),
            ("h:4222", "h:4222"),
            // Secret query parameters.
            (
                "postgres://db/x?sslmode=require&password=pw&application_name=a",
                "postgres://db/x?sslmode=require&password=***&application_name=a",
            ),
            (
                "nats://h?token=t&replicas=3",
                "nats://h?token=***&replicas=3",
            ),
            ("nats://h?auth_token=t", "nats://h?auth_token=***"),
            ("nats://h?nkey=SUAB", "nats://h?nkey=***"),
            (
                "postgres://h/x?sslpassword=k",
                "postgres://h/x?sslpassword=***",
            ),
            ("redis://h?Pass%77ord=x", "redis://h?Pass%77ord=***"),
            (
                "redis://h?password=a&b&dedup=off",
                "redis://h?password=***&dedup=off",
            ),
            ("redis://h?dedup=off#frag", "redis://h?dedup=off#frag"),
            ("redis://h?password=a#b", "redis://h?password=***#***"),
            // An `@` in a query value.
            ("postgres://h/db?password=a@b&x=1", "postgres://***@***&x=1"),
            ("postgres://h/db?password=a@b=c#d", "postgres://***@***#***"),
            ("postgres://h/db?application_name=a@b", "postgres://***@b"),
            // Both at once.
            (
                "rediss://u:pw@h:6380/0?password=x&dedup=2m",
                "rediss://u:***@h:6380/0?password=***&dedup=2m",
            ),
            // An `@` after the host hides up to it: more hidden, never less.
            ("redis://h/a@b", "redis://***@b"),
            // PostgreSQL key-value strings.
            (
                "host=db user=app password=s3cret dbname=x",
                "host=db user=app password=*** dbname=x",
            ),
            (
                "host=db password = 'a b\\' c' sslmode=require",
                "host=db password = *** sslmode=require",
            ),
            ("password='unclosed secret", "password=***"),
            (
                "host=db password=a@b dbname=x",
                "host=db password=*** dbname=x",
            ),
            ("x=tok@h:4222", "***@h:4222"),
            // Malformed.
            (":pw@h://x", ":***@h://x"),
            ("://", "://"),
            ("@", "***@"),
            ("nats://", "nats://"),
            ("?", "?"),
            ("=", "="),
            ("redis://u:p@", "redis://u:***@"),
        ];
        for (url, shown) in cases {
            assert_eq!(redact(url), shown, "redact({url:?})");
        }
    }

    #[test]
    fn scrub_takes_every_form_of_a_secret_out_of_a_text() {
        let url = "redis://app:p%40ss%3Aw%2Frd%25@h:1?token=t0k3n";
        let text = "for redis://app:p%40ss%3Aw%2Frd%25@h:1: bad password p@ss:w/rd% \
                    (p%40ss%3Aw%2Frd%25), token t0k3n";
        let scrubbed = scrub(text, url);
        for leak in ["p@ss", "p%40ss", "t0k3n", "w/rd"] {
            assert!(!scrubbed.contains(leak), "{scrubbed}");
        }
        assert_eq!(
            scrubbed,
            "for redis://app:***@h:1: bad password *** (***), token ***"
        );
        assert_eq!(scrub("nothing here", "redis://h:1"), "nothing here");
        assert_eq!(
            scrub("password s3cret refused", "host=db password=s3cret"),
            "password *** refused"
        );
        assert_eq!(scrub("the token tk", "nats://tk@h"), "the token ***");
    }

    #[test]
    fn secret_keys() {
        for key in [
            "password",
            "PASSWORD",
            "pass",
            "pwd",
            "token",
            "auth_token",
            "auth-token",
            "nkey",
            "nkey_seed",
            "sslpassword",
            "client_secret",
            "api_key",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in ["sslmode", "dedup", "replicas", "user", "host", "dbname"] {
            assert!(!is_secret_key(key), "{key}");
        }
    }

    /// Letters and digits the generated secrets use; nothing else in the
    /// generated URLs is upper case, so that any `Z` in the output is a
    /// leak.
    fn secret_text() -> impl Strategy<Value = String> {
        "[A-Y0-9@:/%?#&=, !'\\\\.+-]{1,12}".prop_map(|s| format!("Z{s}Z"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn never_panics(s in any::<String>(), t in any::<String>()) {
            let _ = redact(&s);
            let _ = scrub(&t, &s);
        }

        #[test]
        fn never_panics_on_url_like_text(s in "[a-z:/@?#&=,%' ]{0,40}") {
            let _ = redact(&s);
            let _ = scrub(&s, &s);
        }

        #[test]
        fn a_password_is_never_shown(
            scheme in prop::sample::select(vec!["redis://", "rediss://", "nats://", "postgres://", ""]),
            user in "[a-z]{0,6}",
            secret in secret_text(),
            host in "[a-z]{1,8}(:[0-9]{1,5})?",
            tail in prop::sample::select(vec!["", "/0", "/db?sslmode=require", "?dedup=off", ",nats://b:1"]),
            encode in any::<bool>(),
        ) {
            let password = if encode {
                utf8_percent_encode(&secret, USERINFO).to_string()
            } else {
                secret.clone()
            };
            let url = format!("{scheme}{user}:{password}@{host}{tail}");
            let shown = redact(&url);
            prop_assert!(!shown.contains('Z'), "{url:?} shown as {shown:?}");
            // A token has no `:`: before one is a user name.
            let token = format!("{scheme}{}@{host}{tail}", password.replace(':', ""));
            let shown = redact(&token);
            prop_assert!(!shown.contains('Z'), "{token:?} shown as {shown:?}");
            let text = format!("cannot connect to {url}: {secret} {password} refused");
            let scrubbed = scrub(&text, &url);
            prop_assert!(!scrubbed.contains('Z'), "{text:?} scrubbed to {scrubbed:?}");
        }

        #[test]
        fn a_secret_query_value_is_never_shown(
            key in prop::sample::select(vec!["password", "token", "auth_token", "nkey", "sslpassword"]),
            secret in "[A-Y0-9%:/@.+-]{1,12}".prop_map(|s| format!("Z{s}Z")),
            before in prop::sample::select(vec!["", "sslmode=require&"]),
            after in prop::sample::select(vec!["", "&dedup=off", "#x", "&user=u@h"]),
        ) {
            let encoded = utf8_percent_encode(&secret, percent_encoding::NON_ALPHANUMERIC).to_string();
            for value in [&secret, &encoded] {
                let url = format!("postgres://h/db?{before}{key}={value}{after}");
                let shown = redact(&url);
                prop_assert!(!shown.contains('Z'), "{url:?} shown as {shown:?}");
                let text = format!("{url}: {secret} {encoded}");
                let scrubbed = scrub(&text, &url);
                prop_assert!(!scrubbed.contains('Z'), "{text:?} scrubbed to {scrubbed:?}");
                let kv = format!("host=h {key}={value} dbname=x");
                let shown = redact(&kv);
                prop_assert!(!shown.contains('Z'), "{kv:?} shown as {shown:?}");
            }
        }
    }
}
