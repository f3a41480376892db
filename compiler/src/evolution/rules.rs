//! The rules `choreoc diff` applies: each has a stable id, a level and a
//! one-line summary; its long explanation is
//! `compiler/explanations/<RULE_ID>.md`, as a diagnostic code's is.

use std::fmt;

/// What a change does to a rolling deployment, where old and new services
/// run side by side and old events are still in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Old and new services can exchange events both ways.
    Safe,
    /// Some event in flight, or some old or new service, fails.
    Breaking,
}

impl Level {
    /// `"breaking"` or `"safe"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Breaking => "breaking",
            Level::Safe => "safe",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! rules {
    ($($(#[$doc:meta])* $rule:ident => $id:literal, $level:ident, $summary:literal;)*) => {
        /// Every rule of `choreoc diff`; the ids are stable across releases.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Rule {
            $($(#[$doc])* $rule,)*
        }

        impl Rule {
            /// All rules, in the order the documentation lists them.
            pub const ALL: &'static [Rule] = &[$(Rule::$rule,)*];

            /// The id as written, e.g. `"FIELD_REMOVED"`.
            pub fn as_str(self) -> &'static str {
                match self { $(Rule::$rule => $id,)* }
            }

            /// The level this rule always has.
            pub fn level(self) -> Level {
                match self { $(Rule::$rule => Level::$level,)* }
            }

            /// A one-line summary of what the rule finds.
            pub fn summary(self) -> &'static str {
                match self { $(Rule::$rule => $summary,)* }
            }

            /// Its long explanation, `compiler/explanations/<RULE_ID>.md`.
            pub fn explanation(self) -> &'static str {
                match self {
                    $(Rule::$rule => include_str!(
                        concat!("../../explanations/", $id, ".md")
                    ),)*
                }
            }
        }
    };
}

rules! {
    /// A command or event of the old spec is gone.
    MessageRemoved => "MESSAGE_REMOVED", Breaking, "a command or event is removed";
    /// A command or event is new.
    MessageAdded => "MESSAGE_ADDED", Safe, "a command or event is added";
    /// A required field is gone.
    FieldRemoved => "FIELD_REMOVED", Breaking, "a required field is removed";
    /// An optional field is gone.
    FieldRemovedOptional => "FIELD_REMOVED_OPTIONAL", Safe, "an optional field is removed";
    /// A field's type changed.
    FieldTypeChanged => "FIELD_TYPE_CHANGED", Breaking, "a field's type changes";
    /// A new required field.
    FieldAddedRequired => "FIELD_ADDED_REQUIRED", Breaking, "a required field is added";
    /// A new optional field.
    FieldAddedOptional => "FIELD_ADDED_OPTIONAL", Safe, "an optional field is added";
    /// `T?` became `T`.
    FieldMadeRequired => "FIELD_MADE_REQUIRED", Breaking, "an optional field is made required";
    /// `T` became `T?`.
    FieldMadeOptional => "FIELD_MADE_OPTIONAL", Breaking, "a required field is made optional";
    /// A variant of an enum on the wire is gone.
    EnumVariantRemoved => "ENUM_VARIANT_REMOVED", Breaking, "an enum variant is removed";
    /// A new variant of an enum on the wire.
    EnumVariantAdded => "ENUM_VARIANT_ADDED", Breaking, "an enum variant is added";
    /// The correlation key's type changed.
    KeyChanged => "KEY_CHANGED", Breaking, "the correlation key's type changes";
    /// The correlation key has a new name, and the same type.
    KeyRenamed => "KEY_RENAMED", Safe, "the correlation key is renamed";
    /// A command's `@http` route changed or is gone.
    HttpRouteChanged => "HTTP_ROUTE_CHANGED", Breaking, "a command's HTTP route changes or is removed";
    /// A command has a new `@http` route.
    HttpRouteAdded => "HTTP_ROUTE_ADDED", Safe, "a command gets an HTTP route";
    /// A participant of the old spec is gone.
    ParticipantRemoved => "PARTICIPANT_REMOVED", Breaking, "a participant is removed";
    /// A participant is new.
    ParticipantAdded => "PARTICIPANT_ADDED", Safe, "a participant is added";
    /// A reaction's trigger changed.
    ReactionTriggerChanged => "REACTION_TRIGGER_CHANGED", Breaking, "a reaction's trigger changes";
    /// A reaction of a remaining participant is gone.
    ReactionRemoved => "REACTION_REMOVED", Breaking, "a reaction is removed";
    /// A remaining participant has a new reaction.
    ReactionAdded => "REACTION_ADDED", Safe, "a reaction is added";
    /// Breaking changes without a new major version.
    VersionNotBumped => "VERSION_NOT_BUMPED", Breaking, "a breaking change without a new major version";
    /// A new major version: every wire type moves.
    VersionMajorBumped => "VERSION_MAJOR_BUMPED", Safe, "the major version changes, which moves every wire type";
    /// A new choreography name: every wire type moves.
    ChoreographyRenamed => "CHOREOGRAPHY_RENAMED", Safe, "the choreography is renamed, which moves every wire type";
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Rule {
    type Err = ();

    /// A rule by its id; case does not matter.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Rule::ALL
            .iter()
            .copied()
            .find(|rule| rule.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or(())
    }
}

#[cfg(test)]
mod tests {
    use super::Rule;

    #[test]
    fn ids_round_trip_and_are_unique() {
        let mut ids: Vec<&str> = Rule::ALL.iter().map(|r| r.as_str()).collect();
        for &rule in Rule::ALL {
            assert_eq!(rule.as_str().parse::<Rule>(), Ok(rule));
            assert_eq!(rule.as_str().to_lowercase().parse::<Rule>(), Ok(rule));
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), Rule::ALL.len());
    }
}
