//! The shared namespace of types, enums, commands, events and participants.
//!
//! The hash table holds only `u32` indexes into a list of entries, and an
//! entry holds its name in place (short names, nearly all of them, need no
//! heap string): confirming a match reads one entry. Every reference in a
//! spec is looked up here; on a large spec a table of full entries, or one
//! whose keys point elsewhere, no longer fits the processor's caches next
//! to the syntax tree streaming through them, and lookups went to main
//! memory.

use super::{EnumId, MessageId, ParticipantId, RecordId};
use crate::source::Span;
use compact_str::CompactString;
use hashbrown::hash_table::Entry;
use hashbrown::HashTable;
use std::hash::BuildHasher;

/// What a name in the shared namespace stands for.
#[derive(Debug, Clone, Copy)]
pub(super) enum Decl {
    Record(RecordId),
    Enum(EnumId),
    Message(MessageId),
    Participant(ParticipantId),
}

struct Binding {
    name: CompactString,
    decl: Decl,
    span: Span,
}

/// Declared names, each bound once.
#[derive(Default)]
pub(super) struct Namespace {
    table: HashTable<u32>,
    entries: Vec<Binding>,
}

fn hash(name: &str) -> u64 {
    rustc_hash::FxBuildHasher.hash_one(name)
}

impl Namespace {
    /// Room for about `names` names.
    pub fn with_capacity(names: usize) -> Self {
        Namespace {
            table: HashTable::with_capacity(names),
            entries: Vec::with_capacity(names),
        }
    }

    fn name(&self, index: u32) -> &str {
        &self.entries[index as usize].name
    }

    /// What `name` stands for, and where it was declared.
    pub fn get(&self, name: &str) -> Option<(Decl, Span)> {
        let &index = self.table.find(hash(name), |&i| self.name(i) == name)?;
        let e = &self.entries[index as usize];
        Some((e.decl, e.span))
    }

    /// Binds `name` unless it is bound already; then it says where it was
    /// declared first. One probe either way: every declaration asks.
    pub fn bind(&mut self, name: &str, decl: Decl, span: Span) -> Result<(), Span> {
        let index = offset(self.entries.len());
        let Namespace { table, entries } = self;
        let found = table.entry(
            hash(name),
            |&i| entries[i as usize].name == name,
            |&i| hash(&entries[i as usize].name),
        );
        match found {
            Entry::Occupied(first) => Err(entries[*first.get() as usize].span),
            Entry::Vacant(slot) => {
                slot.insert(index);
                entries.push(Binding {
                    name: CompactString::new(name),
                    decl,
                    span,
                });
                Ok(())
            }
        }
    }
}

/// Counts are far below 4 billion: the parser limits files to 4 GiB.
fn offset(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_and_finds_names() {
        let mut ns = Namespace::with_capacity(1);
        for i in 0..1_000u32 {
            let bound = ns.bind(
                &format!("Name{i}"),
                Decl::Message(MessageId(i)),
                Span::new(i as usize, i as usize + 1),
            );
            assert_eq!(bound, Ok(()));
        }
        // A second binding is refused with where the first one was.
        let again = ns.bind("Name7", Decl::Message(MessageId(5_000)), Span::new(9, 9));
        assert_eq!(again, Err(Span::new(7, 8)));
        for i in 0..1_000u32 {
            let Some((Decl::Message(id), span)) = ns.get(&format!("Name{i}")) else {
                panic!("`Name{i}` not found");
            };
            assert_eq!(id, MessageId(i));
            assert_eq!(span.start, i);
        }
        assert!(ns.get("Name1000").is_none());
        assert!(ns.get("Name").is_none());
        assert!(ns.get("").is_none());
    }
}
