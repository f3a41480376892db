//! The names choreo-runtime gives to what it makes on a broker: topics,
//! streams, consumers, Key-Value buckets and keys, Redis keys. Each mirrors
//! one function of the runtime (named in its doc); the `tests` crate
//! asserts that they agree for every spec of the corpus, so that a change
//! on one side fails there rather than in a deployment refused by its
//! broker. Both exports that name broker objects use them: `permissions`
//! and `asyncapi`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// The topic of the messages of wire type `wire` (`Ecommerce.v1.OrderPlaced`)
/// under the deployment's `prefix` (`Topics::for_type`): the NATS subject
/// as it is, and the Redis stream after the broker's key prefix.
pub fn topic(prefix: &str, wire: &str) -> String {
    format!("{prefix}{wire}")
}

/// The dead-letter topic of `topic` (`choreo_runtime::broker::dead_letter_topic`).
pub fn dead_letter_topic(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// The topic of the progress notices of `choreography` under `prefix`
/// (`Topics::progress`).
pub fn progress_topic(prefix: &str, choreography: &str) -> String {
    format!("{prefix}choreo-progress.{choreography}")
}

/// A name made of `[A-Za-z0-9_-]` only, at most `max` characters of
/// `text`, with a hash of the whole text when it had to change
/// (`choreo_runtime::broker::nats::safe_name`).
pub fn safe_name(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out != text {
        out.push_str(&format!(
            "_{:08x}",
            xxhash_rust::xxh3::xxh3_64(text.as_bytes()) as u32
        ));
    }
    out
}

/// The JetStream stream that holds `topic`: its first token
/// (`NatsBroker::stream_name`).
pub fn nats_stream(topic: &str) -> String {
    let token = topic.split('.').next().unwrap_or(topic);
    safe_name(token, 64)
}

/// The subjects of the stream of `topic`: everything under its first
/// token.
pub fn nats_stream_subjects(topic: &str) -> String {
    let token = topic.split('.').next().unwrap_or(topic);
    format!("{token}.>")
}

/// The durable consumer of `group` on `topic` (`NatsBroker::consumer_name`).
pub fn nats_consumer(group: &str, topic: &str) -> String {
    let last = topic.rsplit('.').next().unwrap_or(topic);
    let hash = xxhash_rust::xxh3::xxh3_64(format!("{group}\0{topic}").as_bytes());
    format!(
        "{}__{}__{hash:016x}",
        safe_name(group, 40),
        safe_name(last, 40)
    )
}

/// Where a connection as `user` gets its replies: `<prefix>.>`
/// (`choreo_runtime::broker::nats::inbox_prefix`).
pub fn nats_inbox_prefix(user: &str) -> String {
    let token: String = user
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("_INBOX_{token}")
}

/// The stores' three Key-Value buckets under `prefix`: inbox, joins,
/// bounds (`NatsKvStores::bucket_names`).
pub fn nats_buckets(prefix: &str) -> [String; 3] {
    ["inbox", "joins", "bounds"].map(|what| safe_name(&format!("{prefix}choreo_{what}"), 64))
}

/// The first token of the Key-Value keys of `scope`
/// (`NatsKvStores::scope_token`): the scope in URL-safe base64.
pub fn nats_scope_token(scope: &str) -> String {
    URL_SAFE_NO_PAD.encode(scope)
}

/// The key prefix of the Redis broker unless the URL sets another
/// (`RedisOptions::default().key_prefix`).
pub const REDIS_KEY_PREFIX: &str = "choreo:";

/// The Redis stream of `topic` (`RedisOptions::stream_key`).
pub fn redis_stream(key_prefix: &str, topic: &str) -> String {
    format!("{key_prefix}{topic}")
}

/// The hashes in which the Redis broker remembers published ids of
/// `topic` when deduplicating (`?dedup=`): a glob pattern.
pub fn redis_dedup_pattern(key_prefix: &str, topic: &str) -> String {
    format!("{}:*", glob_escape(&format!("{key_prefix}dedup:{topic}")))
}

/// The Redis store keys of `what` (`inbox`, `join`, `bound`) for `scope`
/// under `prefix`, as a glob pattern (`RedisStores::scope_pattern`).
pub fn redis_store_pattern(prefix: &str, what: &str, scope: &str) -> String {
    let scope = scope.replace('%', "%25").replace(':', "%3A");
    format!(
        "{}:*",
        glob_escape(&format!("{prefix}choreo:{what}:{scope}"))
    )
}

/// `text` matched literally by a Redis glob pattern.
pub fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_change_only_what_brokers_refuse() {
        assert_eq!(nats_stream("Ecommerce.v1.OrderPlaced"), "Ecommerce");
        assert!(nats_stream("a b.c").starts_with("a_b_"));
        assert_eq!(nats_scope_token("a"), "YQ");
        assert_eq!(glob_escape("a*b?[c]"), r"a\*b\?\[c\]");
        assert_eq!(
            redis_store_pattern("p:", "inbox", "S/P/on_x"),
            "p:choreo:inbox:S/P/on_x:*"
        );
    }
}
