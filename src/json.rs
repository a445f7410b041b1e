//! The one reader for every JSON document vouch trusts (OCI manifests, indexes, configurations
//! and `index.json`, OMS statements, Sigstore bundles and DSSE envelopes, trusted roots).
//!
//! Go's `encoding/json` (skopeo, containerd, cosign, oras) matches an object's keys to a
//! struct's fields without regard to case (Unicode folding: `ſ` matches `s`, the Kelvin sign
//! matches `k`) and lets the last of two equal keys win; serde takes the exact key and, into
//! a map, keeps the last. A document read one way by vouch and another way by such a client
//! is refused here, so both always read the same thing:
//! - any object, at any depth (ignored subtrees included), with a key given twice;
//! - an object read as a struct with a key that differs from one of the struct's fields only
//!   by case folding (`Layers` beside or instead of `layers`, `mediatype` for `mediaType`).
//!
//! The reader wraps serde_json's deserializer: `deserialize_struct` receives the fields of
//! the type being read, and every map it visits is checked for duplicates. Types that reach
//! their fields another way (`#[serde(flatten)]`, untagged enums, `serde_json::Value`) are
//! still checked for duplicates; code that walks a [`Value`] looks its fields up with
//! [`field`], which refuses case variants of the key it asks for.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::value::StringDeserializer;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use serde::Deserializer;
use serde_json::{Map, Value};

/// Why a document was not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JsonError {
    /// Not JSON, or not the shape of the type (serde_json's message, with line and column).
    Malformed(String),
    /// JSON that another client would read differently: where, and which key.
    Ambiguous(String),
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonError::Malformed(message) => write!(f, "malformed: {message}"),
            JsonError::Ambiguous(message) => write!(f, "ambiguous: {message}"),
        }
    }
}

/// Reads `bytes` as a `T`, refusing duplicate keys and case variants of `T`'s fields.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonError> {
    let state = State::default();
    let mut inner = serde_json::Deserializer::from_slice(bytes);
    let read = T::deserialize(Strict {
        inner: &mut inner,
        state: &state,
    })
    .and_then(|value| inner.end().map(|()| value));
    read.map_err(|e| match state.ambiguity.into_inner() {
        Some(message) => JsonError::Ambiguous(message),
        None => JsonError::Malformed(e.to_string()),
    })
}

/// Reads `bytes` as a [`Value`] that code will walk as Go's structs are read: besides a key
/// given twice, any object (at any depth) with two keys that Go's `encoding/json` folds to
/// one field name (`critical` and `Critical`, `k` and the Kelvin sign) is refused, since Go
/// would take the later one for both. For signed payloads (cosign's simple signing, Notation's
/// payload and JWS header, in-toto statements), whose fields are looked up by name.
pub fn value_of_go_structs(bytes: &[u8]) -> Result<Value, JsonError> {
    let value: Value = from_slice(bytes)?;
    folded_twins(&value, "")?;
    Ok(value)
}

fn folded_twins(value: &Value, at: &str) -> Result<(), JsonError> {
    match value {
        Value::Object(object) => {
            let mut seen: std::collections::HashMap<String, &str> = Default::default();
            for (key, inner) in object {
                let folded: String = key.chars().map(fold_char).collect();
                if let Some(first) = seen.insert(folded, key) {
                    let place = if at.is_empty() { "the document" } else { at };
                    return Err(JsonError::Ambiguous(format!(
                        "{place}: keys \"{first}\" and \"{key}\" are one field to Go's encoding/json, which reads the later one"
                    )));
                }
                folded_twins(inner, &format!("{at}/{key}"))?;
            }
            Ok(())
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| folded_twins(item, &format!("{at}/{i}"))),
        _ => Ok(()),
    }
}

/// The value of `key` in an object read as [`Value`] (found at `at`, for the message),
/// refusing an object whose other keys include one that differs from `key` only by case
/// folding: Go would read that one as `key`.
pub fn field<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<Option<&'a Value>, JsonError> {
    if let Some(variant) = object
        .keys()
        .find(|k| k.as_str() != key && fold_equal(k, key))
    {
        let problem = case_variant_message(variant, key);
        return Err(JsonError::Ambiguous(if at.is_empty() {
            problem
        } else {
            format!("{at}: {problem}")
        }));
    }
    Ok(object.get(key))
}

