//! The AsyncAPI export: a snapshot of the ecommerce example's document,
//! every corpus spec exported in both formats for both brokers (the two
//! formats saying the same, every reference resolving), the flow kept in
//! `x-choreo-*` extensions, and the real `@asyncapi/parser` accepting
//! every document with no error.
//!
//! The parser test skips with a message when Node or the parser is
//! missing, and fails instead when `CHOREO_REQUIRE_TOOLS=1` (as in CI).

mod common;

use choreo_compiler::export::asyncapi::{self, Broker, Format, Options, ServerSpec};
use choreo_compiler::CheckedSpec;
use common::{checked, repo, runs, tool_available};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

fn load(path: &Path) -> CheckedSpec {
    let text = std::fs::read_to_string(path).expect("spec readable");
    checked(&path.display().to_string(), text)
}

/// Every valid spec of the corpus: `tests/cases/valid`, `tests/specs` and
/// the examples, sorted.
fn corpus() -> Vec<PathBuf> {
    let root = repo();
    let mut specs = Vec::new();
    for dir in ["tests/cases/valid", "tests/specs"] {
        for entry in std::fs::read_dir(root.join(dir)).expect("corpus directory") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "choreo") {
                specs.push(path);
            }
        }
    }
    for entry in std::fs::read_dir(root.join("examples")).expect("examples") {
        let dir = entry.expect("entry").path();
        for file in std::fs::read_dir(&dir).into_iter().flatten() {
            let path = file.expect("entry").path();
            if path.extension().is_some_and(|e| e == "choreo") {
                specs.push(path);
            }
        }
    }
    specs.sort();
    assert!(specs.len() > 30, "only {} specs found", specs.len());
    specs
}

fn options(broker: Broker, prefix: &str) -> Options {
    Options {
        broker,
        prefix: prefix.to_owned(),
        servers: Vec::new(),
    }
}

/// The document as JSON, through the text a user gets.
fn exported(spec: &CheckedSpec, options: &Options, format: Format) -> (String, Value) {
    let text = asyncapi::render(&asyncapi::document(spec, options), format).expect("renders");
    assert!(text.ends_with('\n'));
    let value = match format {
        Format::Json => serde_json::from_str(&text).expect("JSON"),
        Format::Yaml => serde_norway::from_str(&text).expect("YAML"),
    };
    (text, value)
}

/// The value a local `$ref` points at.
fn resolve<'a>(doc: &'a Value, reference: &Value) -> &'a Value {
    let pointer = reference["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix('#'))
        .unwrap_or_else(|| panic!("not a local reference: {reference}"));
    doc.pointer(pointer)
        .unwrap_or_else(|| panic!("`{pointer}` resolves to nothing"))
}

/// How many operations the spec makes: per reaction, its distinct trigger
/// messages and its distinct emitted events; one per command; one per
/// external event.
fn expected_operations(spec: &CheckedSpec) -> usize {
    let distinct = |ids: Vec<_>| {
        let mut ids = ids;
        ids.sort();
        ids.dedup();
        ids.len()
    };
    let reactions: usize = spec
        .reactions
        .iter()
        .map(|r| distinct(r.trigger.ids().collect()) + distinct(r.emitted().collect()))
        .sum();
    let external = spec
        .messages
        .iter()
        .filter(|m| m.external.is_some())
        .count();
    reactions + spec.commands().count() + external
}

#[test]
fn the_ecommerce_document_as_a_snapshot() {
    let spec = load(&repo().join("examples/ecommerce/ecommerce.choreo"));
    let mut options = options(Broker::Nats, "");
    options.servers = vec![ServerSpec::parse(
        "production=nats://orders:secret@nats-1:4222,nats-2:4222",
        Broker::Nats,
    )
    .expect("server")];
    let (text, _) = exported(&spec, &options, Format::Yaml);
    assert!(!text.contains("secret"), "a password reached the document");
    insta::assert_snapshot!("asyncapi_ecommerce_nats_yaml", text);
}

