//! `Idempotency-Key`: what makes a retried request the same command.
//!
//! A command sent with an `Idempotency-Key` gets an event id derived from
//! the key, the command's type and the instance key, and a generated
//! `uuid` instance key is derived from the key and the command's type: a
//! retry sends the same event (which the broker and the services' inboxes
//! take once) and is answered the same `202`, from any replica of the
//! ingress and after a restart.
//!
//! What the ingress remembers is only what refuses a key reused for
//! another request (`422`): each key's digest of the command's type, its
//! instance key and its body, for [`IdempotencyOptions::window`] and at
//! most [`IdempotencyOptions::capacity`] keys (the oldest forgotten first),
//! in this process.

use crate::sync::Recover;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::envelope::EventId;

/// The longest `Idempotency-Key` taken, in bytes.
pub const MAX_KEY_LEN: usize = 255;

// Seeds of the hashes below. Changing one changes the ids and keys that
// retries of requests sent before the change get, so they are part of the
// ingress's contract.
const EVENT_SEED: u64 = 0x3a9c_51e7_0d24_8b6f;
const KEY_SEED: u64 = 0x5e27_c08b_94f1_6a3d;
const DIGEST_SEED: u64 = 0x7c4d_2a91_e35b_0f86;

/// How much of the `Idempotency-Key`s it saw an ingress remembers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyOptions {
    /// How long a key is remembered after its first request (24 hours by
    /// default).
    pub window: Duration,
    /// How many keys are remembered at most (65,536 by default, about
    /// 25 MB with keys of the longest length, 255 bytes).
    pub capacity: usize,
}

impl Default for IdempotencyOptions {
    fn default() -> Self {
        IdempotencyOptions {
            window: Duration::from_secs(24 * 3600),
            capacity: 65_536,
        }
    }
}

/// The event id of a command sent with `Idempotency-Key` `key`, of type
/// `command` for instance `instance`: the same inputs always give the same
/// id (a version 8 UUID holding their XXH3-128 hash).
pub fn event_id(key: &str, command: &str, instance: &str) -> EventId {
    EventId::from(hashed_uuid(EVENT_SEED, &[key, command, instance]))
}

/// The instance key generated for a command of type `command` sent with
/// `Idempotency-Key` `key` (a version 8 UUID, as [`event_id`]).
pub fn instance_key(key: &str, command: &str) -> Uuid {
    hashed_uuid(KEY_SEED, &[key, command])
}

/// What identifies one request under one `Idempotency-Key`: its command's
/// type, its instance key and its body, byte for byte.
pub fn request_digest(command: &str, instance: &str, body: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128_with_seed(
        &framed(&[command.as_bytes(), instance.as_bytes(), body]),
        DIGEST_SEED,
    )
}