/// Whether Go's `encoding/json` takes `a` and `b` for the same field name: each character
/// folded as `unicode.ToUpper(unicode.ToLower(c))` (ASCII letters to upper case).
pub fn fold_equal(a: &str, b: &str) -> bool {
    a.chars().map(fold_char).eq(b.chars().map(fold_char))
}

fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_uppercase();
    }
    // Go maps one character to one: the simple case mapping. Only U+0130 has a longer full
    // lower case (`i` and a combining dot), whose first character is its simple mapping.
    let lower = c.to_lowercase().next().unwrap_or(c);
    let mut upper = lower.to_uppercase();
    match (upper.next(), upper.next()) {
        (Some(single), None) => single,
        _ => lower,
    }
}

fn case_variant_message(key: &str, field: &str) -> String {
    format!(
        "key \"{key}\" differs from field \"{field}\" only by case; Go's encoding/json reads it as \"{field}\""
    )
}

/// Where the reader is, and the first ambiguity it found.
#[derive(Default)]
struct State {
    path: RefCell<Vec<Segment>>,
    ambiguity: RefCell<Option<String>>,
}

enum Segment {
    Key(String),
    Index(usize),
}

impl State {
    /// Records an ambiguity at the current location and returns it as a serde error.
    fn refuse<E: de::Error>(&self, problem: String) -> E {
        let mut at = String::new();
        for segment in self.path.borrow().iter() {
            match segment {
                Segment::Key(key) if at.is_empty() => at.push_str(key),
                Segment::Key(key) => {
                    at.push('.');
                    at.push_str(key);
                }
                Segment::Index(i) => at.push_str(&format!("[{i}]")),
            }
        }
        let message = if at.is_empty() {
            problem
        } else {
            format!("{at}: {problem}")
        };
        *self.ambiguity.borrow_mut() = Some(message.clone());
        E::custom(message)
    }

    fn within<T>(&self, segment: Segment, read: impl FnOnce() -> T) -> T {
        self.path.borrow_mut().push(segment);
        let result = read();
        self.path.borrow_mut().pop();
        result
    }
}

/// serde_json's deserializer, with every visitor it drives wrapped in [`StrictVisitor`].
struct Strict<'s, D> {
    inner: D,
    state: &'s State,
}

impl<'s, D> Strict<'s, D> {
    fn visitor<V>(
        &self,
        visitor: V,
        fields: Option<&'static [&'static str]>,
    ) -> StrictVisitor<'s, V> {
        StrictVisitor {
            inner: visitor,
            state: self.state,
            fields,
        }
    }
}

