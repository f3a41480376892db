//! Stores in Redis keys: a deployment on Redis keeps its inbox, join
//! slots and `@bounded` counters on the server it already runs.
//!
//! Keys, under the deployment's prefix, readable so that an operator can
//! list them (`SCAN 0 MATCH '<prefix>choreo:join:*'`):
//! - `<prefix>choreo:inbox:<scope>:<id>` (`%` and `:` in the scope
//!   percent-encoded): `C` while claimed, with the
//!   lease as its TTL (a lapsed claim is simply gone), then `D` with
//!   [`StoreOptions::window`] as its TTL;
//! - `<prefix>choreo:join:<scope>:<instance>`: a hash of slot to
//!   envelope, deleted once the join has fired; its TTL, starting anew
//!   with each arrival, is [`StoreOptions::join_window`] (none by default:
//!   a join may wait for a late command);
//! - `<prefix>choreo:bound:<scope>:<instance>`: a counter whose TTL, the
//!   window, starts anew with each firing, and
//!   `<prefix>choreo:fired:<scope>:<instance>`, the set of the firings it
//!   counted (their deliveries' dedup ids) with the same TTL, so that a
//!   firing whose delivery comes again is not counted twice.
//!
//! Every decision that depends on what is there runs in one Lua script:
//! a claim is `SET NX`, a join's arrival stores its slot and reads every
//! slot in one step, so that of two members arriving at once the later
//! one sees both. Which arrival fires is decided by the inbox claim of
//! the join's firing, `SET NX` too: exactly one wins.

use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::Script;
use async_trait::async_trait;

use super::{
    check_slot, first_occurrences, Claim, Firings, InboxStore, Seen, StateStore, StoreError,
    StoreOptions,
};
use crate::envelope::{json, Envelope, EventId};

/// Claims each key (`SET NX` with the lease); 0 acquired, 1 done, 2 busy.
/// ARGV[1]: the lease in milliseconds; ARGV[2]: the claim's value, `C`
/// and its owner (`C` alone: none), which finds its own claim acquired.
/// A claim repeated in one call is busy after its first time.
const CLAIM: &str = r"
local out = {}
local seen = {}
for i, k in ipairs(KEYS) do
  if redis.call('SET', k, ARGV[2], 'NX', 'PX', ARGV[1]) then
    out[i] = 0
  else
    local v = redis.call('GET', k)
    if v == 'D' then
      out[i] = 1
    elseif ARGV[2] ~= 'C' and v == ARGV[2] and not seen[k] then
      out[i] = 0
    else
      out[i] = 2
    end
  end
  seen[k] = true
end
return out
";

/// Marks each key done for ARGV[1] milliseconds.
const COMPLETE: &str = r"
for _, k in ipairs(KEYS) do
  redis.call('SET', k, 'D', 'PX', ARGV[1])
end
return 0
";

/// Drops each key that is still a claim (a done-mark stays).
const RELEASE: &str = r"
for _, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  if v and string.sub(v, 1, 1) == 'C' then
    redis.call('DEL', k)
  end
end
return 0
";

