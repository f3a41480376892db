//! NATS: one user per participant, one for the ingress and one for the
//! admin, as a nats-server `authorization { users = [...] }` block, and the
//! streams and buckets the admin makes before the others start.
//!
//! What choreo-runtime does on a NATS server, and so what a participant
//! is allowed (runtime/src/broker/nats.rs, runtime/src/store/nats/):
//!
//! - connecting asks `$JS.API.INFO`; finding a topic's stream asks
//!   `$JS.API.STREAM.NAMES`, then `$JS.API.STREAM.INFO.<stream>`;
//! - publishing is a plain publish on the topic (its own outcomes, the
//!   dead letters of what it reads, the progress notices), JetStream's
//!   acknowledgement coming back on the connection's inbox, which is the
//!   user's own (`_INBOX_<user>.>`, runtime/src/broker/nats.rs
//!   `inbox_prefix`) so that no user reads another's replies;
//! - reading is a durable pull consumer per topic, looked up by
//!   `$JS.API.CONSUMER.INFO.<stream>.<consumer>` and made with
//!   `$JS.API.CONSUMER.CREATE.<stream>.<consumer>.<topic>`, whose last
//!   tokens are the filter: the server refuses a configuration whose
//!   filter differs from them (nats-server 2.9 too), so the permission
//!   pins what the consumer reads; messages are pulled with
//!   `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>` and settled on
//!   `$JS.ACK.<stream>.<consumer>.>`;
//! - the stores are three Key-Value buckets shared by the deployment;
//!   keys start with the base64 of the reaction's scope, so a
//!   participant writes (`$KV.<bucket>.<scope>.*`) and reads
//!   (`$JS.API.DIRECT.GET.KV_<bucket>.$KV.<bucket>.<scope>.*`) only its
//!   own; a join's fired slots are deleted by sequence
//!   (`$JS.API.STREAM.MSG.DELETE.KV_<joins bucket>`).
//!
//! Making a stream or a bucket would let a user choose its subjects and
//! limits, so no service user may: the admin makes them first
//! ([`NatsSetup`]), by running the deployment once under the admin user.

use super::names::{
    nats_buckets, nats_consumer, nats_inbox_prefix, nats_scope_token, nats_stream,
    nats_stream_subjects,
};
use super::{password_variable, quoted, Usage, ADMIN_USER, INGRESS_USER};
use serde::Serialize;

/// Refuses a prefix that cannot start a NATS subject: the runtime would
/// refuse its topics (whitespace, wildcards, an empty token).
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    let bad = prefix
        .chars()
        .any(|c| c.is_whitespace() || c == '*' || c == '>')
        || prefix.starts_with('.')
        || prefix.contains("..");
    if bad {
        Err(format!(
            "the prefix `{prefix}` cannot start a NATS subject (no spaces, `*`, `>` or empty tokens)"
        ))
    } else {
        Ok(())
    }
}

/// One user's permissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NatsUser {
    /// The user name (the participant's, `ingress` or `admin`).
    pub name: String,
    /// What it explains the user is for, a comment in the config.
    pub role: String,
    /// The subjects it may publish to (and send requests on).
    pub publish: Vec<String>,
    /// The subjects it may subscribe to.
    pub subscribe: Vec<String>,
}

/// A stream the admin makes before the services start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamSetup {
    /// The stream's name.
    pub name: String,
    /// Its subjects.
    pub subjects: Vec<String>,
}

/// What must exist on the server before the service users start, since
/// they may not make it: the streams and the stores' buckets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NatsSetup {
    /// The streams of the deployment's topics.
    pub streams: Vec<StreamSetup>,
    /// The Key-Value buckets of the stores (streams `KV_<bucket>`).
    pub buckets: Vec<String>,
    /// How the admin makes them.
    pub how: String,
}

/// The users of one deployment, and its setup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NatsPermissions {
    /// Per participant in the spec's order, then the ingress and the admin.
    pub users: Vec<NatsUser>,
    /// What the admin makes first.
    pub setup: NatsSetup,
}

/// What the setup says to do.
const HOW: &str = "Start the deployment once under the admin user (every participant and the \
ingress, e.g. the example's single process with `--orders 0`): the runtime makes the streams \
and buckets it needs, with the options the services use. Then start each service under its \
own user.";

/// Where `user`'s replies come back: JetStream's acknowledgements, API
/// answers and pulled messages, on the inbox the runtime gives a
/// connection with credentials.
fn reply_inbox(user: &str) -> String {
    format!("{}.>", nats_inbox_prefix(user))
}

fn push(v: &mut Vec<String>, s: impl Into<String>) {
    v.push(s.into());
}