macro_rules! forward {
    ($($method:ident),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
                let visitor = self.visitor(visitor, None);
                self.inner.$method(visitor)
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Strict<'_, D> {
    type Error = D::Error;

    forward!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_option,
        deserialize_unit,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
    );

    /// serde_json skips an ignored value without looking at it: walk it instead, so its
    /// objects are checked for duplicate keys too.
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let visitor = self.visitor(visitor, None);
        self.inner.deserialize_any(visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.visitor(visitor, None);
        self.inner.deserialize_unit_struct(name, visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.visitor(visitor, None);
        self.inner.deserialize_newtype_struct(name, visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.visitor(visitor, None);
        self.inner.deserialize_tuple(len, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.visitor(visitor, None);
        self.inner.deserialize_tuple_struct(name, len, visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.visitor(visitor, Some(fields));
        self.inner.deserialize_struct(name, fields, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.visitor(visitor, None);
        self.inner.deserialize_enum(name, variants, visitor)
    }
}

/// A visitor whose maps, sequences and nested values are read through the strict reader.
/// `fields` are the fields of the struct being read, if it is one.
struct StrictVisitor<'s, V> {
    inner: V,
    state: &'s State,
    fields: Option<&'static [&'static str]>,
}

macro_rules! forward_visits {
    ($($method:ident($type:ty)),* $(,)?) => {
        $(
            fn $method<E: de::Error>(self, v: $type) -> Result<V::Value, E> {
                self.inner.$method(v)
            }
        )*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for StrictVisitor<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visits!(
        visit_bool(bool),
        visit_i8(i8),
        visit_i16(i16),
        visit_i32(i32),
        visit_i64(i64),
        visit_i128(i128),
        visit_u8(u8),
        visit_u16(u16),
        visit_u32(u32),
        visit_u64(u64),
        visit_u128(u128),
        visit_f32(f32),
        visit_f64(f64),
        visit_char(char),
        visit_str(&str),
        visit_borrowed_str(&'de str),
        visit_string(String),
        visit_bytes(&[u8]),
        visit_borrowed_bytes(&'de [u8]),
        visit_byte_buf(Vec<u8>),
    );

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(Strict {
            inner,
            state: self.state,
        })
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, inner: D) -> Result<V::Value, D::Error> {
        self.inner.visit_newtype_struct(Strict {
            inner,
            state: self.state,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.inner.visit_seq(StrictSeq {
            inner: seq,
            state: self.state,
            index: 0,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(StrictMap {
            inner: map,
            state: self.state,
            fields: self.fields,
            seen: HashSet::new(),
            key: None,
        })
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(StrictEnum {
            inner: data,
            state: self.state,
        })
    }
}

/// A seed whose deserializer is the strict reader.
struct StrictSeed<'s, S> {
    inner: S,
    state: &'s State,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for StrictSeed<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, inner: D) -> Result<S::Value, D::Error> {
        self.inner.deserialize(Strict {
            inner,
            state: self.state,
        })
    }
}

struct StrictSeq<'s, A> {
    inner: A,
    state: &'s State,
    index: usize,
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for StrictSeq<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        let state = self.state;
        let element = state.within(Segment::Index(self.index), || {
            self.inner
                .next_element_seed(StrictSeed { inner: seed, state })
        });
        self.index += 1;
        element
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

/// An object: each key is read as a string and checked before the target sees it.
struct StrictMap<'s, A> {
    inner: A,
    state: &'s State,
    fields: Option<&'static [&'static str]>,
    seen: HashSet<String>,
    /// The key whose value is read next, for the path.
    key: Option<String>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for StrictMap<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let Some(key) = self.inner.next_key::<String>()? else {
            return Ok(None);
        };
        if self.seen.contains(&key) {
            return Err(self.state.refuse(format!("duplicate key \"{key}\"")));
        }
        if let Some(fields) = self.fields {
            if !fields.contains(&key.as_str()) {
                if let Some(field) = fields.iter().find(|f| fold_equal(f, &key)) {
                    return Err(self.state.refuse(case_variant_message(&key, field)));
                }
            }
        }
        self.seen.insert(key.clone());
        self.key = Some(key.clone());
        let key: StringDeserializer<A::Error> = key.into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        let state = self.state;
        let key = self.key.take().unwrap_or_default();
        state.within(Segment::Key(key), || {
            self.inner
                .next_value_seed(StrictSeed { inner: seed, state })
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

struct StrictEnum<'s, A> {
    inner: A,
    state: &'s State,
}

impl<'de, 's, A: EnumAccess<'de>> EnumAccess<'de> for StrictEnum<'s, A> {
    type Error = A::Error;
    type Variant = StrictVariant<'s, A::Variant>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), A::Error> {
        let (value, variant) = self.inner.variant_seed(seed)?;
        Ok((
            value,
            StrictVariant {
                inner: variant,
                state: self.state,
            },
        ))
    }
}

struct StrictVariant<'s, A> {
    inner: A,
    state: &'s State,
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for StrictVariant<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.inner.newtype_variant_seed(StrictSeed {
            inner: seed,
            state: self.state,
        })
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.inner.tuple_variant(
            len,
            StrictVisitor {
                inner: visitor,
                state: self.state,
                fields: None,
            },
        )
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.inner.struct_variant(
            fields,
            StrictVisitor {
                inner: visitor,
                state: self.state,
                fields: Some(fields),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::de::IgnoredAny;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Manifest {
        #[serde(default)]
        media_type: String,
        #[serde(default)]
        layers: Vec<Layer>,
        #[serde(default)]
        subject: Option<Layer>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Layer {
        digest: String,
        #[serde(default)]
        annotations: BTreeMap<String, String>,
    }

    fn ambiguity<T: DeserializeOwned + fmt::Debug>(text: &str) -> String {
        match from_slice::<T>(text.as_bytes()) {
            Err(JsonError::Ambiguous(message)) => message,
            other => panic!("{text}: expected an ambiguity, got {other:?}"),
        }
    }

    #[test]
    fn reads_what_serde_reads_when_nothing_is_ambiguous() {
        let text = r#"{"mediaType":"m","layers":[{"digest":"a","annotations":{"k":"v","K":"w"}}],"other":{"x":[1,{"y":2}]}}"#;
        let manifest: Manifest = from_slice(text.as_bytes()).unwrap();
        assert_eq!(manifest, serde_json::from_str::<Manifest>(text).unwrap());
        assert_eq!(
            from_slice::<Value>(text.as_bytes()).unwrap(),
            serde_json::from_str::<Value>(text).unwrap()
        );
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth_and_in_any_target() {
        assert_eq!(
            ambiguity::<Manifest>(r#"{"layers":[],"layers":[{"digest":"a"}]}"#),
            "duplicate key \"layers\""
        );
        assert_eq!(
            ambiguity::<Manifest>(
                r#"{"layers":[{"digest":"a"},{"digest":"a"},{"digest":"b","digest":"c"}]}"#
            ),
            "layers[2]: duplicate key \"digest\""
        );
        // A map (annotations), an Option field, and a Value.
        assert_eq!(
            ambiguity::<Manifest>(r#"{"layers":[{"digest":"a","annotations":{"t":"1","t":"2"}}]}"#),
            "layers[0].annotations: duplicate key \"t\""
        );
        assert_eq!(
            ambiguity::<Manifest>(r#"{"subject":{"digest":"a","digest":"b"}}"#),
            "subject: duplicate key \"digest\""
        );
        assert_eq!(
            ambiguity::<Value>(r#"{"a":[{"b":{"c":1,"c":2}}]}"#),
            "a[0].b: duplicate key \"c\""
        );
    }

    #[test]
    fn ignored_subtrees_are_still_checked_for_duplicates() {
        assert_eq!(
            ambiguity::<Manifest>(r#"{"unknown":{"deep":[{"x":1,"x":2}]}}"#),
            "unknown.deep[0]: duplicate key \"x\""
        );
        assert_eq!(
            ambiguity::<IgnoredAny>(r#"[{"x":1,"x":2}]"#),
            "[0]: duplicate key \"x\""
        );
    }

    #[test]
    fn case_variants_of_a_field_are_refused_beside_or_instead_of_it() {
        let expected = "key \"Layers\" differs from field \"layers\" only by case; Go's encoding/json reads it as \"layers\"";
        assert_eq!(
            ambiguity::<Manifest>(r#"{"layers":[],"Layers":[{"digest":"a"}]}"#),
            expected
        );
        assert_eq!(
            ambiguity::<Manifest>(r#"{"Layers":[{"digest":"a"}]}"#),
            expected
        );
        assert!(ambiguity::<Manifest>(r#"{"mediatype":"m"}"#).contains("field \"mediaType\""));
        assert!(ambiguity::<Manifest>(r#"{"layers":[{"Digest":"a"}]}"#)
            .starts_with("layers[0]: key \"Digest\""));
        assert!(ambiguity::<Manifest>(r#"{"subject":{"DIGEST":"a"}}"#).starts_with("subject: "));
        // Map keys are data, not fields: `k` and `K` are two annotations in Go too.
        assert!(from_slice::<Layer>(br#"{"digest":"a","annotations":{"k":"1","K":"2"}}"#).is_ok());
    }

    #[test]
    fn unicode_folds_as_go_does() {
        // U+017F (long s) folds to `s`, U+212A (Kelvin sign) to `k`, U+0131 (dotless i) to `i`.
        assert!(fold_equal("\u{17f}ubject", "subject"));
        assert!(fold_equal("\u{212a}ind", "kind"));
        assert!(fold_equal("d\u{131}gest", "digest"));
        assert!(!fold_equal("digests", "digest"));
        assert!(!fold_equal("\u{e9}", "e"));
        assert!(ambiguity::<Manifest>("{\"layer\u{17f}\":[]}").contains("field \"layers\""));
        assert!(ambiguity::<Manifest>(
            "{\"layers\":[{\"digest\":\"a\",\"annotation\u{17f}\":{}}]}"
        )
        .starts_with("layers[0]: key"));
    }

    /// Types that reach their fields through `deserialize_map` (flatten) or `deserialize_any`
    /// are still checked for duplicates, and enums' struct variants for case variants.
    #[test]
    fn flattened_and_enum_types_are_checked() {
        #[derive(Debug, Deserialize)]
        struct Outer {
            #[serde(flatten)]
            _inner: BTreeMap<String, Value>,
        }
        assert_eq!(
            ambiguity::<Outer>(r#"{"a":{"b":1,"b":2}}"#),
            "a: duplicate key \"b\""
        );
        #[derive(Debug, Deserialize)]
        #[serde(rename_all = "camelCase")]
        enum Content {
            Envelope { payload: String },
        }
        assert!(matches!(
            from_slice::<Content>(br#"{"envelope":{"payload":"x"}}"#),
            Ok(Content::Envelope { payload }) if payload == "x"
        ));
        assert!(ambiguity::<Content>(r#"{"envelope":{"Payload":"x"}}"#)
            .starts_with("key \"Payload\" differs from field \"payload\""));
    }

    #[test]
    fn sigstore_documents_read_strictly() {
        use sigstore_trust_root::{TrustedRoot, SIGSTORE_PRODUCTION_TRUSTED_ROOT};
        let root = SIGSTORE_PRODUCTION_TRUSTED_ROOT;
        assert!(from_slice::<TrustedRoot>(root.as_bytes()).is_ok());
        let twice = root.replacen("{", r#"{"mediaType":"x","#, 1);
        assert!(ambiguity::<TrustedRoot>(&twice).contains("duplicate key \"mediaType\""));
        let variant = root.replacen("{", r#"{"Tlogs":[],"#, 1);
        assert!(ambiguity::<TrustedRoot>(&variant).contains("field \"tlogs\""));
    }

    #[test]
    fn syntax_errors_stay_malformed() {
        assert!(matches!(
            from_slice::<Manifest>(b"{\"layers\":"),
            Err(JsonError::Malformed(m)) if m.contains("EOF")
        ));
        assert!(matches!(
            from_slice::<Value>(b"{} {}"),
            Err(JsonError::Malformed(m)) if m.contains("trailing")
        ));
    }

    #[test]
    fn value_fields_refuse_case_variants_of_the_key_asked_for() {
        let object: Map<String, Value> =
            serde_json::from_str(r#"{"subject":[],"Subject":[1],"other":2}"#).unwrap();
        assert_eq!(
            field(&object, "subject", "top").unwrap_err().to_string(),
            "ambiguous: top: key \"Subject\" differs from field \"subject\" only by case; Go's encoding/json reads it as \"subject\""
        );
        assert_eq!(field(&object, "other", "").unwrap(), Some(&Value::from(2)));
        assert_eq!(field(&object, "missing", "").unwrap(), None);
        let only_variant: Map<String, Value> =
            serde_json::from_str("{\"\u{17f}ubject\":[]}").unwrap();
        assert!(field(&only_variant, "subject", "").is_err());
        let kelvin: Map<String, Value> = serde_json::from_str("{\"\u{212a}ind\":1}").unwrap();
        assert!(field(&kelvin, "kind", "").is_err());
    }
}
