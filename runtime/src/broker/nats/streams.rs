//! Streams and the names of things on the server: the stream that holds a
//! topic (made if there is none), subjects, streams' and consumers' names.

use crate::sync::RecoverRw;

use async_nats::jetstream::stream;
use async_nats::Subject;

use super::{unavailable, Inner, NatsBroker};
use crate::broker::BrokerError;

/// `topics` without repeats, in order, each checked as a subject (a
/// subscription and an observation take their topics the same way).
pub(super) fn distinct_subjects(topics: &[String]) -> Result<Vec<String>, BrokerError> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(topics.len());
    for t in topics.iter().filter(|t| seen.insert(t.as_str())) {
        check_subject(t)?;
        out.push(t.clone());
    }
    Ok(out)
}

/// Whether `topic` can be used as a NATS subject as it is: tokens of
/// printable characters without wildcards.
pub(super) fn check_subject(topic: &str) -> Result<(), BrokerError> {
    let ok = !topic.is_empty()
        && topic.split('.').all(|t| {
            !t.is_empty() && t != "*" && t != ">" && !t.chars().any(|c| c.is_whitespace())
        });
    if ok {
        Ok(())
    } else {
        Err(BrokerError::InvalidOptions(format!(
            "topic {topic:?} is not a NATS subject (dot-separated tokens, no spaces, no wildcards)"
        )))
    }
}

impl NatsBroker {
    /// The name of the stream this adapter creates for `topic` (the first
    /// token, with characters streams cannot have replaced).
    pub fn stream_name(topic: &str) -> String {
        let token = topic.split('.').next().unwrap_or(topic);
        safe_name(token, 64)
    }

    /// The name of the durable consumer this adapter makes for `group` on
    /// `topic`: the name a NATS user's permissions must allow.
    pub fn consumer_name(group: &str, topic: &str) -> String {
        consumer_name(group, topic)
    }
}

impl Inner {
    /// The stream holding `topic`, made if there is none.
    pub(super) async fn stream_for(&self, topic: &str) -> Result<String, BrokerError> {
        if let Some(s) = self.streams.read_locked().get(topic) {
            return Ok(s.0.clone());
        }
        check_subject(topic)?;
        let name = match self.js.stream_by_subject(topic).await {
            Ok(existing) => existing,
            Err(_) => {
                let name = NatsBroker::stream_name(topic);
                let token = topic.split('.').next().unwrap_or(topic);
                let config = stream::Config {
                    name: name.clone(),
                    subjects: vec![format!("{token}.>")],
                    storage: stream::StorageType::File,
                    retention: stream::RetentionPolicy::Limits,
                    num_replicas: self.options.replicas,
                    max_age: self.options.max_age,
                    duplicate_window: self.options.duplicate_window,
                    ..Default::default()
                };
                self.js
                    .get_or_create_stream(config)
                    .await
                    .map_err(|e| unavailable(&format!("stream {name}"), e))?;
                name
            }
        };
        self.streams
            .write_locked()
            .insert(topic.to_owned(), (name.clone(), Subject::from(topic)));
        Ok(name)
    }

    pub(super) fn forget_stream(&self, topic: &str) {
        self.streams.write_locked().remove(topic);
    }
}

/// A name for a broker object (stream, consumer) made of `[A-Za-z0-9_-]`
/// only, at most `max` characters of it; when `text` had to change, a hash
/// of the whole of it follows, so different texts keep different names.
pub(crate) fn safe_name(text: &str, max: usize) -> String {
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

/// The durable consumer name of `group` on `topic` (what least-privilege
/// permissions name; see [`NatsBroker::consumer_name`]).
pub(super) fn consumer_name(group: &str, topic: &str) -> String {
    let last = topic.rsplit('.').next().unwrap_or(topic);
    let hash = xxhash_rust::xxh3::xxh3_64(format!("{group}\0{topic}").as_bytes());
    format!(
        "{}__{}__{hash:016x}",
        safe_name(group, 40),
        safe_name(last, 40)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names_keep_distinct_texts_apart() {
        assert_eq!(safe_name("Payment", 64), "Payment");
        let a = safe_name("a.b", 64);
        let b = safe_name("a_b", 64);
        assert_ne!(a, b);
        assert!(a.starts_with("a_b_"));
        assert!(safe_name(&"x".repeat(100), 10).starts_with("xxxxxxxxxx_"));
    }

    #[test]
    fn names_on_the_server() {
        assert_eq!(
            NatsBroker::stream_name("Ecommerce.OrderPlaced"),
            "Ecommerce"
        );
        assert_eq!(
            NatsBroker::stream_name("Ecommerce.OrderPlaced.dlq"),
            "Ecommerce"
        );
        assert_ne!(
            consumer_name("Payment", "Ecommerce.OrderPlaced"),
            consumer_name("Payment", "Ecommerce.StockReserved")
        );
        assert!(consumer_name("a.b", "x.y").starts_with("a_b_"));
        assert!(check_subject("a.b").is_ok());
        for bad in ["", "a..b", "a.*", "a.>", "a b", ".a"] {
            assert!(check_subject(bad).is_err(), "{bad:?}");
        }
    }
}