#[test]
fn every_corpus_spec_exports_in_both_formats_for_both_brokers() {
    for path in corpus() {
        let spec = load(&path);
        let name = path.display();
        for broker in [Broker::Nats, Broker::Redis] {
            let options = options(broker, "shop-1.");
            let (_, yaml) = exported(&spec, &options, Format::Yaml);
            let (_, json) = exported(&spec, &options, Format::Json);
            assert_eq!(yaml, json, "{name}: YAML and JSON differ");
            let doc = json;
            assert_eq!(doc["asyncapi"], "3.0.0");
            let channels = doc["channels"].as_object().expect("channels");
            assert_eq!(channels.len(), spec.messages.len(), "{name}");
            let mut addresses: Vec<&str> = channels
                .values()
                .map(|c| c["address"].as_str().expect("address"))
                .collect();
            addresses.sort_unstable();
            addresses.dedup();
            assert_eq!(addresses.len(), channels.len(), "{name}: an address twice");
            for (key, channel) in channels {
                for message in channel["messages"].as_object().expect("messages").values() {
                    let m = resolve(&doc, message);
                    assert_eq!(m["name"], key.as_str(), "{name}");
                    // The payload's `type` is the address without the
                    // prefixes: the wire type the runtime's topic is made of.
                    // All of the shared envelope and the message's own.
                    let all = m["payload"]["allOf"].as_array().expect("allOf");
                    assert_eq!(
                        resolve(&doc, &all[0]),
                        &doc["components"]["schemas"]["choreo.CloudEvent"],
                        "{name}"
                    );
                    let ty = all[1]["properties"]["type"]["const"]
                        .as_str()
                        .expect("type");
                    let address = channel["address"].as_str().expect("address");
                    let expected = match broker {
                        Broker::Nats => format!("shop-1.{ty}"),
                        Broker::Redis => format!("choreo:shop-1.{ty}"),
                    };
                    assert_eq!(address, expected, "{name}");
                }
            }
            let operations = doc["operations"].as_object().expect("operations");
            assert_eq!(operations.len(), expected_operations(&spec), "{name}");
            for (key, op) in operations {
                let channel = resolve(&doc, &op["channel"]);
                for message in op["messages"].as_array().expect("messages") {
                    // An operation's messages are its channel's.
                    let pointer = message["$ref"].as_str().expect("$ref");
                    let channel_ref = op["channel"]["$ref"].as_str().expect("$ref");
                    assert!(pointer.starts_with(channel_ref), "{name}: {key}");
                    resolve(&doc, message);
                }
                assert!(channel["address"].is_string(), "{name}: {key}");
            }
            // Every schema reference resolves.
            check_refs(&doc, &doc);
        }
    }
}

