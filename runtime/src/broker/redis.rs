//! The Redis Streams adapter (feature `redis`, URLs `redis://host:port[/db]`,
//! `rediss://host:port[/db]` over TLS: [`super::redis_url`]).
//!
//! Layout on the server (every key under [`RedisOptions::key_prefix`],
//! `choreo:` by default):
//!
//! - **Streams**: one per topic (`choreo:<topic>`), so one per event or
//!   command type; a topic's dead letters are the stream of
//!   `<topic>.dlq`. A consumer group reads only the streams of its topics,
//!   with nothing to filter out.
//! - **Groups**: a consumer group per group and stream (`XGROUP CREATE … 0`
//!   for [`StartPosition::Earliest`], `$` for `Latest`, the id just before
//!   the time's millisecond for `Since`); each member is a consumer of its
//!   own name in it.
//! - **Publishing**: pipelined `XADD`s of structured-mode events (field
//!   `event`), one round trip per batch. Redis 7 has no deduplication of
//!   its own: the services' inboxes deduplicate. With
//!   [`RedisOptions::dedup_window`] (URL `?dedup=2m`) a script appends each
//!   event unless its id was published to the topic within the window,
//!   remembered in a hash per topic and time bucket
//!   (`choreo:dedup:<topic>:<bucket>`) that expires as a whole; a batch is
//!   one call of the script.
//! - **Receiving**: each member reads with `XREADGROUP … BLOCK` on a
//!   connection of its own (blocking commands would stall a shared one),
//!   whose response timeout is longer than the block time.
//! - **Redelivery**: an entry not acked within `ack_wait` is taken over by
//!   any member with `XAUTOCLAIM` (which counts the delivery); the count
//!   comes from `XPENDING`. A nack with a delay sets the entry's idle time
//!   to `ack_wait - delay` (`XCLAIM … IDLE … JUSTID`), so that it becomes
//!   claimable after the delay; delays longer than `ack_wait` are cut to it.
//! - **Dead letters**: published to the dead-letter stream (with the
//!   window, deduplicated by `<id>/dlq/<group>`), then the entry is acked.
//! - **Reconnecting**: the connections reconnect by themselves; what a
//!   member had read stays in its group's pending list and is claimed
//!   again after the ack wait.
//! - **Observers** ([`Broker::observe`]): plain `XREAD … BLOCK` over the
//!   topics' streams, on a connection of their own, from the ids each read
//!   last (at the start: `0-0`, the id before the time's millisecond, or
//!   the streams' last ids); no group, nothing left on the server. A stream
//!   that is not there yet is read all the same, from its first entry.

use crate::sync::Recover;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::streams::{StreamAutoClaimReply, StreamPendingCountReply};
use ::redis::{Client, RedisError, Script, Value};
use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::pull::{self, GiveBack, Lifecycle, Member, Observation, PulledSubscription, Settle};
use super::{
    dead_letter_envelope, dead_letter_topic, Backoff, Broker, BrokerError, Capabilities, Delivery,
    Health, ObserveOptions, Settlement, Settler, StartPosition, SubscribeOptions, Subscription,
};
use crate::envelope::{json, Envelope, SharedStr};

/// Settings of a [`RedisBroker`]. [`RedisOptions::default`] is what
/// `connect("redis://…")` uses.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisOptions {
    /// Put in front of every key this adapter uses.
    pub key_prefix: String,
    /// How long a published id is remembered, at least (at most twice
    /// this), to drop a second publish of it on the same topic. `None`, the
    /// default: no deduplication by the broker, whose script costs the
    /// server about twice the CPU of a plain `XADD` per message; the
    /// services' inboxes deduplicate whatever the broker. The URL setting
    /// `?dedup=2m` turns it on (see [`RedisBroker::connect_with`]).
    pub dedup_window: Option<Duration>,
    /// Trim each stream to about this many entries on publish (`None`:
    /// keep everything). Trimming drops entries whether or not every group
    /// has read them.
    pub max_len: Option<usize>,
    /// The longest wait to connect before [`RedisBroker::connect`] gives up.
    pub connect_timeout: Duration,
    /// The longest wait for the answer to a command.
    pub response_timeout: Duration,
    /// How long one `XREADGROUP` blocks waiting for entries.
    pub block: Duration,
    /// How often a member looks for entries left unacked by others
    /// (`XAUTOCLAIM`).
    pub claim_interval: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            key_prefix: "choreo:".into(),
            dedup_window: None,
            max_len: None,
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            block: Duration::from_millis(500),
            claim_interval: Duration::from_millis(500),
        }
    }
}

impl RedisOptions {
    /// The key of the stream of `topic`.
    pub fn stream_key(&self, topic: &str) -> String {
        format!("{}{topic}", self.key_prefix)
    }
}

/// The field of a stream entry that holds the event.
const FIELD: &str = "event";

