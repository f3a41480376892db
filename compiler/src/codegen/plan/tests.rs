//! The plan's names: collisions settled with the suffixes the generated
//! code has always had, and every reaction and message named.

// Tests fail by panicking; unwrapping is how they say what went wrong.
#![allow(clippy::unwrap_used)]

use super::NamingPlan;
use crate::model::{CheckedSpec, MessageId, TriggerKind};
use crate::{check, SourceFile};
use std::collections::BTreeSet;
use std::path::Path;

/// Spec names that collide with generated names and with each other once
/// cased: every namespace of the plan has a collision here.
const COLLISIONS: &str = r#"
choreography Collide {
    key order_id: u64
    type payment { a: bool }
    @http(POST "/router")
    command Router { }
    @http(POST "/state")
    command State { }
    @http(POST "/orders/{order_id}")
    command New { }
    command Client { }
    command Go { }
    @external event Ctx { }
    event ctx_ { }
    event Ab { }
    event AB { }
    event Nothing { }
    event OnAbOutcome { }
    @terminal event Done { }
    @terminal event Key { }
    participant Payment {
        on Router -> Ab | AB | Nothing
        on State | New -> Ab + AB | Nothing
    }
    participant Broker {
        on Ab -> Done | Key
        on AB -> Done | Nothing
        on Ctx & ctx_ -> Done
        on Nothing -> OnAbOutcome | Done
        on OnAbOutcome -> Done
    }
    participant Fixture {
        on Client -> ctx_
    }
    participant Context {
        on Go -> Done
        on Key -> Nothing | none
    }
}
"#;

fn checked(name: &str, text: &str) -> CheckedSpec {
    check(&SourceFile::new(name, text.to_string()))
        .into_checked()
        .unwrap()
        .0
}

fn texts<'a>(idents: impl IntoIterator<Item = &'a proc_macro2::Ident>) -> Vec<String> {
    idents.into_iter().map(ToString::to_string).collect()
}

fn message(spec: &CheckedSpec, name: &str) -> MessageId {
    spec.message_ids()
        .find(|&m| spec.message_name(m) == name)
        .unwrap()
}

#[test]
fn colliding_names_get_the_suffixes_of_the_generated_code() {
    let spec = checked("collisions.choreo", COLLISIONS);
    let plan = NamingPlan::new(&spec);
    // The spec's `Key` keeps its name; the generated helpers give way.
    assert_eq!(
        texts([&plan.key, &plan.context, &plan.commands]),
        ["Key_", "Context_", "Commands"]
    );
    let p = plan.participants();
    // Modules share the type namespace (`payment` is a record), arguments
    // follow `start_all`'s own (`broker`).
    assert_eq!(
        texts(p.iter().map(|p| &p.module)),
        ["payment_", "broker", "fixture", "context"]
    );
    assert_eq!(
        texts(p.iter().map(|p| &p.arg)),
        ["payment", "broker_", "fixture", "context"]
    );
    let broker = &p[1].reactions;
    assert_eq!(
        texts(broker.iter().map(|r| &r.method)),
        [
            "on_ab",
            "on_ab_",
            "on_ctx_and_ctx",
            "on_nothing",
            "on_on_ab_outcome"
        ]
    );
    let outcome_enums: Vec<_> = broker
        .iter()
        .filter_map(|r| r.outcome_enum.as_ref())
        .map(|e| e.name.to_string())
        .collect();
    assert_eq!(
        outcome_enums,
        ["OnAbOutcome", "OnAbOutcome_", "OnNothingOutcome"]
    );
    assert_eq!(texts(&broker[2].join_params), ["ctx_", "ctx__"]);

    let payment = &p[0].reactions;
    let variants = |e: Option<&super::participants::EnumNames>| texts(&e.unwrap().variants);
    assert_eq!(
        variants(payment[0].outcome_enum.as_ref()),
        ["Ab", "Ab_", "Nothing"]
    );
    assert_eq!(
        variants(payment[1].outcome_enum.as_ref()),
        ["AbAndAb", "Nothing"]
    );
    assert_eq!(variants(payment[1].trigger_enum.as_ref()), ["State", "New"]);
    let on_key = &p[3].reactions[1];
    assert_eq!(
        variants(on_key.outcome_enum.as_ref()),
        ["Nothing", "Nothing_"]
    );

    // (message, its `Commands` method, its HTTP handler)
    for (name, send, handler) in [
        ("Router", Some("router"), Some("router_")),
        ("State", Some("state"), Some("state_")),
        ("New", Some("new_"), Some("new")),
        ("Client", Some("client_"), None),
        ("Ctx", Some("ctx"), None),
        ("Ab", None, None),
    ] {
        let names = plan.message(message(&spec, name));
        let text = |ident: &Option<proc_macro2::Ident>| ident.as_ref().map(ToString::to_string);
        assert_eq!(text(&names.send).as_deref(), send, "{name}");
        assert_eq!(text(&names.http_handler).as_deref(), handler, "{name}");
    }
}

