//! SBOMs checked by the official validators (cyclonedx-python-lib's strict 1.6 JSON
//! validator, spdx-tools' `pyspdxtools -i`), with per-file digests equal to sha256sum,
//! sha1sum and b3sum, and byte-for-byte reproducible under SOURCE_DATE_EPOCH.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

/// A model with real weights of every format vouch reads, a config.json and a nested file.
fn generated_model(python: &Path, root: &Path) -> PathBuf {
    let model = root.join("model");
    std::fs::create_dir_all(&model).unwrap();
    for command in ["safetensors", "gguf", "onnx"] {
        formats_peer(python, command, &model);
    }
    let pickles = root.join("pickles");
    std::fs::create_dir_all(&pickles).unwrap();
    formats_peer(python, "pickles", &pickles);
    std::fs::rename(pickles.join("benign.pt"), model.join("pytorch_model.bin")).unwrap();
    write_tree(
        &model,
        &[
            (
                "config.json",
                br#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama"}"#,
            ),
            ("tokenizer/vocab.txt", b"hello\nworld\n"),
        ],
    );
    model
}

fn sbom(model: &Path, out: &Path, extra: &[&str], epoch: Option<&str>) -> Ran {
    let mut command = vouch();
    command
        .arg("sbom")
        .arg(model)
        .arg("-o")
        .arg(out)
        .args(extra);
    match epoch {
        Some(epoch) => command.env("SOURCE_DATE_EPOCH", epoch),
        None => command.env_remove("SOURCE_DATE_EPOCH"),
    };
    run(&mut command).expect(0)
}

/// `TOOL` run in `dir` over every file: relative name -> hex digest.
fn peer_digests(tool: &str, dir: &Path) -> BTreeMap<String, String> {
    let mut names = Vec::new();
    collect(dir, dir, &mut names);
    let ran = run(Command::new(tool).current_dir(dir).args(&names));
    assert_eq!(ran.code, Some(0), "{tool}: {}", ran.stderr);
    ran.stdout()
        .lines()
        .map(|line| {
            let (hex, name) = line.split_once("  ").unwrap();
            (name.to_string(), hex.to_string())
        })
        .collect()
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(root, &path, out);
        } else {
            out.push(
                path.strip_prefix(root)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string(),
            );
        }
    }
}

fn peers(test: &str) -> Option<PathBuf> {
    let python = peer_python(test)?;
    require_tool(test, "pyspdxtools")?;
    require_tool(test, "b3sum")?;
    Some(python)
}

