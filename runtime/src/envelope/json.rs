//! JSON encoding of envelopes: CloudEvents structured mode (one JSON
//! object), and binary mode (attributes as headers, data as the body) for
//! adapters whose transport has headers.

use std::borrow::Cow;

use base64::Engine as _;
use bytes::Bytes;
use jiff::Timestamp;
use serde_json::Value;

use super::{
    check_extension_name, Envelope, EnvelopeError, EventId, Inner, SharedStr, TraceParent,
    CLOUDEVENTS_VERSION,
};
use crate::payload::{EncodeError, Payload};

/// Every attribute of `env` as (name, text) pairs, `specversion` included,
/// for binary mode; the data travels separately ([`Payload::to_json`]).
pub fn attributes(env: &Envelope) -> Vec<(Cow<'static, str>, String)> {
    let i = &env.0;
    let mut out: Vec<(Cow<'static, str>, String)> = vec![
        ("specversion".into(), CLOUDEVENTS_VERSION.to_owned()),
        ("id".into(), i.id.to_string()),
        ("source".into(), i.source.to_string()),
        ("type".into(), i.ty.to_string()),
        ("time".into(), i.time.to_string()),
        ("correlationid".into(), i.correlation_id.to_string()),
    ];
    let optional = [
        (
            "datacontenttype",
            i.datacontenttype.as_ref().map(|s| s.to_string()),
        ),
        (
            "causationid",
            i.causation_id.as_ref().map(|c| c.to_string()),
        ),
        ("traceparent", i.traceparent.map(|t| t.to_string())),
        ("tracestate", i.tracestate.as_ref().map(|s| s.to_string())),
        (
            "choreoversion",
            i.choreo_version.as_ref().map(|s| s.to_string()),
        ),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            out.push((name.into(), v));
        }
    }
    for (k, v) in &i.extensions {
        out.push((Cow::Owned(k.clone()), v.clone()));
    }
    out
}

/// Rebuilds an envelope from binary-mode attributes and its data.
///
/// `id`, `source`, `type` and `correlationid` are required and `specversion`
/// must be `1.0`; an unparsable `traceparent` is dropped with a warning (the
/// W3C rule: start a new trace rather than refuse the event).
pub fn from_attributes<K, V>(
    attrs: impl IntoIterator<Item = (K, V)>,
    payload: Payload,
) -> Result<Envelope, EnvelopeError>
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut id = None;
    let mut source = None;
    let mut ty = None;
    let mut time = None;
    let mut correlation = None;
    let mut spec = None;
    let mut inner_opt = OptionalAttrs::default();
    // One allocation per attribute kept: the shared strings are made from
    // the borrowed text directly.
    let shared = |v: &str| SharedStr::from(std::sync::Arc::<str>::from(v));
    for (k, v) in attrs {
        let (k, v) = (k.as_ref(), v.as_ref());
        match k {
            // `None` inside: the right version; else the wrong one.
            "specversion" => spec = Some((v != CLOUDEVENTS_VERSION).then(|| v.to_owned())),
            "id" => id = Some(EventId::from(v)),
            "source" => source = Some(shared(v)),
            "type" => ty = Some(shared(v)),
            "time" => {
                time = Some(v.parse::<Timestamp>().map_err(|e| EnvelopeError::Invalid {
                    name: "time".into(),
                    reason: e.to_string(),
                })?)
            }
            "correlationid" => correlation = Some(shared(v)),
            "datacontenttype" => inner_opt.datacontenttype = Some(shared(v)),
            "causationid" => inner_opt.causation_id = Some(EventId::from(v)),
            "traceparent" => match v.parse::<TraceParent>() {
                Ok(tp) => inner_opt.traceparent = Some(tp),
                Err(e) => tracing::warn!(error = %e, "dropping invalid traceparent"),
            },
            "tracestate" => inner_opt.tracestate = Some(shared(v)),
            "choreoversion" => inner_opt.choreo_version = Some(shared(v)),
            // Attributes this runtime does not use are kept as extensions
            // when their names are valid ones.
            other => {
                check_extension_name(other)?;
                inner_opt.extensions.insert(other.to_owned(), v.to_owned());
            }
        }
    }
    match spec {
        Some(None) => {}
        Some(Some(other)) => {
            return Err(EnvelopeError::Invalid {
                name: "specversion".into(),
                reason: format!("{other:?} is not {CLOUDEVENTS_VERSION:?}"),
            })
        }
        None => return Err(EnvelopeError::Missing("specversion")),
    }
    Ok(Envelope(std::sync::Arc::new(Inner {
        id: id.ok_or(EnvelopeError::Missing("id"))?,
        source: source.ok_or(EnvelopeError::Missing("source"))?,
        ty: ty.ok_or(EnvelopeError::Missing("type"))?,
        // CloudEvents makes `time` optional; an event without one gets the
        // epoch rather than a made-up "now".
        time: time.unwrap_or(Timestamp::UNIX_EPOCH),
        correlation_id: correlation.ok_or(EnvelopeError::Missing("correlationid"))?,
        datacontenttype: inner_opt.datacontenttype,
        causation_id: inner_opt.causation_id,
        traceparent: inner_opt.traceparent,
        tracestate: inner_opt.tracestate,
        choreo_version: inner_opt.choreo_version,
        extensions: inner_opt.extensions,
        payload,
    })))
}

