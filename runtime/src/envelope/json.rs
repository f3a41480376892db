//! JSON encoding of envelopes: CloudEvents structured mode (one JSON
//! object), and binary mode (attributes as headers, data as the body) for
//! adapters whose transport has headers.

use std::borrow::Cow;

use base64::Engine as _;
use bytes::Bytes;
use jiff::Timestamp;
use serde_json::Value;
use smallvec::SmallVec;

pub use super::intern::Recent;
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
    from_attributes_in(attrs, payload, &mut Recent::default())
}

/// [`from_attributes`], sharing the texts that repeat from event to event
/// (`type`, `source`, `datacontenttype`, `choreoversion`) through `recent`.
fn from_attributes_in<K, V>(
    attrs: impl IntoIterator<Item = (K, V)>,
    payload: Payload,
    recent: &mut Recent,
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
            "source" => source = Some(recent.shared(v)),
            "type" => ty = Some(recent.shared(v)),
            "time" => {
                time = Some(v.parse::<Timestamp>().map_err(|e| EnvelopeError::Invalid {
                    name: "time".into(),
                    reason: e.to_string(),
                })?)
            }
            "correlationid" => correlation = Some(shared(v)),
            "datacontenttype" => inner_opt.datacontenttype = Some(recent.shared(v)),
            "causationid" => inner_opt.causation_id = Some(EventId::from(v)),
            "traceparent" => match v.parse::<TraceParent>() {
                Ok(tp) => inner_opt.traceparent = Some(tp),
                Err(e) => tracing::warn!(error = %e, "dropping invalid traceparent"),
            },
            "tracestate" => inner_opt.tracestate = Some(shared(v)),
            "choreoversion" => inner_opt.choreo_version = Some(recent.shared(v)),
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
    let mut buf = Vec::with_capacity(ENCODED_GUESS);
    encode_into(env, &mut buf)?;
    Ok(buf)
}

/// About how many bytes an envelope with a small payload encodes to.
pub(crate) const ENCODED_GUESS: usize = 512;

/// [`encode`], appending to `buf` (the adapters encode a whole batch into
/// one buffer). On an error `buf` is left as it was.
pub fn encode_into(env: &Envelope, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = buf.len();
    let written = write_structured(env, buf);
    if written.is_err() {
        buf.truncate(start);
    }
    written
}

fn write_structured(env: &Envelope, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
    buf.push(b'{');
    // The attributes in the order of `attributes`, written as they come:
    // no owned strings in between, ids and times formatted on the stack or
    // straight into the buffer (this is the adapters' hot path).
    let i = &env.0;
    let mut first = true;
    let mut key = |buf: &mut Vec<u8>, k: &str| -> Result<(), EncodeError> {
        if !std::mem::take(&mut first) {
            buf.push(b',');
        }
        write_json_string(buf, k)?;
        buf.push(b':');
        Ok(())
    };
    key(buf, "specversion")?;
    write_json_string(buf, CLOUDEVENTS_VERSION)?;
    key(buf, "id")?;
    i.id.with_text(|t| write_json_string(buf, t))?;
    key(buf, "source")?;
    write_json_string(buf, &i.source)?;
    key(buf, "type")?;
    write_json_string(buf, &i.ty)?;
    // RFC 3339: digits and `-:.TZ`, nothing to escape.
    key(buf, "time")?;
    write_plain(buf, &i.time);
    key(buf, "correlationid")?;
    write_json_string(buf, &i.correlation_id)?;
    if let Some(v) = &i.datacontenttype {
        key(buf, "datacontenttype")?;
        write_json_string(buf, v)?;
    }
    if let Some(v) = &i.causation_id {
        key(buf, "causationid")?;
        v.with_text(|t| write_json_string(buf, t))?;
    }
    if let Some(v) = &i.traceparent {
        // Lower-case hex and dashes: nothing to escape.
        key(buf, "traceparent")?;
        buf.push(b'"');
        buf.extend_from_slice(&v.to_text());
        buf.push(b'"');
    }
    if let Some(v) = &i.tracestate {
        key(buf, "tracestate")?;
        write_json_string(buf, v)?;
    }
    if let Some(v) = &i.choreo_version {
        key(buf, "choreoversion")?;
        write_json_string(buf, v)?;
    }
    for (k, v) in &i.extensions {
        key(buf, k)?;
        write_json_string(buf, v)?;
    }
    let payload = env.payload();
    if payload.is_typed() {
        // Encoded by serde_json into the buffer: valid by construction.
        buf.extend_from_slice(b",\"data\":");
        payload.write_json(buf)?;
    } else {
        let data = payload.to_json()?;
        let valid = || serde_json::from_slice::<serde::de::IgnoredAny>(&data).is_ok();
        if data.is_empty() {
            // No data: no member.
        } else if valid() {
            buf.extend_from_slice(b",\"data\":");
            buf.extend_from_slice(&data);
        } else {
            buf.extend_from_slice(b",\"data_base64\":");
            let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
            write_json_string(buf, &b64)?;
        }
    }
    buf.push(b'}');
    Ok(())
}

