//! The OMS in-toto statement: an approved manifest, unsigned or as the payload of a signature.
//!
//! Parsing is strict and explains itself: every rule broken is reported with the JSON
//! location of the offending value. The bytes are parsed as they are; nothing is
//! re-serialized before it is checked.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::hash::{Algorithm, Digest};
use crate::json::{self, JsonError};
use crate::model::oms::{root_digest, Manifest, Method, Resource, ResourceKey, Serialization};
use crate::model::paths::{check_name, normalize_relative_name, IgnoreSet, SINGLE_FILE_NAME};

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://model_signing/signature/v1.0";
/// The experimental layout of model-signing 0.2 (one subject per file).
pub const PREDICATE_TYPE_V0_2: &str = "https://model_signing/Digests/v0.1";

/// A parsed, consistent OMS statement.
#[derive(Clone, Debug)]
pub struct Statement {
    pub manifest: Manifest,
    /// The subject digest, which equals the manifest's root digest.
    pub root_digest: Digest,
}

/// Why a document is not an acceptable statement.
#[derive(Debug, PartialEq, Eq)]
pub enum StatementError {
    /// Not JSON: the message carries the line and column.
    Syntax(String),
    /// A signature bundle or DSSE envelope, whose signature must be checked first.
    Signed(&'static str),
    /// A layout older than OMS v1.0 that vouch does not accept.
    Unsupported(String),
    /// JSON, but not a valid OMS v1.0 statement: where, and what is wrong.
    Invalid(String),
    /// Well-formed, but the subject digest does not match the resources.
    Inconsistent(String),
}

impl std::fmt::Display for StatementError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatementError::Syntax(m) => write!(f, "malformed JSON: {m}"),
            StatementError::Signed(what) => write!(
                f,
                "is {what}, not a manifest: its signature must be checked before its payload is trusted"
            ),
            StatementError::Unsupported(m) | StatementError::Invalid(m) => f.write_str(m),
            StatementError::Inconsistent(m) => write!(f, "inconsistent manifest: {m}"),
        }
    }
}

fn invalid(at: &str, message: impl std::fmt::Display) -> StatementError {
    StatementError::Invalid(format!("{at}: {message}"))
}

/// Parses the bytes of a statement (a file, or a DSSE payload as signed).
pub fn parse(bytes: &[u8]) -> Result<Statement, StatementError> {
    let value: Value = json::from_slice(bytes).map_err(|e| match e {
        JsonError::Malformed(message) => StatementError::Syntax(message),
        ambiguous => StatementError::Invalid(ambiguous.to_string()),
    })?;
    let top = value
        .as_object()
        .ok_or_else(|| StatementError::Invalid("the document is not a JSON object".to_string()))?;
    if lookup(top, "dsseEnvelope", "")?.is_some()
        || lookup(top, "mediaType", "")?
            .and_then(Value::as_str)
            .is_some_and(|m| m.starts_with("application/vnd.dev.sigstore.bundle"))
    {
        return Err(StatementError::Signed("a Sigstore signature bundle"));
    }
    if lookup(top, "payloadType", "")?.is_some() && lookup(top, "signatures", "")?.is_some() {
        return Err(StatementError::Signed("a DSSE envelope"));
    }
    expect_str(top, "_type", "")?
        .eq(STATEMENT_TYPE)
        .then_some(())
        .ok_or_else(|| invalid("_type", format!("expected \"{STATEMENT_TYPE}\"")))?;
    let predicate_type = expect_str(top, "predicateType", "")?;
    if predicate_type == PREDICATE_TYPE_V0_2 {
        return Err(StatementError::Unsupported(format!(
            "unsupported manifest layout: predicate type {PREDICATE_TYPE_V0_2} is model-signing 0.2's \
             experimental format; vouch accepts OMS v1.0 ({PREDICATE_TYPE}) — re-sign with model-signing 1.x or vouch"
        )));
    }
    if predicate_type != PREDICATE_TYPE {
        return Err(invalid(
            "predicateType",
            format!("\"{predicate_type}\" is not the OMS predicate type {PREDICATE_TYPE}"),
        ));
    }

    let (model_name, subject_digest) = parse_subject(top)?;
    let predicate = expect_object(top, "predicate", "")?;
    let serialization =
        parse_serialization(expect_object(predicate, "serialization", "predicate")?)?;
    let resources = parse_resources(predicate, &serialization)?;

    let recomputed = root_digest(resources.iter().map(|r| &r.digest));
    if recomputed != subject_digest {
        return Err(StatementError::Inconsistent(format!(
            "the subject digest is {} but the resources hash to {}",
            subject_digest.prefixed(),
            recomputed.prefixed()
        )));
    }
    check_shards_tile(&resources, &serialization)?;
    Ok(Statement {
        manifest: Manifest::new(model_name, serialization, resources),
        root_digest: subject_digest,
    })
}

