//! Attribute texts that repeat from event to event (types, sources), made
//! `'static` once, so that decoding an envelope off the wire shares them
//! with no allocation and no reference count to update.
//!
//! The table is bounded: texts come from the wire, and a stream of
//! distinct values must not grow memory without end. Past the bounds, or
//! for long texts, [`Recent::shared`] allocates as it always did.

use crate::sync::Recover;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use smallvec::SmallVec;

use super::SharedStr;

/// Texts longer than this are not interned.
const MAX_TEXT: usize = 256;
/// The most bytes the table holds, all texts together.
const MAX_BYTES: usize = 1 << 20;
/// How many texts one decoder remembers without asking the table.
const RECENT: usize = 8;

struct Table {
    texts: HashSet<&'static str>,
    bytes: usize,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);
// Read without the lock, so that once the table is full a decoder no
// longer queues on it for every event.
static FULL: AtomicBool = AtomicBool::new(false);

/// The `'static` copy of `text`, made on first use; `None` when `text` is
/// too long or the table is full.
fn intern(text: &str) -> Option<&'static str> {
    if text.len() > MAX_TEXT || FULL.load(Ordering::Relaxed) {
        return None;
    }
    let mut guard = TABLE.locked();
    let table = guard.get_or_insert_with(|| Table {
        texts: HashSet::new(),
        bytes: 0,
    });
    if let Some(t) = table.texts.get(text) {
        return Some(t);
    }
    if table.bytes + text.len() > MAX_BYTES {
        FULL.store(true, Ordering::Relaxed);
        return None;
    }
    // Leaked on purpose: the table lives as long as the process, and its
    // bounds cap what it can hold.
    let leaked: &'static str = Box::leak(text.to_owned().into_boxed_str());
    table.bytes += leaked.len();
    table.texts.insert(leaked);
    Some(leaked)
}

/// `text` as a [`SharedStr`] that costs nothing to clone or drop: the
/// table's copy, or a counted one past the table's bounds. For names a
/// process repeats on every event (a service's source).
pub(crate) fn shared(text: &str) -> SharedStr {
    match intern(text) {
        Some(t) => SharedStr::from_static(t),
        None => SharedStr::from(Arc::<str>::from(text)),
    }
}

/// The texts one decoder (one subscription's receiving loop) saw last, in
/// front of the shared table: a hit takes no lock.
#[derive(Default)]
pub struct Recent {
    seen: SmallVec<[&'static str; RECENT]>,
}

impl Recent {
    /// `text` as a [`SharedStr`]: the interned copy when there is one.
    pub fn shared(&mut self, text: &str) -> SharedStr {
        if let Some(t) = self.seen.iter().find(|t| **t == text) {
            return SharedStr::from_static(t);
        }
        match intern(text) {
            Some(t) => {
                if self.seen.len() == RECENT {
                    self.seen.remove(0);
                }
                self.seen.push(t);
                SharedStr::from_static(t)
            }
            None => SharedStr::from(Arc::<str>::from(text)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_texts_share_one_static_copy() {
        let mut a = Recent::default();
        let mut b = Recent::default();
        let x = a.shared("Intern.Test.Shipped");
        let y = b.shared(&String::from("Intern.Test.Shipped"));
        assert_eq!(x, "Intern.Test.Shipped");
        assert!(x.same_ptr(&y), "two decoders share the table's copy");
        // More distinct texts than a decoder remembers still come back right.
        for round in 0..2 {
            for i in 0..3 * RECENT {
                let text = format!("Intern.Test.T{i}");
                assert_eq!(a.shared(&text), text.as_str(), "round {round}");
            }
        }
    }

    #[test]
    fn long_texts_are_not_interned() {
        let long = "s".repeat(MAX_TEXT + 1);
        let mut r = Recent::default();
        let x = r.shared(&long);
        let y = r.shared(&long);
        assert_eq!(x, long.as_str());
        assert!(!x.same_ptr(&y), "each gets its own allocation");
    }
}
