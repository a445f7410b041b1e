//! CNCF ModelPack artifacts pushed by the real `modelpack-client` (PyPI) to Debian's
//! docker-registry on loopback: raw layers and directories packed as tar, tar+gzip and
//! tar+zstd layers, compared file by file with the OMS manifest of the same files on disk.
//! Hostile tar layers (which modelpack-client refuses to write) are written with Python's
//! own tarfile into an image layout and carried to the registry by skopeo.

mod common;
mod oci_support;

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use common::*;
use oci_support::*;
use serde_json::json;

const RAW: &str = "application/vnd.cncf.model.weight.v1.raw";
const CONFIG_RAW: &str = "application/vnd.cncf.model.weight.config.v1.raw";
const TAR: &str = "application/vnd.cncf.model.weight.v1.tar";
const TAR_GZIP: &str = "application/vnd.cncf.model.weight.v1.tar+gzip";
const TAR_ZSTD: &str = "application/vnd.cncf.model.weight.v1.tar+zstd";

/// The peers every test here needs: the registry tools and modelpack-client's command.
fn modelpack_peers(test: &str) -> bool {
    registry_peers(test) && require_tool(test, "modelpack").is_some()
}

/// The model every test pushes: a raw weights file, a raw config, and three directories
/// that modelpack-client packs as tar layers of each compression.
fn model_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("config.json", br#"{"hidden_size": 64}"#.to_vec()),
        ("model.safetensors", pseudo_random(300_000, 31)),
        ("tokenizer/vocab.txt", b"hello\nworld\n".to_vec()),
        ("tokenizer/merges.txt", b"h e\nl l\n".to_vec()),
        ("shards/part-1.bin", pseudo_random(70_000, 32)),
        ("docs/README.md", b"# tiny\n".to_vec()),
    ]
}

/// `modelpack push` of the directory `model` with the given `--layer` arguments (paths
/// relative to `model`, each optionally `:MEDIA_TYPE`).
fn modelpack_push(model: &Path, reference: &str, layers: &[&str]) {
    let config = model.parent().unwrap().join("modelpack-config.json");
    std::fs::write(
        &config,
        json!({
            "descriptor": {"name": "tiny", "version": "1.0.0"},
            "config": {"format": "safetensors"},
            "modelfs": {"type": "layers", "diffIds": []},
        })
        .to_string(),
    )
    .unwrap();
    let mut command = Command::new("modelpack");
    command
        .current_dir(model)
        .args(["--insecure", "push", "--config"])
        .arg(&config);
    for layer in layers {
        command.args(["--layer", layer]);
    }
    command.arg(reference.strip_prefix("docker://").unwrap());
    peer(&mut command);
}

