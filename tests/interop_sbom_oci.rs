//! SBOMs of container images and model artifacts, read from a real registry (Debian's
//! docker-registry on 127.0.0.1, images built by umoci and pushed by skopeo) and from OCI
//! layouts: accepted by the official validators, their layers as `skopeo inspect --raw`
//! lists them, the model an artifact holds described file by file, and no SBOM at all from
//! a blob that does not match its descriptor.

mod common;
mod oci_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use oci_support::*;
use serde_json::Value;

/// The peers every test here needs: the registry tools, the validators, sha1sum and b3sum.
fn peers(test: &str) -> Option<PathBuf> {
    if !registry_peers(test) {
        return None;
    }
    let python = peer_python(test)?;
    require_tool(test, "pyspdxtools")?;
    require_tool(test, "sha1sum")?;
    require_tool(test, "b3sum")?;
    Some(python)
}

/// `vouch sbom TARGET -o OUT ARGS…`, without Docker credentials and, unless `epoch` is
/// given, without SOURCE_DATE_EPOCH.
fn sbom(target: &str, out: &Path, args: &[&str], epoch: Option<&str>) -> Ran {
    let mut command = vouch();
    command
        .args(["sbom", target, "-o"])
        .arg(out)
        .args(args)
        .env("DOCKER_CONFIG", "/nonexistent/vouch-test-docker-config");
    match epoch {
        Some(epoch) => command.env("SOURCE_DATE_EPOCH", epoch),
        None => command.env_remove("SOURCE_DATE_EPOCH"),
    };
    run(&mut command)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The manifest bytes `skopeo inspect --raw` fetches for `reference`.
fn skopeo_raw(reference: &str) -> Vec<u8> {
    peer(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", reference])).stdout
}

/// The digest `TOOL FILE` prints (sha1sum, b3sum), hex.
fn peer_digest(tool: &str, path: &Path) -> String {
    let ran = peer(Command::new(tool).arg(path));
    ran.stdout().split_whitespace().next().unwrap().to_string()
}

fn sha1sum(path: &Path) -> String {
    peer_digest("sha1sum", path)
}

fn b3sum(path: &Path) -> String {
    peer_digest("b3sum", path)
}

fn property(component: &Value, name: &str) -> Option<String> {
    lookup(&component["properties"], "name", name, "value")
}

fn hash(component: &Value, algorithm: &str) -> Option<String> {
    lookup(&component["hashes"], "alg", algorithm, "content")
}

fn checksum(file: &Value, algorithm: &str) -> Option<String> {
    lookup(&file["checksums"], "algorithm", algorithm, "checksumValue")
}

/// The configuration and layer descriptors of a manifest, in order.
fn blobs(manifest: &Value) -> Vec<Value> {
    std::iter::once(manifest["config"].clone())
        .chain(manifest["layers"].as_array().unwrap().iter().cloned())
        .collect()
}

fn hex(digest: &Value) -> &str {
    digest.as_str().unwrap().strip_prefix("sha256:").unwrap()
}

fn has_relationship(document: &Value, from: &Value, kind: &str, to: &Value) -> bool {
    document["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| {
            r["spdxElementId"] == *from
                && r["relationshipType"] == kind
                && r["relatedSpdxElement"] == *to
        })
}

#[test]
fn an_image_sbom_lists_the_layers_skopeo_sees_and_passes_both_validators() {
    let Some(python) = peers("an_image_sbom_lists_the_layers_skopeo_sees") else {
        return;
    };
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let layout = two_layer_image(&work.path().join("img"), "v1", "amd64", 31);
    let reference = registry.reference("team/app:v1");
    skopeo_copy(&layout.reference("v1"), &reference, false);
    let raw = skopeo_raw(&reference);
    let manifest: Value = serde_json::from_slice(&raw).unwrap();
    let manifest_hex = sha256_hex(&raw);
    let expected_blobs = blobs(&manifest);
    assert_eq!(expected_blobs.len(), 3, "{manifest:#}");

    let cdx = work.path().join("app.cdx.json");
    sbom(&reference, &cdx, &[], None).expect(0);
    validate_cyclonedx(&python, &cdx);
    let bom = read_json(&cdx);
    let image = &bom["metadata"]["component"];
    assert_eq!(image["type"], "container");
    assert_eq!(
        image["name"],
        format!("127.0.0.1:{}/team/app", registry.port)
    );
    assert_eq!(image["version"], "v1");
    assert_eq!(
        image["purl"],
        format!(
            "pkg:oci/app@sha256:{manifest_hex}?repository_url=127.0.0.1:{}%2Fteam%2Fapp&tag=v1",
            registry.port
        )
    );
    assert_eq!(image["bom-ref"], image["purl"]);
    assert_eq!(bom["compositions"][0]["assemblies"][0], image["purl"]);
    assert_eq!(
        hash(image, "SHA-256").as_deref(),
        Some(manifest_hex.as_str())
    );
    let components = image["components"].as_array().unwrap();
    assert_eq!(components.len(), expected_blobs.len(), "{image:#}");
    for (component, blob) in components.iter().zip(&expected_blobs) {
        assert_eq!(component["name"], blob["digest"], "{component:#}");
        assert_eq!(
            hash(component, "SHA-256").as_deref(),
            Some(hex(&blob["digest"]))
        );
        assert_eq!(
            property(component, "vouch:oci:size"),
            Some(blob["size"].to_string())
        );
        assert_eq!(component["mime-type"], blob["mediaType"]);
        assert_eq!(
            property(component, "vouch:oci:media-type").as_deref(),
            blob["mediaType"].as_str()
        );
    }
    assert_eq!(components[0]["description"], "configuration");
    assert_eq!(components[2]["description"], "layer 2");

    let spdx = work.path().join("app.spdx.json");
    sbom(&reference, &spdx, &["--format", "spdx"], None).expect(0);
    validate_spdx(&spdx);
    let document = read_json(&spdx);
    let package = &document["packages"][0];
    assert_eq!(package["SPDXID"], "SPDXRef-Image");
    assert_eq!(package["primaryPackagePurpose"], "CONTAINER");
    assert_eq!(
        package["externalRefs"][0]["referenceLocator"],
        image["purl"]
    );
    assert_eq!(
        checksum(package, "SHA256").as_deref(),
        Some(manifest_hex.as_str())
    );
    assert!(has_relationship(
        &document,
        &"SPDXRef-DOCUMENT".into(),
        "DESCRIBES",
        &package["SPDXID"]
    ));
    let files = document["files"].as_array().unwrap();
    assert_eq!(files.len(), expected_blobs.len());
    for (file, blob) in files.iter().zip(&expected_blobs) {
        let digest = blob["digest"].as_str().unwrap();
        assert_eq!(
            file["fileName"],
            format!("./blobs/sha256/{}", hex(&blob["digest"]))
        );
        assert_eq!(
            checksum(file, "SHA256").as_deref(),
            Some(hex(&blob["digest"]))
        );
        assert_eq!(
            checksum(file, "SHA1"),
            Some(sha1sum(&layout.blob_path(digest))),
            "{digest}"
        );
        assert!(has_relationship(
            &document,
            &package["SPDXID"],
            "CONTAINS",
            &file["SPDXID"]
        ));
    }
}

#[test]
fn a_model_artifact_sbom_describes_the_model_inside_by_file_name() {
    let Some(python) = peers("a_model_artifact_sbom_describes_the_model_inside") else {
        return;
    };
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let (_, files) = approved_model(work.path());
    let model = work.path().join("model");
    let (_, reference) = push_artifact(&registry, work.path(), "models/tiny:v1", &files);
    let root_digest = vouch_run(["digest".as_ref(), model.as_os_str()])
        .expect(0)
        .stdout()
        .trim()
        .to_string();

    let cdx = work.path().join("tiny.cdx.json");
    sbom(&reference, &cdx, &["--algo", "blake3"], None).expect(0);
    validate_cyclonedx(&python, &cdx);
    let bom = read_json(&cdx);
    let image = &bom["metadata"]["component"];
    assert_eq!(image["type"], "container");
    let components = image["components"].as_array().unwrap();
    // The configuration, a layer per file, then the model the layers make up.
    assert_eq!(components.len(), 1 + files.len() + 1, "{image:#}");
    for (component, (name, bytes)) in components[1..=files.len()].iter().zip(&files) {
        assert_eq!(
            property(component, "vouch:oci:title").as_deref(),
            Some(*name)
        );
        assert_eq!(component["name"], format!("sha256:{}", sha256_hex(bytes)));
    }
    let described = components.last().unwrap();
    assert_eq!(described["type"], "machine-learning-model");
    assert_eq!(
        property(described, "vouch:oms:root-digest"),
        Some(root_digest)
    );
    let model_files = described["components"].as_array().unwrap();
    let names: Vec<&str> = model_files
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["config.json", "model.safetensors", "tokenizer/vocab.txt"]
    );
    for file in model_files {
        let name = file["name"].as_str().unwrap();
        let path = model.join(name);
        assert_eq!(
            hash(file, "SHA-256"),
            Some(sha256_hex(&std::fs::read(&path).unwrap())),
            "{name}"
        );
        assert_eq!(hash(file, "BLAKE3"), Some(b3sum(&path)), "{name}");
        assert_eq!(
            property(file, "vouch:file:size"),
            Some(std::fs::metadata(&path).unwrap().len().to_string())
        );
    }

    let spdx = work.path().join("tiny.spdx.json");
    sbom(&reference, &spdx, &["--format", "spdx"], None).expect(0);
    validate_spdx(&spdx);
    let document = read_json(&spdx);
    let packages = document["packages"].as_array().unwrap();
    assert_eq!(packages.len(), 2);
    let (image, described) = (&packages[0], &packages[1]);
    assert_eq!(described["SPDXID"], "SPDXRef-Model");
    assert!(has_relationship(
        &document,
        &image["SPDXID"],
        "CONTAINS",
        &described["SPDXID"]
    ));
    for (name, _) in &files {
        let file = document["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["fileName"] == format!("./{name}"))
            .unwrap_or_else(|| panic!("no file {name}: {document:#}"));
        assert_eq!(checksum(file, "SHA1"), Some(sha1sum(&model.join(name))));
        assert!(has_relationship(
            &document,
            &described["SPDXID"],
            "CONTAINS",
            &file["SPDXID"]
        ));
    }
}

#[test]
fn an_image_layout_is_described_offline_reproducibly_and_per_platform() {
    let Some(python) = peers("an_image_layout_is_described_offline") else {
        return;
    };
    let mut registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let built = two_layer_image(&work.path().join("img"), "v1", "amd64", 32);
    let reference = registry.reference("team/app:v1");
    skopeo_copy(&built.reference("v1"), &reference, false);
    let from_registry = work.path().join("registry.cdx.json");
    sbom(&reference, &from_registry, &[], None).expect(0);
    let pulled = Layout::at(&work.path().join("pulled"));
    skopeo_copy(&reference, &pulled.reference("v1"), false);
    registry.stop();

    // Offline, twice with SOURCE_DATE_EPOCH: the same bytes, and the registry's layers.
    for format in ["cyclonedx", "spdx"] {
        let first = work.path().join(format!("first.{format}.json"));
        let second = work.path().join(format!("second.{format}.json"));
        for out in [&first, &second] {
            sbom(
                &pulled.reference("v1"),
                out,
                &["--format", format],
                Some("1700000000"),
            )
            .expect(0);
        }
        assert_eq!(
            std::fs::read(&first).unwrap(),
            std::fs::read(&second).unwrap(),
            "{format}"
        );
        if format == "cyclonedx" {
            validate_cyclonedx(&python, &first);
            let names = |bom: &Value| -> Vec<Value> {
                bom["metadata"]["component"]["components"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["name"].clone())
                    .collect()
            };
            let offline = read_json(&first);
            assert_eq!(names(&offline), names(&read_json(&from_registry)));
            let purl = offline["metadata"]["component"]["purl"].as_str().unwrap();
            assert!(purl.starts_with("pkg:oci/pulled@sha256:"), "{purl}");
            assert!(purl.ends_with("?tag=v1"), "{purl}");
        } else {
            validate_spdx(&first);
        }
    }

    // A multi-platform index: the platform asked for, the index's digest in the purl.
    let multi = work.path().join("multi");
    two_layer_image(&multi, "amd64", "amd64", 33);
    let layout = two_layer_image(&multi, "arm64", "arm64", 34);
    let index = layout.put_index("v2", &[("amd64", "amd64"), ("arm64", "arm64")]);
    let out = work.path().join("arm64.cdx.json");
    sbom(
        &layout.reference("v2"),
        &out,
        &["--platform", "linux/arm64"],
        None,
    )
    .expect(0);
    validate_cyclonedx(&python, &out);
    let image = read_json(&out)["metadata"]["component"].clone();
    let index_digest = index["digest"].as_str().unwrap();
    assert!(
        image["purl"]
            .as_str()
            .unwrap()
            .starts_with(&format!("pkg:oci/multi@{index_digest}?arch=arm64&tag=v2")),
        "{image:#}"
    );
    assert_eq!(
        property(&image, "vouch:oci:manifest-digest").as_deref(),
        layout.descriptor("arm64")["digest"].as_str()
    );
    assert_eq!(
        property(&image, "vouch:oci:platform").as_deref(),
        Some("linux/arm64")
    );
    let arm64_layers = layout.manifest("arm64")["layers"].clone();
    assert_eq!(image["components"][1]["name"], arm64_layers[0]["digest"]);
}

#[test]
fn no_sbom_is_written_from_a_blob_that_does_not_match_its_descriptor() {
    if peers("no_sbom_from_a_corrupt_blob").is_none() {
        return;
    }
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let built = two_layer_image(&work.path().join("img"), "v1", "amd64", 35);
    let reference = registry.reference("team/app:v1");
    skopeo_copy(&built.reference("v1"), &reference, false);
    let pulled = Layout::at(&work.path().join("pulled"));
    skopeo_copy(&reference, &pulled.reference("v1"), false);
    let layer = built.manifest("v1")["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    flip_byte(&registry.blob_data(&layer), 100);
    flip_byte(&pulled.blob_path(&layer), 100);
    for target in [reference, pulled.reference("v1")] {
        for format in ["cyclonedx", "spdx"] {
            let out = work.path().join(format!("out.{format}.json"));
            let ran = sbom(&target, &out, &["--format", format], None).expect(1);
            assert!(
                ran.stderr.contains(&format!("layer 1 {layer}")),
                "{target}: {}",
                ran.stderr
            );
            assert!(ran.stderr.contains("no SBOM written"), "{}", ran.stderr);
            assert!(!out.exists(), "{target}: an SBOM was written");
        }
    }
    // Registry options belong to images: with a model directory they are usage errors.
    let model = work.path().join("img");
    for args in [&["--platform", "linux/amd64"][..], &["--insecure"]] {
        let out = work.path().join("model.cdx.json");
        let ran = sbom(model.to_str().unwrap(), &out, args, None).expect(2);
        assert!(ran.stderr.contains("go with an image"), "{}", ran.stderr);
    }
}