fn parse_subject(top: &Map<String, Value>) -> Result<(String, Digest), StatementError> {
    let subjects = lookup(top, "subject", "")?
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("subject", "expected an array with one entry"))?;
    if subjects.len() != 1 {
        return Err(invalid(
            "subject",
            format!(
                "expected exactly one subject (the model), found {}",
                subjects.len()
            ),
        ));
    }
    let subject = subjects[0]
        .as_object()
        .ok_or_else(|| invalid("subject[0]", "expected an object"))?;
    let name = expect_str(subject, "name", "subject[0]")?.to_string();
    let digests = expect_object(subject, "digest", "subject[0]")?;
    let hex = expect_str(digests, "sha256", "subject[0].digest")?;
    let digest = Digest::from_lower_hex(Algorithm::Sha256, hex)
        .map_err(|e| invalid("subject[0].digest.sha256", e))?;
    Ok((name, digest))
}

fn parse_serialization(s: &Map<String, Value>) -> Result<Serialization, StatementError> {
    const AT: &str = "predicate.serialization";
    const KNOWN: [&str; 5] = [
        "method",
        "hash_type",
        "allow_symlinks",
        "shard_size",
        "ignore_paths",
    ];
    if let Some(unknown) = s.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(invalid(
            AT,
            format!("unknown field \"{unknown}\"; an unknown serialization setting could change what is hashed"),
        ));
    }
    let hash_type = expect_str(s, "hash_type", AT)?;
    let algorithm = hash_type
        .parse::<Algorithm>()
        .ok()
        .filter(|a| a.is_oms())
        .ok_or_else(|| {
            invalid(
                &format!("{AT}.hash_type"),
                format!("\"{hash_type}\" is not sha256, blake2b or blake3"),
            )
        })?;
    let allow_symlinks = lookup(s, "allow_symlinks", AT)?
        .and_then(Value::as_bool)
        .ok_or_else(|| invalid(&format!("{AT}.allow_symlinks"), "expected true or false"))?;
    let method = match expect_str(s, "method", AT)? {
        "files" => {
            if lookup(s, "shard_size", AT)?.is_some() {
                return Err(invalid(
                    &format!("{AT}.shard_size"),
                    "only the shards method has a shard size",
                ));
            }
            Method::Files
        }
        "shards" => Method::Shards {
            shard_size: shard_size(lookup(s, "shard_size", AT)?)?,
        },
        other => {
            return Err(invalid(
                &format!("{AT}.method"),
                format!("\"{other}\" is not files or shards"),
            ))
        }
    };
    let mut ignore_paths = IgnoreSet::default();
    if let Some(list) = lookup(s, "ignore_paths", AT)? {
        let list = list
            .as_array()
            .ok_or_else(|| invalid(&format!("{AT}.ignore_paths"), "expected an array of paths"))?;
        for (i, entry) in list.iter().enumerate() {
            let at = format!("{AT}.ignore_paths[{i}]");
            let text = entry
                .as_str()
                .ok_or_else(|| invalid(&at, "expected a string"))?;
            let name = normalize_relative_name(text).map_err(|e| invalid(&at, e))?;
            ignore_paths.insert(name);
        }
    }
    Ok(Serialization {
        method,
        algorithm,
        allow_symlinks,
        ignore_paths,
    })
}

