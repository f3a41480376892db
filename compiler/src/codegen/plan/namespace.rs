//! One namespace of the generated module and the names taken in it.
//!
//! Private to the naming plan: only the plan hands out names, so a name
//! that collides gets its trailing underscores in one place and in one
//! order, whatever the emitters do with it afterwards.

use crate::codegen::names::NOT_RAW;
use std::collections::BTreeSet;

/// Names already used in one namespace; hands out fresh ones.
#[derive(Debug, Default, Clone)]
pub(super) struct Namespace {
    taken: BTreeSet<String>,
}

impl Namespace {
    /// A namespace in which `fixed`, names the emitters write as they are,
    /// are already taken.
    pub(super) fn with(fixed: &[&str]) -> Self {
        let mut ns = Namespace::default();
        for name in fixed {
            ns.take(name);
        }
        ns
    }

    /// Marks a name as used.
    pub(super) fn take(&mut self, name: &str) {
        self.taken.insert(name.to_string());
    }

    /// `base`, or `base_`, `base__`… if taken; the result is marked used.
    pub(super) fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        while self.taken.contains(&name) || NOT_RAW.contains(&name.as_str()) {
            name.push('_');
        }
        self.taken.insert(name.clone());
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taken_names_get_underscores() {
        let mut ns = Namespace::with(&["Key"]);
        assert_eq!(ns.fresh("Key"), "Key_");
        assert_eq!(ns.fresh("Key"), "Key__");
        assert_eq!(ns.fresh("self"), "self_");
    }
}