fn hashed_uuid(seed: u64, parts: &[&str]) -> Uuid {
    let parts: Vec<&[u8]> = parts.iter().map(|p| p.as_bytes()).collect();
    let bytes = xxhash_rust::xxh3::xxh3_128_with_seed(&framed(&parts), seed).to_be_bytes();
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The parts, each after its length, so that no two lists of parts give
/// the same bytes.
fn framed(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 8).sum());
    for p in parts {
        out.extend_from_slice(&(p.len() as u64).to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// What a request under an `Idempotency-Key` is, to what was remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The key's first request (or its first since it was forgotten).
    First,
    /// The same request again.
    Again,
    /// Another request under a key already used: refused.
    Conflict,
}

/// The `Idempotency-Key`s an ingress saw, each with its request's digest,
/// bounded in time and number ([`IdempotencyOptions`]).
#[derive(Debug)]
pub struct IdempotencyKeys {
    options: IdempotencyOptions,
    seen: Mutex<Remembered>,
}

#[derive(Debug, Default)]
struct Remembered {
    digests: HashMap<Arc<str>, u128>,
    // Every remembered key once, oldest first: keys are only added when
    // absent, so this and `digests` hold the same keys.
    order: VecDeque<(Instant, Arc<str>)>,
}

impl IdempotencyKeys {
    /// Remembers keys as `options` say.
    pub fn new(options: IdempotencyOptions) -> Self {
        IdempotencyKeys {
            options,
            seen: Mutex::default(),
        }
    }

    /// The options.
    pub fn options(&self) -> IdempotencyOptions {
        self.options
    }

    /// How many keys are remembered now.
    pub fn len(&self) -> usize {
        self.lock().digests.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records the request `digest` under `key` (at `now`), and says
    /// whether the key was free, held by the same request, or by another.
    pub fn admit(&self, key: &str, digest: u128, now: Instant) -> Seen {
        let mut seen = self.lock();
        let Remembered { digests, order } = &mut *seen;
        let window = self.options.window;
        forget_oldest(digests, order, |at, _| {
            now.saturating_duration_since(at) >= window
        });
        match digests.get(key) {
            Some(d) if *d == digest => Seen::Again,
            Some(_) => Seen::Conflict,
            None => {
                let capacity = self.options.capacity.max(1);
                forget_oldest(digests, order, |_, len| len >= capacity);
                let key: Arc<str> = key.into();
                digests.insert(key.clone(), digest);
                order.push_back((now, key));
                Seen::First
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Remembered> {
        // A panic while the lock was held leaves the maps whole (each
        // change is one insert or one remove), so a poisoned lock is used.
        self.seen.locked()
    }
}

/// Forgets the oldest keys while `forget(first seen, how many)` says so.
fn forget_oldest(
    digests: &mut HashMap<Arc<str>, u128>,
    order: &mut VecDeque<(Instant, Arc<str>)>,
    forget: impl Fn(Instant, usize) -> bool,
) {
    while let Some((at, oldest)) = order.front() {
        if !forget(*at, order.len()) {
            break;
        }
        digests.remove(&**oldest);
        order.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_keys_depend_on_every_input_and_nothing_else() {
        let id = event_id("k1", "Shop.PlaceOrder", "o-1");
        assert_eq!(id, event_id("k1", "Shop.PlaceOrder", "o-1"));
        assert_ne!(id, event_id("k2", "Shop.PlaceOrder", "o-1"));
        assert_ne!(id, event_id("k1", "Shop.CancelOrder", "o-1"));
        assert_ne!(id, event_id("k1", "Shop.PlaceOrder", "o-2"));
        // Framing: moving a byte from one part to the next is another id.
        assert_ne!(event_id("k1x", "y", "z"), event_id("k1", "xy", "z"));
        let key = instance_key("k1", "Shop.PlaceOrder");
        assert_eq!(key, instance_key("k1", "Shop.PlaceOrder"));
        assert_ne!(key, instance_key("k1", "Shop.Other"));
        assert_eq!(key.get_version_num(), 8);
        assert_ne!(
            request_digest("T", "k", b"{}"),
            request_digest("T", "k", b"{ }")
        );
    }

    #[test]
    fn a_key_is_refused_for_another_request_until_it_is_forgotten() {
        let keys = IdempotencyKeys::new(IdempotencyOptions {
            window: Duration::from_secs(60),
            capacity: 2,
        });
        let t0 = Instant::now();
        assert_eq!(keys.admit("a", 1, t0), Seen::First);
        assert_eq!(keys.admit("a", 1, t0), Seen::Again);
        assert_eq!(keys.admit("a", 2, t0), Seen::Conflict);
        // Past the window, `a` is forgotten: another request may take it.
        let later = t0 + Duration::from_secs(61);
        assert_eq!(keys.admit("a", 2, later), Seen::First);
        // Past the capacity, the oldest key goes first.
        assert_eq!(keys.admit("b", 3, later), Seen::First);
        assert_eq!(keys.admit("c", 4, later), Seen::First);
        assert_eq!(keys.len(), 2);
        assert_eq!(keys.admit("a", 9, later), Seen::First);
        assert_eq!(keys.admit("c", 5, later), Seen::Conflict);
    }
}