#[derive(Default)]
struct OptionalAttrs {
    datacontenttype: Option<SharedStr>,
    causation_id: Option<EventId>,
    traceparent: Option<TraceParent>,
    tracestate: Option<SharedStr>,
    choreo_version: Option<SharedStr>,
    extensions: std::collections::BTreeMap<String, String>,
}

/// Encodes `env` as one structured-mode JSON object.
///
/// Data that is valid JSON goes in `data` as is; any other bytes (a
/// malformed payload on its way to a dead-letter topic, say) go in
/// `data_base64`, so nothing is lost or altered.
pub fn encode(env: &Envelope) -> Result<Vec<u8>, EncodeError> {
    let data = env.payload().to_json()?;
    let mut buf = Vec::with_capacity(320 + data.len());
    buf.push(b'{');
    // The attributes in the order of `attributes`, written as they come
    // (no list of owned strings in between: this is the adapters' hot path).
    let i = &env.0;
    let mut text = String::with_capacity(64);
    let field = |buf: &mut Vec<u8>, k: &str, v: &str| -> Result<(), EncodeError> {
        if buf.len() > 1 {
            buf.push(b',');
        }
        write_json_string(buf, k)?;
        buf.push(b':');
        write_json_string(buf, v)
    };
    field(&mut buf, "specversion", CLOUDEVENTS_VERSION)?;
    text.clear();
    write_display(&mut text, &i.id);
    field(&mut buf, "id", &text)?;
    field(&mut buf, "source", &i.source)?;
    field(&mut buf, "type", &i.ty)?;
    text.clear();
    write_display(&mut text, &i.time);
    field(&mut buf, "time", &text)?;
    field(&mut buf, "correlationid", &i.correlation_id)?;
    if let Some(v) = &i.datacontenttype {
        field(&mut buf, "datacontenttype", v)?;
    }
    if let Some(v) = &i.causation_id {
        text.clear();
        write_display(&mut text, v);
        field(&mut buf, "causationid", &text)?;
    }
    if let Some(v) = &i.traceparent {
        text.clear();
        write_display(&mut text, v);
        field(&mut buf, "traceparent", &text)?;
    }
    if let Some(v) = &i.tracestate {
        field(&mut buf, "tracestate", v)?;
    }
    if let Some(v) = &i.choreo_version {
        field(&mut buf, "choreoversion", v)?;
    }
    for (k, v) in &i.extensions {
        field(&mut buf, k, v)?;
    }
    if !data.is_empty() {
        // A typed payload was encoded by serde_json: valid by construction.
        if env.payload().is_typed()
            || serde_json::from_slice::<serde::de::IgnoredAny>(&data).is_ok()
        {
            buf.extend_from_slice(b",\"data\":");
            buf.extend_from_slice(&data);
        } else {
            buf.extend_from_slice(b",\"data_base64\":");
            let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
            write_json_string(&mut buf, &b64)?;
        }
    }
    buf.push(b'}');
    Ok(buf)
}

fn write_display(out: &mut String, v: &impl std::fmt::Display) {
    use std::fmt::Write as _;
    // Writing to a String cannot fail.
    let _ = write!(out, "{v}");
}

fn write_json_string(buf: &mut Vec<u8>, s: &str) -> Result<(), EncodeError> {
    serde_json::to_writer(buf, s).map_err(|e| EncodeError(e.to_string()))
}

/// Decodes one structured-mode JSON object into an envelope.
pub fn decode(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
    decode_with(bytes, |data| Bytes::copy_from_slice(data.as_bytes()))
}

/// [`decode`] of bytes already shared: the payload's data is a slice of
/// them, not a copy.
pub fn decode_bytes(bytes: &Bytes) -> Result<Envelope, EnvelopeError> {
    decode_with(bytes, |data| bytes.slice_ref(data.as_bytes()))
}

fn decode_with(bytes: &[u8], data: impl Fn(&str) -> Bytes) -> Result<Envelope, EnvelopeError> {
    // Each member's value is kept as its raw text: `data` is taken as it
    // is (no tree built and written again), attributes parse one by one.
    let members: Members<'_> =
        serde_json::from_slice(bytes).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
    let mut attrs = Vec::with_capacity(members.0.len());
    let mut payload = Payload::empty();
    for (k, raw) in members.0 {
        let text = raw.get();
        match (k.as_ref(), text.as_bytes().first()) {
            ("data", Some(b'n')) if text == "null" => {}
            ("data", _) => payload = Payload::json(data(text)),
            ("data_base64", Some(b'"')) => {
                let s: Cow<'_, str> = serde_json::from_str(text)
                    .map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
                let data = base64::engine::general_purpose::STANDARD
                    .decode(s.as_bytes())
                    .map_err(|e| EnvelopeError::Invalid {
                        name: "data_base64".into(),
                        reason: e.to_string(),
                    })?;
                payload = Payload::json(Bytes::from(data));
            }
            // Without escapes the text between the quotes is the string.
            (_, Some(b'"')) if !text.contains('\\') => {
                attrs.push((k, Cow::Borrowed(&text[1..text.len() - 1])));
            }
            (_, Some(b'"')) => {
                let s: String = serde_json::from_str(text)
                    .map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
                attrs.push((k, Cow::Owned(s)));
            }
            (_, Some(b't' | b'f' | b'-' | b'0'..=b'9')) => {
                // A number or a boolean, as its JSON text (validated by the
                // parse above).
                let v: Value = serde_json::from_str(text)
                    .map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
                attrs.push((k, Cow::Owned(v.to_string())));
            }
            _ => {
                return Err(EnvelopeError::Invalid {
                    name: k.into_owned(),
                    reason: "an attribute is a string, a number or a boolean".into(),
                })
            }
        }
    }
    from_attributes(attrs, payload)
}

