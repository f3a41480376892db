//! Settling: acks, nacks (the entry made idle so that a claim takes it
//! after the delay), dead letters, progress and handing back.

use ::redis::Pipeline;
use async_trait::async_trait;
use bytes::Bytes;
use std::time::Duration;
use tokio::time::Instant;

use crate::sync::Recover;

use super::{ms, unavailable, Held, MemberCtx};
use crate::broker::pull::{self, GiveBack, Settle};
use crate::broker::{dead_letter_envelope, dead_letter_topic, BrokerError, Settlement, Settler};

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
    fn set_idle(&self, pipe: &mut Pipeline, h: &Held, idle: Duration) {
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

    pub(super) async fn dead_letter_and_ack(&self, dead: Vec<(Held, String)>) {
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