/// A positive integer; protobuf's JSON printer writes it as a float (`1000000000.0`).
fn shard_size(value: Option<&Value>) -> Result<u64, StatementError> {
    const AT: &str = "predicate.serialization.shard_size";
    let value = value.ok_or_else(|| invalid(AT, "the shards method needs a shard size"))?;
    let size = value
        .as_u64()
        .or_else(|| {
            value
                .as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 1.0 && *f < 2f64.powi(63))
                .map(|f| f as u64)
        })
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            invalid(
                AT,
                format!("{value} is not a positive whole number of bytes"),
            )
        })?;
    Ok(size)
}

fn parse_resources(
    predicate: &Map<String, Value>,
    serialization: &Serialization,
) -> Result<Vec<Resource>, StatementError> {
    let list = lookup(predicate, "resources", "predicate")?
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("predicate.resources", "expected an array"))?;
    let expected_algorithm = serialization.resource_algorithm();
    let mut seen = HashSet::new();
    let mut resources = Vec::with_capacity(list.len());
    for (i, entry) in list.iter().enumerate() {
        let at = format!("predicate.resources[{i}]");
        let entry = entry
            .as_object()
            .ok_or_else(|| invalid(&at, "expected an object"))?;
        let name = expect_str(entry, "name", &at)?;
        let key = ResourceKey::parse(name, serialization.method)
            .map_err(|e| invalid(&at, format!("\"{name}\": {e}")))?;
        check_name(&key.path).map_err(|e| invalid(&at, format!("\"{name}\": {e}")))?;
        if !seen.insert(key.clone()) {
            return Err(invalid(&at, format!("\"{name}\" is listed twice")));
        }
        let algorithm = expect_str(entry, "algorithm", &at)?;
        if algorithm != expected_algorithm && algorithm != serialization.algorithm.name() {
            return Err(invalid(
                &format!("{at}.algorithm"),
                format!("\"{algorithm}\" does not match the serialization ({expected_algorithm})"),
            ));
        }
        let hex = expect_str(entry, "digest", &at)?;
        let digest = Digest::from_lower_hex(serialization.algorithm, hex)
            .map_err(|e| invalid(&format!("{at}.digest"), format!("\"{name}\": {e}")))?;
        resources.push(Resource { key, digest });
    }
    let single = resources.iter().any(|r| r.key.path == SINGLE_FILE_NAME);
    if single && resources.iter().any(|r| r.key.path != SINGLE_FILE_NAME) {
        return Err(invalid(
            "predicate.resources",
            "\".\" (a model that is one file) cannot be listed beside other files",
        ));
    }
    Ok(resources)
}

/// The shards of each file must cover it from byte 0 without gaps, each of the shard size
/// except the last; otherwise no file could ever match and the manifest is malformed.
fn check_shards_tile(
    resources: &[Resource],
    serialization: &Serialization,
) -> Result<(), StatementError> {
    let Method::Shards { shard_size } = serialization.method else {
        return Ok(());
    };
    let mut by_path: BTreeMap<&str, Vec<(u64, u64)>> = BTreeMap::new();
    for r in resources {
        if let Some(range) = r.key.range {
            by_path.entry(&r.key.path).or_default().push(range);
        }
    }
    for (path, mut ranges) in by_path {
        ranges.sort();
        let mut expected_start = 0;
        for (i, &(start, end)) in ranges.iter().enumerate() {
            let last = i + 1 == ranges.len();
            let len = end - start;
            if start != expected_start || len > shard_size || (!last && len != shard_size) {
                return Err(invalid(
                    "predicate.resources",
                    format!(
                        "the shards of \"{path}\" do not split it into {shard_size}-byte pieces from offset 0 \
                         (found {start}:{end})"
                    ),
                ));
            }
            expected_start = end;
        }
    }
    Ok(())
}

