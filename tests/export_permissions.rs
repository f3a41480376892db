//! `choreoc export permissions` names what choreo-runtime makes on a
//! broker exactly as the runtime names it, for every spec of the corpus
//! with and without a prefix: a change of either side's naming fails here
//! rather than in a deployment whose broker refuses its services; the
//! AsyncAPI document's channels, dead letters, streams and consumers too.
//! And the export of the ecommerce spec, as snapshots.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use choreo_compiler::export::asyncapi::{self, Broker, Options};
use choreo_compiler::export::permissions::{
    self, names, nats::NatsPermissions, redis::RedisAcl, Deployment, Usage,
};
use choreo_compiler::{check, SourceFile};
use choreo_runtime::broker::{dead_letter_topic, NatsBroker, RedisOptions};
use choreo_runtime::service::{reaction_scope, Topics};
use choreo_runtime::store::{NatsKvStores, RedisStores, StoreOptions};
use choreo_tests::build_crates::{corpus_specs, repo};

fn checked(path: &std::path::Path) -> choreo_compiler::CheckedSpec {
    let text = std::fs::read_to_string(path).unwrap();
    let (spec, _) = check(&SourceFile::new(path.display().to_string(), text))
        .into_checked()
        .unwrap_or_else(|d| panic!("{} does not check: {d:?}", path.display()));
    spec
}

fn usage_of(path: &std::path::Path, prefix: &str) -> Usage {
    let spec = checked(path);
    Usage::of(
        &spec,
        &Deployment {
            prefix: prefix.to_owned(),
        },
    )
}

#[test]
fn the_export_names_what_the_runtime_makes_as_the_runtime_names_it() {
    let mut checked = 0;
    for path in corpus_specs() {
        for prefix in ["", "shop-1.", "t 2_"] {
            let usage = usage_of(&path, prefix);
            let topics = Topics::new(prefix);
            let store = StoreOptions::with_prefix(prefix);
            let redis = RedisOptions::default();
            assert_eq!(
                names::nats_buckets(prefix),
                NatsKvStores::bucket_names(&store)
            );
            assert_eq!(names::REDIS_KEY_PREFIX, redis.key_prefix);
            for topic in usage.topics() {
                assert_eq!(names::nats_stream(&topic), NatsBroker::stream_name(&topic));
                assert_eq!(
                    names::redis_stream(names::REDIS_KEY_PREFIX, &topic),
                    redis.stream_key(&topic)
                );
            }
            for p in &usage.participants {
                assert_eq!(
                    names::nats_inbox_prefix(&p.name),
                    choreo_runtime::broker::nats::inbox_prefix(&p.name)
                );
                assert_eq!(p.progress, topics.progress(&usage.choreography));
                for (topic, dead) in p.reads.iter().zip(&p.dead_letters) {
                    assert_eq!(*dead, dead_letter_topic(topic));
                    assert_eq!(
                        names::nats_consumer(&p.name, topic),
                        NatsBroker::consumer_name(&p.name, topic)
                    );
                    checked += 1;
                }
                for s in &p.scopes {
                    let reaction = s.name.rsplit('/').next().unwrap();
                    assert_eq!(
                        s.name,
                        reaction_scope(&usage.choreography, &p.name, reaction)
                    );
                    let key = NatsKvStores::key_of(&s.name, "some-id");
                    assert!(
                        key.starts_with(&format!("{}.", names::nats_scope_token(&s.name))),
                        "{key}"
                    );
                    for what in ["inbox", "join", "bound", "fired"] {
                        let pattern = names::redis_store_pattern(prefix, what, &s.name);
                        let key = RedisStores::key_of(prefix, what, &s.name, "some-id");
                        assert!(glob_match(&pattern, &key), "{pattern} {key}");
                    }
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} consumers compared");
}

#[test]
fn the_asyncapi_channels_are_the_topics_the_runtime_uses() {
    let mut checked_channels = 0;
    for path in corpus_specs() {
        let spec = checked(&path);
        for prefix in ["", "shop-1.", "t 2_"] {
            let topics = Topics::new(prefix);
            let redis = RedisOptions::default();
            for broker in [Broker::Nats, Broker::Redis] {
                let options = Options {
                    broker,
                    prefix: prefix.to_owned(),
                    servers: Vec::new(),
                };
                let on_broker = |topic: &str| match broker {
                    Broker::Nats => topic.to_owned(),
                    Broker::Redis => redis.stream_key(topic),
                };
                let doc = asyncapi::document(&spec, &options);
                let mut topic_of = std::collections::HashMap::new();
                for (key, channel) in &doc.channels {
                    // The wire type the envelope carries (the message's own
                    // part of the payload, beside the shared envelope); the
                    // runtime makes the topic from it.
                    let wire = doc.components.messages[key].payload.0["allOf"][1]["properties"]
                        ["type"]["const"]
                        .as_str()
                        .unwrap()
                        .to_owned();
                    let topic = topics.for_type(&wire);
                    assert_eq!(channel.address, on_broker(&topic), "{key}");
                    let ext = |name: &str| channel.extensions[name].0.clone();
                    assert_eq!(
                        ext("x-choreo-dead-letters"),
                        on_broker(&dead_letter_topic(&topic))
                    );
                    if broker == Broker::Nats {
                        assert_eq!(ext("x-choreo-nats-stream"), NatsBroker::stream_name(&topic));
                    }
                    topic_of.insert(format!("#/channels/{key}"), topic);
                    checked_channels += 1;
                }
                assert_eq!(
                    doc.info.extensions["x-choreo-progress"].0,
                    on_broker(&topics.progress(&spec.name.text))
                );
                for (key, op) in &doc.operations {
                    let Some(consumer) = op.extensions.get("x-choreo-nats-consumer") else {
                        continue;
                    };
                    let group = op.extensions["x-choreo-consumer-group"].0.as_str().unwrap();
                    let topic = &topic_of[&op.channel.reference];
                    assert_eq!(consumer.0, NatsBroker::consumer_name(group, topic), "{key}");
                }
            }
        }
    }
    assert!(
        checked_channels > 300,
        "only {checked_channels} channels compared"
    );
}

/// Whether `key` matches the Redis glob `pattern` (only `*` and `\`
/// escapes, which is all the export writes).
fn glob_match(pattern: &str, key: &str) -> bool {
    let Some(literal) = pattern.strip_suffix('*') else {
        return unescape(pattern) == key;
    };
    key.starts_with(&unescape(literal))
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn the_ecommerce_export_as_snapshots() {
    let path = repo().join("examples/ecommerce/ecommerce.choreo");
    let usage = usage_of(&path, "");
    let nats = NatsPermissions::of(&usage);
    insta::assert_snapshot!("ecommerce_nats_users_conf", nats.render_config(&usage));
    insta::assert_snapshot!("ecommerce_nats_setup_json", nats.render_setup());
    let acl = RedisAcl::with_default_keys(&usage)
        .render(|user| (user == permissions::ADMIN_USER).then(|| "0".repeat(64)));
    insta::assert_snapshot!("ecommerce_redis_users_acl", acl);
}
