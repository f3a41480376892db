use super::*;
use crate::{check, SourceFile};
use serde_json::json;

const SPEC: &str = r#"
choreography Shop {
    key order_id: string
    /// A node of a tree.
    type Node { name: string, kids: list<Node>, parent: Node? }
    enum Size { Small, /// Big.
        Large }
    /// Places an order.
    command Place { size: Size, note: string?, tree: Node, tags: map<string, u32> }
    @terminal event Done { at: timestamp }
    participant Orders { on Place -> Done }
}
"#;

fn schemas(prefix: &str) -> JsonSchemas {
    let (spec, _) = check(&SourceFile::new("shop.choreo", SPEC.to_string()))
        .into_checked()
        .unwrap();
    JsonSchemas::with_ref_prefix(&spec, prefix)
}

#[test]
fn payloads_require_all_but_optional_fields_and_name_definitions_by_the_prefix() {
    let s = schemas("#/components/schemas/");
    let place = s.payload(MessageId(0));
    assert_eq!(place["required"], json!(["size", "tree", "tags"]));
    assert_eq!(place["description"], "Places an order.");
    assert_eq!(
        place["properties"]["size"]["$ref"],
        "#/components/schemas/Size"
    );
    assert_eq!(
        place["properties"]["note"]["anyOf"],
        json!([{ "type": "string" }, { "type": "null" }])
    );
    assert_eq!(
        place["properties"]["tags"]["additionalProperties"],
        json!({ "type": "integer", "minimum": 0, "maximum": u32::MAX })
    );
    let node = &s.definitions()["Node"];
    assert_eq!(
        node["properties"]["kids"]["items"]["$ref"],
        "#/components/schemas/Node"
    );
    assert_eq!(s.definitions()["Size"]["enum"], json!(["Small", "Large"]));
    assert_eq!(s.definitions()["Size"]["description"], "- `Large`: Big.");
    assert_eq!(s.payload(MessageId(9)), Value::Null);
}

#[test]
fn messages_are_the_shared_envelope_narrowed_to_their_wire_type() {
    let s = schemas(DEFS_REF_PREFIX);
    let done = s.message(MessageId(1));
    assert_eq!(done["$schema"], DIALECT);
    assert_eq!(done["$ref"], "defs.schema.json#/$defs/choreo.CloudEvent");
    assert_eq!(done["properties"]["type"]["const"], "Shop.Done");
    assert_eq!(done["properties"]["data"], s.payload(MessageId(1)));
    // The envelope is defined once, beside the records and enums, and
    // not repeated in the message.
    assert!(done.get("required").is_none(), "{done:#}");
    let defs = s.defs();
    let shared = &defs["$defs"][envelope::NAME];
    assert_eq!(shared, s.envelope());
    assert_eq!(shared["required"], json!(envelope::REQUIRED));
    assert_eq!(shared["properties"]["type"]["type"], "string");
    assert_eq!(
        shared["additionalProperties"],
        json!({ "type": ["string", "number", "boolean"] })
    );
    assert_eq!(defs["$defs"]["Node"], s.definitions()["Node"]);
    assert!(done["description"]
        .as_str()
        .unwrap()
        .ends_with("Terminal: it settles the instance with success."));
    let names: Vec<String> = s.files().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["Done.schema.json", "Place.schema.json", DEFS_FILE]);
    assert!(s.files().iter().all(|(_, text)| text.ends_with("}\n")));
}

#[test]
fn the_envelope_gives_correlationid_the_form_of_the_key() {
    for (ty, pattern) in [
        ("uuid", Some(types::UUID_PATTERN)),
        ("u64", Some("^(0|[1-9][0-9]*)$")),
        ("i32", Some("^(0|-?[1-9][0-9]*)$")),
        ("string", None),
    ] {
        let text = SPEC.replace("key order_id: string", &format!("key order_id: {ty}"));
        let (spec, _) = check(&SourceFile::new("shop.choreo", text))
            .into_checked()
            .unwrap();
        let s = JsonSchemas::of(&spec);
        let correlation = &s.envelope()["properties"]["correlationid"];
        assert_eq!(correlation["pattern"].as_str(), pattern, "{ty}");
        assert!(correlation["description"]
            .as_str()
            .unwrap()
            .contains(&format!("`order_id` ({ty})")));
    }
}