/// The specs the repository keeps as valid.
fn valid_specs() -> Vec<CheckedSpec> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut specs = vec![checked("collisions.choreo", COLLISIONS)];
    for dir in ["tests/cases/valid", "tests/specs", "examples/ecommerce"] {
        let mut paths: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "choreo"))
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap();
            specs.push(checked(&path.display().to_string(), &text));
        }
    }
    specs
}

#[test]
fn the_plan_names_every_reaction_and_message_once() {
    for spec in valid_specs() {
        let plan = NamingPlan::new(&spec);
        let what = &spec.name.text;
        assert_eq!(plan.messages().len(), spec.messages.len(), "{what}");
        let mut reactions = Vec::new();
        for (p, names) in spec.participants.iter().zip(plan.participants()) {
            assert_eq!(
                names.reactions.iter().map(|r| r.id).collect::<Vec<_>>(),
                p.reactions,
                "{what}: every reaction of `{}`, in order",
                p.name.text
            );
            let methods: BTreeSet<_> = texts(names.reactions.iter().map(|r| &r.method))
                .into_iter()
                .collect();
            assert_eq!(
                methods.len(),
                names.reactions.len(),
                "{what}: distinct methods"
            );
            for r in &names.reactions {
                let reaction = spec.reaction(r.id);
                assert_eq!(r.method.to_string(), r.name, "{what}");
                let outcomes = reaction.outcomes().len();
                let out = r.outcome_enum.as_ref().map_or(0, |e| e.variants.len());
                assert_eq!(out, if outcomes > 1 { outcomes } else { 0 }, "{what}");
                let triggers = reaction.trigger.messages.len();
                let several = triggers > 1;
                let any = reaction.trigger.kind == TriggerKind::Any;
                let trig = r.trigger_enum.as_ref().map_or(0, |e| e.variants.len());
                assert_eq!(trig, if any && several { triggers } else { 0 }, "{what}");
                let joined = r.join_params.len();
                assert_eq!(joined, if !any && several { triggers } else { 0 }, "{what}");
                reactions.push(r.id);
            }
        }
        let unique: BTreeSet<_> = reactions.iter().collect();
        assert_eq!(unique.len(), reactions.len(), "{what}: no reaction twice");
        assert_eq!(
            reactions.len(),
            spec.reactions.len(),
            "{what}: every reaction"
        );
        for (m, names) in spec.messages.iter().zip(plan.messages()) {
            let sent = m.is_command() || m.external.is_some();
            assert_eq!(names.send.is_some(), sent, "{what}: `{}`", m.name.text);
            assert_eq!(names.http_handler.is_some(), m.http.is_some(), "{what}");
            assert_eq!(names.fields.len(), m.fields.len(), "{what}");
        }
        let senders: BTreeSet<_> = plan
            .messages()
            .iter()
            .filter_map(|m| m.send.as_ref())
            .collect();
        let sent = plan.messages().iter().filter(|m| m.send.is_some()).count();
        assert_eq!(senders.len(), sent, "{what}: distinct senders");
    }
}

#[test]
fn wire_names_are_the_plans_names_without_the_plan() {
    for spec in valid_specs() {
        let plan = NamingPlan::new(&spec);
        let wire = crate::codegen::wire_names(&spec);
        let what = &spec.name.text;
        let types: Vec<&str> = plan.messages().iter().map(|m| m.wire.as_str()).collect();
        assert_eq!(wire.types, types, "{what}");
        for r in plan.participants().iter().flat_map(|p| &p.reactions) {
            assert_eq!(wire.reactions[r.id.index()], r.name, "{what}");
        }
        assert_eq!(wire.reactions.len(), spec.reactions.len(), "{what}");
    }
}
