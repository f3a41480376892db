//! Least privilege from the spec: what each participant publishes, reads
//! and keeps, and from that the broker's users and rules that allow it
//! and nothing more.
//!
//! [`Usage::of`] lists, per participant, the topics it reads (its
//! triggers), the topics it writes (its reactions' outcomes, the dead
//! letters of what it reads, the progress notices) and its store scopes;
//! and for the ingress (the HTTP ingress, its clients and the instance
//! tracker) the commands it publishes and the topics it follows. The
//! broker back ends turn that into [`nats::NatsPermissions`] (a
//! nats-server `authorization` block, and the streams and buckets an admin
//! makes first) and [`redis::RedisAcl`] (an ACL file with Redis 7
//! selectors). Names are made as choreo-runtime makes them ([`names`]);
//! the `tests` crate checks them against the runtime's own functions.
//!
//! Passwords never appear in the output: the NATS config reads each from
//! an environment variable of the server ([`password_variable`]), and the
//! Redis ACL holds SHA-256 hashes of the passwords given.

pub mod nats;
pub mod redis;

// Re-exported where they were first: the naming is shared with the
// AsyncAPI export now.
pub use super::names;
pub use super::names::{dead_letter_topic, progress_topic};

use crate::codegen::wire_names;
use crate::model::{MessageKind, TriggerKind};
use crate::CheckedSpec;

/// The user of the ingress: the HTTP ingress, the clients that publish
/// commands and the instance tracker.
pub const INGRESS_USER: &str = "ingress";

/// The user that makes the streams and buckets and may do anything.
pub const ADMIN_USER: &str = "admin";

/// The environment variable a user's password is read from
/// (`CHOREO_PASSWORD_PAYMENT` for `Payment`): the NATS config refers to it
/// by name, and `choreoc export permissions --broker redis` hashes its
/// value.
pub fn password_variable(user: &str) -> String {
    let upper: String = user
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("CHOREO_PASSWORD_{upper}")
}

/// Where the deployment's names start: what the services are given as
/// `Topics::new(prefix)` and `StoreOptions::with_prefix(prefix)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deployment {
    /// Put in front of every topic and store name as is.
    pub prefix: String,
}

/// One reaction's store scope (`<Choreography>/<Participant>/<reaction>`):
/// its inbox, join slots and `@bounded` counters are kept under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The scope's text.
    pub name: String,
    /// Whether the reaction is a join (it keeps join slots).
    pub join: bool,
    /// Whether the reaction is `@bounded` (it keeps a counter).
    pub bounded: bool,
}

/// What one participant uses on the broker and in the stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantUsage {
    /// The participant's name, which is also its consumer group.
    pub name: String,
    /// The topics it reads (its triggers), sorted.
    pub reads: Vec<String>,
    /// The topics of the events its reactions emit, sorted.
    pub emits: Vec<String>,
    /// The dead-letter topics of what it reads (`<topic>.dlq`), sorted.
    pub dead_letters: Vec<String>,
    /// The topic of the choreography's progress notices.
    pub progress: String,
    /// Its reactions' store scopes, in the spec's order.
    pub scopes: Vec<Scope>,
}

/// What the ingress uses: the commands it publishes, and every topic,
/// which its instance tracker follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressUsage {
    /// The topics of the commands, sorted.
    pub commands: Vec<String>,
    /// What the tracker follows: every message's topic and the progress
    /// notices, sorted.
    pub follows: Vec<String>,
}

/// What a deployment of one spec uses, per principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// The choreography's name.
    pub choreography: String,
    /// The deployment's prefix.
    pub deployment: Deployment,
    /// Per participant, in the spec's order.
    pub participants: Vec<ParticipantUsage>,
    /// The ingress.
    pub ingress: IngressUsage,
}

/// The store scope of a reaction, as the runtime makes it.
pub fn scope(choreography: &str, participant: &str, reaction: &str) -> String {
    format!("{choreography}/{participant}/{reaction}")
}

impl Usage {
    /// What each participant of `spec` and the ingress use, under
    /// `deployment`'s prefix.
    pub fn of(spec: &CheckedSpec, deployment: &Deployment) -> Usage {
        let wire = wire_names(spec);
        let prefix = &deployment.prefix;
        let topic = |m: crate::model::MessageId| {
            names::topic(prefix, wire.types.get(m.index()).map_or("", String::as_str))
        };
        let choreography = spec.name.text.to_string();
        let progress = progress_topic(prefix, &choreography);
        let participants = spec
            .participants
            .iter()
            .map(|p| {
                let name = p.name.text.to_string();
                let mut reads = Vec::new();
                let mut emits = Vec::new();
                let mut scopes = Vec::new();
                for &rid in &p.reactions {
                    let r = spec.reaction(rid);
                    reads.extend(r.trigger.ids().map(topic));
                    emits.extend(r.outcomes().iter().flat_map(|o| o.ids()).map(topic));
                    let reaction = wire.reactions.get(rid.index()).map_or("", String::as_str);
                    scopes.push(Scope {
                        name: scope(&choreography, &name, reaction),
                        join: r.trigger.kind == TriggerKind::All,
                        bounded: r.bounded.is_some(),
                    });
                }
                sort_dedup(&mut reads);
                sort_dedup(&mut emits);
                let dead_letters = reads.iter().map(|t| dead_letter_topic(t)).collect();
                ParticipantUsage {
                    name,
                    reads,
                    emits,
                    dead_letters,
                    progress: progress.clone(),
                    scopes,
                }
            })
            .collect();
        let mut commands: Vec<String> = spec
            .messages
            .iter()
            .enumerate()
            .filter(|(_, m)| m.kind == MessageKind::Command)
            .map(|(i, _)| names::topic(prefix, wire.types.get(i).map_or("", String::as_str)))
            .collect();
        sort_dedup(&mut commands);
        let mut follows: Vec<String> = wire.types.iter().map(|t| names::topic(prefix, t)).collect();
        follows.push(progress);
        sort_dedup(&mut follows);
        Usage {
            choreography,
            deployment: deployment.clone(),
            participants,
            ingress: IngressUsage { commands, follows },
        }
    }

    /// Every topic any principal publishes or reads, sorted.
    pub fn topics(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .participants
            .iter()
            .flat_map(|p| {
                p.reads
                    .iter()
                    .chain(&p.emits)
                    .chain(&p.dead_letters)
                    .chain(std::iter::once(&p.progress))
            })
            .chain(&self.ingress.commands)
            .chain(&self.ingress.follows)
            .cloned()
            .collect();
        sort_dedup(&mut all);
        all
    }
}

fn sort_dedup(v: &mut Vec<String>) {
    v.sort();
    v.dedup();
}

/// A string in a configuration file's double quotes: `"` and `\` escaped.
pub(crate) fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_variables_are_shell_names() {
        assert_eq!(password_variable("Payment"), "CHOREO_PASSWORD_PAYMENT");
        assert_eq!(password_variable("a-b.c"), "CHOREO_PASSWORD_A_B_C");
    }

    #[test]
    fn quoting_escapes_quotes_and_backslashes() {
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