/// Writes `v` between quotes, as it displays: only for values whose text
/// never needs escaping.
fn write_plain(buf: &mut Vec<u8>, v: &impl std::fmt::Display) {
    buf.push(b'"');
    // Writing to a Vec cannot fail.
    let _ = std::io::Write::write_fmt(buf, format_args!("{v}"));
    buf.push(b'"');
}

fn write_json_string(buf: &mut Vec<u8>, s: &str) -> Result<(), EncodeError> {
    serde_json::to_writer(buf, s).map_err(|e| EncodeError(e.to_string()))
}

/// Decodes one structured-mode JSON object into an envelope.
pub fn decode(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
    decode_with(
        bytes,
        |data| Bytes::copy_from_slice(data.as_bytes()),
        &mut Recent::default(),
    )
}

/// [`decode`] of bytes already shared: the payload's data is a slice of
/// them, not a copy.
pub fn decode_bytes(bytes: &Bytes) -> Result<Envelope, EnvelopeError> {
    decode_bytes_in(bytes, &mut Recent::default())
}

/// [`decode_bytes`] for a receiving loop that decodes event after event:
/// `recent` keeps the texts that repeat from event to event (`type`,
/// `source`, `datacontenttype`, `choreoversion`), so that envelopes share
/// them instead of allocating each its own.
pub fn decode_bytes_in(bytes: &Bytes, recent: &mut Recent) -> Result<Envelope, EnvelopeError> {
    decode_with(bytes, |data| bytes.slice_ref(data.as_bytes()), recent)
}

/// Members an envelope mostly has at most: kept on the stack.
const USUAL_MEMBERS: usize = 12;

fn decode_with(
    bytes: &[u8],
    data: impl Fn(&str) -> Bytes,
    recent: &mut Recent,
) -> Result<Envelope, EnvelopeError> {
    // Each member's value is kept as its raw text: `data` is taken as it
    // is (no tree built and written again), attributes parse one by one.
    let members: Members<'_> =
        serde_json::from_slice(bytes).map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
    let mut attrs: SmallVec<[(Cow<'_, str>, Cow<'_, str>); USUAL_MEMBERS]> = SmallVec::new();
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
    from_attributes_in(attrs, payload, recent)
}

/// The members of a JSON object, each value as its raw text, in order.
struct Members<'a>(SmallVec<[(Cow<'a, str>, &'a serde_json::value::RawValue); USUAL_MEMBERS]>);

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
                let mut out = SmallVec::new();
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

    #[derive(Debug, Clone, Serialize, Deserialize)]
    struct Unencodable {
        // serde_json refuses keys that are not strings.
        by_bytes: std::collections::BTreeMap<Vec<u8>, u8>,
    }
    impl Message for Unencodable {
        const TYPE: &'static str = "Shop.Unencodable";
    }

    #[test]
    fn encoding_appends_and_leaves_the_buffer_as_it_was_on_an_error() {
        let env = sample();
        let mut buf = b"[".to_vec();
        encode_into(&env, &mut buf).unwrap();
        assert_eq!(&buf[1..], &encode(&env).unwrap()[..]);
        let bad = Envelope::of(
            "order-1",
            Unencodable {
                by_bytes: [(vec![1], 1)].into(),
            },
        )
        .build();
        let before = buf.clone();
        assert!(encode_into(&bad, &mut buf).is_err());
        assert_eq!(buf, before);
    }

    #[test]
    fn decoders_share_repeated_texts_and_keep_the_rest_exact() {
        let env = sample();
        let bytes = Bytes::from(encode(&env).unwrap());
        let mut recent = Recent::default();
        let a = decode_bytes_in(&bytes, &mut recent).unwrap();
        let b = decode_bytes_in(&bytes, &mut recent).unwrap();
        assert_eq!(a, env);
        assert_eq!(b, env);
        assert!(a.ty_shared().same_ptr(b.ty_shared()));
        assert!(!a.correlation_shared().same_ptr(b.correlation_shared()));
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