/// The manifest `reference` names, as skopeo reads it from the registry.
fn oci_manifest(reference: &str) -> serde_json::Value {
    let ran =
        peer(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", reference]));
    serde_json::from_str(&ran.stdout()).unwrap()
}

fn every_shape() -> Vec<String> {
    vec![
        "model.safetensors".to_string(),
        format!("config.json:{CONFIG_RAW}"),
        format!("tokenizer:{TAR_ZSTD}"),
        format!("shards:{TAR_GZIP}"),
        format!("docs:{TAR}"),
    ]
}

fn borrowed<'a>(files: &'a [(&'static str, Vec<u8>)]) -> Vec<(&'static str, &'a [u8])> {
    files.iter().map(|(n, b)| (*n, b.as_slice())).collect()
}

#[test]
fn a_modelpack_artifact_with_raw_and_tar_layers_is_compared_file_by_file() {
    let test = "a_modelpack_artifact_with_raw_and_tar_layers_is_compared_file_by_file";
    if !modelpack_peers(test) {
        return;
    }
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let files = model_files();
    let model = work.path().join("model");
    write_tree(&model, &borrowed(&files));
    let approved = work.path().join("approved.json");
    write_manifest(&model, &approved, &[]);
    let approved = approved.to_str().unwrap();

    let reference = registry.reference("models/tiny:v1");
    let shapes = every_shape();
    let layers: Vec<&str> = shapes.iter().map(String::as_str).collect();
    modelpack_push(&model, &reference, &layers);

    // What modelpack-client wrote is what this test is about: each compression once.
    let manifest = oci_manifest(&reference);
    assert_eq!(
        manifest["artifactType"], "application/vnd.cncf.model.manifest.v1+json",
        "{manifest:#}"
    );
    let media_types: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    assert_eq!(media_types, [RAW, CONFIG_RAW, TAR_ZSTD, TAR_GZIP, TAR]);

    let report = oci_verify(&reference, &["--manifest", approved])
        .expect(0)
        .json();
    for (name, bytes) in &files {
        let subject = subjects_named(&report, name)
            .into_iter()
            .find(|s| s["name"] == *name)
            .unwrap_or_else(|| panic!("no subject {name}: {report:#}"));
        assert_eq!(subject["verdict"], "ok", "{name}: {report:#}");
        assert_eq!(subject["actual"], format!("sha256:{}", sha256_hex(bytes)));
    }

    // A file changed inside a tar layer (one flipped bit), as modelpack-client packs it.
    let mut drifted_files = files.clone();
    drifted_files[4].1[60_000] ^= 1;
    let drifted = work.path().join("drifted");
    write_tree(&drifted, &borrowed(&drifted_files));
    let drifted_reference = registry.reference("models/tiny:v2");
    modelpack_push(&drifted, &drifted_reference, &layers);
    let report = oci_verify(&drifted_reference, &["--manifest", approved])
        .expect(1)
        .json();
    assert_eq!(
        failures(&report),
        [("shards/part-1.bin".into(), "changed".into())],
        "{report:#}"
    );

    // A layer left out (the tokenizer) and one added (a file nobody approved).
    std::fs::write(drifted.join("notes.txt"), b"not approved").unwrap();
    let third = registry.reference("models/tiny:v3");
    modelpack_push(
        &model,
        &third,
        &[
            "model.safetensors",
            &format!("config.json:{CONFIG_RAW}"),
            &format!("shards:{TAR_GZIP}"),
            &format!("docs:{TAR}"),
            &format!("../drifted/notes.txt:{RAW}"),
        ],
    );
    let report = oci_verify(&third, &["--manifest", approved])
        .expect(1)
        .json();
    assert_eq!(
        failures(&report),
        [
            ("notes.txt".into(), "extra".into()),
            ("tokenizer/merges.txt".into(), "missing".into()),
            ("tokenizer/vocab.txt".into(), "missing".into()),
        ],
        "{report:#}"
    );

    // The content of a tar layer's blob, not only its descriptor, is what is compared.
    let tar_layer = manifest["layers"][2]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    flip_byte(&registry.blob_data(&tar_layer), 20);
    let ran = oci_verify(&reference, &["--manifest", approved]);
    let report = ran.expect(1).json();
    assert!(
        failures(&report)
            .iter()
            .any(|(name, verdict)| name.contains(&tar_layer) && verdict != "ok"),
        "{report:#}"
    );
}

#[test]
fn hostile_tar_layers_are_rejected_naming_the_entry() {
    let test = "hostile_tar_layers_are_rejected_naming_the_entry";
    if !registry_peers(test) {
        return;
    }
    let Some(python) = peer_python(test) else {
        return;
    };
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("model");
    write_tree(
        &model,
        &[
            ("config.json", b"{}".as_slice()),
            ("tokenizer/vocab.txt", b"hello\n".as_slice()),
        ],
    );
    let approved = work.path().join("approved.json");
    write_manifest(&model, &approved, &[]);
    let approved = approved.to_str().unwrap();

    let cases = [
        (
            "parent",
            r#"[("tokenizer/vocab.txt", "file", "hello\n"), ("../x", "file", "escaped")]"#,
            "../x",
        ),
        (
            "absolute",
            r#"[("tokenizer/vocab.txt", "file", "hello\n"), ("/etc/x", "file", "escaped")]"#,
            "/etc/x",
        ),
        (
            "symlink-out",
            r#"[("tokenizer/vocab.txt", "symlink", "../../../etc/passwd")]"#,
            "tokenizer/vocab.txt",
        ),
        (
            "hardlink",
            r#"[("tokenizer/a.txt", "file", "hello\n"), ("tokenizer/vocab.txt", "hardlink", "tokenizer/a.txt")]"#,
            "tokenizer/vocab.txt",
        ),
        (
            "duplicate",
            r#"[("tokenizer/vocab.txt", "file", "hello\n"), ("tokenizer/vocab.txt", "file", "other\n")]"#,
            "tokenizer/vocab.txt",
        ),
    ];
    let layout = Layout::empty(&work.path().join("layout"));
    for (tag, entries, named) in cases {
        for media_type in [TAR, TAR_GZIP] {
            let tar = work.path().join(format!("{tag}.tar"));
            python_tar(&python, &tar, entries, media_type);
            let config = layout.write_blob(
                "application/vnd.cncf.model.config.v1+json",
                br#"{"descriptor":{"name":"tiny"},"config":{},"modelfs":{"type":"layers","diffIds":[]}}"#,
            );
            let mut raw = layout.write_blob(RAW, b"{}");
            raw["annotations"] = json!({"org.cncf.model.filepath": "config.json"});
            let mut layer = layout.write_blob(media_type, &std::fs::read(&tar).unwrap());
            layer["annotations"] = json!({"org.cncf.model.filepath": "tokenizer"});
            let full_tag = format!("{tag}-{}", media_type.len());
            layout.put_manifest(
                &full_tag,
                &json!({
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "artifactType": "application/vnd.cncf.model.manifest.v1+json",
                    "config": config,
                    "layers": [raw, layer],
                }),
            );
            let reference = registry.reference(&format!("models/hostile:{full_tag}"));
            skopeo_copy(&layout.reference(&full_tag), &reference, false);
            for target in [reference.clone(), layout.reference(&full_tag)] {
                let report = oci_verify(&target, &["--manifest", approved])
                    .expect(1)
                    .json();
                let rejected: Vec<_> = failures(&report)
                    .into_iter()
                    .filter(|(_, verdict)| verdict == "rejected")
                    .collect();
                assert!(
                    rejected.iter().any(|(name, _)| name.contains(named)),
                    "{target} ({tag}, {media_type}): no rejected subject naming {named}: {report:#}"
                );
            }
            // An SBOM lists no file for the hostile entry, and warns naming it.
            let sbom = work.path().join(format!("{full_tag}.cdx.json"));
            let ran = run(vouch()
                .args(["sbom", &layout.reference(&full_tag), "-o"])
                .arg(&sbom))
            .expect(0);
            assert!(
                ran.stderr.contains(&format!("'{named}'")),
                "{tag} ({media_type}): no warning naming {named}: {}",
                ran.stderr
            );
            let bom: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&sbom).unwrap()).unwrap();
            let listed: Vec<String> = bom["metadata"]["component"]["components"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["type"] == "machine-learning-model")
                .flat_map(|m| m["components"].as_array().unwrap().clone())
                .map(|f| f["name"].as_str().unwrap().to_string())
                .collect();
            assert!(listed.contains(&"config.json".to_string()), "{bom:#}");
            assert!(
                !listed
                    .iter()
                    .any(|n| n == named || n == "x" || n == "etc/x"),
                "{tag} ({media_type}): {listed:?}"
            );
        }
    }
}