/// Appends events unless their ids were seen on their topics within the
/// window; one call for a whole batch. KEYS: stream and dedup-key prefix
/// of each event, in pairs. ARGV: window in ms, max length (0: no
/// trimming), then id and event of each.
///
/// Ids are remembered in one hash per topic and window-long time bucket
/// (`<prefix><bucket>`, by the server's clock), which expires as a whole
/// after two windows; an id is looked for in the current and the previous
/// bucket, so it is remembered for between one and two windows. A hash
/// field costs the server less than a key with an expiry per id. A failed
/// append forgets its id again, so that a retry is not taken for a
/// duplicate.
const PUBLISH: &str = r"
local window, maxlen = tonumber(ARGV[1]), ARGV[2]
local t = redis.call('TIME')
local bucket = math.floor((tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)) / window)
local expiring = {}
for i = 1, #KEYS / 2 do
  local stream, prefix = KEYS[2 * i - 1], KEYS[2 * i]
  local id, event = ARGV[1 + 2 * i], ARGV[2 + 2 * i]
  local cur = prefix .. bucket
  if redis.call('HEXISTS', prefix .. (bucket - 1), id) == 0
      and redis.call('HSETNX', cur, id, '1') == 1 then
    local added
    if maxlen == '0' then
      added = redis.pcall('XADD', stream, '*', 'event', event)
    else
      added = redis.pcall('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'event', event)
    end
    if type(added) == 'table' and added.err then
      redis.call('HDEL', cur, id)
      return added
    end
    if not expiring[cur] then
      redis.call('PEXPIRE', cur, 2 * window)
      expiring[cur] = true
    end
  end
end
return #KEYS / 2
";

/// Removes a consumer that holds nothing pending. KEYS: stream. ARGV:
/// group, consumer.
const FORGET_CONSUMER: &str = r"
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) == 0 then
  return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
end
return -1
";

/// A broker on a Redis server (7 or later). Cloning gives another handle
/// on the same connection.
#[derive(Clone)]
pub struct RedisBroker {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    client: Client,
    conn: ConnectionManager,
    options: RedisOptions,
    publish: Script,
    durable: bool,
    life: Lifecycle<MemberCtx>,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> BrokerError {
    BrokerError::Unavailable(format!("Redis {what}: {e}"))
}

/// The URL without choreo's own settings (for the Redis client, which
/// ignores what it does not know), and `options` with them applied.
fn url_settings(
    url: &str,
    mut options: RedisOptions,
) -> Result<(String, RedisOptions), BrokerError> {
    let bad = |reason: String| {
        BrokerError::Other(format!(
            "Redis URL `{}`: {reason}",
            crate::secret::redact(url)
        ))
    };
    let Ok(parsed) = url::Url::parse(url) else {
        // Not a URL this code can read: the client says what is wrong.
        return Ok((url.to_owned(), options));
    };
    let mut kept = Vec::new();
    let mut dedup = None;
    let mut maxlen = None;
    for (k, v) in parsed.query_pairs() {
        match &*k {
            "dedup" => dedup = Some(v.into_owned()),
            "maxlen" => maxlen = Some(v.into_owned()),
            _ => kept.push((k.into_owned(), v.into_owned())),
        }
    }
    if dedup.is_none() && maxlen.is_none() {
        return Ok((url.to_owned(), options));
    }
    if let Some(maxlen) = maxlen {
        // The streams' retention by size: `?maxlen=100000` trims each
        // stream to about that many entries as it grows.
        options.max_len = match maxlen.parse::<usize>() {
            Ok(0) => None,
            Ok(n) => Some(n),
            Err(_) => {
                return Err(bad(format!(
                    "`maxlen={maxlen}` is not a number of entries (0: keep everything)"
                )))
            }
        };
    }
    let Some(dedup) = dedup else {
        return Ok((strip(parsed, kept), options));
    };
    options.dedup_window = if dedup == "off" {
        None
    } else {
        let window: jiff::SignedDuration = dedup.parse().map_err(|e| {
            bad(format!(
                "`dedup={dedup}` is neither `off` nor a duration such as `2m` ({e})"
            ))
        })?;
        let window = Duration::try_from(window)
            .ok()
            .filter(|w| *w >= Duration::from_millis(1))
            .ok_or_else(|| bad(format!("`dedup={dedup}` is not a positive duration")))?;
        Some(window)
    };
    Ok((strip(parsed, kept), options))
}

/// `parsed` with only the `kept` query pairs (those of the client).
fn strip(mut parsed: url::Url, kept: Vec<(String, String)>) -> String {
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    parsed.into()
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl RedisBroker {
    /// Connects to `url` with the default [`RedisOptions`].
    pub async fn connect(url: &str) -> Result<RedisBroker, BrokerError> {
        RedisBroker::connect_with(url, RedisOptions::default()).await
    }

    /// Connects to `url` (`redis://[user:password@]host:port[/db][?dedup=…]`,
    /// `rediss://…` over TLS with the settings of
    /// [`redis_url`](super::redis_url): `?tls_ca=/etc/choreo/ca.pem`) and
    /// checks that the server answers, within `options.connect_timeout`.
    ///
    /// The URL's `dedup` setting overrides `options.dedup_window`: a
    /// duration (`dedup=2m`, `dedup=90s`, `dedup=PT2M`) turns deduplication
    /// by the broker on with that window, `dedup=off` turns it off. Its
    /// `maxlen=N` sets `options.max_len`, the streams' retention by size
    /// (`maxlen=0`: none).
    pub async fn connect_with(
        url: &str,
        options: RedisOptions,
    ) -> Result<RedisBroker, BrokerError> {
        let (server_url, options) = url_settings(url, options)?;
        let url = server_url.as_str();
        let client = super::redis_url::client(url).map_err(BrokerError::Other)?;
        let attempt = async {
            let conn = connection(&client, &options, options.response_timeout).await?;
            let mut c = conn.clone();
            let _: String = ::redis::cmd("PING")
                .query_async(&mut c)
                .await
                .map_err(|e| unavailable("PING", e))?;
            // Whether what was acknowledged survives a restart: AOF on.
            // A user with least privilege may not read the configuration
            // (`choreoc export permissions` grants no `CONFIG`): then it
            // is not known, and not said to be off.
            let appendonly: Result<Vec<String>, RedisError> = ::redis::cmd("CONFIG")
                .arg("GET")
                .arg("appendonly")
                .query_async(&mut c)
                .await;
            let refused = appendonly
                .as_ref()
                .is_err_and(|e| e.code() == Some("NOPERM"));
            let durable = appendonly
                .unwrap_or_default()
                .get(1)
                .is_some_and(|v| v == "yes");
            Ok::<_, BrokerError>((conn, durable, refused))
        };
        let (conn, durable, refused) =
            pull::within(options.connect_timeout, "Redis", attempt).await?;
        if refused {
            tracing::info!(
                url = %crate::store::describe(url),
                "this Redis user may not read whether appendonly is on (CONFIG GET refused)"
            );
        } else if !durable {
            tracing::warn!(
                url = %crate::secret::redact(url),
                "Redis runs without appendonly: a restart of the server loses the streams"
            );
        }
        Ok(RedisBroker {
            inner: Arc::new(Inner {
                url: url.to_owned(),
                client,
                conn,
                options,
                publish: Script::new(PUBLISH),
                durable,
                life: Lifecycle::new(),
            }),
        })
    }

    /// A connection to the server, for administration beyond the broker
    /// contract (trimming, clean-up).
    pub fn connection(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    /// The key of the stream of `topic`.
    pub fn stream_key(&self, topic: &str) -> String {
        self.inner.key(topic)
    }
}

/// A connection that reconnects by itself.
async fn connection(
    client: &Client,
    options: &RedisOptions,
    response_timeout: Duration,
) -> Result<ConnectionManager, BrokerError> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(options.connect_timeout))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(1));
    ConnectionManager::new_with_config(client.clone(), config)
        .await
        .map_err(|e| unavailable("connect", e))
}

