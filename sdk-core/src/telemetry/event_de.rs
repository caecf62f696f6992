//! `Deserialize` for [`Event`] without serde's buffering of internally
//! tagged enums.
//!
//! `#[serde(tag = "type")]` makes serde read every event into its private
//! `Content` tree first (each string allocated, `data` built twice) and only
//! then into the variant, because the tag may come anywhere in the object.
//! Every edrlink writer puts `"type"` first, so that case is read straight
//! into the variant: the rest of the object is handed to the variant's own
//! `Deserialize`. Objects with the tag elsewhere are still accepted, through
//! a buffered path. Both paths accept and refuse exactly what the derived
//! implementation does (checked against it in this module's tests): a
//! missing, unknown or repeated tag, or a repeated field, is an error;
//! unknown fields are ignored. One difference: an event must be a JSON
//! object (the derived code also read an array, tag first, which the
//! protocol never sends).

use super::{Detection, Event, FileSample, GenericEvent, Heartbeat};
use serde::de::value::{MapAccessDeserializer, MapDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;

const TAG: &str = "type";

/// The tag's values.
enum Kind {
    Detection,
    Heartbeat,
    Generic,
    FileSample,
}

const KINDS: &[&str] = &["detection", "heartbeat", "generic", "file_sample"];

/// Read as a string identifier, with the derived code's error messages.
impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Kind;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("variant identifier")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Kind, E> {
                Ok(match v {
                    "detection" => Kind::Detection,
                    "heartbeat" => Kind::Heartbeat,
                    "generic" => Kind::Generic,
                    "file_sample" => Kind::FileSample,
                    _ => return Err(de::Error::unknown_variant(v, KINDS)),
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EventVisitor)
    }
}

struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = Event;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("internally tagged enum Event")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
        let Some(first) = map.next_key::<Key<'de>>()? else {
            return Err(de::Error::missing_field(TAG));
        };
        if first.0 == TAG {
            let kind: Kind = map.next_value()?;
            return variant(kind, MapAccessDeserializer::new(NoTag(map)));
        }
        // The tag is elsewhere: buffer the object (as the derived code does),
        // keeping repeated keys, so the variant sees exactly what was sent.
        let mut fields: Vec<(String, serde_json::Value)> = Vec::new();
        let mut kind = None;
        let mut key = Some(first);
        while let Some(k) = key {
            if k.0 == TAG {
                if kind.is_some() {
                    return Err(de::Error::duplicate_field(TAG));
                }
                kind = Some(map.next_value::<Kind>()?);
            } else {
                fields.push((k.0.into_owned(), map.next_value()?));
            }
            key = map.next_key()?;
        }
        let kind = kind.ok_or_else(|| de::Error::missing_field(TAG))?;
        let rest = MapDeserializer::<_, serde_json::Error>::new(fields.into_iter());
        variant(kind, rest).map_err(de::Error::custom)
    }
}

fn variant<'de, D: Deserializer<'de>>(kind: Kind, d: D) -> Result<Event, D::Error> {
    Ok(match kind {
        Kind::Detection => Event::Detection(Detection::deserialize(d)?),
        Kind::Heartbeat => Event::Heartbeat(Heartbeat::deserialize(d)?),
        Kind::Generic => Event::Generic(GenericEvent::deserialize(d)?),
        Kind::FileSample => Event::FileSample(FileSample::deserialize(d)?),
    })
}

/// An object key, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// The rest of an event object after its leading tag: every key is passed
/// on to the variant, except a second tag, which is refused as the derived
/// code refuses it.
struct NoTag<A>(A);