/// The `GET`s of blobs the registry's access log records.
fn blob_requests(registry: &Registry) -> Vec<String> {
    registry
        .log()
        .lines()
        .filter(|line| line.contains("\"GET /v2/") && line.contains("/blobs/"))
        .map(str::to_string)
        .collect()
}

#[test]
fn no_pull_compares_raw_layer_digests_and_reads_no_blob() {
    let test = "no_pull_compares_raw_layer_digests_and_reads_no_blob";
    if !modelpack_peers(test) {
        return;
    }
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let files = model_files()[..2].to_vec();
    let model = work.path().join("model");
    write_tree(&model, &borrowed(&files));
    let approved = work.path().join("approved.json");
    write_manifest(&model, &approved, &[]);
    let approved = approved.to_str().unwrap();
    let raw_layers = ["model.safetensors", &format!("config.json:{CONFIG_RAW}")];
    let reference = registry.reference("models/raw:v1");
    modelpack_push(&model, &reference, &raw_layers);
    let pushed = blob_requests(&registry).len();

    let report = oci_verify(&reference, &["--manifest", approved, "--no-pull"])
        .expect(0)
        .json();
    assert!(
        report["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("no blob was read")),
        "{report:#}"
    );
    for (name, bytes) in &files {
        let subject = subjects_named(&report, name)
            .into_iter()
            .find(|s| s["name"] == *name)
            .unwrap_or_else(|| panic!("no subject {name}: {report:#}"));
        assert_eq!(subject["verdict"], "ok");
        assert_eq!(subject["actual"], format!("sha256:{}", sha256_hex(bytes)));
    }
    assert!(report["approval"]
        .as_str()
        .unwrap()
        .contains("no blob read"));
    assert_eq!(blob_requests(&registry).len(), pushed, "a blob was fetched");
    // The access log does record blob reads: a verify without the flag makes some.
    oci_verify(&reference, &["--manifest", approved]).expect(0);
    assert!(blob_requests(&registry).len() > pushed);

    // A manifest that names another digest for a file is caught, still reading no blob.
    let mut changed = files.clone();
    changed[1].1[1_000] ^= 1;
    let drifted = work.path().join("drifted");
    write_tree(&drifted, &borrowed(&changed));
    let drifted_reference = registry.reference("models/raw:v2");
    modelpack_push(&drifted, &drifted_reference, &raw_layers);
    let pushed = blob_requests(&registry).len();
    let report = oci_verify(&drifted_reference, &["--manifest", approved, "--no-pull"])
        .expect(1)
        .json();
    assert_eq!(
        failures(&report),
        [("model.safetensors".into(), "changed".into())]
    );
    assert_eq!(blob_requests(&registry).len(), pushed, "a blob was fetched");

    // A tar layer's files are known only by reading it: a usage error naming the layer.
    let tarred = registry.reference("models/raw:tar");
    modelpack_push(
        &model,
        &tarred,
        &[
            &format!("model.safetensors:{TAR}"),
            &format!("config.json:{CONFIG_RAW}"),
        ],
    );
    let ran = oci_verify(&tarred, &["--manifest", approved, "--no-pull"]);
    assert!(
        ran.stderr.contains("--no-pull cannot check layer 1") && ran.stderr.contains("tar layer"),
        "{}",
        ran.stderr
    );
    ran.expect(2);
}

#[test]
fn manifest_and_digest_of_an_artifact_equal_those_of_its_files_and_pull_only_tar_layers() {
    let test =
        "manifest_and_digest_of_an_artifact_equal_those_of_its_files_and_pull_only_tar_layers";
    if !modelpack_peers(test) {
        return;
    }
    let Some(python) = peer_python(test) else {
        return;
    };
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let files = model_files();
    // Named as the repository's last component, as the artifact's manifest names its model.
    let model = work.path().join("tiny");
    write_tree(&model, &borrowed(&files));
    let reference = registry.reference("models/tiny:v1");
    let shapes = every_shape();
    let layers: Vec<&str> = shapes.iter().map(String::as_str).collect();
    modelpack_push(&model, &reference, &layers);
    let pushed = blob_requests(&registry).len();

    let from_files = vouch_run([OsStr::new("manifest"), model.as_os_str()]).expect(0);
    let from_artifact = vouch_run(["manifest", &reference]).expect(0);
    assert_eq!(from_artifact.stdout(), from_files.stdout());
    // Only the three tar layers were read, never a raw one.
    let read = blob_requests(&registry);
    assert_eq!(read.len() - pushed, 3, "{read:#?}");
    let raw_digests: Vec<String> = oci_manifest(&reference)["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["mediaType"] == RAW || l["mediaType"] == CONFIG_RAW)
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    for line in &read[pushed..] {
        assert!(
            raw_digests.iter().all(|d| !line.contains(d.as_str())),
            "a raw layer was read: {line}"
        );
    }

    // The root digest is the one model-signing signs for the files.
    let keys = tempfile::tempdir().unwrap();
    model_signing(&python, &[OsStr::new("keygen"), keys.path().as_os_str()]);
    let signature = keys.path().join("model.sig");
    model_signing(
        &python,
        &[
            OsStr::new("sign"),
            model.as_os_str(),
            signature.as_os_str(),
            keys.path().join("key.pem").as_os_str(),
        ],
    );
    let signed = model_signing(&python, &[OsStr::new("subject"), signature.as_os_str()]);
    let digest = vouch_run(["digest", &reference]).expect(0);
    assert_eq!(
        digest.stdout(),
        format!("sha256:{}\n", signed.stdout().trim())
    );

    // An artifact whose files cannot all be named (an untitled layer) is no manifest.
    let work_layout = Layout::empty(&work.path().join("layout"));
    let config = work_layout.write_blob("application/vnd.cncf.model.config.v1+json", b"{}");
    let named = {
        let mut layer = work_layout.write_blob(RAW, b"weights");
        layer["annotations"] = json!({"org.cncf.model.filepath": "w.bin"});
        layer
    };
    let untitled = work_layout.write_blob(RAW, b"who am I");
    work_layout.put_manifest(
        "v1",
        &json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.cncf.model.manifest.v1+json",
            "config": config,
            "layers": [named, untitled],
        }),
    );
    let ran = vouch_run(["manifest", &work_layout.reference("v1")]);
    assert!(ran.stdout().is_empty());
    assert!(ran.stderr.contains("layer 2"), "{}", ran.stderr);
    ran.expect(1);
    // Shards or another algorithm cannot be read off layer digests.
    vouch_run(["manifest", &reference, "--shard-size", "1000"]).expect(2);
}

