//! The `x-choreo-*` extensions: what the spec says that AsyncAPI has no
//! field for. Durations are written as a spec writes them (`200ms`, `10s`).
//!
//! | extension | on | value |
//! |---|---|---|
//! | `x-choreo-key` | info | the correlation key: `{name, type, description}`; every message's `correlationid` is its value as text |
//! | `x-choreo-broker`, `x-choreo-prefix` | info | the broker and the deployment's prefix the addresses are for |
//! | `x-choreo-progress` | info | the topic of the progress notices the participants publish for instance trackers |
//! | `x-choreo-kind` | channel | `event` or `command` |
//! | `x-choreo-terminal` | channel | `success` or `failure`: emitting the event settles the instance so |
//! | `x-choreo-external` | channel | `true`: the event comes from outside the choreography |
//! | `x-choreo-http` | channel | `{method, path}` of a command's `@http` route on the ingress |
//! | `x-choreo-deadline` | channel | a command's `@deadline`: an instance it starts should settle within it |
//! | `x-choreo-deprecated` | channel | `@deprecated`'s reason (`true` without one) |
//! | `x-choreo-dead-letters` | channel | the address a consumer dead-letters the topic's messages to |
//! | `x-choreo-nats-stream` | channel | NATS: the JetStream stream that holds the subject |
//! | `x-choreo-reaction` | operation | the reaction's name (its store scope's last part) |
//! | `x-choreo-trigger` | operation | the reaction's trigger as written (`A & B`, `A \| B`) |
//! | `x-choreo-join` | operation | a join's events: it fires once per instance, when all have arrived |
//! | `x-choreo-outcomes` | operation | the reaction's outcomes as written, one of which happens (`A + B`, `none`); absent for a sink |
//! | `x-choreo-compensates` | operation | the event whose effect the reaction undoes |
//! | `x-choreo-retry` | receive | `{max, backoff}`: retries of a failed handler, the back-off doubling, then a dead letter |
//! | `x-choreo-timeout` | receive | a handler running longer counts as failed |
//! | `x-choreo-bounded` | receive | firings per instance before the next trigger is dead-lettered (`bound exceeded`) |
//! | `x-choreo-consumer-group` | receive | the consumer group: the participant's name |
//! | `x-choreo-nats-consumer` | receive | NATS: the durable consumer of the group on the subject |
//! | `x-choreo-source` | send | the CloudEvents `source` the participant's services write by default |
//! | `x-choreo-redis-field` | message | Redis: the stream entry's one field, which holds the payload |
//! | `x-choreo-tls` | server | the URL's scheme asks for TLS (`tls://`, `rediss://`) |

use super::document::{Extensions, Json};
use super::{names, Broker, Context};
use crate::diagram::duration;
use crate::model::{Docs, Message, Reaction, Settlement};
use serde_json::{json, Value};

/// A doc comment as a description; `None` when there is none.
pub fn docs(docs: &Docs) -> Option<String> {
    (!docs.is_empty()).then(|| docs.text())
}

/// Adds `x-choreo-<name>` to `ext`.
pub(crate) fn put(ext: &mut Extensions, name: &str, value: Value) {
    ext.insert(format!("x-choreo-{name}"), Json(value));
}

/// The info object's extensions.
pub(crate) fn info(cx: &Context) -> Extensions {
    let spec = cx.spec;
    let key = spec.key();
    let mut ext = Extensions::new();
    let mut key_value = json!({ "name": key.name.text.as_str(), "type": key.ty.name() });
    if let (Some(d), Some(obj)) = (docs(&key.docs), key_value.as_object_mut()) {
        obj.insert("description".to_owned(), d.into());
    }
    put(&mut ext, "key", key_value);
    put(&mut ext, "broker", cx.options.broker.protocol().into());
    put(&mut ext, "prefix", cx.options.prefix.clone().into());
    let progress = names::progress_topic(&cx.options.prefix, &spec.name.text);
    put(
        &mut ext,
        "progress",
        cx.options.broker.address(&progress).into(),
    );
    ext
}

/// A channel's extensions: what the spec says of its message, and where
/// its dead letters and (NATS) its stream are.
pub(crate) fn channel(cx: &Context, message: &Message, topic: &str) -> Extensions {
    let mut ext = Extensions::new();
    put(&mut ext, "kind", message.kind.as_str().into());
    if let Some((settlement, _)) = message.terminal {
        let how = match settlement {
            Settlement::Success => "success",
            Settlement::Failure => "failure",
        };
        put(&mut ext, "terminal", how.into());
    }
    if message.external.is_some() {
        put(&mut ext, "external", true.into());
    }
    if let Some(route) = &message.http {
        put(
            &mut ext,
            "http",
            json!({ "method": route.method.as_str(), "path": route.path }),
        );
    }
    if let Some(&(deadline, _)) = message.deadline.as_deref() {
        put(&mut ext, "deadline", duration(deadline).into());
    }
    if let Some(d) = &message.deprecated {
        let reason = d.reason.clone().map_or(Value::Bool(true), Value::String);
        put(&mut ext, "deprecated", reason);
    }
    let broker = cx.options.broker;
    put(
        &mut ext,
        "dead-letters",
        broker.address(&names::dead_letter_topic(topic)).into(),
    );
    if broker == Broker::Nats {
        put(&mut ext, "nats-stream", names::nats_stream(topic).into());
    }
    ext
}

/// What every operation of a reaction carries: its name, trigger,
/// outcomes and compensation.
pub(crate) fn reaction(cx: &Context, name: &str, r: &Reaction) -> Extensions {
    let spec = cx.spec;
    let mut ext = Extensions::new();
    put(&mut ext, "reaction", name.into());
    let sep = if r.trigger.is_join() { " & " } else { " | " };
    let trigger: Vec<&str> = r.trigger.ids().map(|m| spec.message_name(m)).collect();
    put(&mut ext, "trigger", trigger.join(sep).into());
    if r.trigger.is_join() {
        put(&mut ext, "join", json!(trigger));
    }
    if !r.is_sink() {
        let outcomes: Vec<String> = r
            .outcomes()
            .iter()
            .map(|o| {
                if o.is_none() {
                    "none".to_owned()
                } else {
                    let events: Vec<&str> = o.ids().map(|m| spec.message_name(m)).collect();
                    events.join(" + ")
                }
            })
            .collect();
        put(&mut ext, "outcomes", json!(outcomes));
    }
    if let Some(c) = &r.compensates {
        put(&mut ext, "compensates", spec.message_name(c.id).into());
    }
    ext
}

/// What a receive operation adds: how the handler is run and by which
/// consumer.
pub(crate) fn receiving(cx: &Context, group: &str, topic: &str, r: &Reaction) -> Extensions {
    let mut ext = Extensions::new();
    if let Some(retry) = r.retry.as_deref() {
        put(
            &mut ext,
            "retry",
            json!({ "max": retry.max, "backoff": duration(retry.backoff) }),
        );
    }
    if let Some(&(timeout, _)) = r.timeout.as_deref() {
        put(&mut ext, "timeout", duration(timeout).into());
    }
    if let Some(&(bound, _)) = r.bounded.as_deref() {
        put(&mut ext, "bounded", bound.into());
    }
    put(&mut ext, "consumer-group", group.into());
    if cx.options.broker == Broker::Nats {
        put(
            &mut ext,
            "nats-consumer",
            names::nats_consumer(group, topic).into(),
        );
    }
    ext
}
