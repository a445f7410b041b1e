//! Format facts as flat `name = value` pairs: CycloneDX properties, SPDX file comments and
//! the text rendering of `vouch scan` all print these same pairs.

use std::collections::BTreeMap;
use std::fmt::Display;

use super::pickle::{Container, Safety};
use super::Facts;

/// The namespace of vouch's property names.
pub const NAMESPACE: &str = "vouch";

/// `k1=v1, k2=v2` from a count map.
fn counts<V: Display>(map: &BTreeMap<String, V>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The facts of one file as `(name, value)` pairs, names prefixed `vouch:FORMAT:`.
pub fn fact_properties(facts: &Facts) -> Vec<(String, String)> {
    let format = facts.kind().name();
    let mut out: Vec<(String, String)> = vec![(format!("{NAMESPACE}:format"), format.into())];
    let mut add = |key: &str, value: String| {
        out.push((format!("{NAMESPACE}:{format}:{key}"), value));
    };
    match facts {
        Facts::Safetensors(f) => {
            add("tensor-count", f.tensor_count.to_string());
            add("parameter-count", f.parameter_count.to_string());
            add("dtypes", counts(&f.dtypes));
            for (key, value) in &f.metadata {
                add(&format!("metadata:{key}"), value.clone());
            }
        }
        Facts::Gguf(f) => {
            add("version", f.version.to_string());
            if let Some(v) = &f.architecture {
                add("architecture", v.clone());
            }
            if let Some(v) = &f.name {
                add("name", v.clone());
            }
            if let Some(v) = &f.file_type {
                add("file-type", v.clone());
            }
            add("tensor-count", f.tensor_count.to_string());
            add("parameter-count", f.parameter_count.to_string());
            if let Some(v) = f.context_length {
                add("context-length", v.to_string());
            }
            add("tensor-types", counts(&f.tensor_types));
        }
        Facts::Onnx(f) => {
            if let Some(v) = f.ir_version {
                add("ir-version", v.to_string());
            }
            let opsets: Vec<String> = f
                .opsets
                .iter()
                .map(|o| {
                    let domain = if o.domain.is_empty() {
                        "ai.onnx"
                    } else {
                        &o.domain
                    };
                    format!("{domain}={}", o.version)
                })
                .collect();
            add("opsets", opsets.join(", "));
            if let Some(v) = &f.producer_name {
                add("producer-name", v.clone());
            }
            if let Some(v) = &f.producer_version {
                add("producer-version", v.clone());
            }
            if !f.external_data.is_empty() {
                add("external-data", f.external_data.join(", "));
            }
        }
        Facts::Pickle(f) => {
            let container = match f.container {
                Container::Pickle => "pickle",
                Container::Zip => "zip",
                Container::PytorchLegacy => "pytorch-legacy",
                Container::Npy => "npy",
            };
            add("container", container.into());
            if let Some(compression) = f.compression {
                add("compression", compression.name().into());
            }
            let protocol = f.streams.iter().filter_map(|s| s.scan.protocol).max();
            if let Some(p) = protocol {
                add("protocol", p.to_string());
            }
            for safety in [Safety::Dangerous, Safety::Suspicious, Safety::Innocuous] {
                let mut names: Vec<String> = f
                    .globals()
                    .filter(|(g, _)| g.safety == safety)
                    .map(|(g, _)| g.dotted())
                    .collect();
                names.sort();
                names.dedup();
                if !names.is_empty() {
                    let label = match safety {
                        Safety::Dangerous => "dangerous-globals",
                        Safety::Suspicious => "suspicious-globals",
                        Safety::Innocuous => "innocuous-globals",
                    };
                    add(label, names.join(", "));
                }
            }
            for stream in &f.streams {
                if let Some(error) = &stream.scan.error {
                    let at = stream.member.as_deref().unwrap_or("the file");
                    add("scan-error", format!("{at}: {error}"));
                }
            }
        }
    }
    out
}
