use super::{compare, Comparison, Rule};
use crate::model::CheckedSpec;
use crate::{check, SourceFile};

fn checked(text: &str) -> CheckedSpec {
    let report = check(&SourceFile::new("spec.choreo", text));
    match report.into_checked() {
        Ok((spec, _)) => spec,
        Err(diagnostics) => panic!("the spec has errors: {diagnostics:?}"),
    }
}

/// A one-message spec around the given declarations and payload.
fn spec(version: &str, items: &str, payload: &str) -> CheckedSpec {
    checked(&format!(
        "choreography Shop {{\n{version}\nkey id: uuid\n{items}\ncommand Place {{ {payload} }}\n@terminal event Placed {{ }}\nparticipant Orders {{ on Place -> Placed }}\n}}"
    ))
}

fn rules(c: &Comparison) -> Vec<Rule> {
    c.findings.iter().map(|f| f.rule).collect()
}

#[test]
fn identical_specs_have_no_finding() {
    let a = spec("version \"1.0.0\"", "type A { x: u32 }", "a: A");
    let c = compare(&a, &a);
    assert!(c.findings.is_empty(), "{:?}", c.findings);
    assert!(!c.fails());
}

#[test]
fn a_renamed_record_with_the_same_fields_is_the_same_wire_type() {
    let old = spec("", "type A { x: u32 }", "a: list<A>");
    let new = spec("", "type B { x: u32 }", "a: list<B>");
    assert!(compare(&old, &new).findings.is_empty());
}

#[test]
fn recursive_records_end_and_report_once_per_change() {
    let old = spec("", "type Node { x: u32, next: Node? }", "head: Node");
    let new = spec("", "type Node { next: Node? }", "head: Node");
    let c = compare(&old, &new);
    assert_eq!(
        rules(&c),
        vec![Rule::FieldRemoved, Rule::VersionNotBumped],
        "{:?}",
        c.findings
    );
    assert_eq!(c.findings[0].affects, vec!["Place".to_string()]);
}

#[test]
fn optionality_and_type_change_together_are_both_reported() {
    let old = spec("", "", "a: u32?");
    let new = spec("", "", "a: u64");
    let c = compare(&old, &new);
    assert_eq!(
        rules(&c),
        vec![
            Rule::FieldMadeRequired,
            Rule::FieldTypeChanged,
            Rule::VersionNotBumped
        ]
    );
}

#[test]
fn a_major_bump_allows_breaking_changes_and_a_step_back_does_not() {
    let v1 = spec("version \"1.4.0\"", "", "a: u32");
    let v2 = spec("version \"2.0.0\"", "", "");
    let forward = compare(&v1, &v2);
    assert!(!forward.fails());
    assert!(forward.moves_wire_types());
    assert!(forward
        .findings
        .iter()
        .any(|f| f.rule == Rule::FieldRemoved && f.allowed));
    let back = compare(&v2, &spec("version \"1.0.0\"", "", "a: u32"));
    assert!(back.fails());
    assert!(rules(&back).contains(&Rule::VersionNotBumped));
}

#[test]
fn a_spec_without_version_counts_as_0_0_0_and_declaring_one_moves_the_wire_types() {
    let none = spec("", "", "a: u32");
    let zero = spec("version \"0.1.0\"", "", "");
    let c = compare(&none, &zero);
    assert_eq!(c.old.version, semver::Version::new(0, 0, 0));
    assert!(!c.old.declared);
    assert_eq!(
        (c.old.wire_prefix.as_str(), c.new.wire_prefix.as_str()),
        ("Shop.", "Shop.v0.")
    );
    assert!(!c.fails(), "{:?}", c.findings);
    // Minor versions share the wire types: nothing is allowed.
    let minor = compare(&zero, &spec("version \"0.2.0\"", "", "a: u32"));
    assert!(minor.fails());
}

#[test]
fn optionality_inside_a_list_or_map_is_a_type_change() {
    let cases = [
        ("a: list<u32?>", "a: list<u32>"),
        ("a: list<u32>", "a: map<string, u32>"),
        ("a: map<string, u32>", "a: map<string, u32?>"),
    ];
    for (old, new) in cases {
        let c = compare(&spec("", "", old), &spec("", "", new));
        assert_eq!(
            rules(&c),
            vec![Rule::FieldTypeChanged, Rule::VersionNotBumped],
            "{old} → {new}"
        );
    }
}

#[test]
fn a_record_change_is_reported_once_with_every_message_that_reaches_it() {
    let text = |fields: &str| {
        checked(&format!(
            "choreography Shop {{\nkey id: uuid\ntype Inner {{ {fields} }}\ntype Outer {{ inner: map<string, Inner> }}\ncommand Place {{ outer: Outer }}\n@terminal event Placed {{ items: list<Inner>? }}\nparticipant Orders {{ on Place -> Placed }}\n}}"
        ))
    };
    let c = compare(&text("x: u32, y: string"), &text("y: string, z: bool?"));
    assert_eq!(
        rules(&c),
        vec![
            Rule::FieldRemoved,
            Rule::FieldAddedOptional,
            Rule::VersionNotBumped
        ]
    );
    for f in &c.findings[..2] {
        assert_eq!(f.affects, vec!["Place".to_string(), "Placed".to_string()]);
        assert!(f.message.contains("record `Inner`"), "{}", f.message);
    }
}

#[test]
fn a_record_swapped_for_an_enum_or_a_scalar_is_a_type_change() {
    let items = "type R { x: u32 }\nenum E { X }";
    for (old, new) in [
        ("a: R, b: E", "a: E, b: E"),
        ("a: R, b: E", "a: R, b: string"),
    ] {
        let c = compare(&spec("", items, old), &spec("", items, new));
        assert_eq!(
            rules(&c),
            vec![Rule::FieldTypeChanged, Rule::VersionNotBumped],
            "{old} → {new}"
        );
    }
}

#[test]
fn a_command_that_becomes_an_event_is_removed_and_added() {
    let old = checked("choreography S {\nkey id: uuid\ncommand Go { }\ncommand Cancel { }\n@terminal event Done { }\nparticipant P {\non Go -> Done\non Cancel -> Done\n}\n}");
    let new = checked("choreography S {\nkey id: uuid\ncommand Go { }\n@external event Cancel { }\n@terminal event Done { }\nparticipant P {\non Go -> Done\non Cancel -> Done\n}\n}");
    let c = compare(&old, &new);
    assert_eq!(
        rules(&c),
        vec![
            Rule::MessageRemoved,
            Rule::MessageAdded,
            Rule::VersionNotBumped
        ]
    );
}

#[test]
fn reactions_match_by_trigger_whatever_the_order_written() {
    let text = |trigger: &str| {
        checked(&format!(
            "choreography S {{\nkey id: uuid\ncommand Go {{ }}\nevent A {{ }}\nevent B {{ }}\n@terminal event Done {{ }}\nparticipant P {{ on Go -> A + B }}\nparticipant Q {{ on {trigger} -> Done }}\n}}"
        ))
    };
    assert!(compare(&text("A & B"), &text("B & A")).findings.is_empty());
    let c = compare(&text("A & B"), &text("A | B"));
    assert_eq!(
        rules(&c),
        vec![Rule::ReactionTriggerChanged, Rule::VersionNotBumped]
    );
}
