//! Which reactions a wire type triggers, found fast: by address, by
//! name among few types, else by hash.

use super::super::definition::ServiceDefinition;
use super::FastMap;
use crate::envelope::SharedStr;

/// Up to this many wire types, a participant finds a type's reactions by
/// comparing names rather than hashing.
const FEW_TYPES: usize = 4;

/// Per wire type: the reactions it triggers.
pub(super) struct Routes {
    /// Per wire type: the reactions it triggers. A type is looked for by
    /// address (it is often the very string its trigger names), then by
    /// name when there are few, else through `type_index`.
    types: Vec<(SharedStr, Vec<usize>)>,
    /// Where each type is in `types`.
    type_index: FastMap<SharedStr, usize>,
}

impl Routes {
    /// The routes of `def`'s trigger types.
    pub(super) fn new(def: &ServiceDefinition) -> Self {
        let mut by_type: FastMap<SharedStr, Vec<usize>> = FastMap::default();
        for (i, r) in def.reactions.iter().enumerate() {
            for t in r.trigger.types() {
                by_type.entry(t.clone()).or_default().push(i);
            }
        }
        let types: Vec<(SharedStr, Vec<usize>)> = by_type.into_iter().collect();
        Routes {
            type_index: types
                .iter()
                .enumerate()
                .map(|(k, (t, _))| (t.clone(), k))
                .collect(),
            types,
        }
    }

    /// The wire types, each once.
    pub(super) fn types(&self) -> impl Iterator<Item = &SharedStr> {
        self.types.iter().map(|(t, _)| t)
    }

    /// Where wire type `ty` is in `types`.
    pub(super) fn type_of(&self, ty: &SharedStr) -> Option<usize> {
        match self.types.iter().position(|(t, _)| t.same_ptr(ty)) {
            Some(k) => Some(k),
            // A few types: comparing the text beats hashing it.
            None if self.types.len() <= FEW_TYPES => self
                .types
                .iter()
                .position(|(t, _)| t.as_str() == ty.as_str()),
            None => self.type_index.get(ty.as_str()).copied(),
        }
    }

    /// The reactions that the wire type at `k` in `types` triggers.
    pub(super) fn reactions_at(&self, k: Option<usize>) -> Option<&[usize]> {
        k.and_then(|k| self.types.get(k)).map(|(_, r)| r.as_slice())
    }

    /// The reactions that wire type `ty` triggers.
    pub(super) fn reactions_of(&self, ty: &SharedStr) -> Option<&[usize]> {
        self.reactions_at(self.type_of(ty))
    }
}
