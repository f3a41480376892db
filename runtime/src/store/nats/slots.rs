//! A join's slots as one Key-Value value, and the age of an entry.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::backend;
use crate::envelope::{json, Envelope};
use crate::store::StoreError;

/// A join's slots as one value: per slot, its envelope's length as 4 bytes
/// (big-endian; `u32::MAX` for an empty slot), then the envelope's JSON;
/// then [`LAST`] and the index of the slot written last (4 bytes), which
/// tells the arrival that completed the join. (Values written before the
/// mark existed have none: nobody is known to have completed them.)
pub(super) fn encode_slots(slots: &[Option<Envelope>], last: usize) -> Result<Bytes, StoreError> {
    let mut out = Vec::new();
    for slot in slots {
        match slot {
            None => out.extend_from_slice(&u32::MAX.to_be_bytes()),
            Some(env) => {
                let bytes = json::encode(env).map_err(|e| backend("encode", e))?;
                let len = u32::try_from(bytes.len())
                    .ok()
                    .filter(|&l| l < LAST)
                    .ok_or_else(|| StoreError::Config("an envelope over 4 GiB".into()))?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&bytes);
            }
        }
    }
    let last = u32::try_from(last).map_err(|_| StoreError::Config("a join's slot".into()))?;
    out.extend_from_slice(&LAST.to_be_bytes());
    out.extend_from_slice(&last.to_be_bytes());
    Ok(Bytes::from(out))
}

/// The length word that introduces the slot written last.
const LAST: u32 = u32::MAX - 1;

/// A join's slots and the slot written last, if the value says.
type Slots = (Vec<Option<Envelope>>, Option<usize>);

pub(super) fn decode_slots(mut data: &[u8], slots: usize) -> Result<Slots, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("join slots: {what}"));
    let mut out = Vec::with_capacity(slots);
    let mut last = None;
    while !data.is_empty() {
        let (len, rest) = data
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt("a cut length"))?;
        let len = u32::from_be_bytes(*len);
        if len == u32::MAX {
            out.push(None);
            data = rest;
            continue;
        }
        if len == LAST {
            let (slot, rest) = rest
                .split_first_chunk::<4>()
                .ok_or_else(|| corrupt("a cut last slot"))?;
            last = usize::try_from(u32::from_be_bytes(*slot)).ok();
            data = rest;
            continue;
        }
        let len = usize::try_from(len).map_err(|_| corrupt("a length"))?;
        let (bytes, rest) = rest
            .split_at_checked(len)
            .ok_or_else(|| corrupt("a cut envelope"))?;
        out.push(Some(
            json::decode(bytes).map_err(|e| corrupt(&e.to_string()))?,
        ));
        data = rest;
    }
    if out.len() < slots {
        out.resize(slots, None);
    }
    Ok((out, last))
}

/// How long ago the server wrote an entry (zero if the clocks disagree).
pub(super) fn age(created_nanos: i128) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX));
    let nanos = now.saturating_sub(created_nanos).max(0);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::Envelope;

    #[test]
    fn slots_round_trip() {
        let e = Envelope::builder("T", "k").id("x").build();
        let slots = vec![None, Some(e.clone()), None];
        let back = decode_slots(&encode_slots(&slots, 1).unwrap(), 3).unwrap();
        assert_eq!(back, (slots, Some(1)));
        // A value written before the last slot was marked.
        let old = [&u32::MAX.to_be_bytes()[..], &u32::MAX.to_be_bytes()].concat();
        assert_eq!(decode_slots(&old, 2).unwrap(), (vec![None, None], None));
        assert!(decode_slots(&LAST.to_be_bytes(), 2).is_err());
        assert!(decode_slots(&[0, 0, 0, 9, 1], 2).is_err());
        assert!(decode_slots(&[0, 0], 2).is_err());
    }
}