impl<'de, A: MapAccess<'de>> MapAccess<'de> for NoTag<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let Some(key) = self.0.next_key::<Key<'de>>()? else {
            return Ok(None);
        };
        if key.0 == TAG {
            return Err(de::Error::duplicate_field(TAG));
        }
        let value = match key.0 {
            Cow::Borrowed(k) => {
                seed.deserialize(de::value::BorrowedStrDeserializer::<A::Error>::new(k))
            }
            Cow::Owned(k) => seed.deserialize(de::value::StringDeserializer::<A::Error>::new(k)),
        }?;
        Ok(Some(value))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.0.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The derived implementation this module replaces: the reference.
    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Derived {
        Detection(Detection),
        Heartbeat(Heartbeat),
        Generic(GenericEvent),
        FileSample(FileSample),
    }

    fn same(e: &Event, d: &Derived) -> bool {
        match (e, d) {
            (Event::Detection(a), Derived::Detection(b)) => a == b,
            (Event::Heartbeat(a), Derived::Heartbeat(b)) => a == b,
            (Event::Generic(a), Derived::Generic(b)) => a == b,
            (Event::FileSample(a), Derived::FileSample(b)) => a == b,
            _ => false,
        }
    }

    const CASES: &[&str] = &[
        // tag first (the fast path)
        r#"{"type":"generic","time":"2026-01-01T00:00:00Z","name":"x","data":{"a":[1,2.5,null,"s"],"b":{"c":true}}}"#,
        r#"{"type":"generic","time":"2026-01-01T00:00:00Z","name":"x"}"#,
        r#"{"type":"heartbeat","time":"2026-01-01T00:00:00Z","sensor":"running"}"#,
        r#"{"type":"detection","time":"t","threat_name":"EICAR","file_path":"/x","sha256":"00","severity":"high","action":"blocked","test":true,"url":"https://e"}"#,
        r#"{"type":"file_sample","time":"t","sha256":"00","file_name":"a","content":"QQ=="}"#,
        // tag elsewhere (the buffered path)
        r#"{"time":"2026-01-01T00:00:00Z","type":"generic","name":"x","data":{"k":1}}"#,
        r#"{"sensor":"stopped","time":"t","type":"heartbeat"}"#,
        r#"{"time":"t","name":"x","type":"generic","extra":{"deep":[1]}}"#,
        // unknown fields are ignored on both paths, even repeated
        r#"{"type":"generic","time":"t","name":"x","zz":1,"zz":2}"#,
        r#"{"time":"t","zz":1,"zz":2,"type":"generic","name":"x"}"#,
        // escaped keys
        "{\"typ\\u0065\":\"generic\",\"tim\\u0065\":\"t\",\"name\":\"x\"}",
        "{\"type\":\"generic\",\"tim\\u0065\":\"t\",\"name\":\"x\"}",
        "{\"time\":\"t\",\"typ\\u0065\":\"generic\",\"name\":\"x\"}",
        // refusals: tag missing, unknown, wrong type, repeated (both paths)
        r#"{"time":"t","name":"x"}"#,
        r#"{}"#,
        r#"{"type":"nope","time":"t"}"#,
        r#"{"time":"t","type":"nope"}"#,
        r#"{"type":1,"time":"t","name":"x"}"#,
        r#"{"type":null,"time":"t","name":"x"}"#,
        r#"{"type":"generic","time":"t","name":"x","type":"generic"}"#,
        r#"{"type":"generic","time":"t","name":"x","type":"heartbeat"}"#,
        r#"{"time":"t","type":"generic","name":"x","type":"generic"}"#,
        // refusals: repeated known field, missing field, wrong field type
        r#"{"type":"generic","time":"t","time":"u","name":"x"}"#,
        r#"{"name":"x","time":"t","time":"u","type":"generic"}"#,
        r#"{"type":"generic","name":"x"}"#,
        r#"{"name":"x","type":"generic"}"#,
        r#"{"type":"heartbeat","time":"t","sensor":"sideways"}"#,
        r#"{"sensor":"sideways","time":"t","type":"heartbeat"}"#,
        r#"{"type":"detection","time":"t","threat_name":"E","file_path":"/x","sha256":"00","severity":"high","action":"blocked","test":"yes"}"#,
        r#"{"test":"yes","type":"detection","time":"t","threat_name":"E","file_path":"/x","sha256":"00","severity":"high","action":"blocked"}"#,
        // truncated
        r#"{"type":"generic","time":"t","name":"x""#,
    ];

    /// Not objects. The derived code also read an event from an array (tag
    /// first, then the fields in order); the protocol never sends one, and
    /// it is refused.
    const NOT_OBJECTS: &[&str] = &[
        r#"[]"#,
        r#"["generic","2026-01-01T00:00:00Z","x",{}]"#,
        r#""generic""#,
        r#"null"#,
        r#"1"#,
    ];

    #[test]
    fn an_event_is_an_object() {
        for case in NOT_OBJECTS {
            let err = serde_json::from_str::<Event>(case).unwrap_err().to_string();
            assert!(
                err.contains("internally tagged enum Event"),
                "{case}: {err}"
            );
        }
        assert!(
            serde_json::from_str::<Derived>(NOT_OBJECTS[1]).is_ok(),
            "the derived reader took the array form"
        );
    }

    #[test]
    fn accepts_and_refuses_exactly_what_the_derived_code_does() {
        for case in CASES {
            let ours = serde_json::from_str::<Event>(case);
            let derived = serde_json::from_str::<Derived>(case);
            match (&ours, &derived) {
                (Ok(e), Ok(d)) => assert!(same(e, d), "{case}: {e:?} vs {d:?}"),
                (Err(_), Err(_)) => {}
                _ => panic!("{case}: ours {ours:?}, derived {derived:?}"),
            }
        }
    }

    #[test]
    fn a_refused_event_names_the_same_fault() {
        for case in CASES {
            if let (Err(a), Err(b)) = (
                serde_json::from_str::<Event>(case),
                serde_json::from_str::<Derived>(case),
            ) {
                let (a, b) = (a.to_string(), b.to_string());
                // Positions may differ (the buffered path reads further); the fault may not.
                let fault = |s: &str| s.split(" at line ").next().unwrap_or(s).to_owned();
                assert_eq!(fault(&a), fault(&b), "{case}");
            }
        }
    }

    #[test]
    fn events_round_trip_through_serialize() {
        for case in &CASES[..8] {
            let e: Event = serde_json::from_str(case).unwrap();
            let again: Event = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
            assert_eq!(e, again, "{case}");
        }
    }
}
