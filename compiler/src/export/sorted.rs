//! A JSON value written with the keys of every object sorted, whatever
//! serde_json's features: with `preserve_order` on (a crate in the build
//! may turn it on) a `Map` keeps insertion order, and the exports must
//! give the same bytes from run to run.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value;

/// `value`, serialized with its objects' keys sorted. It writes from the
/// value as it is, without copying it.
#[derive(Debug, Clone, Copy)]
pub struct Sorted<'a>(pub &'a Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => {
                let mut out = serializer.serialize_map(Some(map.len()))?;
                // A `Map` is a `BTreeMap` unless `preserve_order` is on:
                // then its keys come sorted and need no list of their own.
                if map.keys().is_sorted() {
                    for (k, v) in map {
                        out.serialize_entry(k, &Sorted(v))?;
                    }
                } else {
                    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                    for (k, v) in entries {
                        out.serialize_entry(k, &Sorted(v))?;
                    }
                }
                out.end()
            }
            Value::Array(items) => {
                let mut out = serializer.serialize_seq(Some(items.len()))?;
                for v in items {
                    out.serialize_element(&Sorted(v))?;
                }
                out.end()
            }
            other => other.serialize(serializer),
        }
    }
}