/// The members of a JSON object, each value as its raw text, in order.
struct Members<'a>(Vec<(Cow<'a, str>, &'a serde_json::value::RawValue)>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Members<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visit<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members<'a>, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(12));
                while let Some(k) = map.next_key::<CowStr<'de>>()? {
                    out.push((k.0, map.next_value::<&'de serde_json::value::RawValue>()?));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

/// A key, borrowed from the input unless it holds escapes.
struct CowStr<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(Visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::Message;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Paid {
        amount: u64,
        note: String,
    }
    impl Message for Paid {
        const TYPE: &'static str = "Shop.Paid";
    }

    fn sample() -> Envelope {
        Envelope::of(
            "order-1",
            Paid {
                amount: 12,
                note: "é \"quoted\"".into(),
            },
        )
        .source("svc/payment")
        .causation_id("cause-1")
        .choreo_version("1.2.0")
        .tracestate("vendor=x")
        .extension("tenant", "acme")
        .unwrap()
        .build()
    }

    #[test]
    fn structured_json_round_trips_every_attribute() {
        let env = sample();
        let bytes = encode(&env).unwrap();
        let back = decode(&bytes).unwrap();
        assert_eq!(back, env);
        assert_eq!(
            back.decode::<Paid>().unwrap(),
            env.decode::<Paid>().unwrap()
        );
        assert_eq!(back.traceparent(), env.traceparent());
        assert_eq!(encode(&back).unwrap(), bytes);
    }

    #[test]
    fn non_json_data_survives_as_base64() {
        let env = sample()
            .to_builder()
            .payload(Payload::json(&b"not json \xff"[..]))
            .build();
        let back = decode(&encode(&env).unwrap()).unwrap();
        assert_eq!(&back.payload().to_json().unwrap()[..], b"not json \xff");
    }

    #[test]
    fn attributes_with_escapes_numbers_and_booleans_decode() {
        let wire = br#"{"specversion":"1.0","id":"a\"b","source":"s\u00e9","type":"t",
            "correlationid":"k\n1","priority":7,"urgent":true,"data":{ "n" : 1 }}"#;
        let env = decode(wire).unwrap();
        assert_eq!(env.id().to_string(), "a\"b");
        assert_eq!(env.source(), "sé");
        assert_eq!(env.correlation_id(), "k\n1");
        assert_eq!(env.extension("priority"), Some("7"));
        assert_eq!(env.extension("urgent"), Some("true"));
        assert_eq!(&env.payload().to_json().unwrap()[..], br#"{ "n" : 1 }"#);
        let shared = Bytes::from_static(wire);
        assert_eq!(decode_bytes(&shared).unwrap(), env);
        assert!(decode(br#"{"specversion":"1.0","id":"a","source":"s","type":"t","correlationid":"k","x":null}"#).is_err());
        assert!(decode(br#"{"specversion":"1.0","id":"a","source":"s","type":"t","correlationid":"k","x":[1]}"#).is_err());
    }

    #[test]
    fn malformed_envelopes_are_errors() {
        assert!(matches!(decode(b"[1,2]"), Err(EnvelopeError::Malformed(_))));
        assert!(matches!(decode(b"{"), Err(EnvelopeError::Malformed(_))));
        let no_key = br#"{"specversion":"1.0","id":"a","source":"s","type":"t"}"#;
        assert_eq!(decode(no_key), Err(EnvelopeError::Missing("correlationid")));
        let bad_spec =
            br#"{"specversion":"0.3","id":"a","source":"s","type":"t","correlationid":"k"}"#;
        assert!(matches!(
            decode(bad_spec),
            Err(EnvelopeError::Invalid { .. })
        ));
        let bad_time = br#"{"specversion":"1.0","id":"a","source":"s","type":"t","correlationid":"k","time":"yesterday"}"#;
        assert!(matches!(
            decode(bad_time),
            Err(EnvelopeError::Invalid { .. })
        ));
        let bad_ext = br#"{"specversion":"1.0","id":"a","source":"s","type":"t","correlationid":"k","Bad-Name":"x"}"#;
        assert!(matches!(
            decode(bad_ext),
            Err(EnvelopeError::Invalid { .. })
        ));
    }
}
