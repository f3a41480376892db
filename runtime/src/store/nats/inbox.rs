//! The inbox, in the `<prefix>choreo_inbox` bucket: a claim is a create
//! whose value holds its lease, a done-mark a put.

use std::time::Duration;

use async_nats::jetstream::kv;
use async_trait::async_trait;
use bytes::Bytes;
use futures::future::join_all;

use super::{backend, compare_and_set, current, key, now_ms, CAS_TRIES};
use crate::envelope::EventId;
use crate::store::{first_occurrences, Claim, InboxStore, Seen, StoreError};

/// The value of a done-mark.
const DONE: &[u8] = b"D";

/// A claim's value: `C<until>` (milliseconds after the epoch), then
/// `/<owner>` when it has one.
fn claim_value(lease: Duration, owner: u64) -> Bytes {
    let until = now_ms().saturating_add(u64::try_from(lease.as_millis()).unwrap_or(u64::MAX));
    if owner == 0 {
        Bytes::from(format!("C{until}"))
    } else {
        Bytes::from(format!("C{until}/{owner}"))
    }
}

/// What a stored inbox value says.
enum Mark {
    Done,
    /// Claimed until this many milliseconds after the epoch, by this
    /// owner (0: none said).
    Claimed(u64, u64),
}

fn mark(value: &[u8]) -> Result<Mark, StoreError> {
    if value == DONE {
        return Ok(Mark::Done);
    }
    let claimed = std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.strip_prefix('C'))
        .and_then(|v| {
            let (until, owner) = v.split_once('/').unwrap_or((v, "0"));
            Some(Mark::Claimed(until.parse().ok()?, owner.parse().ok()?))
        });
    claimed.ok_or_else(|| StoreError::Corrupt(format!("inbox value {value:?}")))
}

/// The inbox, in the `<prefix>choreo_inbox` bucket.
#[derive(Clone)]
pub struct NatsKvInbox {
    bucket: kv::Store,
}

impl NatsKvInbox {
    pub(super) fn new(bucket: kv::Store) -> Self {
        NatsKvInbox { bucket }
    }

    async fn claim_one(&self, key: &str, lease: Duration, owner: u64) -> Result<Claim, StoreError> {
        // Most ids are new: a create (an update expecting revision 0) is
        // then the only round trip.
        if compare_and_set(&self.bucket, key, claim_value(lease, owner), 0).await? {
            return Ok(Claim::Acquired);
        }
        for _ in 0..CAS_TRIES {
            let (value, revision) = current(&self.bucket, key).await?;
            let lapsed = match value.as_deref().map(mark).transpose()? {
                Some(Mark::Done) => return Ok(Claim::Done),
                Some(Mark::Claimed(_, by)) if owner != 0 && by == owner => {
                    return Ok(Claim::Acquired)
                }
                Some(Mark::Claimed(until, _)) if until > now_ms() => return Ok(Claim::Busy),
                Some(Mark::Claimed(..)) => true,
                None => false,
            };
            if compare_and_set(&self.bucket, key, claim_value(lease, owner), revision).await? {
                return Ok(Claim::Acquired);
            }
            if lapsed {
                // Another delivery took the lapsed claim over first.
                return Ok(Claim::Busy);
            }
        }
        Ok(Claim::Busy)
    }

    async fn release_one(&self, key: &str) -> Result<(), StoreError> {
        let (value, revision) = current(&self.bucket, key).await?;
        if let Some(Mark::Claimed(..)) = value.as_deref().map(mark).transpose()? {
            // Only the claim read here: a done-mark written since stays.
            match self
                .bucket
                .delete_expect_revision(key, Some(revision))
                .await
            {
                Ok(()) => {}
                Err(e) if e.kind() == kv::DeleteErrorKind::WrongLastRevision => {}
                Err(e) => return Err(backend("release", e)),
            }
        }
        Ok(())
    }
}

#[async_trait]
impl InboxStore for NatsKvInbox {
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
        let first = first_occurrences(ids);
        // All at once: one round trip's wait for the batch, not one per id.
        let claims = ids.iter().zip(&first).map(|(id, &first)| async move {
            if first {
                self.claim_one(&key(scope, &id.to_string()), lease, owner)
                    .await
            } else {
                Ok(Claim::Busy)
            }
        });
        join_all(claims).await.into_iter().collect()
    }

    async fn look_many(&self, scope: &str, ids: &[EventId]) -> Result<Vec<Seen>, StoreError> {
        let first = first_occurrences(ids);
        // A direct get per id, all at once: a read, where a claim is a
        // write to the bucket's file-backed stream.
        let looks = ids.iter().zip(&first).map(|(id, &first)| async move {
            if !first {
                return Ok(Seen::Claimed);
            }
            let (value, _) = current(&self.bucket, &key(scope, &id.to_string())).await?;
            Ok(match value.as_deref().map(mark).transpose()? {
                None => Seen::Unseen,
                Some(Mark::Done) => Seen::Done,
                Some(Mark::Claimed(until, _)) if until > now_ms() => Seen::Claimed,
                Some(Mark::Claimed(..)) => Seen::Unseen,
            })
        });
        join_all(looks).await.into_iter().collect()
    }

    async fn complete_many(&self, scope: &str, ids: &[EventId]) -> Result<(), StoreError> {
        let puts = ids.iter().map(|id| async move {
            self.bucket
                .put(key(scope, &id.to_string()), Bytes::from_static(DONE))
                .await
                .map_err(|e| backend("done-mark", e))
        });
        join_all(puts)
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        Ok(())
    }

    async fn release_many(&self, scope: &str, ids: &[EventId]) -> Result<(), StoreError> {
        let releases = ids
            .iter()
            .map(|id| async move { self.release_one(&key(scope, &id.to_string())).await });
        join_all(releases)
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        Ok(())
    }
}