fn is_noscript(e: &RedisError) -> bool {
    e.code() == Some("NOSCRIPT")
}

/// The stream and dedup-prefix keys of the topic published to last.
#[derive(Default)]
struct RunKeys {
    topic: String,
    stream: String,
    dedup: String,
}

impl RunKeys {
    fn of(&mut self, inner: &Inner, topic: &str) -> (&String, &String) {
        if self.stream.is_empty() || self.topic != topic {
            topic.clone_into(&mut self.topic);
            self.stream = inner.key(topic);
            self.dedup = format!("{}dedup:{topic}:", inner.options.key_prefix);
        }
        (&self.stream, &self.dedup)
    }
}

impl Inner {
    /// The id `publish_raw` deduplicates `env` by: its id when the broker
    /// deduplicates, else nothing (it would not be sent).
    fn dedup_id(&self, env: &Envelope) -> String {
        if self.options.dedup_window.is_some() {
            pull::id_text(env)
        } else {
            String::new()
        }
    }

    /// The stream key and topic of each of `topics`, once each.
    fn streams(&self, topics: &[String]) -> Vec<(String, SharedStr)> {
        let mut seen = HashSet::new();
        topics
            .iter()
            .filter(|t| seen.insert(t.as_str()))
            .map(|t| (self.key(t), SharedStr::from(t.clone())))
            .collect()
    }

    fn key(&self, topic: &str) -> String {
        self.options.stream_key(topic)
    }

    /// Publishes events, each `(topic, body, dedup id)`, in order, in one
    /// round trip: plain `XADD`s in a pipeline, or with deduplication one
    /// call of the publish script.
    async fn publish_raw(&self, items: &[(&str, Bytes, String)]) -> Result<(), BrokerError> {
        if items.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        // Batches mostly go to one topic: its keys are made once per run of
        // it (arguments are copied into the command as they are added).
        let mut keys = RunKeys::default();
        let Some(window) = self.options.dedup_window else {
            let mut pipe = ::redis::pipe();
            for (topic, body, _) in items {
                let cmd = pipe.cmd("XADD").arg(keys.of(self, topic).0);
                if let Some(max) = self.options.max_len {
                    cmd.arg("MAXLEN").arg("~").arg(max);
                }
                cmd.arg("*").arg(FIELD).arg(body.as_ref()).ignore();
            }
            return pipe
                .query_async::<()>(&mut conn)
                .await
                .map_err(|e| unavailable("publish", e));
        };
        let mut call = ::redis::cmd("EVALSHA");
        call.arg(self.publish.get_hash()).arg(2 * items.len());
        for (topic, _, _) in items {
            let (stream, dedup) = keys.of(self, topic);
            call.arg(stream).arg(dedup);
        }
        call.arg(ms(window).max(1))
            .arg(self.options.max_len.unwrap_or(0));
        for (_, body, dedup) in items {
            call.arg(dedup).arg(body.as_ref());
        }
        match call.query_async::<Value>(&mut conn).await {
            Ok(_) => Ok(()),
            Err(e) if is_noscript(&e) => {
                // A new or restarted server: load the script and run again.
                self.publish
                    .prepare_invoke()
                    .load_async(&mut conn)
                    .await
                    .map_err(|e| unavailable("script", e))?;
                call.query_async::<Value>(&mut conn)
                    .await
                    .map(|_| ())
                    .map_err(|e| unavailable("publish", e))
            }
            Err(e) => Err(unavailable("publish", e)),
        }
    }

