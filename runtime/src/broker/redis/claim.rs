//! Redelivery: entries left unacked past the ack wait, by any member, taken
//! over with `XAUTOCLAIM`, their delivery counts from `XPENDING`.

use ::redis::aio::ConnectionManager;
use ::redis::streams::{StreamAutoClaimReply, StreamPendingCountReply};
use ::redis::{RedisError, Value};

use super::streams::Entry;
use super::{ms, MemberCtx, FIELD};

impl MemberCtx {
    /// Entries of any member idle for longer than the ack wait, taken over
    /// by this member, with their delivery counts.
    pub(super) async fn claim(
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
}