#[test]
fn cyclonedx_sbom_is_valid_and_its_hashes_are_the_files() {
    let Some(python) = peers("cyclonedx_sbom") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = generated_model(&python, dir.path());
    let out = dir.path().join("model.cdx.json");
    sbom(
        &model,
        &out,
        &["--algo", "blake3", "--version", "1.2"],
        None,
    );
    validate_cyclonedx(&python, &out);

    let bom: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let component = &bom["metadata"]["component"];
    assert_eq!(component["type"], "machine-learning-model");
    assert_eq!(component["name"], "model");
    assert_eq!(component["version"], "1.2");
    assert_eq!(bom["metadata"]["tools"]["components"][0]["name"], "vouch");
    assert_eq!(bom["compositions"][0]["aggregate"], "complete");
    assert_eq!(
        bom["compositions"][0]["assemblies"][0],
        component["bom-ref"]
    );
    let parameters = &component["modelCard"]["modelParameters"];
    assert_eq!(parameters["architectureFamily"], "llama");
    assert_eq!(parameters["modelArchitecture"], "LlamaForCausalLM");
    assert_eq!(parameters["task"], "text-generation");
    let property = |props: &Value, name: &str| lookup(props, "name", name, "value");
    let root = vouch_run(["digest".as_ref(), model.as_os_str()])
        .expect(0)
        .stdout();
    assert_eq!(
        property(&component["properties"], "vouch:oms:root-digest").as_deref(),
        Some(root.trim())
    );

    let sha256 = peer_digests("sha256sum", &model);
    let blake3 = peer_digests("b3sum", &model);
    let files = component["components"].as_array().unwrap();
    assert_eq!(files.len(), sha256.len());
    for file in files {
        let name = file["name"].as_str().unwrap();
        assert_eq!(file["type"], "file");
        let hash = |alg: &str| lookup(&file["hashes"], "alg", alg, "content");
        assert_eq!(hash("SHA-256").as_ref(), sha256.get(name), "{name}");
        assert_eq!(hash("BLAKE3").as_ref(), blake3.get(name), "{name}");
        let size = std::fs::metadata(model.join(name)).unwrap().len();
        assert_eq!(
            property(&file["properties"], "vouch:file:size"),
            Some(size.to_string())
        );
    }
    // Format facts travel as properties.
    let file = |name: &str| files.iter().find(|f| f["name"] == name).unwrap();
    let props = &file("mixed.safetensors")["properties"];
    assert_eq!(
        property(props, "vouch:safetensors:parameter-count").as_deref(),
        Some("140")
    );
    let props = &file("qwen-q8.gguf")["properties"];
    assert_eq!(
        property(props, "vouch:gguf:file-type").as_deref(),
        Some("MOSTLY_Q8_0")
    );
    let props = &file("external.onnx")["properties"];
    assert_eq!(
        property(props, "vouch:onnx:external-data").as_deref(),
        Some("w0, w1, w2")
    );
    let props = &file("pytorch_model.bin")["properties"];
    assert_eq!(
        property(props, "vouch:pickle:innocuous-globals").as_deref(),
        Some("collections.OrderedDict")
    );
}

#[test]
fn spdx_sbom_is_valid_with_sha1_and_sha256_of_every_file() {
    let Some(python) = peers("spdx_sbom") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = generated_model(&python, dir.path());
    let out = dir.path().join("model.spdx.json");
    sbom(
        &model,
        &out,
        &[
            "--format",
            "spdx",
            "--purl",
            "pkg:huggingface/acme/model@abc123",
        ],
        None,
    );
    validate_spdx(&out);

    let doc: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    let package = &doc["packages"][0];
    assert_eq!(
        package["externalRefs"][0]["referenceLocator"],
        "pkg:huggingface/acme/model@abc123"
    );
    let sha1 = peer_digests("sha1sum", &model);
    let sha256 = peer_digests("sha256sum", &model);
    let files = doc["files"].as_array().unwrap();
    assert_eq!(files.len(), sha256.len());
    let relationships = doc["relationships"].as_array().unwrap();
    assert!(relationships
        .iter()
        .any(|r| r["spdxElementId"] == "SPDXRef-DOCUMENT"
            && r["relationshipType"] == "DESCRIBES"
            && r["relatedSpdxElement"] == package["SPDXID"]));
    for file in files {
        let name = file["fileName"]
            .as_str()
            .unwrap()
            .strip_prefix("./")
            .unwrap();
        let checksum = |alg: &str| lookup(&file["checksums"], "algorithm", alg, "checksumValue");
        assert_eq!(checksum("SHA1").as_ref(), sha1.get(name), "{name}");
        assert_eq!(checksum("SHA256").as_ref(), sha256.get(name), "{name}");
        assert!(relationships
            .iter()
            .any(|r| r["spdxElementId"] == package["SPDXID"]
                && r["relationshipType"] == "CONTAINS"
                && r["relatedSpdxElement"] == file["SPDXID"]));
    }
    // BLAKE3 is CycloneDX's: spdx-tools refuses 256-bit BLAKE3 checksums, so asking for
    // one in SPDX is a usage error rather than an invalid document.
    let refused = vouch_run([
        "sbom".as_ref(),
        model.as_os_str(),
        "--format".as_ref(),
        "spdx".as_ref(),
        "--algo".as_ref(),
        "blake3".as_ref(),
    ])
    .expect(2);
    assert!(
        refused.stderr.contains("--algo blake3"),
        "{}",
        refused.stderr
    );
    // Two runs make two different documents (unique namespaces).
    let again = dir.path().join("again.spdx.json");
    sbom(&model, &again, &["--format", "spdx"], None);
    let again: Value = serde_json::from_slice(&std::fs::read(&again).unwrap()).unwrap();
    assert_ne!(again["documentNamespace"], doc["documentNamespace"]);
}

