//! What a change of spec does to a rolling deployment: old and new
//! services run side by side while old events are still in flight.
//!
//! [`compare`] takes the old and the new checked spec and returns
//! [`Finding`]s, each under a stable [`Rule`] with its [`Level`]. Front
//! ends render them (`choreoc diff`); the library never prints.
//!
//! The wire facts the rules rest on (docs/evolution.md has the whole
//! story): a payload is a JSON object whose unknown fields are ignored and
//! whose missing optional fields read as absent; an enum value is its
//! variant's name; record and enum names never travel, so a renamed record
//! with the same fields is the same wire type; every wire type starts with
//! [`crate::model::Spec::wire_prefix`], which holds the major version.

mod fields;
mod flow;
mod messages;
mod names;
mod rules;
mod version;

use crate::model::CheckedSpec;
use crate::source::Span;

pub use rules::{Level, Rule};

/// One change found between the old and the new spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule that found it.
    pub rule: Rule,
    /// A breaking finding that a move of every wire type (a new major
    /// version, a renamed choreography) allows: old and new services then
    /// share no event.
    pub allowed: bool,
    /// The headline, lowercase, names in backticks.
    pub message: String,
    /// Where in the old spec, if the thing existed there.
    pub old: Option<Span>,
    /// Where in the new spec, if the thing exists there.
    pub new: Option<Span>,
    /// The commands and events whose wire form the change touches, by name,
    /// in the order first reached.
    pub affects: Vec<String>,
    /// What to do about it, if anything.
    pub help: Option<String>,
}

impl Finding {
    fn new(rule: Rule, message: String, old: Option<Span>, new: Option<Span>) -> Self {
        Finding {
            rule,
            allowed: false,
            message,
            old,
            new,
            affects: Vec::new(),
            help: None,
        }
    }

    /// The same finding, affecting these messages.
    fn affecting(mut self, affects: Vec<String>) -> Self {
        self.affects = affects;
        self
    }

    /// The rule's level.
    pub fn level(&self) -> Level {
        self.rule.level()
    }

    /// Whether this finding fails the comparison: breaking and not allowed.
    pub fn fails(&self) -> bool {
        self.level() == Level::Breaking && !self.allowed
    }
}

/// One side's version, as it bears on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Side {
    /// The `version`; a spec without one counts as `0.0.0`.
    pub version: semver::Version,
    /// Whether the spec declares its `version`.
    pub declared: bool,
    /// What every wire type of this side starts with.
    pub wire_prefix: String,
}

impl Side {
    fn of(spec: &CheckedSpec) -> Self {
        Side {
            version: spec
                .version
                .as_ref()
                .map_or(semver::Version::new(0, 0, 0), |v| v.value.clone()),
            declared: spec.version.is_some(),
            wire_prefix: spec.wire_prefix(),
        }
    }
}

/// The comparison of two specs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// Every finding, in the order of the old spec's items, then the new
    /// ones, then the version.
    pub findings: Vec<Finding>,
    /// The old side.
    pub old: Side,
    /// The new side.
    pub new: Side,
}

impl Comparison {
    /// Whether the wire prefixes differ: old and new services then share no
    /// event, so breaking findings are allowed.
    pub fn moves_wire_types(&self) -> bool {
        self.old.wire_prefix != self.new.wire_prefix
    }

    /// Whether some finding is breaking and not allowed.
    pub fn fails(&self) -> bool {
        self.findings.iter().any(Finding::fails)
    }

    /// How many findings are breaking (allowed or not), how many of those
    /// are allowed, and how many are safe.
    pub fn counts(&self) -> (usize, usize, usize) {
        let breaking = self
            .findings
            .iter()
            .filter(|f| f.level() == Level::Breaking)
            .count();
        let allowed = self.findings.iter().filter(|f| f.allowed).count();
        (breaking, allowed, self.findings.len() - breaking)
    }
}

/// Compares the old spec with the new one.
pub fn compare(old: &CheckedSpec, new: &CheckedSpec) -> Comparison {
    let mut findings = Vec::new();
    let names = (names::Names::of(old), names::Names::of(new));
    messages::compare(old, new, &names, &mut findings);
    fields::compare(old, new, &names.1, &mut findings);
    flow::compare(old, new, &names, &mut findings);
    let mut comparison = Comparison {
        findings,
        old: Side::of(old),
        new: Side::of(new),
    };
    version::settle(old, new, &mut comparison);
    comparison
}

#[cfg(test)]
mod tests;
