//! Broken copies of a published message, one per type class found in it,
//! each something the runtime's decoder refuses: the schema must refuse
//! them too.

use choreo_compiler::model::{MessageId, Scalar, Type};
use choreo_compiler::CheckedSpec;
use serde_json::{json, Value};

/// The classes every corpus run must have broken at least once.
pub const CLASSES: &[&str] = &[
    "a missing field",
    "a wrong type",
    "an unknown enum variant",
    "an integer out of range",
    "a malformed uuid",
    "a malformed timestamp",
    "a malformed duration",
    "malformed base64",
    "a malformed envelope",
];

/// A value in the message's `data`: where it is (a JSON pointer), its
/// type, and whether it is a field the decoder requires.
struct Site {
    pointer: String,
    ty: Type,
    required_field: bool,
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Every value of `value`, of type `ty`, under `pointer`.
fn walk(spec: &CheckedSpec, ty: &Type, value: &Value, pointer: String, out: &mut Vec<Site>) {
    match (ty, value) {
        (Type::Optional(t), v) if !v.is_null() => walk(spec, t, v, pointer, out),
        (Type::Record(r), Value::Object(_)) => {
            fields(spec, &spec.record(*r).fields, value, &pointer, out)
        }
        (Type::List(t), Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                walk(spec, t, item, format!("{pointer}/{i}"), out);
            }
        }
        (Type::Map(t), Value::Object(entries)) => {
            for (k, v) in entries {
                walk(spec, t, v, format!("{pointer}/{}", escape(k)), out);
            }
        }
        _ => {}
    }
}

fn fields(
    spec: &CheckedSpec,
    fields: &[choreo_compiler::model::Field],
    value: &Value,
    pointer: &str,
    out: &mut Vec<Site>,
) {
    for f in fields {
        let Some(v) = value.get(f.name.text.as_str()) else {
            continue;
        };
        let at = format!("{pointer}/{}", escape(&f.name.text));
        out.push(Site {
            pointer: at.clone(),
            ty: f.ty.clone(),
            required_field: !matches!(f.ty, Type::Optional(_)),
        });
        // Inside an optional that is there, its value is also a site.
        if let (Type::Optional(inner), false) = (&f.ty, v.is_null()) {
            out.push(Site {
                pointer: at.clone(),
                ty: (**inner).clone(),
                required_field: false,
            });
        }
        walk(spec, &f.ty, v, at, out);
    }
}

/// A value of the wrong JSON type for `ty`, which its decoder refuses
/// (`decimal` takes numbers, so it gets a boolean); `None` for `json`,
/// which takes anything.
fn wrong(ty: &Type) -> Option<Value> {
    Some(match ty {
        Type::Scalar(Scalar::Json) | Type::Error => return None,
        Type::Scalar(Scalar::Decimal) => json!(true),
        Type::Scalar(Scalar::Bool) => json!(1),
        Type::Scalar(Scalar::F64) => json!("1.5"),
        Type::Scalar(Scalar::I32 | Scalar::I64 | Scalar::U32 | Scalar::U64) => json!("1"),
        Type::Scalar(_) => json!(42),
        Type::List(_) => json!({ "a": 1 }),
        Type::Map(_) => json!([1]),
        Type::Record(_) => json!("x"),
        Type::Enum(_) => json!(1),
        Type::Optional(t) => return wrong(t),
    })
}

/// One past the range of an integer type, or `None`.
fn out_of_range(s: Scalar) -> Option<Value> {
    Some(match s {
        Scalar::I32 => json!(i64::from(i32::MAX) + 1),
        Scalar::U32 => json!(u64::from(u32::MAX) + 1),
        Scalar::I64 => json!(i64::MAX as u64 + 1),
        Scalar::U64 => json!(-1),
        _ => return None,
    })
}

fn replaced(value: &Value, pointer: &str, with: Value) -> Value {
    let mut out = value.clone();
    if let Some(slot) = out.pointer_mut(pointer) {
        *slot = with;
    }
    out
}

/// Broken copies of `value`, a published envelope of message `m`, each
/// with the class it breaks.
pub fn broken(spec: &CheckedSpec, m: MessageId, value: &Value) -> Vec<(&'static str, Value)> {
    let mut sites = Vec::new();
    fields(
        spec,
        &spec.message(m).fields,
        &value["data"],
        "/data",
        &mut sites,
    );
    let mut out = Vec::new();
    if let Some(site) = sites.iter().find(|s| s.required_field) {
        let mut missing = value.clone();
        let (parent, key) = site.pointer.rsplit_once('/').unwrap();
        let key = key.replace("~1", "/").replace("~0", "~");
        missing
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .unwrap()
            .remove(&key);
        out.push(("a missing field", missing));
    }
    if let Some((site, w)) = sites.iter().find_map(|s| Some((s, wrong(&s.ty)?))) {
        out.push(("a wrong type", replaced(value, &site.pointer, w)));
    }
    let first = |pred: &dyn Fn(&Type) -> bool| sites.iter().find(|s| pred(&s.ty));
    if let Some(site) = first(&|t| matches!(t, Type::Enum(_))) {
        out.push((
            "an unknown enum variant",
            replaced(value, &site.pointer, json!("NoSuchVariant")),
        ));
    }
    if let Some((site, v)) = sites.iter().find_map(|s| match s.ty {
        Type::Scalar(sc) => Some((s, out_of_range(sc)?)),
        _ => None,
    }) {
        out.push(("an integer out of range", replaced(value, &site.pointer, v)));
    }
    let scalars: [(Scalar, &str, Value); 4] = [
        (Scalar::Uuid, "a malformed uuid", json!("not-a-uuid")),
        (
            Scalar::Timestamp,
            "a malformed timestamp",
            json!("2026-13-01T00:00:00Z"),
        ),
        (Scalar::Duration, "a malformed duration", json!("soon")),
        (Scalar::Bytes, "malformed base64", json!("!!")),
    ];
    for (scalar, class, bad) in scalars {
        if let Some(site) = first(&|t| *t == Type::Scalar(scalar)) {
            out.push((class, replaced(value, &site.pointer, bad)));
        }
    }
    // The envelope: a missing attribute, a CloudEvents attribute the
    // decoder refuses, an extension that is not a string, a number or a
    // boolean.
    let mut no_key = value.clone();
    no_key.as_object_mut().unwrap().remove("correlationid");
    out.push(("a malformed envelope", no_key));
    let mut subject = value.clone();
    subject["subject"] = json!("x");
    out.push(("a malformed envelope", subject));
    let mut null_extension = value.clone();
    null_extension["tenant"] = Value::Null;
    out.push(("a malformed envelope", null_extension));
    out
}
