//! Streams and their entries: the keys of topics, where reading starts,
//! the entries of a read, and whether a group has drained a stream.

use std::collections::HashSet;

use ::redis::aio::ConnectionManager;
use ::redis::{RedisError, Value};

use super::{Inner, FIELD};
use crate::envelope::SharedStr;

impl Inner {
    /// The stream key and topic of each of `topics`, once each.
    pub(super) fn streams(&self, topics: &[String]) -> Vec<(String, SharedStr)> {
        let mut seen = HashSet::new();
        topics
            .iter()
            .filter(|t| seen.insert(t.as_str()))
            .map(|t| (self.key(t), SharedStr::from(t.clone())))
            .collect()
    }

    pub(super) fn key(&self, topic: &str) -> String {
        self.options.stream_key(topic)
    }
    /// Whether `group` has nothing unread and nothing unacked on `key`.
    pub(super) async fn drained(&self, key: &str, group: &str) -> Result<bool, RedisError> {
        let mut conn = self.conn.clone();
        let groups: ::redis::streams::StreamInfoGroupsReply = ::redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(key)
            .query_async(&mut conn)
            .await?;
        let Some(g) = groups.groups.iter().find(|g| g.name == group) else {
            return Ok(true);
        };
        if g.pending > 0 {
            return Ok(false);
        }
        match g.lag {
            Some(lag) => Ok(lag == 0),
            // Redis cannot tell the lag (after deletions): compare the last
            // entry delivered to the group with the stream's last.
            None => {
                let info: ::redis::streams::StreamInfoStreamReply = ::redis::cmd("XINFO")
                    .arg("STREAM")
                    .arg(key)
                    .query_async(&mut conn)
                    .await?;
                Ok(info.last_generated_id == g.last_delivered_id)
            }
        }
    }
}

/// A stream entry read or claimed.
pub(super) struct Entry {
    /// Index into the member's streams.
    pub(super) stream: usize,
    pub(super) id: String,
    /// The value of the `event` field, if the entry has one.
    pub(super) raw: Option<Vec<u8>>,
    pub(super) attempt: u32,
}

/// The entries of an `XREAD` or `XREADGROUP` reply, `streams` being the
/// (key, topic) pairs read: `[[key, [[id, [field, value, …]], …]], …]` (a
/// map of keys in RESP3), nothing when the read timed out.
pub(super) fn read_entries(reply: Value, streams: &[(String, SharedStr)], got: &mut Vec<Entry>) {
    let per_stream: Vec<(Value, Value)> = match reply {
        Value::Array(keys) => keys
            .into_iter()
            .filter_map(|k| match k {
                Value::Array(mut kv) if kv.len() == 2 => {
                    let entries = kv.pop()?;
                    Some((kv.pop()?, entries))
                }
                _ => None,
            })
            .collect(),
        Value::Map(keys) => keys,
        _ => Vec::new(),
    };
    for (key, entries) in per_stream {
        let Some(i) = streams
            .iter()
            .position(|(k, _)| matches!(&key, Value::BulkString(b) if b == k.as_bytes()))
        else {
            continue;
        };
        let Value::Array(entries) = entries else {
            continue;
        };
        for e in entries {
            let Value::Array(mut parts) = e else { continue };
            let fields = if parts.len() == 2 { parts.pop() } else { None };
            let Some(Value::BulkString(id)) = parts.pop() else {
                continue;
            };
            got.push(Entry {
                stream: i,
                // Valid UTF-8 (what Redis makes) moves without a copy.
                id: String::from_utf8(id)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
                raw: fields.and_then(event_field),
                attempt: 1,
            });
        }
    }
}

/// The stream id just before every entry added at or after `t` (by the
/// server's clock, to the millisecond): reading after it (`XREAD`, a
/// group's last-delivered id) starts with the first entry of `t`'s
/// millisecond.
pub(super) fn id_before(t: jiff::Timestamp) -> String {
    match t.as_millisecond() {
        ms if ms <= 0 => "0-0".to_owned(),
        ms => format!("{}-{}", ms - 1, u64::MAX),
    }
}

/// The id of the last entry of each of `keys` ("0-0" for a stream that is
/// empty or not there yet): where reading only what comes next starts.
pub(super) async fn last_ids(
    conn: &mut ConnectionManager,
    keys: &[String],
) -> Result<Vec<String>, RedisError> {
    let mut pipe = ::redis::pipe();
    for key in keys {
        pipe.cmd("XREVRANGE")
            .arg(key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1);
    }
    let replies: Vec<Value> = pipe.query_async(conn).await?;
    Ok(replies
        .into_iter()
        .map(|r| {
            // [[id, [field, value, …]]] or [].
            let id = match r {
                Value::Array(mut entries) if !entries.is_empty() => match entries.swap_remove(0) {
                    Value::Array(mut parts) if !parts.is_empty() => match parts.swap_remove(0) {
                        Value::BulkString(id) => String::from_utf8(id).ok(),
                        _ => None,
                    },
                    _ => None,
                },
                _ => None,
            };
            id.unwrap_or_else(|| "0-0".to_owned())
        })
        .collect())
}
/// The `event` field of an entry's `[field, value, …]`.
fn event_field(fields: Value) -> Option<Vec<u8>> {
    let Value::Array(fields) = fields else {
        return None;
    };
    let mut it = fields.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        if let (Value::BulkString(k), Value::BulkString(v)) = (k, v) {
            if k == FIELD.as_bytes() {
                return Some(v);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_from_a_time_starts_at_its_millisecond() {
        let t: jiff::Timestamp = "2025-03-04T05:06:07.123999Z".parse().unwrap();
        let ms = t.as_millisecond();
        assert_eq!(id_before(t), format!("{}-18446744073709551615", ms - 1));
        assert_eq!(id_before(jiff::Timestamp::UNIX_EPOCH), "0-0");
        assert_eq!(id_before(jiff::Timestamp::MIN), "0-0");
    }
}