    /// Whether `group` has nothing unread and nothing unacked on `key`.
    async fn drained(&self, key: &str, group: &str) -> Result<bool, RedisError> {
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
struct Entry {
    /// Index into the member's streams.
    stream: usize,
    id: String,
    /// The value of the `event` field, if the entry has one.
    raw: Option<Vec<u8>>,
    attempt: u32,
}

/// The entries of an `XREAD` or `XREADGROUP` reply, `streams` being the
/// (key, topic) pairs read: `[[key, [[id, [field, value, …]], …]], …]` (a
/// map of keys in RESP3), nothing when the read timed out.
fn read_entries(reply: Value, streams: &[(String, SharedStr)], got: &mut Vec<Entry>) {
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
fn id_before(t: jiff::Timestamp) -> String {
    match t.as_millisecond() {
        ms if ms <= 0 => "0-0".to_owned(),
        ms => format!("{}-{}", ms - 1, u64::MAX),
    }
}

/// The id of the last entry of each of `keys` ("0-0" for a stream that is
/// empty or not there yet): where reading only what comes next starts.
async fn last_ids(
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

/// Reads `streams` after `ids` (one per stream) with plain `XREAD`s into
/// `tx` until the observation is stopped (the task aborted), its channel
/// closed or the broker closed; `count` entries per stream and read.
async fn observe_streams(
    inner: Arc<Inner>,
    mut conn: ConnectionManager,
    streams: Vec<(String, SharedStr)>,
    mut ids: Vec<String>,
    count: usize,
    tx: mpsc::Sender<pull::Observed>,
) {
    let closed = inner.life.closed();
    let block = ms(inner.options.block).max(1);
    let mut recent = json::Recent::default();
    loop {
        let mut cmd = ::redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(block)
            .arg("STREAMS");
        for (key, _) in &streams {
            cmd.arg(key);
        }
        cmd.arg(&ids);
        // A stopped read needs no unblocking: the connection is this
        // observer's own, and goes when the task ends.
        let reply = tokio::select! {
            r = cmd.query_async::<Value>(&mut conn) => r,
            () = closed.stopped() => return,
        };
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "observing failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(pull::RETRY_PAUSE) => continue,
                    () = closed.stopped() => return,
                }
            }
        };
        let mut got = Vec::new();
        read_entries(reply, &streams, &mut got);
        for Entry {
            stream, id, raw, ..
        } in got
        {
            let topic = &streams[stream].1;
            let decoded = match raw {
                Some(b) => json::decode_bytes_in(&Bytes::from(b), &mut recent),
                None => Err(crate::envelope::EnvelopeError::Malformed(format!(
                    "the stream entry has no field {FIELD:?}"
                ))),
            };
            let envelope = match decoded {
                Ok(env) => Some(env),
                Err(e) => {
                    // An observer dead-letters nothing: the groups do that.
                    tracing::warn!(topic = %topic, id, error = %e, "skipping an entry that is not an envelope");
                    None
                }
            };
            ids[stream] = id;
            let Some(envelope) = envelope else { continue };
            tokio::select! {
                sent = tx.send((topic.clone(), envelope)) => if sent.is_err() {
                    return;
                },
                () = closed.stopped() => return,
            }
        }
    }
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

/// What a member keeps of a delivery until it is settled.
struct Held {
    /// Index into the member's streams.
    stream: usize,
    entry: String,
    envelope: Envelope,
    attempt: u32,
}

impl pull::Live for MemberCtx {
    fn stop(&self) -> &pull::Stop {
        &self.member.stop
    }
}

impl pull::Attempt for Held {
    fn attempt(&self) -> u32 {
        self.attempt
    }
}

/// One member: its streams, settler and reader.
struct MemberCtx {
    broker: Arc<Inner>,
    member: Arc<Member<Held>>,
    group: String,
    consumer: String,
    /// (stream key, topic) per topic.
    streams: Vec<(String, SharedStr)>,
    ack_wait: Duration,
    max_in_flight: usize,
    max_deliveries: u32,
    backoff: Backoff,
    /// When to look for claimable entries next (a nack brings it forward).
    claim_at: Mutex<Instant>,
}

#[async_trait]
impl Settler for MemberCtx {
    async fn keep_alive(&self, tags: &[u64]) -> Result<(), BrokerError> {
        let mut pipe = ::redis::pipe();
        let mut commands = 0;
        // Idle 0: no member's `XAUTOCLAIM` takes the entry for another
        // ack wait, and `JUSTID` does not count it as a delivery.
        self.member.keep_alive(tags, |h| {
            self.set_idle(&mut pipe, h, Duration::ZERO);
            commands += 1;
        });
        if commands == 0 {
            return Ok(());
        }
        let mut conn = self.broker.conn.clone();
        pipe.query_async::<()>(&mut conn)
            .await
            .map_err(|e| unavailable("keep alive", e))
    }

    async fn settle(&self, batch: Vec<(u64, Settlement)>) -> Result<(), BrokerError> {
        let mut acks: Vec<Vec<String>> = vec![Vec::new(); self.streams.len()];
        let mut delays = Vec::new();
        let mut dead = Vec::new();
        let (sorted, unknown) = pull::sort(&self.member, batch, self.max_deliveries, &self.backoff);
        for s in sorted {
            match s {
                Settle::Ack(h) => acks[h.stream].push(h.entry),
                Settle::Nack(h, delay) => delays.push((h, delay)),
                Settle::DeadLetter(h, reason) => dead.push((h, reason)),
            }
        }
        let mut first_err = None;
        if !dead.is_empty() {
            match self.dead_letter(dead).await {
                Ok(entries) => {
                    for (stream, entry) in entries {
                        acks[stream].push(entry);
                    }
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        let mut pipe = ::redis::pipe();
        let mut commands = 0;
        for (i, entries) in acks.iter().enumerate() {
            if !entries.is_empty() {
                pipe.cmd("XACK")
                    .arg(&self.streams[i].0)
                    .arg(&self.group)
                    .arg(entries)
                    .ignore();
                commands += 1;
            }
        }
        let now = Instant::now();
        let mut earliest = None::<Instant>;
        for (h, delay) in &delays {
            let delay = (*delay).min(self.ack_wait);
            self.set_idle(&mut pipe, h, self.ack_wait - delay);
            commands += 1;
            let at = now + delay;
            earliest = Some(earliest.map_or(at, |e| e.min(at)));
        }
        if commands > 0 {
            let mut conn = self.broker.conn.clone();
            if let Err(e) = pipe.query_async::<()>(&mut conn).await {
                first_err.get_or_insert(unavailable("settle", e));
            }
        }
        if let Some(at) = earliest {
            let mut claim_at = self.claim_at.locked();
            *claim_at = (*claim_at).min(at);
        }
        pull::settled(first_err, unknown)
    }
}

#[async_trait]
impl GiveBack<Held> for MemberCtx {
    async fn give_back(&self, held: Vec<Held>) {
        // Idle for the whole ack wait: the next claim of any member takes them.
        let mut pipe = ::redis::pipe();
        for h in &held {
            self.set_idle(&mut pipe, h, self.ack_wait);
        }
        let mut conn = self.broker.conn.clone();
        if let Err(e) = pipe.query_async::<()>(&mut conn).await {
            tracing::debug!(error = %e, "could not hand deliveries back; they return after the ack wait");
        }
    }
}

impl MemberCtx {
    /// Adds to `pipe` what makes `h`'s entry look idle for `idle`: it is
    /// claimable by any member's `XAUTOCLAIM` once idle for `ack_wait`
    /// (`JUSTID`: not counted as a delivery).
    fn set_idle(&self, pipe: &mut ::redis::Pipeline, h: &Held, idle: Duration) {
        pipe.cmd("XCLAIM")
            .arg(&self.streams[h.stream].0)
            .arg(&self.group)
            .arg(&self.consumer)
            .arg(0)
            .arg(&h.entry)
            .arg("IDLE")
            .arg(ms(idle))
            .arg("JUSTID")
            .ignore();
    }

    /// Publishes the dead letters of `items`; the entries to ack then.
    async fn dead_letter(
        &self,
        items: Vec<(Held, String)>,
    ) -> Result<Vec<(usize, String)>, BrokerError> {
        let mut bodies = Vec::with_capacity(items.len());
        for (h, reason) in &items {
            let topic = &self.streams[h.stream].1;
            let env = dead_letter_envelope(&h.envelope, topic, &self.group, h.attempt, reason);
            tracing::warn!(group = %self.group, topic = %topic, id = %env.id(), reason, "dead-lettered");
            bodies.push((
                dead_letter_topic(topic),
                pull::encode(&env)?,
                pull::dead_letter_dedup_id(&pull::id_text(&env), &self.group),
            ));
        }
        let refs: Vec<(&str, Bytes, String)> = bodies
            .iter()
            .map(|(t, b, d)| (t.as_str(), b.clone(), d.clone()))
            .collect();
        self.broker.publish_raw(&refs).await?;
        Ok(items
            .into_iter()
            .map(|(h, _)| (h.stream, h.entry))
            .collect())
    }

    /// Reads this member's streams into `tx` while the member lives.
    async fn read(self: Arc<Self>, tx: mpsc::UnboundedSender<Delivery>) {
        let settler: Arc<dyn Settler> = self.clone();
        let options = &self.broker.options;
        let mut conn = match connection(
            &self.broker.client,
            options,
            options.block + options.response_timeout,
        )
        .await
        {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(group = %self.group, error = %e, "no reading connection yet");
                None
            }
        };
        let mut reader_id = None;
        let mut cursors = vec!["0-0".to_owned(); self.streams.len()];
        let mut first = 0;
        let mut recent = json::Recent::default();
        loop {
            let Some(reserved) = self.member.reserve(usize::MAX).await else {
                return;
            };
            let Some(c) = conn.as_mut() else {
                self.member.release(reserved);
                tokio::time::sleep(pull::RETRY_PAUSE).await;
                conn = connection(
                    &self.broker.client,
                    options,
                    options.block + options.response_timeout,
                )
                .await
                .ok();
                continue;
            };
            if reader_id.is_none() {
                // This connection's id, to unblock its read when leaving.
                reader_id = ::redis::cmd("CLIENT")
                    .arg("ID")
                    .query_async::<i64>(c)
                    .await
                    .ok();
            }
            let mut got: Vec<Entry> = Vec::new();
            let now = Instant::now();
            let claim_due = {
                let at = *self.claim_at.locked();
                at <= now
            };
            let mut failed = None;
            if claim_due {
                *self.claim_at.locked() = now + options.claim_interval;
                if let Err(e) = self.claim(c, reserved, &mut cursors, &mut got).await {
                    failed = Some(e);
                }
            }
            let left = reserved - got.len().min(reserved);
            if left > 0 && failed.is_none() {
                let until_claim = self
                    .claim_at
                    .locked()
                    .saturating_duration_since(Instant::now());
                let block = options.block.min(until_claim).max(Duration::from_millis(1));
                if let Err(e) = self
                    .read_new(c, left, block, &mut first, &reader_id, &mut got)
                    .await
                {
                    failed = Some(e);
                }
            }
            let used = self.hand_out(got, &tx, &settler, &mut recent).await;
            self.member.release(reserved - used.min(reserved));
            if let Some(e) = failed {
                // Maybe a new connection (a new id) after this.
                reader_id = None;
                tracing::debug!(group = %self.group, error = %e, "reading failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(pull::RETRY_PAUSE) => {}
                    _ = self.member.stop.stopped() => {}
                }
            }
        }
    }

    /// New entries, up to `budget` over all streams.
    async fn read_new(
        &self,
        conn: &mut ConnectionManager,
        budget: usize,
        block: Duration,
        first: &mut usize,
        reader_id: &Option<i64>,
        got: &mut Vec<Entry>,
    ) -> Result<(), RedisError> {
        let n = self.streams.len();
        // COUNT applies per stream: read as many streams as the budget
        // allows, taking turns.
        let k = n.min(budget).max(1);
        let count = (budget / k).max(1);
        let chosen: Vec<usize> = (0..k).map(|i| (*first + i) % n).collect();
        *first = (*first + k) % n;
        let mut cmd = ::redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.group)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(ms(block))
            .arg("STREAMS");
        for &i in &chosen {
            cmd.arg(&self.streams[i].0);
        }
        for _ in &chosen {
            cmd.arg(">");
        }
        let read = cmd.query_async::<Value>(conn);
        tokio::pin!(read);
        let reply = tokio::select! {
            r = &mut read => r?,
            _ = self.member.stop.stopped() => {
                // Leaving: end the blocked read now rather than let it take
                // entries nobody will handle (a process that exits closes
                // the connection, which does the same).
                if let Some(id) = *reader_id {
                    let mut shared = self.broker.conn.clone();
                    let _: Result<Value, RedisError> = ::redis::cmd("CLIENT")
                        .arg("UNBLOCK")
                        .arg(id)
                        .query_async(&mut shared)
                        .await;
                }
                read.await?
            }
        };
        read_entries(reply, &self.streams, got);
        Ok(())
    }

    /// Entries of any member idle for longer than the ack wait, taken over
    /// by this member, with their delivery counts.
    async fn claim(
        &self,
        conn: &mut ConnectionManager,
        budget: usize,
        cursors: &mut [String],
        got: &mut Vec<Entry>,
    ) -> Result<(), RedisError> {
        for (i, (key, _)) in self.streams.iter().enumerate() {
            let room = budget.saturating_sub(got.len());
            if room == 0 {
                break;
            }
            let reply: StreamAutoClaimReply = ::redis::cmd("XAUTOCLAIM")
                .arg(key)
                .arg(&self.group)
                .arg(&self.consumer)
                .arg(ms(self.ack_wait))
                .arg(&cursors[i])
                .arg("COUNT")
                .arg(room.min(1000))
                .query_async(conn)
                .await?;
            cursors[i] = reply.next_stream_id;
            if reply.claimed.is_empty() {
                continue;
            }
            let (lo, hi) = (
                reply.claimed[0].id.clone(),
                reply.claimed[reply.claimed.len() - 1].id.clone(),
            );
            let pending: StreamPendingCountReply = ::redis::cmd("XPENDING")
                .arg(key)
                .arg(&self.group)
                .arg(&lo)
                .arg(&hi)
                .arg(reply.claimed.len() + self.max_in_flight)
                .arg(&self.consumer)
                .query_async(conn)
                .await?;
            for mut entry in reply.claimed {
                let count = pending
                    .ids
                    .iter()
                    .find(|p| p.id == entry.id)
                    .map_or(2, |p| p.times_delivered);
                let raw = match entry.map.remove(FIELD) {
                    Some(Value::BulkString(b)) => Some(b),
                    _ => None,
                };
                got.push(Entry {
                    stream: i,
                    id: entry.id,
                    raw,
                    attempt: u32::try_from(count).unwrap_or(u32::MAX),
                });
            }
        }
        Ok(())
    }

    /// Decodes entries and hands them out (or dead-letters those that do
    /// not decode or were delivered too often); how many were handed out.
    async fn hand_out(
        &self,
        got: Vec<Entry>,
        tx: &mpsc::UnboundedSender<Delivery>,
        settler: &Arc<dyn Settler>,
        recent: &mut json::Recent,
    ) -> usize {
        let mut used = 0;
        let mut dead = Vec::new();
        let mut back = Vec::new();
        for Entry {
            stream,
            id: entry,
            raw,
            attempt,
        } in got
        {
            let topic = &self.streams[stream].1;
            let raw = raw.map(Bytes::from);
            let decoded = match &raw {
                Some(b) => json::decode_bytes_in(b, recent),
                None => Err(crate::envelope::EnvelopeError::Malformed(format!(
                    "the stream entry has no field {FIELD:?}"
                ))),
            };
            let envelope = match decoded {
                Ok(env) => env,
                Err(e) => {
                    let id = format!("redis:{}:{entry}", self.streams[stream].0);
                    tracing::warn!(topic = %topic, id, error = %e, "an entry that is not an envelope");
                    let env = pull::undecodable_dead_letter(
                        raw.unwrap_or_default(),
                        &id,
                        "choreo-runtime/redis",
                        topic,
                        &self.group,
                        attempt,
                        &e,
                    );
                    // Already a dead letter: published as it is.
                    let reason = env
                        .extension(super::DLQ_REASON)
                        .unwrap_or_default()
                        .to_owned();
                    dead.push((
                        Held {
                            stream,
                            entry,
                            envelope: env,
                            attempt,
                        },
                        reason,
                    ));
                    continue;
                }
            };
            let held = Held {
                stream,
                entry,
                envelope,
                attempt,
            };
            if attempt > self.max_deliveries {
                let attempts = attempt - 1;
                let reason = pull::max_deliveries_reason(attempts, self.max_deliveries);
                dead.push((
                    Held {
                        attempt: attempts,
                        ..held
                    },
                    reason,
                ));
                continue;
            }
            if self.member.stop.is_stopped() {
                back.push(held);
                continue;
            }
            let (envelope, attempt) = (held.envelope.clone(), held.attempt);
            let tag = self.member.hold(held);
            used += 1;
            let d = Delivery::new(envelope, topic.clone(), attempt, tag, settler.clone());
            if tx.send(d).is_err() {
                if let Some(h) = self.member.take(tag) {
                    back.push(h);
                }
            }
        }
        if !dead.is_empty() {
            self.dead_letter_and_ack(dead).await;
        }
        if !back.is_empty() {
            self.give_back(back).await;
        }
        used
    }

    async fn dead_letter_and_ack(&self, dead: Vec<(Held, String)>) {
        match self.dead_letter(dead).await {
            Ok(entries) => {
                let mut pipe = ::redis::pipe();
                for (stream, entry) in entries {
                    pipe.cmd("XACK")
                        .arg(&self.streams[stream].0)
                        .arg(&self.group)
                        .arg(entry)
                        .ignore();
                }
                let mut conn = self.broker.conn.clone();
                if let Err(e) = pipe.query_async::<()>(&mut conn).await {
                    tracing::warn!(error = %e, "dead letters stored, acks failed; they come back");
                }
            }
            Err(e) => tracing::warn!(error = %e, "dead letters not stored; they come back"),
        }
    }
}

#[async_trait]
impl Broker for RedisBroker {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn url(&self) -> Option<&str> {
        Some(&self.inner.url)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            durable: self.inner.durable,
            per_key_order: false,
            native_dedup: self.inner.options.dedup_window.is_some(),
            history: true,
        }
    }

    async fn publish(&self, topic: &str, envelope: Envelope) -> Result<(), BrokerError> {
        self.inner.life.check_open()?;
        let body = pull::encode(&envelope)?;
        self.inner
            .publish_raw(&[(topic, body, self.inner.dedup_id(&envelope))])
            .await
    }

    async fn publish_batch(&self, messages: Vec<(SharedStr, Envelope)>) -> Result<(), BrokerError> {
        self.inner.life.check_open()?;
        let bodies = pull::encode_all(messages.iter().map(|(_, env)| env))?;
        let items: Vec<_> = messages
            .iter()
            .zip(bodies)
            .map(|((topic, env), body)| (topic.as_str(), body, self.inner.dedup_id(env)))
            .collect();
        self.inner.publish_raw(&items).await
    }

    async fn subscribe(
        &self,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>, BrokerError> {
        options.validate()?;
        // Refused rather than ignored (as it was): a consumer that relies
        // on per-key order must not run on a broker without it (the
        // conformance case `per_key_order` checks the refusal).
        options.refuse_per_key_order("Redis Streams")?;
        self.inner.life.check_open()?;
        let streams = self.inner.streams(&options.topics);
        let start = match options.start {
            StartPosition::Earliest => "0".to_owned(),
            StartPosition::Latest => "$".to_owned(),
            StartPosition::Since(t) => id_before(t),
        };
        let mut conn = self.inner.conn.clone();
        for (key, _) in &streams {
            let made: Result<(), RedisError> = ::redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(key)
                .arg(&options.group)
                .arg(&start)
                .arg("MKSTREAM")
                .query_async(&mut conn)
                .await;
            match made {
                Ok(()) => {}
                Err(e) if e.code() == Some("BUSYGROUP") => {}
                Err(e) => return Err(unavailable("XGROUP CREATE", e)),
            }
        }
        let member = Member::new(options.max_in_flight, options.ack_wait);
        let ctx = Arc::new(MemberCtx {
            broker: self.inner.clone(),
            member: member.clone(),
            group: options.group.clone(),
            consumer: format!("m-{:016x}", fastrand::u64(..)),
            streams,
            ack_wait: options.ack_wait,
            max_in_flight: options.max_in_flight,
            max_deliveries: options.max_deliveries,
            backoff: options.backoff,
            claim_at: Mutex::new(Instant::now()),
        });
        self.inner.life.register(&ctx);
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(ctx.clone().read(tx));
        Ok(Box::new(RedisSubscription {
            sub: PulledSubscription::new(rx, member, ctx.clone()),
            ctx,
        }))
    }

    async fn observe(&self, options: ObserveOptions) -> Result<Box<dyn Subscription>, BrokerError> {
        options.validate()?;
        self.inner.life.check_open()?;
        let streams = self.inner.streams(&options.topics);
        let o = &self.inner.options;
        // Blocking reads on a connection of their own: on a shared one
        // they would hold up every other command.
        let mut conn = connection(&self.inner.client, o, o.block + o.response_timeout).await?;
        let ids = match options.start {
            StartPosition::Earliest => vec!["0-0".to_owned(); streams.len()],
            StartPosition::Since(t) => vec![id_before(t); streams.len()],
            // `$` once, as concrete ids: a read after the first must go on
            // from what was there at the start.
            StartPosition::Latest => {
                let keys: Vec<String> = streams.iter().map(|(k, _)| k.clone()).collect();
                last_ids(&mut conn, &keys)
                    .await
                    .map_err(|e| unavailable("XREVRANGE", e))?
            }
        };
        // COUNT applies per stream: about `max_in_flight` over all.
        let count = (options.max_in_flight / streams.len().max(1)).max(1);
        let (tx, rx) = Observation::channel(options.max_in_flight);
        let reader = tokio::spawn(observe_streams(
            self.inner.clone(),
            conn,
            streams,
            ids,
            count,
            tx,
        ));
        // Plain reads leave nothing on the server to clean up.
        Ok(Box::new(Observation::new(rx, vec![reader], None)))
    }

    async fn health(&self) -> Health {
        if let Some(closing) = self.inner.life.unhealthy() {
            return closing;
        }
        let mut conn = self.inner.conn.clone();
        let ping: Result<String, RedisError> = ::redis::cmd("PING").query_async(&mut conn).await;
        match ping {
            Err(e) => Health::Unhealthy(format!(
                "{}: {}",
                crate::secret::redact(&self.inner.url),
                crate::secret::scrub(&e.to_string(), &self.inner.url)
            )),
            Ok(_) => Health::Healthy,
        }
    }

    async fn close(&self, drain_timeout: Duration) -> Result<(), BrokerError> {
        let inner = &self.inner;
        let drained = |live: Vec<Arc<MemberCtx>>| async move {
            let mut asked = HashSet::new();
            for m in &live {
                for (key, _) in &m.streams {
                    if asked.insert((key.clone(), m.group.clone()))
                        && !inner.drained(key, &m.group).await.unwrap_or(false)
                    {
                        return false;
                    }
                }
            }
            true
        };
        inner.life.close(drain_timeout, "redis", drained).await;
        Ok(())
    }
}

/// A member's subscription; leaving also removes its consumer from the
/// group when it holds nothing.
struct RedisSubscription {
    sub: PulledSubscription<Held>,
    ctx: Arc<MemberCtx>,
}

impl RedisSubscription {
    async fn forget_consumer(&self) {
        let script = Script::new(FORGET_CONSUMER);
        let mut conn = self.ctx.broker.conn.clone();
        for (key, _) in &self.ctx.streams {
            let _: Result<Value, RedisError> = script
                .key(key)
                .arg(&self.ctx.group)
                .arg(&self.ctx.consumer)
                .invoke_async(&mut conn)
                .await;
        }
    }
}

#[async_trait]
impl Subscription for RedisSubscription {
    async fn next_batch(&mut self, max: usize) -> Result<Option<Vec<Delivery>>, BrokerError> {
        self.sub.next_batch(max).await
    }

    async fn unsubscribe(&mut self) -> Result<(), BrokerError> {
        self.sub.unsubscribe().await?;
        self.forget_consumer().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> Result<(String, Option<Duration>), BrokerError> {
        url_settings(url, RedisOptions::default()).map(|(u, o)| (u, o.dedup_window))
    }

    #[test]
    fn the_url_turns_broker_deduplication_on_and_off() {
        assert_eq!(
            settings("redis://127.0.0.1:6379").unwrap(),
            ("redis://127.0.0.1:6379".into(), None),
            "off by default, the URL untouched"
        );
        assert_eq!(
            settings("redis://127.0.0.1:6379/2?dedup=2m").unwrap(),
            (
                "redis://127.0.0.1:6379/2".into(),
                Some(Duration::from_secs(120))
            )
        );
        assert_eq!(
            settings("redis://h:1?protocol=resp3&dedup=PT90S").unwrap(),
            (
                "redis://h:1?protocol=resp3".into(),
                Some(Duration::from_secs(90))
            ),
            "the client's own settings stay"
        );
        let on = RedisOptions {
            dedup_window: Some(Duration::from_secs(5)),
            ..RedisOptions::default()
        };
        assert_eq!(
            url_settings("redis://h:1?dedup=off", on)
                .unwrap()
                .1
                .dedup_window,
            None
        );
    }

    #[test]
    fn the_url_sets_the_streams_retention_by_size() {
        let (url, o) = url_settings(
            "redis://h:1/2?maxlen=5000&dedup=2m",
            RedisOptions::default(),
        )
        .unwrap();
        assert_eq!(url, "redis://h:1/2");
        assert_eq!(
            (o.max_len, o.dedup_window),
            (Some(5000), Some(Duration::from_secs(120)))
        );
        let (url, o) = url_settings("redis://h:1?maxlen=0", RedisOptions::default()).unwrap();
        assert_eq!((url.as_str(), o.max_len), ("redis://h:1", None));
        let e = url_settings("redis://:pw@h:1?maxlen=lots", RedisOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("maxlen=lots") && !e.contains("pw"), "{e}");
    }

    #[test]
    fn reading_from_a_time_starts_at_its_millisecond() {
        let t: jiff::Timestamp = "2025-03-04T05:06:07.123999Z".parse().unwrap();
        let ms = t.as_millisecond();
        assert_eq!(id_before(t), format!("{}-18446744073709551615", ms - 1));
        assert_eq!(id_before(jiff::Timestamp::UNIX_EPOCH), "0-0");
        assert_eq!(id_before(jiff::Timestamp::MIN), "0-0");
    }

    #[test]
    fn a_bad_dedup_setting_is_a_clear_error() {
        for bad in ["soon", "-5s", "0s", ""] {
            let err = settings(&format!("redis://h:1?dedup={bad}")).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(&format!("`dedup={bad}`")), "{text}");
        }
    }
}