fn check_refs(doc: &Value, at: &Value) {
    match at {
        Value::Object(map) => {
            if map.contains_key("$ref") {
                resolve(doc, at);
            }
            for v in map.values() {
                check_refs(doc, v);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| check_refs(doc, v)),
        _ => {}
    }
}

/// A spec with every construct whose meaning AsyncAPI has no field for.
const FLOW: &str = r#"
/// Tickets, with every construct of the flow.
choreography Flow {
    version "3.2.1"
    /// The ticket.
    key ticket_id: u64

    /// Opens a ticket.
    @http(POST "/tickets/{ticket_id}")
    @deadline(2h)
    command Open { subject: string }

    @external
    event CustomerClosed { }

    @deprecated("use Triaged")
    event Opened { }
    event Triaged { }
    event Escalated { }
    event Assigned { }
    event Notified { }
    event Dropped { }
    @terminal
    event Resolved { }
    @terminal(failure)
    event Abandoned { }
    @terminal
    event Archived { }

    participant Desk {
        on Open -> Opened
        @retry(max = 4, backoff = 250ms)
        on Opened -> Triaged + Notified | Escalated
        @bounded(3)
        @timeout(30s)
        on Escalated -> Opened | Abandoned
    }
    participant Agents {
        on Triaged -> Assigned
        /// Fires once both have arrived.
        on Assigned & Notified -> Resolved
        on CustomerClosed -> Dropped compensates Assigned
    }
    participant Archive {
        on Resolved | Abandoned -> Archived | none
        on Dropped
    }
}
"#;

#[test]
fn the_flow_is_kept_in_extensions() {
    let spec = checked("flow.choreo", FLOW.to_owned());
    let (_, doc) = exported(&spec, &options(Broker::Nats, ""), Format::Json);
    let info = &doc["info"];
    assert_eq!(info["version"], "3.2.1");
    assert_eq!(
        info["description"],
        "Tickets, with every construct of the flow."
    );
    assert_eq!(
        info["x-choreo-key"],
        serde_json::json!({"name": "ticket_id", "type": "u64", "description": "The ticket."})
    );
    assert_eq!(info["x-choreo-progress"], "choreo-progress.Flow");
    let channel = |name: &str| &doc["channels"][name];
    assert_eq!(channel("Open")["x-choreo-kind"], "command");
    assert_eq!(channel("Open")["x-choreo-deadline"], "2h");
    assert_eq!(
        channel("Open")["x-choreo-http"],
        serde_json::json!({"method": "POST", "path": "/tickets/{ticket_id}"})
    );
    assert_eq!(channel("Open")["description"], "Opens a ticket.");
    assert_eq!(channel("Resolved")["x-choreo-terminal"], "success");
    assert_eq!(channel("Abandoned")["x-choreo-terminal"], "failure");
    assert_eq!(channel("CustomerClosed")["x-choreo-external"], true);
    assert_eq!(channel("Opened")["x-choreo-deprecated"], "use Triaged");
    assert_eq!(
        channel("Opened")["x-choreo-dead-letters"],
        "Flow.v3.Opened.dlq"
    );
    assert_eq!(channel("Opened")["x-choreo-nats-stream"], "Flow");
    let op = |key: &str| {
        let op = &doc["operations"][key];
        assert!(op.is_object(), "no operation `{key}`");
        op
    };
    let retried = op("Desk.on_opened.receive.Opened");
    assert_eq!(retried["action"], "receive");
    assert_eq!(
        retried["x-choreo-retry"],
        serde_json::json!({"max": 4, "backoff": "250ms"})
    );
    assert_eq!(
        retried["x-choreo-outcomes"],
        serde_json::json!(["Triaged + Notified", "Escalated"])
    );
    let bounded = op("Desk.on_escalated.receive.Escalated");
    assert_eq!(bounded["x-choreo-bounded"], 3);
    assert_eq!(bounded["x-choreo-timeout"], "30s");
    for event in ["Assigned", "Notified"] {
        let join = op(&format!("Agents.on_assigned_and_notified.receive.{event}"));
        assert_eq!(
            join["x-choreo-join"],
            serde_json::json!(["Assigned", "Notified"])
        );
        assert_eq!(join["x-choreo-trigger"], "Assigned & Notified");
        assert_eq!(join["x-choreo-outcomes"], serde_json::json!(["Resolved"]));
        assert_eq!(join["description"], "Fires once both have arrived.");
    }
    let compensation = op("Agents.on_customer_closed.send.Dropped");
    assert_eq!(compensation["action"], "send");
    assert_eq!(compensation["x-choreo-compensates"], "Assigned");
    assert_eq!(compensation["x-choreo-source"], "Flow/Agents");
    let archive = op("Archive.on_resolved_or_abandoned.receive.Abandoned");
    assert_eq!(archive["x-choreo-trigger"], "Resolved | Abandoned");
    assert_eq!(
        archive["x-choreo-outcomes"],
        serde_json::json!(["Archived", "none"])
    );
    let sink = op("Archive.on_dropped.receive.Dropped");
    assert!(
        sink.get("x-choreo-outcomes").is_none(),
        "a sink has no outcomes"
    );
    assert_eq!(op("ingress.send.Open")["action"], "send");
    assert_eq!(op("outside.send.CustomerClosed")["action"], "send");
    // The key's type decides what `correlationid` holds, in the envelope
    // every message shares.
    let correlation =
        &doc["components"]["schemas"]["choreo.CloudEvent"]["properties"]["correlationid"];
    assert_eq!(correlation["type"], "string");
    assert!(correlation["pattern"].is_string(), "{correlation}");
}

#[test]
fn participants_named_like_the_ingress_keep_their_own_tags() {
    let text = r#"
choreography Odd {
    key id: string
    command Go { }
    @external
    event Came { }
    @terminal
    event Done { }
    participant ingress { on Go -> Done }
    participant outside { on Came }
}
"#;
    let spec = checked("odd.choreo", text.to_owned());
    let (_, doc) = exported(&spec, &options(Broker::Nats, ""), Format::Json);
    let tags: Vec<&str> = doc["info"]["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(tags, ["ingress", "outside", "ingress_", "outside_"]);
    assert_eq!(
        doc["operations"]["ingress_.send.Go"]["tags"][0]["name"],
        "ingress_"
    );
    assert_eq!(doc["operations"]["outside_.send.Came"]["action"], "send");
    assert_eq!(
        doc["operations"]["ingress.on_go.receive.Go"]["action"],
        "receive"
    );
}

#[test]
fn the_transport_is_described_per_broker() {
    let spec = load(&repo().join("examples/ecommerce/ecommerce.choreo"));
    let (_, nats) = exported(&spec, &options(Broker::Nats, ""), Format::Json);
    let message = &nats["components"]["messages"]["OrderPlaced"];
    assert_eq!(message["contentType"], "application/cloudevents+json");
    let headers = resolve(&nats, &message["headers"]);
    assert_eq!(headers["required"], serde_json::json!(["Nats-Msg-Id"]));
    assert_eq!(
        nats["channels"]["OrderPlaced"]["address"],
        "Ecommerce.v1.OrderPlaced"
    );
    let (_, redis) = exported(&spec, &options(Broker::Redis, "t1."), Format::Json);
    let message = &redis["components"]["messages"]["OrderPlaced"];
    assert!(
        message.get("headers").is_none(),
        "Redis streams have no headers"
    );
    assert_eq!(message["x-choreo-redis-field"], "event");
    let channel = &redis["channels"]["OrderPlaced"];
    assert_eq!(channel["address"], "choreo:t1.Ecommerce.v1.OrderPlaced");
    assert_eq!(
        channel["x-choreo-dead-letters"],
        "choreo:t1.Ecommerce.v1.OrderPlaced.dlq"
    );
    assert!(channel.get("x-choreo-nats-stream").is_none());
    assert_eq!(
        redis["info"]["x-choreo-progress"],
        "choreo:t1.choreo-progress.Ecommerce"
    );
}

#[test]
fn asyncapi_parser_accepts_every_document() {
    let checker = repo().join("tests/asyncapi");
    let installed = checker
        .join("node_modules/@asyncapi/parser/package.json")
        .is_file();
    if !tool_available("Node.js", runs("node", "--version"))
        || !tool_available("@asyncapi/parser (`npm ci` in tests/asyncapi)", installed)
    {
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("asyncapi");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    // What the parser must find in each file: channels, operations, messages.
    let mut expected: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    let mut files = Vec::new();
    let combinations = [
        (Broker::Nats, Format::Yaml),
        (Broker::Redis, Format::Json),
        (Broker::Nats, Format::Json),
        (Broker::Redis, Format::Yaml),
    ];
    for (i, path) in corpus().into_iter().enumerate() {
        let spec = load(&path);
        let stem = path
            .file_stem()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        // The parser costs about half a second a document (it compiles
        // AsyncAPI's whole JSON Schema for each), so each spec is checked
        // in one broker and format, in turn, and the ecommerce example in
        // all four; the other test shows that YAML and JSON hold the same
        // document for every spec and broker.
        let all = stem == "ecommerce";
        let picked = combinations
            .iter()
            .enumerate()
            .filter(|(k, _)| all || *k == i % combinations.len())
            .map(|(_, c)| *c);
        for (broker, format) in picked {
            let (b, url) = match broker {
                Broker::Nats => ("nats", "prod=tls://user:pw@nats:4222"),
                Broker::Redis => ("redis", "prod=redis://redis:6379/1"),
            };
            let ext = match format {
                Format::Yaml => "yaml",
                Format::Json => "json",
            };
            let mut options = options(broker, "p.");
            options.servers = vec![ServerSpec::parse(url, broker).expect("server")];
            let (text, _) = exported(&spec, &options, format);
            let file = dir.join(format!("{stem}-{b}.{ext}"));
            std::fs::write(&file, text).expect("write");
            let counts = (
                spec.messages.len(),
                expected_operations(&spec),
                spec.messages.len(),
            );
            expected.insert(file.display().to_string(), counts);
            files.push(file);
        }
    }
    let started = std::time::Instant::now();
    let out = Command::new("node")
        .arg(checker.join("check.mjs"))
        .args(&files)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut seen = 0;
    let mut errors = Vec::new();
    for line in stdout.lines() {
        let report: Value = serde_json::from_str(line).expect("a JSON line");
        let file = report["file"].as_str().expect("file");
        for d in report["diagnostics"].as_array().expect("diagnostics") {
            let said = format!("{file}: {} at `{}`: {}", d["code"], d["path"], d["message"]);
            match d["severity"].as_u64() {
                Some(0) => errors.push(said),
                Some(1) => {
                    let _ = writeln!(std::io::stderr(), "warning: {said}");
                }
                _ => {}
            }
        }
        let found = (
            report["channels"].as_u64(),
            report["operations"].as_u64(),
            report["messages"].as_u64(),
        );
        let (c, o, m) = expected[file];
        assert_eq!(
            found,
            (Some(c as u64), Some(o as u64), Some(m as u64)),
            "{file}"
        );
        seen += 1;
    }
    assert!(
        errors.is_empty() && out.status.success(),
        "the AsyncAPI parser found errors:\n{}\n{}",
        errors.join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(seen, files.len());
    let _ = writeln!(
        std::io::stderr(),
        "@asyncapi/parser checked {} documents in {:.1?}",
        files.len(),
        started.elapsed()
    );
}