/// Puts ARGV[2] in slot ARGV[1] of the join KEYS[1] unless the slot is
/// filled, keeping the join ARGV[4] milliseconds from now (for ever when
/// 0); returns the ARGV[3] slots in order (nil where empty).
const JOIN: &str = r"
redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
if ARGV[4] ~= '0' then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
local fields = {}
for i = 0, tonumber(ARGV[3]) - 1 do
  fields[#fields + 1] = tostring(i)
end
return redis.call('HMGET', KEYS[1], unpack(fields))
";

/// Counts the firing ARGV[2] in the counter KEYS[1] once: the set KEYS[2]
/// holds the firings counted, and one already there leaves the count as
/// it is. Both are kept for ARGV[1] milliseconds.
const RECORD: &str = r"
if redis.call('SADD', KEYS[2], ARGV[2]) == 1 then
  redis.call('INCR', KEYS[1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return tonumber(redis.call('GET', KEYS[1]) or '0')
";

fn backend(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("Redis {what}: {e}"))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// The scripts, their hashes computed once.
struct Scripts {
    claim: Script,
    complete: Script,
    release: Script,
    join: Script,
    record: Script,
}

/// The connection and scripts shared by the inbox and the state store.
#[derive(Clone)]
pub struct RedisStores {
    conn: ConnectionManager,
    prefix: String,
    window: Duration,
    /// [`StoreOptions::join_window`] in milliseconds, 0 for none.
    join_window_ms: u64,
    scripts: std::sync::Arc<Scripts>,
}

impl RedisStores {
    /// Connects to `url` (`redis://host:port[/db]`, `rediss://…` over TLS
    /// with the settings of [`crate::broker::redis::url`]). The connection comes
    /// back by itself after the server restarts; meanwhile each call fails
    /// within a few seconds.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let client = crate::broker::redis::url::client(url).map_err(StoreError::Config)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| backend("connect", e))?;
        Ok(RedisStores {
            conn,
            prefix: options.prefix.clone(),
            window: options.window,
            join_window_ms: options.join_window.map_or(0, millis),
            scripts: std::sync::Arc::new(Scripts {
                claim: Script::new(CLAIM),
                complete: Script::new(COMPLETE),
                release: Script::new(RELEASE),
                join: Script::new(JOIN),
                record: Script::new(RECORD),
            }),
        })
    }

    /// The key of `id` in `scope`. A scope's own `:` (and `%`) are
    /// percent-encoded, so that no two pairs share a key; the scopes the
    /// runtime makes (`Choreography/Participant/reaction`) stay as they are.
    fn key(&self, what: &str, scope: &str, id: &str) -> String {
        RedisStores::key_of(&self.prefix, what, scope, id)
    }

    /// The key of `id` in `scope` for `what` (`inbox`, `join`, `bound`)
    /// under the deployment's `prefix`: what a Redis user's ACL must allow.
    pub fn key_of(prefix: &str, what: &str, scope: &str, id: &str) -> String {
        let scope = scope.replace('%', "%25").replace(':', "%3A");
        format!("{prefix}choreo:{what}:{scope}:{id}")
    }

    /// The inbox.
    pub fn inbox(&self) -> RedisInbox {
        RedisInbox {
            stores: self.clone(),
        }
    }

    /// The state store.
    pub fn state(&self) -> RedisStateStore {
        RedisStateStore {
            stores: self.clone(),
        }
    }

    /// Runs `script` over `keys` with `args` (by its hash; loaded first
    /// where the server does not have it, as after a restart).
    async fn run<T: ::redis::FromRedisValue>(
        &self,
        what: &str,
        script: impl Fn(&Scripts) -> &Script,
        keys: &[String],
        args: &[&[u8]],
    ) -> Result<T, StoreError> {
        let mut call = script(&self.scripts).prepare_invoke();
        for k in keys {
            call.key(k);
        }
        for a in args {
            call.arg(*a);
        }
        let mut conn = self.conn.clone();
        call.invoke_async(&mut conn)
            .await
            .map_err(|e| backend(what, e))
    }
}

/// The inbox, in `<prefix>choreo:inbox:*` keys.
#[derive(Clone)]
pub struct RedisInbox {
    stores: RedisStores,
}

impl RedisInbox {
    fn keys(&self, scope: &str, ids: &[EventId]) -> Vec<String> {
        ids.iter()
            .map(|id| self.stores.key("inbox", scope, &id.to_string()))
            .collect()
    }
}

#[async_trait]
impl InboxStore for RedisInbox {
    async fn claim_many(
        &self,
        scope: &str,
        ids: &[EventId],
        lease: Duration,
    ) -> Result<Vec<Claim>, StoreError> {
        self.claim_many_as(scope, ids, lease, 0).await
    }

    async fn claim_many_as(
        &self,
        scope: &str,
        ids: &[EventId],
        lease: Duration,
        owner: u64,
    ) -> Result<Vec<Claim>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let lease = millis(lease).to_string();
        let value = if owner == 0 {
            "C".to_owned()
        } else {
            format!("C{owner}")
        };
        let answers: Vec<i64> = self
            .stores
            .run(
                "claim",
                |s| &s.claim,
                &self.keys(scope, ids),
                &[lease.as_bytes(), value.as_bytes()],
            )
            .await?;
        if answers.len() != ids.len() {
            return Err(StoreError::Corrupt(format!(
                "{} claims answered for {} ids",
                answers.len(),
                ids.len()
            )));
        }
        Ok(answers
            .into_iter()
            .map(|a| match a {
                0 => Claim::Acquired,
                1 => Claim::Done,
                _ => Claim::Busy,
            })
            .collect())
    }

    async fn look_many(&self, scope: &str, ids: &[EventId]) -> Result<Vec<Seen>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // One MGET: a claim's lease is the key's own expiry.
        let mut conn = self.stores.conn.clone();
        let values: Vec<Option<Vec<u8>>> = ::redis::cmd("MGET")
            .arg(self.keys(scope, ids))
            .query_async(&mut conn)
            .await
            .map_err(|e| backend("look", e))?;
        if values.len() != ids.len() {
            return Err(StoreError::Corrupt(format!(
                "{} values answered for {} ids",
                values.len(),
                ids.len()
            )));
        }
        let first = first_occurrences(ids);
        values
            .into_iter()
            .zip(first)
            .map(|(v, first)| match v.as_deref() {
                _ if !first => Ok(Seen::Claimed),
                None => Ok(Seen::Unseen),
                Some(b"D") => Ok(Seen::Done),
                Some([b'C', ..]) => Ok(Seen::Claimed),
                Some(other) => Err(StoreError::Corrupt(format!("inbox value {other:?}"))),
            })
            .collect()
    }

    async fn complete_many(&self, scope: &str, ids: &[EventId]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let window = millis(self.stores.window).to_string();
        self.stores
            .run::<i64>(
                "done-mark",
                |s| &s.complete,
                &self.keys(scope, ids),
                &[window.as_bytes()],
            )
            .await
            .map(|_| ())
    }

    async fn release_many(&self, scope: &str, ids: &[EventId]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.stores
            .run::<i64>("release", |s| &s.release, &self.keys(scope, ids), &[])
            .await
            .map(|_| ())
    }
}

