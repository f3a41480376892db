//! The Lua scripts the adapter runs on the server: the deduplicating
//! publish and the removal of a member's consumer when it leaves.

use ::redis::RedisError;

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
pub(super) const PUBLISH: &str = r"
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
pub(super) const FORGET_CONSUMER: &str = r"
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) == 0 then
  return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
end
return -1
";

pub(super) fn is_noscript(e: &RedisError) -> bool {
    e.code() == Some("NOSCRIPT")
}