#[test]
fn source_date_epoch_makes_both_formats_byte_for_byte_reproducible() {
    let Some(python) = peers("reproducible_sbom") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = generated_model(&python, dir.path());
    for format in ["cyclonedx", "spdx"] {
        let first = dir.path().join(format!("first.{format}.json"));
        let second = dir.path().join(format!("second.{format}.json"));
        sbom(&model, &first, &["--format", format], Some("1700000000"));
        sbom(&model, &second, &["--format", format], Some("1700000000"));
        let first_bytes = std::fs::read(&first).unwrap();
        assert_eq!(first_bytes, std::fs::read(&second).unwrap(), "{format}");
        let text = String::from_utf8(first_bytes).unwrap();
        assert!(text.contains("2023-11-14T22:13:20Z"), "{format}");
        if format == "cyclonedx" {
            validate_cyclonedx(&python, &first);
        } else {
            validate_spdx(&first);
        }
        // A changed file changes the document (its serial or namespace too).
        let changed = dir.path().join(format!("changed.{format}.json"));
        std::fs::write(model.join("tokenizer/vocab.txt"), b"changed\n").unwrap();
        sbom(&model, &changed, &["--format", format], Some("1700000000"));
        std::fs::write(model.join("tokenizer/vocab.txt"), b"hello\nworld\n").unwrap();
        let changed: Value = serde_json::from_slice(&std::fs::read(&changed).unwrap()).unwrap();
        let first: Value = serde_json::from_slice(&std::fs::read(&first).unwrap()).unwrap();
        let id = if format == "cyclonedx" {
            "serialNumber"
        } else {
            "documentNamespace"
        };
        assert_ne!(changed[id], first[id], "{format}");
    }
}

#[test]
fn a_single_onnx_file_lists_and_hashes_its_external_data() {
    let Some(python) = peers("single_file_sbom") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    formats_peer(&python, "onnx", dir.path());
    let onnx = dir.path().join("external.onnx");
    for format in ["cyclonedx", "spdx"] {
        let out = dir.path().join(format!("out.{format}.json"));
        sbom(&onnx, &out, &["--format", format], None);
        if format == "cyclonedx" {
            validate_cyclonedx(&python, &out);
            let bom: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
            let names: Vec<&str> = bom["metadata"]["component"]["components"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap())
                .collect();
            assert_eq!(names, ["external.onnx", "w0", "w1", "w2"]);
            let w1 = &bom["metadata"]["component"]["components"][2];
            let bytes = std::fs::read(dir.path().join("w1")).unwrap();
            assert_eq!(w1["hashes"][0]["content"], sha256_hex(&bytes));
        } else {
            validate_spdx(&out);
        }
    }
}

#[test]
fn the_huggingface_purl_is_derived_from_a_hub_cache_snapshot() {
    let Some(python) = peers("hub_purl") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir
        .path()
        .join("hub/models--acme--tiny-llm/snapshots/0123456789abcdef0123456789abcdef01234567");
    std::fs::create_dir_all(&snapshot).unwrap();
    let tiny = project_root().join("testdata/tiny-model");
    for name in ["config.json", "model.safetensors"] {
        std::fs::copy(tiny.join(name), snapshot.join(name)).unwrap();
    }
    let out = dir.path().join("hub.cdx.json");
    sbom(&snapshot, &out, &[], None);
    validate_cyclonedx(&python, &out);
    let bom: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let component = &bom["metadata"]["component"];
    assert_eq!(component["name"], "acme/tiny-llm");
    assert_eq!(
        component["version"],
        "0123456789abcdef0123456789abcdef01234567"
    );
    assert_eq!(
        component["purl"],
        "pkg:huggingface/acme/tiny-llm@0123456789abcdef0123456789abcdef01234567"
    );
}