/// Join slots and `@bounded` counters, in `<prefix>choreo:join:*` and
/// `<prefix>choreo:bound:*` keys.
#[derive(Clone)]
pub struct RedisStateStore {
    stores: RedisStores,
}

#[async_trait]
impl StateStore for RedisStateStore {
    async fn join_arrive(
        &self,
        scope: &str,
        instance: &str,
        slot: usize,
        slots: usize,
        envelope: &Envelope,
    ) -> Result<Option<Vec<Envelope>>, StoreError> {
        check_slot(slot, slots)?;
        let bytes = json::encode(envelope).map_err(|e| backend("encode", e))?;
        let (slot_arg, slots_arg) = (slot.to_string(), slots.to_string());
        let keep = self.stores.join_window_ms.to_string();
        let filled: Vec<Option<Vec<u8>>> = self
            .stores
            .run(
                "join",
                |s| &s.join,
                &[self.stores.key("join", scope, instance)],
                &[
                    slot_arg.as_bytes(),
                    &bytes,
                    slots_arg.as_bytes(),
                    keep.as_bytes(),
                ],
            )
            .await?;
        let mut all = Vec::with_capacity(slots);
        for (i, data) in filled.into_iter().enumerate() {
            let Some(data) = data else {
                return Ok(None);
            };
            all.push(json::decode(&data).map_err(|e| {
                StoreError::Corrupt(format!("join slot {i} of {scope}/{instance}: {e}"))
            })?);
        }
        Ok((all.len() == slots).then_some(all))
    }

    async fn join_clear(&self, scope: &str, instance: &str) -> Result<(), StoreError> {
        let mut conn = self.stores.conn.clone();
        ::redis::cmd("DEL")
            .arg(self.stores.key("join", scope, instance))
            .query_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| backend("join clear", e))
    }

    async fn firings(
        &self,
        scope: &str,
        instance: &str,
        firing: &str,
    ) -> Result<Firings, StoreError> {
        let mut conn = self.stores.conn.clone();
        let (count, counted): (Option<u64>, bool) = ::redis::pipe()
            .cmd("GET")
            .arg(self.stores.key("bound", scope, instance))
            .cmd("SISMEMBER")
            .arg(self.stores.key("fired", scope, instance))
            .arg(firing)
            .query_async(&mut conn)
            .await
            .map_err(|e| backend("count", e))?;
        Ok(Firings {
            count: count.unwrap_or(0),
            counted,
        })
    }

    async fn record_firing(
        &self,
        scope: &str,
        instance: &str,
        firing: &str,
    ) -> Result<u64, StoreError> {
        let window = millis(self.stores.window).to_string();
        self.stores
            .run(
                "count",
                |s| &s.record,
                &[
                    self.stores.key("bound", scope, instance),
                    self.stores.key("fired", scope, instance),
                ],
                &[window.as_bytes(), firing.as_bytes()],
            )
            .await
    }
}
