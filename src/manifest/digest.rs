//! The manifest digest: a pin that binds every resource's name and digest, and the
//! serialization that made them.
//!
//! The OMS root digest is SHA-256 over the resource digests alone, so it does not change
//! when a file is renamed or when a sharded file is split at a shard boundary into two
//! files. The manifest digest is SHA-256 over this canonical form of the manifest:
//!
//! ```text
//! {"algorithm":"sha256","allow_symlinks":false,"method":"files","resources":[["NAME","HEX"],…],"version":1}
//! ```
//!
//! compact JSON (no whitespace), keys in lexicographic order, strings escaped as RFC 8785
//! (JCS) escapes them (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other control characters
//! as `\u00xx`, everything else as UTF-8), resources in OMS order, each `[name, digest]`
//! with the name as the manifest writes it (`path`, or `path:start:end` for a shard) and the
//! digest in lower-case hex. The shards method adds `"shard_size":N`. `algorithm` is the
//! hash of each resource (`sha256`, `blake2b`, `blake3`). Python's
//! `json.dumps(form, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` writes the
//! same bytes. The model's own name and the ignored paths are not part of it: renaming the
//! model's directory keeps the pin, and what is left unchecked is the verifier's choice.

use serde_json::{json, Map, Value};

use crate::hash::{Algorithm, Digest};
use crate::model::oms::{Manifest, Method};

/// Version of the canonical form, written into it.
const FORM_VERSION: u64 = 1;

/// The canonical form of `manifest` (see the module documentation).
pub fn canonical_form(manifest: &Manifest) -> Vec<u8> {
    let serialization = &manifest.serialization;
    let resources: Vec<Value> = manifest
        .resources
        .iter()
        .map(|resource| json!([resource.key.to_string(), resource.digest.hex()]))
        .collect();
    let (method, shard_size) = match serialization.method {
        Method::Files => ("files", None),
        Method::Shards { shard_size } => ("shards", Some(shard_size)),
    };
    // Keys are inserted in lexicographic order, so the form is the same whether or not
    // serde_json keeps insertion order; its compact writer escapes strings as JCS does.
    let mut form = Map::new();
    form.insert("algorithm".into(), json!(serialization.algorithm.name()));
    form.insert("allow_symlinks".into(), json!(serialization.allow_symlinks));
    form.insert("method".into(), json!(method));
    form.insert("resources".into(), Value::Array(resources));
    if let Some(shard_size) = shard_size {
        form.insert("shard_size".into(), json!(shard_size));
    }
    form.insert("version".into(), json!(FORM_VERSION));
    serde_json::to_vec(&form).expect("a JSON value always serializes")
}

/// SHA-256 over the canonical form of `manifest`.
pub fn manifest_digest(manifest: &Manifest) -> Digest {
    Algorithm::Sha256.digest(&canonical_form(manifest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::oms::{Resource, ResourceKey, Serialization};

    fn resource(path: &str, range: Option<(u64, u64)>, byte: u8) -> Resource {
        Resource {
            key: ResourceKey {
                path: path.to_string(),
                range,
            },
            digest: Algorithm::Sha256.digest(&[byte]),
        }
    }

    fn files(resources: Vec<Resource>) -> Manifest {
        let serialization = Serialization::new(Algorithm::Sha256, None, false).unwrap();
        Manifest::new("model".into(), serialization, resources)
    }

    #[test]
    fn the_form_is_compact_sorted_json() {
        let manifest = files(vec![
            resource("b\n\u{1f}é", None, 2),
            resource("a", None, 1),
        ]);
        let text = String::from_utf8(canonical_form(&manifest)).unwrap();
        let a = Algorithm::Sha256.digest(&[1]).hex();
        let b = Algorithm::Sha256.digest(&[2]).hex();
        assert_eq!(
            text,
            format!(
                r#"{{"algorithm":"sha256","allow_symlinks":false,"method":"files","resources":[["a","{a}"],["b\n\u001fé","{b}"]],"version":1}}"#
            )
        );
    }

    #[test]
    fn renaming_a_file_changes_the_manifest_digest_but_not_the_root_digest() {
        let before = files(vec![resource("model.safetensors", None, 1)]);
        let after = files(vec![resource("model.pkl", None, 1)]);
        assert_eq!(before.root_digest(), after.root_digest());
        assert_ne!(manifest_digest(&before), manifest_digest(&after));
    }

    #[test]
    fn splitting_a_sharded_file_changes_the_manifest_digest_but_not_the_root_digest() {
        let shards = Serialization::new(Algorithm::Sha256, Some(4), false).unwrap();
        let whole = Manifest::new(
            "m".into(),
            shards.clone(),
            vec![
                resource("w", Some((0, 4)), 1),
                resource("w", Some((4, 8)), 2),
            ],
        );
        let split = Manifest::new(
            "m".into(),
            shards,
            vec![
                resource("w", Some((0, 4)), 1),
                resource("x", Some((0, 4)), 2),
            ],
        );
        assert_eq!(whole.root_digest(), split.root_digest());
        assert_ne!(manifest_digest(&whole), manifest_digest(&split));
    }

    #[test]
    fn the_model_name_is_not_bound() {
        let a = files(vec![resource("f", None, 1)]);
        let mut b = a.clone();
        b.model_name = "renamed".into();
        assert_eq!(manifest_digest(&a), manifest_digest(&b));
    }
}
