//! Wire truth of `choreoc export jsonschema`: for every valid corpus spec,
//! samples of every message, built from the generated Rust types
//! (`build.rs`, `choreo_compiler::testing::wire_samples`), are published
//! on the memory broker the way the runtime publishes them (a client's
//! command and a handler's caused-by envelope), encoded with the encoder
//! every broker adapter uses (`envelope::json::encode`), and validated
//! against the exported schemas with formats asserted. Then the samples
//! are broken, one type class at a time, and the schema and the runtime's
//! decoder must both refuse each: the schema is neither looser nor
//! stricter than the wire there.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

mod samples {
    include!(concat!(env!("OUT_DIR"), "/wire_samples.rs"));
}

#[path = "wire_truth/mutate.rs"]
mod mutate;

use choreo_compiler::export::jsonschema::{JsonSchemas, DEFS_FILE};
use choreo_compiler::{check, CheckedSpec, SourceFile};
use choreo_runtime::envelope::json;
use choreo_runtime::service::{Client, Topics};
use choreo_runtime::{Envelope, EventId, ObserveOptions, TraceParent};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Where the schemas are taken to lie, so that the messages' relative
/// `$ref`s find `defs.schema.json`.
const BASE: &str = "file:///choreo/schemas/";

/// A spec's validators by wire type, once every document has been checked
/// against the draft 2020-12 meta-schema.
fn validators(schemas: &JsonSchemas) -> HashMap<String, jsonschema::Validator> {
    let documents: Vec<Value> = schemas
        .messages()
        .iter()
        .map(|m| schemas.document(m))
        .collect();
    for document in documents.iter().chain([&schemas.defs()]) {
        if let Err(e) = jsonschema::meta::validate(document) {
            panic!("not a valid draft 2020-12 schema: {e}\n{document:#}");
        }
    }
    let registry = jsonschema::Registry::new()
        .add(format!("{BASE}{DEFS_FILE}"), schemas.defs())
        .unwrap()
        .prepare()
        .unwrap();
    schemas
        .messages()
        .iter()
        .zip(&documents)
        .map(|(m, document)| {
            let validator = jsonschema::options()
                .with_registry(&registry)
                .with_base_uri(format!("{BASE}{}.schema.json", m.name))
                // Draft 2020-12 only annotates formats by default.
                .should_validate_formats(true)
                .build(document)
                .unwrap_or_else(|e| panic!("the schema of `{}` does not build: {e}", m.name));
            (m.wire_type.clone(), validator)
        })
        .collect()
}

fn checked(path: &str) -> CheckedSpec {
    let root = choreo_tests::build_crates::repo();
    let text = std::fs::read_to_string(root.join(path)).unwrap();
    check(&SourceFile::new(path, text))
        .into_checked()
        .unwrap_or_else(|d| panic!("{path} does not check: {d:?}"))
        .0
}

/// Publishes every sample of `messages` twice, as a client's command and
/// as an event a handler emitted, on a memory broker; returns each as the
/// broker adapters encode it, with its spec message name.
async fn publish(keys: &[String], messages: &[samples::case_0::Sample]) -> Vec<(String, Vec<u8>)> {
    let broker = choreo_runtime::connect("memory://").await.unwrap();
    let topics: Vec<String> = messages.iter().map(|m| m.1.to_string()).collect();
    let mut observer = broker.observe(ObserveOptions::new(topics)).await.unwrap();
    let client =
        Client::new(broker.clone(), Topics::default(), "Wire/commands").with_version("1.2.3-rc.1");
    let mut names = HashMap::new();
    let mut sent = 0;
    for (m, (name, ty, payloads, _)) in messages.iter().enumerate() {
        names.insert(ty.to_string(), name.to_string());
        for (n, payload) in payloads.iter().enumerate() {
            let key = &keys[(m + n) % keys.len()];
            let command = Envelope::builder(ty.to_string(), key.clone())
                .source("Wire/commands")
                .choreo_version("1.2.3-rc.1")
                .tracestate("vendor=ü")
                .extension("tenant", "acme-1")
                .unwrap()
                .payload(payload.clone())
                .build();
            let event = Envelope::caused_by(
                &command,
                EventId::derived(command.id(), "on_wire", n),
                ty.to_string().into(),
                "Participant".into(),
                TraceParent::new_root().child(),
                Some("1.2.3".into()),
                payload.clone(),
            );
            client.send_envelope(command).await.unwrap();
            client.send_envelope(event).await.unwrap();
            sent += 2;
        }
    }
    let mut out = Vec::new();
    while out.len() < sent {
        let batch = tokio::time::timeout(Duration::from_secs(10), observer.next_batch(256))
            .await
            .expect("the observer delivers what was published")
            .unwrap()
            .expect("the observer is open");
        for d in batch {
            let bytes = json::encode(d.envelope()).unwrap();
            out.push((names[d.envelope().ty()].clone(), bytes));
        }
    }
    out
}

fn errors(validator: &jsonschema::Validator, value: &Value) -> Vec<String> {
    validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[tokio::test]
async fn published_messages_validate_and_broken_ones_fail() {
    let started = Instant::now();
    let mut published = 0;
    let mut mutations: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (path, keys, messages) in samples::CASES {
        let spec = checked(path);
        let schemas = JsonSchemas::of(&spec);
        let validators = validators(&schemas);
        let messages = messages();
        let decoders: HashMap<&str, samples::case_0::Decode> =
            messages.iter().map(|m| (m.0, m.3)).collect();
        for (name, ty, payloads, _) in &messages {
            let schema = schemas.messages().iter().find(|s| s.name == *name).unwrap();
            assert_eq!(
                schema.wire_type, *ty,
                "{path}: the schema's type of `{name}`"
            );
            assert!(!payloads.is_empty(), "{path}: no samples of `{name}`");
        }
        let keys = keys();
        for (name, bytes) in publish(&keys, &messages).await {
            let m = spec.find_message(&name).unwrap();
            let ty = &schemas.get(m).unwrap().wire_type;
            let validator = &validators[ty];
            let value: Value = serde_json::from_slice(&bytes).unwrap();
            let errs = errors(validator, &value);
            assert!(
                errs.is_empty(),
                "{path}: published `{name}` does not validate: {errs:#?}\n{}",
                String::from_utf8_lossy(&bytes)
            );
            let decode = decoders[name.as_str()];
            decode(&json::decode(&bytes).unwrap()).unwrap();
            published += 1;
            for (class, broken) in mutate::broken(&spec, m, &value) {
                let text = serde_json::to_vec(&broken).unwrap();
                assert!(
                    !validator.is_valid(&broken),
                    "{path}: `{name}` with {class} validates:\n{}",
                    String::from_utf8_lossy(&text)
                );
                let decoded = json::decode(&text)
                    .map_err(|e| e.to_string())
                    .and_then(|env| decode(&env).map_err(|e| e.to_string()));
                assert!(
                    decoded.is_err(),
                    "{path}: `{name}` with {class} is refused by the schema but decoded by the runtime:\n{}",
                    String::from_utf8_lossy(&text)
                );
                *mutations.entry(class).or_default() += 1;
            }
        }
    }
    for class in mutate::CLASSES {
        assert!(
            mutations.get(class).copied().unwrap_or(0) > 0,
            "no sample had {class}: {mutations:?}"
        );
    }
    assert!(published >= 500, "only {published} messages published");
    eprintln!(
        "{published} published messages valid; broken ones refused: {mutations:?}; {:.2?}",
        started.elapsed()
    );
}