fn lookup_hash(entries: &serde_json::Value, key: &str, algorithm: &str, value: &str) -> String {
    entries
        .as_array()
        .unwrap_or_else(|| panic!("no {key} list"))
        .iter()
        .find(|e| e[key] == algorithm)
        .unwrap_or_else(|| panic!("no {algorithm} in {entries:#}"))[value]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn an_sbom_of_a_modelpack_artifact_lists_the_files_of_its_tar_layers() {
    let test = "an_sbom_of_a_modelpack_artifact_lists_the_files_of_its_tar_layers";
    if !modelpack_peers(test) || require_tool(test, "sha1sum").is_none() {
        return;
    }
    let Some(python) = peer_python(test) else {
        return;
    };
    if require_tool(test, "pyspdxtools").is_none() {
        return;
    }
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let files = model_files();
    let model = work.path().join("model");
    write_tree(&model, &borrowed(&files));
    let reference = registry.reference("models/tiny:v1");
    let shapes = every_shape();
    let layers: Vec<&str> = shapes.iter().map(String::as_str).collect();
    modelpack_push(&model, &reference, &layers);
    let root_digest = vouch_run(["digest".as_ref(), model.as_os_str()])
        .expect(0)
        .stdout()
        .trim()
        .to_string();
    let sha1 = |name: &str| {
        let ran = peer(Command::new("sha1sum").arg(model.join(name)));
        ran.stdout().split_whitespace().next().unwrap().to_string()
    };
    let mut names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
    names.sort();
    let sbom = |out: &Path, format: &str| {
        run(vouch()
            .args(["sbom", &reference, "--format", format, "-o"])
            .arg(out)
            .env("DOCKER_CONFIG", "/nonexistent/vouch-test-docker-config"))
        .expect(0);
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(out).unwrap()).unwrap()
    };

    let cdx = work.path().join("tiny.cdx.json");
    let bom = sbom(&cdx, "cyclonedx");
    validate_cyclonedx(&python, &cdx);
    let described = bom["metadata"]["component"]["components"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(described["type"], "machine-learning-model", "{bom:#}");
    let root = described["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "vouch:oms:root-digest")
        .map(|p| p["value"].as_str().unwrap().to_string());
    assert_eq!(root, Some(root_digest), "{described:#}");
    let components = described["components"].as_array().unwrap();
    let listed: Vec<&str> = components
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(sorted, names, "{described:#}");
    for (name, bytes) in &files {
        let file = components.iter().find(|f| f["name"] == *name).unwrap();
        assert_eq!(file["type"], "file", "{file:#}");
        assert_eq!(
            lookup_hash(&file["hashes"], "alg", "SHA-256", "content"),
            sha256_hex(bytes),
            "{name}"
        );
    }

    let spdx = work.path().join("tiny.spdx.json");
    let document = sbom(&spdx, "spdx");
    validate_spdx(&spdx);
    for (name, bytes) in &files {
        let file = document["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["fileName"] == format!("./{name}"))
            .unwrap_or_else(|| panic!("no file {name}: {document:#}"));
        assert_eq!(
            lookup_hash(&file["checksums"], "algorithm", "SHA256", "checksumValue"),
            sha256_hex(bytes),
            "{name}"
        );
        assert_eq!(
            lookup_hash(&file["checksums"], "algorithm", "SHA1", "checksumValue"),
            sha1(name),
            "{name}"
        );
    }
}

#[test]
fn no_sbom_is_written_of_a_tar_layer_that_is_no_tar_archive() {
    let work = tempfile::tempdir().unwrap();
    let layout = Layout::empty(&work.path().join("layout"));
    let config = layout.write_blob(
        "application/vnd.cncf.model.config.v1+json",
        br#"{"descriptor":{"name":"tiny"},"config":{},"modelfs":{"type":"layers","diffIds":[]}}"#,
    );
    let mut layer = layout.write_blob(TAR_GZIP, b"this is no gzip stream, and no tar either");
    layer["annotations"] = json!({"org.cncf.model.filepath": "tokenizer"});
    layout.put_manifest(
        "v1",
        &json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.cncf.model.manifest.v1+json",
            "config": config,
            "layers": [layer],
        }),
    );
    let out = work.path().join("tiny.cdx.json");
    let ran = run(vouch()
        .args(["sbom", &layout.reference("v1"), "-o"])
        .arg(&out))
    .expect(1);
    let digest = layer["digest"].as_str().unwrap();
    let all = format!("{}{}", ran.stderr, ran.stdout());
    assert!(
        all.contains(digest) && all.contains("ModelPack tar layer"),
        "{all}"
    );
    assert!(!out.exists(), "an SBOM was written");
}