fn field_at(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

/// The value of `key` in the object at `at`, refusing a key that differs from it only by
/// case, which Go's encoding/json would read as this field.
fn lookup<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<Option<&'a Value>, StatementError> {
    json::field(object, key, at).map_err(|e| StatementError::Invalid(e.to_string()))
}

fn expect_str<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<&'a str, StatementError> {
    match lookup(object, key, at)? {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) => Err(invalid(&field_at(at, key), "is empty")),
        Some(_) => Err(invalid(&field_at(at, key), "expected a string")),
        None => Err(invalid(&field_at(at, key), "is missing")),
    }
}

fn expect_object<'a>(
    object: &'a Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<&'a Map<String, Value>, StatementError> {
    match lookup(object, key, at)? {
        Some(Value::Object(o)) => Ok(o),
        Some(_) => Err(invalid(&field_at(at, key), "expected an object")),
        None => Err(invalid(&field_at(at, key), "is missing")),
    }
}

/// Writes a manifest as an OMS statement (pretty JSON, fields in the order of the spec).
pub fn to_json(manifest: &Manifest) -> Vec<u8> {
    #[derive(Serialize)]
    struct Statement<'a> {
        #[serde(rename = "_type")]
        kind: &'a str,
        subject: [Subject<'a>; 1],
        #[serde(rename = "predicateType")]
        predicate_type: &'a str,
        predicate: Predicate<'a>,
    }
    #[derive(Serialize)]
    struct Subject<'a> {
        name: &'a str,
        digest: BTreeMap<&'a str, String>,
    }
    #[derive(Serialize)]
    struct Predicate<'a> {
        serialization: SerializationOut<'a>,
        resources: Vec<ResourceOut<'a>>,
    }
    #[derive(Serialize)]
    struct SerializationOut<'a> {
        method: &'a str,
        hash_type: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        shard_size: Option<u64>,
        allow_symlinks: bool,
        ignore_paths: Vec<String>,
    }
    #[derive(Serialize)]
    struct ResourceOut<'a> {
        name: String,
        algorithm: &'a str,
        digest: String,
    }

    let s = &manifest.serialization;
    let algorithm = s.resource_algorithm();
    let (method, shard_size) = match s.method {
        Method::Files => ("files", None),
        Method::Shards { shard_size } => ("shards", Some(shard_size)),
    };
    let statement = Statement {
        kind: STATEMENT_TYPE,
        subject: [Subject {
            name: &manifest.model_name,
            digest: BTreeMap::from([("sha256", manifest.root_digest().hex())]),
        }],
        predicate_type: PREDICATE_TYPE,
        predicate: Predicate {
            serialization: SerializationOut {
                method,
                hash_type: s.algorithm.name(),
                shard_size,
                allow_symlinks: s.allow_symlinks,
                ignore_paths: s.ignore_paths.recorded(),
            },
            resources: manifest
                .resources
                .iter()
                .map(|r| ResourceOut {
                    name: r.key.to_string(),
                    algorithm: &algorithm,
                    digest: r.digest.hex(),
                })
                .collect(),
        },
    };
    let mut out = serde_json::to_vec_pretty(&statement).expect("a statement always serializes");
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(method: Method) -> Manifest {
        let algorithm = Algorithm::Sha256;
        let key = |path: &str, range| ResourceKey {
            path: path.into(),
            range,
        };
        let resources = match method {
            Method::Files => vec![
                Resource {
                    key: key("b", None),
                    digest: algorithm.digest(b"b"),
                },
                Resource {
                    key: key("a/x", None),
                    digest: algorithm.digest(b"x"),
                },
            ],
            Method::Shards { .. } => vec![
                Resource {
                    key: key("a", Some((0, 4))),
                    digest: algorithm.digest(b"0123"),
                },
                Resource {
                    key: key("a", Some((4, 6))),
                    digest: algorithm.digest(b"45"),
                },
            ],
        };
        Manifest::new(
            "m".into(),
            Serialization {
                method,
                algorithm,
                allow_symlinks: false,
                ignore_paths: IgnoreSet::with_defaults(),
            },
            resources,
        )
    }

    #[test]
    fn written_statements_parse_back_to_the_same_manifest() {
        for method in [Method::Files, Method::Shards { shard_size: 4 }] {
            let manifest = sample(method);
            let parsed = parse(&to_json(&manifest)).unwrap();
            assert_eq!(parsed.manifest, manifest);
            assert_eq!(parsed.root_digest, manifest.root_digest());
        }
    }

    fn edited(edit: impl Fn(&mut Value)) -> Result<Statement, StatementError> {
        let mut value: Value = serde_json::from_slice(&to_json(&sample(Method::Files))).unwrap();
        edit(&mut value);
        parse(&serde_json::to_vec(&value).unwrap())
    }

    #[test]
    fn float_shard_sizes_from_protobuf_are_accepted() {
        let mut value: Value =
            serde_json::from_slice(&to_json(&sample(Method::Shards { shard_size: 4 }))).unwrap();
        value["predicate"]["serialization"]["shard_size"] = serde_json::json!(4.0);
        let parsed = parse(&serde_json::to_vec(&value).unwrap()).unwrap();
        assert_eq!(
            parsed.manifest.serialization.method,
            Method::Shards { shard_size: 4 }
        );
    }

    #[test]
    fn every_broken_rule_is_named() {
        type Edit = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(|v| v["predicate"]["resources"][0]["name"] = "../etc/passwd".into()),
                "'..'",
            ),
            (
                Box::new(|v| v["predicate"]["resources"][0]["name"] = "/etc/passwd".into()),
                "absolute",
            ),
            (
                Box::new(|v| v["predicate"]["resources"][0]["name"] = "a\u{0}b".into()),
                "NUL",
            ),
            (
                Box::new(|v| {
                    v["predicate"]["resources"][1]["name"] =
                        v["predicate"]["resources"][0]["name"].clone()
                }),
                "twice",
            ),
            (
                Box::new(|v| v["predicate"]["resources"][0]["digest"] = "zz".into()),
                "resources[0].digest",
            ),
            (
                Box::new(|v| v["predicate"]["resources"][0]["algorithm"] = "md5".into()),
                "algorithm",
            ),
            (
                Box::new(|v| v["predicate"]["serialization"]["method"] = "tensors".into()),
                "method",
            ),
            (
                Box::new(|v| v["predicate"]["serialization"]["extra"] = true.into()),
                "unknown field",
            ),
            (
                Box::new(|v| v["predicateType"] = "https://example.com/x".into()),
                "predicateType",
            ),
            (
                Box::new(|v| v["subject"] = serde_json::json!([])),
                "exactly one",
            ),
            (
                Box::new(|v| v["predicate"]["resources"][0]["digest"] = "00".repeat(32).into()),
                "inconsistent",
            ),
        ];
        for (edit, needle) in cases {
            let err = edited(edit).unwrap_err().to_string();
            assert!(err.contains(needle), "expected '{needle}' in: {err}");
        }
    }

    #[test]
    fn bundles_and_old_layouts_are_refused_with_directions() {
        let bundle =
            br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","dsseEnvelope":{}}"#;
        let refused = parse(bundle).unwrap_err();
        assert_eq!(
            refused,
            StatementError::Signed("a Sigstore signature bundle")
        );
        assert!(refused.to_string().contains("signature must be checked"));
        let old = br#"{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://model_signing/Digests/v0.1","subject":[]}"#;
        assert!(matches!(parse(old), Err(StatementError::Unsupported(_))));
        assert!(
            matches!(parse(b"{\"a\":"), Err(StatementError::Syntax(m)) if m.contains("line 1"))
        );
    }

    #[test]
    fn gaps_between_shards_are_refused() {
        let mut manifest = sample(Method::Shards { shard_size: 4 });
        manifest.resources[1].key.range = Some((5, 6));
        let err = parse(&to_json(&manifest)).unwrap_err().to_string();
        assert!(err.contains("do not split"), "{err}");
    }
}