impl NatsPermissions {
    /// The users and setup of `usage`.
    pub fn of(usage: &Usage) -> NatsPermissions {
        let buckets = nats_buckets(&usage.deployment.prefix);
        let mut users = Vec::new();
        for p in &usage.participants {
            let mut publish = Vec::new();
            push(&mut publish, "$JS.API.INFO");
            push(&mut publish, "$JS.API.STREAM.NAMES");
            let mut streams: Vec<String> = p
                .reads
                .iter()
                .chain(&p.emits)
                .chain(&p.dead_letters)
                .chain(std::iter::once(&p.progress))
                .map(|t| nats_stream(t))
                .chain(buckets.iter().map(|b| format!("KV_{b}")))
                .collect();
            streams.sort();
            streams.dedup();
            for s in &streams {
                push(&mut publish, format!("$JS.API.STREAM.INFO.{s}"));
            }
            publish.extend(p.emits.iter().cloned());
            publish.extend(p.dead_letters.iter().cloned());
            push(&mut publish, p.progress.clone());
            for topic in &p.reads {
                let stream = nats_stream(topic);
                let consumer = nats_consumer(&p.name, topic);
                push(
                    &mut publish,
                    format!("$JS.API.CONSUMER.INFO.{stream}.{consumer}"),
                );
                push(
                    &mut publish,
                    format!("$JS.API.CONSUMER.CREATE.{stream}.{consumer}.{topic}"),
                );
                push(
                    &mut publish,
                    format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"),
                );
                push(&mut publish, format!("$JS.ACK.{stream}.{consumer}.>"));
            }
            let [inbox, joins, bounds] = &buckets;
            for scope in &p.scopes {
                let token = nats_scope_token(&scope.name);
                let mut kept = vec![inbox];
                if scope.join {
                    kept.push(joins);
                }
                if scope.bounded {
                    kept.push(bounds);
                }
                for b in kept {
                    push(&mut publish, format!("$KV.{b}.{token}.*"));
                    push(
                        &mut publish,
                        format!("$JS.API.DIRECT.GET.KV_{b}.$KV.{b}.{token}.*"),
                    );
                }
            }
            if p.scopes.iter().any(|s| s.join) {
                push(
                    &mut publish,
                    format!("$JS.API.STREAM.MSG.DELETE.KV_{joins}"),
                );
            }
            users.push(NatsUser {
                name: p.name.clone(),
                role: format!("the participant {}", p.name),
                publish,
                subscribe: vec![reply_inbox(&p.name)],
            });
        }
        users.push(ingress(usage));
        users.push(NatsUser {
            name: ADMIN_USER.to_owned(),
            role: "makes the streams and buckets; may do anything".to_owned(),
            publish: vec![">".to_owned()],
            subscribe: vec![">".to_owned()],
        });
        let mut streams: Vec<StreamSetup> = Vec::new();
        for topic in usage.topics() {
            let name = nats_stream(&topic);
            let subjects = nats_stream_subjects(&topic);
            match streams.iter_mut().find(|s| s.name == name) {
                Some(s) if !s.subjects.contains(&subjects) => s.subjects.push(subjects),
                Some(_) => {}
                None => streams.push(StreamSetup {
                    name,
                    subjects: vec![subjects],
                }),
            }
        }
        streams.sort_by(|a, b| a.name.cmp(&b.name));
        NatsPermissions {
            users,
            setup: NatsSetup {
                streams,
                buckets: buckets.to_vec(),
                how: HOW.to_owned(),
            },
        }
    }

    /// The users as a nats-server configuration block, to include in the
    /// server's config (`include "users.conf"`). Each password is a
    /// variable that nats-server resolves from its environment
    /// ([`password_variable`]).
    pub fn render_config(&self, usage: &Usage) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "# Users of the choreography `{}`{}, one per participant: made by\n\
             # `choreoc export permissions --broker nats`. Each password is read from\n\
             # the environment variable named after `$` when nats-server starts.\n\
             # Before the services start, the admin makes the streams and buckets\n\
             # listed in the setup file (the service users may not).\n",
            usage.choreography,
            if usage.deployment.prefix.is_empty() {
                String::new()
            } else {
                format!(" under the prefix `{}`", usage.deployment.prefix)
            }
        ));
        out.push_str("authorization {\n  users = [\n");
        for u in &self.users {
            out.push_str(&format!("    # {}\n", u.role));
            out.push_str(&format!(
                "    {{\n      user: {}\n      password: ${}\n      permissions: {{\n",
                quoted(&u.name),
                password_variable(&u.name)
            ));
            out.push_str(&list("publish", &u.publish));
            out.push_str(&list("subscribe", &u.subscribe));
            out.push_str("      }\n    }\n");
        }
        out.push_str("  ]\n}\n");
        out
    }

    /// The setup as pretty JSON.
    pub fn render_setup(&self) -> String {
        serde_json::to_string_pretty(&self.setup).unwrap_or_default() + "\n"
    }
}

/// A `publish` or `subscribe` permission allowing `subjects` only.
fn list(what: &str, subjects: &[String]) -> String {
    let mut out = format!("        {what}: {{ allow: [\n");
    for s in subjects {
        out.push_str(&format!("          {}\n", quoted(s)));
    }
    out.push_str("        ] }\n");
    out
}

/// The ingress: publishes the commands; its tracker follows every topic
/// with a consumer group of a random name, so its consumer names are a
/// wildcard (the filter, the topic, is still pinned).
fn ingress(usage: &Usage) -> NatsUser {
    let mut publish = Vec::new();
    push(&mut publish, "$JS.API.INFO");
    push(&mut publish, "$JS.API.STREAM.NAMES");
    let mut streams: Vec<String> = usage
        .ingress
        .follows
        .iter()
        .chain(&usage.ingress.commands)
        .map(|t| nats_stream(t))
        .collect();
    streams.sort();
    streams.dedup();
    for s in &streams {
        push(&mut publish, format!("$JS.API.STREAM.INFO.{s}"));
    }
    publish.extend(usage.ingress.commands.iter().cloned());
    for topic in &usage.ingress.follows {
        let stream = nats_stream(topic);
        push(
            &mut publish,
            format!("$JS.API.CONSUMER.CREATE.{stream}.*.{topic}"),
        );
    }
    for s in &streams {
        push(&mut publish, format!("$JS.API.CONSUMER.INFO.{s}.*"));
        push(&mut publish, format!("$JS.API.CONSUMER.MSG.NEXT.{s}.*"));
        push(&mut publish, format!("$JS.ACK.{s}.>"));
    }
    NatsUser {
        name: INGRESS_USER.to_owned(),
        role: "the ingress: publishes the commands; its tracker follows every topic".to_owned(),
        publish,
        subscribe: vec![reply_inbox(INGRESS_USER)],
    }
}
