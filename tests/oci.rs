//! `vouch oci` against a real registry (Debian's docker-registry on 127.0.0.1), images built
//! by umoci and moved by skopeo, and OCI layouts on disk: verified images, corrupted blobs,
//! moved tags, a stopped registry, diff_ids, platforms, credentials and model artifacts.

mod common;
mod oci_support;

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use oci_support::*;
use serde_json::{json, Value};
use vouch::hash::Algorithm;

/// A registry holding a fresh two-layer image at `name` (`repo:tag`), with the layout it
/// was pushed from; `None` (after the skip is reported) when the peer tools are missing.
struct Pushed {
    registry: Registry,
    work: tempfile::TempDir,
    layout: Layout,
    reference: String,
}

fn pushed_image(test: &str, name: &str, seed: u64) -> Option<Pushed> {
    if !registry_peers(test) {
        return None;
    }
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let layout = two_layer_image(&work.path().join("img"), "v1", "amd64", seed);
    let reference = registry.reference(name);
    skopeo_copy(&layout.reference("v1"), &reference, false);
    Some(Pushed {
        registry,
        work,
        layout,
        reference,
    })
}

fn layer_digests(manifest: &Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn an_image_verifies_by_tag_and_by_digest() {
    let Some(Pushed {
        registry,
        layout,
        reference: by_tag,
        work: _work,
    }) = pushed_image("an_image_verifies_by_tag_and_by_digest", "team/app:v1", 1)
    else {
        return;
    };

    let digest = oci_digest(&by_tag);
    let skopeo_digest = peer(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--format",
        "{{.Digest}}",
        &by_tag,
    ]))
    .stdout();
    assert_eq!(digest, skopeo_digest.trim(), "vouch and skopeo disagree");

    let report = oci_verify(&by_tag, &[]).expect(0).json();
    assert_eq!(report["status"], "verified");
    assert_eq!(report["root_digest"], digest.as_str());
    let manifest = layout.manifest("v1");
    let layers = layer_digests(&manifest);
    assert_eq!(layers.len(), 2);
    for (i, layer) in layers.iter().enumerate() {
        let named = subjects_named(&report, layer);
        assert_eq!(named.len(), 1, "{report}");
        assert!(named[0]["name"]
            .as_str()
            .unwrap()
            .starts_with(&format!("layer {}", i + 1)));
        assert_eq!(named[0]["actual"], layer.as_str());
    }
    assert_eq!(report["subjects"].as_array().unwrap().len(), 4, "{report}");
    assert!(report["warnings"][0]
        .as_str()
        .unwrap()
        .contains("not pinned"));

    let by_digest = registry.reference(&format!("team/app@{digest}"));
    let pinned = oci_verify(&by_digest, &[]).expect(0).json();
    assert_eq!(pinned["subjects"][0]["expected"], digest.as_str());
    assert_eq!(pinned["warnings"].as_array().unwrap().len(), 0);

    let deep = oci_verify(&by_tag, &["--digest", &digest, "--diff-ids"])
        .expect(0)
        .json();
    assert_eq!(subjects_named(&deep, "diff_id").len(), 2, "{deep}");

    let text = run(vouch().args(["oci", "verify", &by_tag, "--digest", &digest])).expect(0);
    assert!(
        text.stdout().contains("vouch: verified"),
        "{}",
        text.stdout()
    );
}

/// A bare reference with an explicit host, as cosign, crane and oras take it, names the same
/// image as its `docker://` form; a corrupted blob behind it still fails.
#[test]
fn a_bare_reference_with_an_explicit_host_verifies() {
    let Some(Pushed {
        registry,
        reference,
        layout,
        work: _work,
    }) = pushed_image(
        "a_bare_reference_with_an_explicit_host_verifies",
        "team/bare:v1",
        21,
    )
    else {
        return;
    };
    let bare = reference.strip_prefix("docker://").unwrap().to_string();
    assert!(bare.starts_with("127.0.0.1:"));
    let digest = oci_digest(&reference);
    assert_eq!(oci_digest(&bare), digest);
    let report = oci_verify(&bare, &[]).expect(0).json();
    assert_eq!(report["status"], "verified");
    assert_eq!(report["root_digest"], digest.as_str());
    let pinned = format!("127.0.0.1:{}/team/bare@{digest}", registry.port);
    oci_verify(&pinned, &[]).expect(0);

    let layer = layer_digests(&layout.manifest("v1")).remove(0);
    flip_byte(&registry.blob_data(&layer), 100);
    let report = oci_verify(&bare, &[]).expect(1).json();
    assert_eq!(
        failures(&report),
        [(format!("layer 1 {layer}"), "changed".into())]
    );
}

/// Two pins that disagree are refused before anything is read (the layout does not exist):
/// the message names the pinned digest in words, and the hint names the flag.
#[test]
fn a_digest_flag_that_differs_from_the_references_digest_is_a_usage_error() {
    let (named, pinned) = (
        format!("sha256:{}", "a".repeat(64)),
        format!("sha256:{}", "b".repeat(64)),
    );
    let ran = run(vouch().args([
        "oci",
        "verify",
        &format!("oci:/nonexistent/layout@{named}"),
        "--digest",
        &pinned,
    ]))
    .expect(2);
    assert!(
        ran.stderr.contains(&format!(
            "the pinned digest {pinned} differs from the digest the reference names ({named})\nhint: leave out --digest or the reference's @digest"
        )),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_blob_corrupted_in_the_registry_fails_naming_the_layer() {
    let Some(Pushed {
        registry,
        layout,
        reference,
        work: _work,
    }) = pushed_image(
        "a_blob_corrupted_in_the_registry_fails_naming_the_layer",
        "corrupt/app:v1",
        2,
    )
    else {
        return;
    };
    let digest = oci_digest(&reference);
    let layers = layer_digests(&layout.manifest("v1"));

    flip_byte(&registry.blob_data(&layers[0]), 5000);
    let report = oci_verify(&reference, &["--digest", &digest])
        .expect(1)
        .json();
    let failed = failures(&report);
    assert_eq!(failed.len(), 1, "{report}");
    assert_eq!(failed[0].0, format!("layer 1 {}", layers[0]));
    assert_eq!(failed[0].1, "changed");
    let subject = subjects_named(&report, &layers[0])[0];
    assert_eq!(subject["expected"], layers[0].as_str());
    assert_ne!(subject["actual"], layers[0].as_str());

    let text = run(vouch().args(["oci", "verify", &reference])).expect(1);
    assert!(
        text.stdout()
            .contains(&format!("changed    layer 1 {}", layers[0])),
        "{}",
        text.stdout()
    );
    flip_byte(&registry.blob_data(&layers[0]), 5000);
    oci_verify(&reference, &["--digest", &digest]).expect(0);

    // A manifest corrupted in storage: the registry serves bytes that no longer hash to
    // the digest the tag records.
    flip_byte(&registry.blob_data(&digest), 20);
    let report = oci_verify(&reference, &[]).expect(1).json();
    assert_eq!(failures(&report), [("manifest".into(), "changed".into())]);
}

#[test]
fn a_moved_tag_fails_against_the_pinned_digest() {
    let Some(Pushed {
        registry,
        work,
        reference,
        ..
    }) = pushed_image(
        "a_moved_tag_fails_against_the_pinned_digest",
        "moving/app:stable",
        3,
    )
    else {
        return;
    };
    let approved = oci_digest(&reference);
    let second = two_layer_image(&work.path().join("b"), "v2", "amd64", 4);
    skopeo_copy(&second.reference("v2"), &reference, false);
    let current = oci_digest(&reference);
    assert_ne!(approved, current);

    let report = oci_verify(&reference, &["--digest", &approved])
        .expect(1)
        .json();
    assert_eq!(failures(&report), [("manifest".into(), "changed".into())]);
    let manifest = &report["subjects"][0];
    assert_eq!(manifest["expected"], approved.as_str());
    assert_eq!(manifest["actual"], current.as_str());
    assert!(manifest["message"].as_str().unwrap().contains("moved"));

    // The approved image itself is still there, by digest.
    oci_verify(&registry.reference(&format!("moving/app@{approved}")), &[]).expect(0);
}

#[test]
fn a_stopped_registry_is_an_operational_error_and_fails_fast() {
    let Some(Pushed {
        mut registry,
        reference,
        ..
    }) = pushed_image(
        "a_stopped_registry_is_an_operational_error_and_fails_fast",
        "gone/app:v1",
        5,
    )
    else {
        return;
    };
    oci_verify(&reference, &[]).expect(0);
    registry.stop();

    let started = Instant::now();
    let ran = oci_verify(&reference, &["--timeout", "2", "--retries", "2"]).expect(3);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        ran.stderr.contains("Connection refused") && ran.stderr.contains("3 attempts"),
        "{}",
        ran.stderr
    );
    assert_eq!(ran.json()["status"], "error");
    let digest = run_within(
        vouch().args(["oci", "digest", &reference, "--retries", "0"]),
        Duration::from_secs(20),
    )
    .expect(3);
    assert!(
        digest.stderr.contains("cannot connect"),
        "{}",
        digest.stderr
    );
}

#[test]
fn a_layout_written_by_skopeo_verifies_offline_and_a_corrupt_blob_fails() {
    let Some(Pushed {
        mut registry,
        work,
        reference,
        ..
    }) = pushed_image(
        "a_layout_written_by_skopeo_verifies_offline_and_a_corrupt_blob_fails",
        "pulled/app:v1",
        6,
    )
    else {
        return;
    };
    let pulled = Layout::at(&work.path().join("pulled"));
    skopeo_copy(&reference, &pulled.reference("v1"), false);
    let digest = oci_digest(&reference);
    registry.stop();

    assert_eq!(oci_digest(&pulled.reference("v1")), digest);
    let report = oci_verify(
        &pulled.reference("v1"),
        &["--digest", &digest, "--diff-ids"],
    )
    .expect(0)
    .json();
    assert_eq!(report["subjects"].as_array().unwrap().len(), 6, "{report}");

    let manifest = pulled.manifest("v1");
    let layers = layer_digests(&manifest);
    flip_byte(&pulled.blob_path(&layers[1]), 30);
    let report = oci_verify(&pulled.reference("v1"), &[]).expect(1).json();
    assert_eq!(
        failures(&report),
        [(format!("layer 2 {}", layers[1]), "changed".into())]
    );

    let config = manifest["config"]["digest"].as_str().unwrap();
    std::fs::remove_file(pulled.blob_path(config)).unwrap();
    let report = oci_verify(&pulled.reference("v1"), &[]).expect(1).json();
    let missing = subjects_named(&report, config)[0];
    assert_eq!(missing["verdict"], "missing");
    assert!(missing["message"]
        .as_str()
        .unwrap()
        .contains("absent from the layout"));
}

/// Rewrites the configuration of image `from` so that its second diff_id is wrong, and tags
/// the result `to`: every blob stays valid, only the uncompressed content disagrees.
fn with_wrong_diff_id(layout: &Layout, from: &str, to: &str) -> String {
    let mut manifest = layout.manifest(from);
    let mut config = layout.read_json(manifest["config"]["digest"].as_str().unwrap());
    config["rootfs"]["diff_ids"][1] = json!(format!("sha256:{}", sha256_hex(b"another layer")));
    manifest["config"] = layout.write_blob(
        "application/vnd.oci.image.config.v1+json",
        config.to_string().as_bytes(),
    );
    layout.put_manifest(to, &manifest);
    layer_digests(&manifest)[1].clone()
}

#[test]
fn diff_ids_catch_a_configuration_that_lists_a_wrong_one() {
    if !registry_peers("diff_ids_catch_a_configuration_that_lists_a_wrong_one") {
        return;
    }
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let layout = two_layer_image(&work.path().join("img"), "v1", "amd64", 7);
    let layer = with_wrong_diff_id(&layout, "v1", "bad");

    oci_verify(&layout.reference("bad"), &[]).expect(0);
    let report = oci_verify(&layout.reference("bad"), &["--diff-ids"])
        .expect(1)
        .json();
    assert_eq!(
        failures(&report),
        [(format!("layer 2 diff_id {layer}"), "changed".into())]
    );

    let reference = registry.reference("diff/app:bad");
    skopeo_copy(&layout.reference("bad"), &reference, false);
    oci_verify(&reference, &[]).expect(0);
    let report = oci_verify(&reference, &["--diff-ids"]).expect(1).json();
    assert_eq!(
        failures(&report),
        [(format!("layer 2 diff_id {layer}"), "changed".into())]
    );
}

#[test]
fn diff_ids_of_gzip_zstd_and_uncompressed_layers() {
    const TEST: &str = "diff_ids_of_gzip_zstd_and_uncompressed_layers";
    if ["tar", "gzip", "zstd"]
        .iter()
        .any(|tool| require_tool(TEST, tool).is_none())
    {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let layout = Layout::empty(&work.path().join("layout"));
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for (i, (media_type, compressor)) in [
        (
            "application/vnd.oci.image.layer.v1.tar+gzip",
            Some(("gzip", "tar.gz")),
        ),
        (
            "application/vnd.oci.image.layer.v1.tar+zstd",
            Some(("zstd", "tar.zst")),
        ),
        ("application/vnd.oci.image.layer.v1.tar", None),
    ]
    .into_iter()
    .enumerate()
    {
        let files = work.path().join(format!("files{i}"));
        write_tree(
            &files,
            &[("data.bin", &pseudo_random(150_000, 10 + i as u64))],
        );
        let archive = work.path().join(format!("layer{i}.tar"));
        peer(
            Command::new("tar")
                .arg("-cf")
                .arg(&archive)
                .arg("-C")
                .arg(&files)
                .arg("."),
        );
        let tar = std::fs::read(&archive).unwrap();
        let blob = match compressor {
            Some((tool, suffix)) => {
                peer(Command::new(tool).args(["-q", "-k"]).arg(&archive));
                std::fs::read(archive.with_extension(suffix)).unwrap()
            }
            None => tar.clone(),
        };
        diff_ids.push(format!("sha256:{}", sha256_hex(&tar)));
        layers.push(layout.write_blob(media_type, &blob));
    }
    let image = |diff_ids: &[String]| {
        let config = json!({
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": layout.write_blob("application/vnd.oci.image.config.v1+json", config.to_string().as_bytes()),
            "layers": layers,
        })
    };
    layout.put_manifest("good", &image(&diff_ids));
    let report = oci_verify(&layout.reference("good"), &["--diff-ids"])
        .expect(0)
        .json();
    assert_eq!(subjects_named(&report, "diff_id").len(), 3, "{report}");

    let mut wrong = diff_ids.clone();
    wrong[1] = diff_ids[2].clone();
    layout.put_manifest("bad", &image(&wrong));
    let report = oci_verify(&layout.reference("bad"), &["--diff-ids"])
        .expect(1)
        .json();
    let failed = failures(&report);
    assert_eq!(failed.len(), 1, "{report}");
    assert!(failed[0].0.starts_with("layer 2 diff_id "), "{failed:?}");
    let subject = subjects_named(&report, "layer 2 diff_id")[0];
    assert_eq!(subject["actual"], diff_ids[1].as_str());
}

#[test]
fn a_multi_platform_index_verifies_one_platform_or_all() {
    if !registry_peers("a_multi_platform_index_verifies_one_platform_or_all") {
        return;
    }
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("multi");
    two_layer_image(&dir, "amd64", "amd64", 8);
    let layout = two_layer_image(&dir, "arm64", "arm64", 9);
    let index = layout.put_index("multi", &[("amd64", "amd64"), ("arm64", "arm64")]);
    let reference = registry.reference("multi/app:v1");
    skopeo_copy(&layout.reference("multi"), &reference, true);
    assert_eq!(oci_digest(&reference), index["digest"].as_str().unwrap());
    let arm64_layers = layer_digests(&layout.manifest("arm64"));
    let amd64_manifest = layout.descriptor("amd64")["digest"]
        .as_str()
        .unwrap()
        .to_string();

    let arm64 = oci_verify(&reference, &["--platform", "linux/arm64", "--diff-ids"])
        .expect(0)
        .json();
    assert_eq!(arm64["subjects"][0]["name"], "index");
    assert_eq!(subjects_named(&arm64, "linux/arm64 manifest").len(), 1);
    assert!(subjects_named(&arm64, &amd64_manifest).is_empty());
    for layer in &arm64_layers {
        assert_eq!(subjects_named(&arm64, layer).len(), 2, "blob and diff_id");
    }

    let all = oci_verify(&reference, &["--all-platforms"])
        .expect(0)
        .json();
    assert_eq!(subjects_named(&all, " manifest sha256:").len(), 2);
    assert_eq!(subjects_named(&all, "linux/amd64 layer").len(), 2, "{all}");
    assert_eq!(subjects_named(&all, "linux/arm64 layer").len(), 2, "{all}");

    let host = oci_verify(&reference, &[]).expect(0).json();
    assert_eq!(subjects_named(&host, " manifest sha256:").len(), 1);

    let absent = oci_verify(&reference, &["--platform", "linux/s390x"])
        .expect(1)
        .json();
    assert_eq!(
        failures(&absent),
        [("manifest for linux/s390x".into(), "missing".into())]
    );
    assert!(subjects_named(&absent, "s390x")[0]["message"]
        .as_str()
        .unwrap()
        .contains("linux/amd64, linux/arm64"));

    flip_byte(&registry.blob_data(&arm64_layers[0]), 100);
    oci_verify(&reference, &["--platform", "linux/amd64"]).expect(0);
    let all = oci_verify(&reference, &["--all-platforms"])
        .expect(1)
        .json();
    assert_eq!(
        failures(&all),
        [(
            format!("linux/arm64 layer 1 {}", arm64_layers[0]),
            "changed".into()
        )]
    );
}

/// Each file has an `ok` subject of its own name whose actual digest is the SHA-256 of its
/// bytes.
fn assert_files_ok(report: &Value, files: &[(&str, Vec<u8>)]) {
    for (name, bytes) in files {
        let subject = subjects_named(report, name)
            .into_iter()
            .find(|s| s["name"] == *name)
            .unwrap_or_else(|| panic!("no subject {name}: {report:#}"));
        assert_eq!(subject["verdict"], "ok");
        assert_eq!(subject["actual"], format!("sha256:{}", sha256_hex(bytes)));
    }
}

#[test]
fn a_model_artifact_is_compared_file_by_file_with_its_oms_manifest() {
    if !registry_peers("a_model_artifact_is_compared_file_by_file_with_its_oms_manifest") {
        return;
    }
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let (approved, files) = approved_model(work.path());
    let approved = approved.to_str().unwrap();
    let layout = Layout::empty(&work.path().join("artifact"));
    let borrowed: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    layout.put_artifact("v1", &borrowed);
    let reference = registry.reference("models/tiny:v1");
    skopeo_copy(&layout.reference("v1"), &reference, false);

    let report = oci_verify(&reference, &["--manifest", approved])
        .expect(0)
        .json();
    assert_files_ok(&report, &files);

    // One file changed (a single flipped bit), one left out, one added.
    let mut weights = files[1].1.clone();
    weights[150_000] ^= 1;
    layout.put_artifact(
        "v2",
        &[
            ("config.json", &files[0].1),
            ("model.safetensors", &weights),
            ("notes.txt", b"not approved"),
        ],
    );
    let drifted = registry.reference("models/tiny:v2");
    skopeo_copy(&layout.reference("v2"), &drifted, false);
    for target in [drifted.clone(), layout.reference("v2")] {
        let report = oci_verify(&target, &["--manifest", approved])
            .expect(1)
            .json();
        assert_eq!(
            failures(&report),
            [
                ("model.safetensors".into(), "changed".into()),
                ("notes.txt".into(), "extra".into()),
                ("tokenizer/vocab.txt".into(), "missing".into()),
            ],
            "{target}: {report}"
        );
    }

    // The file's content, not only its descriptor, is what is compared.
    let model_layer = layout.manifest("v1")["layers"][1]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    flip_byte(&registry.blob_data(&model_layer), 10);
    let report = oci_verify(&reference, &["--manifest", approved])
        .expect(1)
        .json();
    assert_eq!(
        failures(&report),
        [
            (
                format!("layer 2 {model_layer} (model.safetensors)"),
                "changed".into()
            ),
            ("model.safetensors".into(), "changed".into()),
        ]
    );
}

/// An EC P-256 key pair made by openssl in `dir`: `(NAME.pem, NAME.pub.pem)`.
fn ec_key_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    peer(
        Command::new("openssl")
            .args([
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
            ])
            .arg(&private),
    );
    peer(
        Command::new("openssl")
            .args(["ec", "-pubout", "-in"])
            .arg(&private)
            .arg("-out")
            .arg(&public),
    );
    (private, public)
}

#[test]
fn a_model_artifact_verifies_against_its_signature_before_its_files() {
    let test = "a_model_artifact_verifies_against_its_signature_before_its_files";
    if !registry_peers(test) || require_tool(test, "openssl").is_none() {
        return;
    }
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let (_, files) = approved_model(work.path());
    let (signer, signer_public) = ec_key_pair(work.path(), "signer");
    let (_, other_public) = ec_key_pair(work.path(), "other");
    let signature = work.path().join("model.sig");
    vouch_run([
        "sign".as_ref(),
        work.path().join("model").as_os_str(),
        "--key".as_ref(),
        signer.as_os_str(),
        "-o".as_ref(),
        signature.as_os_str(),
    ])
    .expect(0);
    let (layout, reference) = push_artifact(&registry, work.path(), "models/signed:v1", &files);
    let signature_name = signature.to_str().unwrap();
    let verify = |signature: &Path, key: &Path| {
        oci_verify(
            &reference,
            &[
                "--signature",
                signature.to_str().unwrap(),
                "--key",
                key.to_str().unwrap(),
            ],
        )
    };

    // The signature is checked first and named first; then every file against its payload.
    let report = verify(&signature, &signer_public).expect(0).json();
    let first = &report["subjects"][0];
    assert_eq!(first["name"], signature_name, "{report:#}");
    assert_eq!(first["verdict"], "ok");
    assert!(
        first["message"]
            .as_str()
            .unwrap()
            .starts_with("signed by key "),
        "{report:#}"
    );
    assert!(report["approval"]
        .as_str()
        .unwrap()
        .contains(&format!("signature {signature_name} (files, sha256)")));
    assert_files_ok(&report, &files);

    // Another key: rejected with the reason, and no blob is compared with the payload.
    let report = verify(&signature, &other_public).expect(1).json();
    assert_eq!(
        failures(&report),
        [(signature_name.to_string(), "rejected".into())]
    );
    assert_eq!(
        report["subjects"].as_array().unwrap().len(),
        1,
        "{report:#}"
    );
    assert!(
        report["subjects"][0]["message"]
            .as_str()
            .unwrap()
            .contains("wrong key"),
        "{report:#}"
    );

    // A payload altered after signing no longer verifies.
    let forged = work.path().join("forged.sig");
    edited_bundle(&signature, &forged, alter_payload);
    let report = verify(&forged, &signer_public).expect(1).json();
    assert_eq!(
        failures(&report),
        [(forged.to_str().unwrap().to_string(), "rejected".into())]
    );
    assert!(report["subjects"][0]["message"]
        .as_str()
        .unwrap()
        .contains("does not verify"));

    // One flipped byte in a file's layer, in the registry's storage: the file is named.
    let weights_layer = layout.manifest("v1")["layers"][1]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    flip_byte(&registry.blob_data(&weights_layer), 1000);
    let report = verify(&signature, &signer_public).expect(1).json();
    assert_eq!(report["subjects"][0]["verdict"], "ok");
    assert_eq!(
        failures(&report),
        [
            (
                format!("layer 2 {weights_layer} (model.safetensors)"),
                "changed".into()
            ),
            ("model.safetensors".into(), "changed".into()),
        ]
    );

    // A trusted root alone names no signer (a key, an identity or a trust policy is the
    // image's own signature policy), and --signature goes with no --manifest.
    let approved = work.path().join("approved.json");
    for (args, says) in [
        (
            vec!["--trusted-root", approved.to_str().unwrap()],
            "an image's own signatures are checked with one of",
        ),
        (
            vec![
                "--signature",
                signature_name,
                "--manifest",
                approved.to_str().unwrap(),
                "--key",
                signer_public.to_str().unwrap(),
            ],
            "'--signature <FILE>' cannot be used with '--manifest <FILE>'",
        ),
        (
            vec!["--signature", signature_name],
            "--signature needs exactly one of",
        ),
    ] {
        let ran = oci_verify(&reference, &args).expect(2);
        assert!(ran.stderr.contains(says), "{args:?}: {}", ran.stderr);
    }
}

#[test]
fn a_model_artifact_verifies_against_a_model_signing_signature() {
    let test = "a_model_artifact_verifies_against_a_model_signing_signature";
    if !registry_peers(test) {
        return;
    }
    let Some(python) = peer_python(test) else {
        return;
    };
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let (_, files) = approved_model(work.path());
    model_signing(&python, &[OsStr::new("keygen"), work.path().as_os_str()]);
    let signature = work.path().join("model-signing.sig");
    peer(
        Command::new(python.parent().unwrap().join("model_signing"))
            .args(["sign", "key", "--private_key"])
            .arg(work.path().join("key.pem"))
            .arg("--signature")
            .arg(&signature)
            .arg(work.path().join("model")),
    );
    let (_, reference) = push_artifact(&registry, work.path(), "models/peer-signed:v1", &files);
    let report = oci_verify(
        &reference,
        &[
            "--signature",
            signature.to_str().unwrap(),
            "--key",
            work.path().join("pub.pem").to_str().unwrap(),
        ],
    )
    .expect(0)
    .json();
    assert_eq!(report["subjects"][0]["name"], signature.to_str().unwrap());
    assert_eq!(
        report["subjects"].as_array().unwrap().len(),
        // The signature, the manifest, the configuration, three layers, three files.
        9,
        "{report:#}"
    );
}

#[test]
fn a_signature_in_model_signing_0_2_layout_is_an_input_error() {
    let test = "a_signature_in_model_signing_0_2_layout_is_an_input_error";
    let Some(testdata) = shared_testdata(test) else {
        return;
    };
    let fixture = testdata.join("model-signing-fixtures/v0.2.0-certificate");
    let work = tempfile::tempdir().unwrap();
    let layout = Layout::empty(&work.path().join("artifact"));
    layout.put_artifact("v1", &[("signme-1", b"unused")]);
    let ran = oci_verify(
        &layout.reference("v1"),
        &[
            "--signature",
            fixture.join("model.sig").to_str().unwrap(),
            "--certificate-chain",
            testdata
                .join("model-signing-fixtures/keys/certificate/ca-cert.pem")
                .to_str()
                .unwrap(),
        ],
    )
    .expect(2);
    assert!(ran.stderr.contains("unsupported"), "{}", ran.stderr);
}

#[test]
fn registry_credentials_from_stdin_and_docker_config() {
    if !registry_peers("registry_credentials_from_stdin_and_docker_config") {
        return;
    }
    // User "vouch", password "s3cret": a bcrypt (cost 4) line made with Python's crypt module.
    let registry = Registry::start_with_htpasswd(
        "vouch:$2b$04$PH/RCRcUQ39XcupkPZzcfutz4wmuSLxJzUHwc4vQAhGepCvvb/Jpe",
    );
    let work = tempfile::tempdir().unwrap();
    let layout = two_layer_image(&work.path().join("img"), "v1", "amd64", 11);
    let reference = registry.reference("private/app:v1");
    peer(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        "--dest-creds",
        "vouch:s3cret",
        &layout.reference("v1"),
        &reference,
    ]));

    let anonymous = oci_verify(&reference, &[]).expect(3);
    assert!(
        anonymous.stderr.contains("refused anonymous access")
            && anonymous
                .stderr
                .contains("\nhint: give --username with --password-stdin"),
        "{}",
        anonymous.stderr
    );

    let with_password = |password: &str| {
        let mut child = start(
            vouch()
                .args([
                    "oci",
                    "verify",
                    &reference,
                    "--username",
                    "vouch",
                    "--password-stdin",
                ])
                .env("DOCKER_CONFIG", work.path().join("no-docker-config"))
                .stdin(Stdio::piped()),
        );
        writeln!(child.stdin(), "{password}").unwrap();
        child.finish_within(Duration::from_secs(300))
    };
    with_password("s3cret").expect(0);
    let refused = with_password("wrong").expect(3);
    assert!(
        refused
            .stderr
            .contains("refused the credentials from the given username and password"),
        "{}",
        refused.stderr
    );

    let docker_config = work.path().join("docker");
    std::fs::create_dir(&docker_config).unwrap();
    // base64("vouch:s3cret")
    std::fs::write(
        docker_config.join("config.json"),
        format!(
            r#"{{"auths":{{"127.0.0.1:{}":{{"auth":"dm91Y2g6czNjcmV0"}}}}}}"#,
            registry.port
        ),
    )
    .unwrap();
    run(vouch()
        .args(["oci", "verify", &reference])
        .env("DOCKER_CONFIG", &docker_config))
    .expect(0);
}

/// Docker credential helpers named by config.json (`credHelpers` for the host, `credsStore`)
/// are run with the server URL on stdin, and their answer is used against a registry that
/// requires it; a helper that fails, prints no JSON, hangs or is missing is exit 3 naming it.
#[test]
fn docker_credential_helpers_are_run_and_their_failures_named() {
    if !registry_peers("docker_credential_helpers_are_run_and_their_failures_named") {
        return;
    }
    // User "vouch", password "s3cret" (as in registry_credentials_from_stdin_and_docker_config).
    let registry = Registry::start_with_htpasswd(
        "vouch:$2b$04$PH/RCRcUQ39XcupkPZzcfutz4wmuSLxJzUHwc4vQAhGepCvvb/Jpe",
    );
    let work = tempfile::tempdir().unwrap();
    let layout = two_layer_image(&work.path().join("img"), "v1", "amd64", 12);
    let reference = registry.reference("private/helped:v1");
    peer(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        "--dest-creds",
        "vouch:s3cret",
        &layout.reference("v1"),
        &reference,
    ]));
    let host = format!("127.0.0.1:{}", registry.port);
    let asked = work.path().join("asked");
    let path = credential_helpers(
        work.path(),
        &[
        (
            "vouchgood",
            format!(
                "read -r url\nprintf '%s' \"$1 $url\" > '{}'\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"vouch\",\"Secret\":\"s3cret\"}}' \"$url\"\n",
                asked.display()
            ),
        ),
        (
            "vouchwrong",
            "printf '{\"ServerURL\":\"x\",\"Username\":\"vouch\",\"Secret\":\"wrong\"}'\n".into(),
        ),
        ("vouchfails", "echo 'the keychain is locked' >&2\nexit 2\n".into()),
        ("vouchgarbage", "echo 'this is not json'\n".into()),
        (
            "vouchnone",
            "echo 'credentials not found in native keychain'\nexit 1\n".into(),
        ),
        ("vouchhangs", "exec sleep 300\n".into()),
        ],
    );
    let verify =
        |config: String| verify_with_docker_config(work.path(), &path, &reference, &config);

    verify(format!(r#"{{"credHelpers":{{"{host}":"vouchgood"}}}}"#)).expect(0);
    assert_eq!(
        std::fs::read_to_string(&asked).unwrap(),
        format!("get {host}")
    );
    // The store serves every host without a helper of its own; the host's helper wins.
    verify(r#"{"credsStore":"vouchgood"}"#.into()).expect(0);
    verify(format!(
        r#"{{"credsStore":"vouchwrong","credHelpers":{{"{host}":"vouchgood"}}}}"#
    ))
    .expect(0);
    let wrong = verify(r#"{"credsStore":"vouchwrong"}"#.into()).expect(3);
    assert!(
        wrong
            .stderr
            .contains("refused the credentials from docker-credential-vouchwrong"),
        "{}",
        wrong.stderr
    );
    let none = verify(r#"{"credsStore":"vouchnone"}"#.into()).expect(3);
    assert!(
        none.stderr.contains("refused anonymous access"),
        "{}",
        none.stderr
    );
    for (helper, says) in [
        ("vouchfails", "the keychain is locked"),
        ("vouchgarbage", "not its JSON answer"),
        ("vouchabsent", "not found on PATH"),
        ("vouchhangs", "gave no answer"),
    ] {
        let ran = verify(format!(r#"{{"credHelpers":{{"{host}":"{helper}"}}}}"#)).expect(3);
        assert!(
            ran.stderr
                .contains(&format!("credential helper docker-credential-{helper}"))
                && ran.stderr.contains(says),
            "{helper}: {}",
            ran.stderr
        );
    }
}

/// An identity token (the OAuth2 refresh token `docker login` keeps) from config.json or
/// from a credential helper is exchanged at the registry's token service with the
/// refresh-token grant, as containers/image exchanges one, and the pull token is used; the
/// registry checks that token (a JWT signed by the test token service). A token the service
/// refuses is exit 3.
#[test]
fn identity_tokens_are_exchanged_at_the_token_service() {
    const TEST: &str = "identity_tokens_are_exchanged_at_the_token_service";
    if !registry_peers(TEST) {
        return;
    }
    let Some(python) = peer_python(TEST) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let service = TokenService::start(&python, work.path());
    let registry = service.registry();
    let host = format!("127.0.0.1:{}", registry.port);
    let layout = two_layer_image(&work.path().join("img"), "v1", "amd64", 12);
    let reference = registry.reference("private/tokened:v1");
    // containers/image pushes with an identity token of its own auth file, written as
    // `docker login` writes one: the user name alone in `auth` ("vouch:"), and the token.
    let auth = work.path().join("auth.json");
    let login = format!(
        r#"{{"auths":{{"{host}":{{"auth":"dm91Y2g6","identitytoken":"refresh-for-vouch"}}}}}}"#
    );
    std::fs::write(&auth, &login).unwrap();
    peer(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        "--dest-authfile",
        auth.to_str().unwrap(),
        &layout.reference("v1"),
        &reference,
    ]));
    let exchanges = |log: &Path| {
        std::fs::read_to_string(log)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            .filter(|entry| entry["method"] == "POST")
            .collect::<Vec<_>>()
    };
    assert!(
        exchanges(&service.log)
            .iter()
            .any(|e| e["refresh_token_ok"] == true),
        "skopeo did not exchange the identity token: {}",
        std::fs::read_to_string(&service.log).unwrap()
    );

    let path = credential_helpers(
        work.path(),
        &[(
            "vouchtoken",
            r#"printf '{"ServerURL":"x","Username":"<token>","Secret":"refresh-for-vouch"}'"#
                .into(),
        )],
    );
    let verify =
        |config: String| verify_with_docker_config(work.path(), &path, &reference, &config);
    let before = exchanges(&service.log).len();
    verify(login.clone()).expect(0);
    let made = exchanges(&service.log);
    let mine = &made[before..];
    assert!(
        mine.iter().any(|e| e["refresh_token_ok"] == true
            && e["client_id"] == "vouch"
            && e["service"] == "vouch-test"
            && e["scope"][0] == "repository:private/tokened:pull"),
        "{mine:?}"
    );
    verify(format!(r#"{{"credHelpers":{{"{host}":"vouchtoken"}}}}"#)).expect(0);
    let refused = verify(format!(
        r#"{{"auths":{{"{host}":{{"identitytoken":"not-the-token"}}}}}}"#
    ))
    .expect(3);
    assert!(refused.stderr.contains("401"), "{}", refused.stderr);
    verify("{}".into()).expect(3);
}

/// Writes each `docker-credential-NAME` script (`#!/bin/sh` and BODY) into DIR/bin, and
/// returns a PATH that finds them first.
fn credential_helpers(dir: &Path, helpers: &[(&str, String)]) -> String {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for (name, body) in helpers {
        let script = bin.join(format!("docker-credential-{name}"));
        std::fs::write(&script, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// `vouch oci verify REFERENCE` with DIR/docker/config.json holding CONFIG, on PATH.
fn verify_with_docker_config(dir: &Path, path: &str, reference: &str, config: &str) -> Ran {
    let docker = dir.join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(docker.join("config.json"), config).unwrap();
    run_within(
        vouch()
            .args(["oci", "verify", reference])
            .env("DOCKER_CONFIG", &docker)
            .env("PATH", path),
        Duration::from_secs(120),
    )
}

#[test]
fn malformed_references_and_flags_are_usage_errors() {
    for (reference, why) in [
        ("docker://127.0.0.1:5000/app", "name a tag"),
        ("docker://127.0.0.1:5000/App:v1", "lower-case"),
        ("docker://127.0.0.1:5000/app@sha256:abc", "64 hex digits"),
        (
            "127.0.0.1:5000/app",
            "write ./127.0.0.1:5000/app for a path",
        ),
        ("registry/app:v1", "not an image reference"),
        ("oci:", "directory is empty"),
    ] {
        let ran = oci_verify(reference, &[]).expect(2);
        assert!(ran.stderr.contains(why), "{reference}: {}", ran.stderr);
        assert_eq!(ran.json()["status"], "error");
    }
    let work = tempfile::tempdir().unwrap();
    let missing = format!("oci:{}:v1", work.path().join("absent").display());
    assert!(oci_verify(&missing, &[])
        .expect(2)
        .stderr
        .contains("no such file"));
    let not_layout = format!("oci:{}:v1", work.path().display());
    assert!(oci_verify(&not_layout, &[])
        .expect(2)
        .stderr
        .contains("no oci-layout file"));
    for (args, says) in [
        (&["--platform", "linux"][..], "'linux' is not a platform"),
        (
            &["--digest", "sha256:xyz"],
            "a sha256 digest has 64 hex digits",
        ),
        (
            &["--platform", "linux/amd64", "--all-platforms"],
            "cannot be used with '--all-platforms'",
        ),
        (&["--username", "someone"], "--password-stdin"),
    ] {
        let ran = oci_verify("docker://127.0.0.1:5000/app:v1", args).expect(2);
        assert!(ran.stderr.contains(says), "{args:?}: {}", ran.stderr);
    }
}

#[test]
fn unsafe_or_ambiguous_artifact_titles_are_rejected() {
    let work = tempfile::tempdir().unwrap();
    let (approved, files) = approved_model(work.path());
    let layout = Layout::empty(&work.path().join("artifact"));
    layout.put_artifact(
        "v1",
        &[
            ("config.json", &files[0].1),
            ("model.safetensors", &files[1].1),
            ("tokenizer/vocab.txt", &files[2].1),
            ("../../etc/passwd", b"root:x:0:0"),
            ("config.json", b"a second config"),
        ],
    );
    let report = oci_verify(
        &layout.reference("v1"),
        &["--manifest", approved.to_str().unwrap()],
    )
    .expect(1)
    .json();
    assert_eq!(
        failures(&report),
        [
            ("../../etc/passwd".into(), "rejected".into()),
            ("config.json".into(), "rejected".into()),
        ],
        "{report}"
    );

    // A manifest made with shards cannot describe whole-file layers: an input error.
    let model = work.path().join("model");
    let shards = work.path().join("shards.json");
    write_manifest(&model, &shards, &["--shard-size", "1000"]);
    let ran = oci_verify(
        &layout.reference("v1"),
        &["--manifest", shards.to_str().unwrap()],
    )
    .expect(2);
    assert!(ran.stderr.contains("whole files"), "{}", ran.stderr);
}

#[test]
fn a_layout_blob_that_is_a_symlink_or_a_corrupt_index_entry_is_caught() {
    let work = tempfile::tempdir().unwrap();
    let layout = Layout::empty(&work.path().join("artifact"));
    let descriptor = layout.put_artifact("v1", &[("weights.bin", &pseudo_random(10_000, 30))]);
    let manifest = layout.manifest("v1");
    let weights = manifest["layers"][0]["digest"].as_str().unwrap();
    let outside = work.path().join("outside.bin");
    std::fs::rename(layout.blob_path(weights), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, layout.blob_path(weights)).unwrap();
    let report = oci_verify(&layout.reference("v1"), &[]).expect(1).json();
    let refused = subjects_named(&report, weights)[0];
    assert_eq!(refused["verdict"], "rejected");
    assert!(refused["message"]
        .as_str()
        .unwrap()
        .contains("symbolic link"));

    // The manifest blob no longer hashes to what index.json records.
    flip_byte(
        &layout.blob_path(descriptor["digest"].as_str().unwrap()),
        10,
    );
    let report = oci_verify(&layout.reference("v1"), &[]).expect(1).json();
    assert_eq!(report["subjects"][0]["verdict"], "changed");
    assert!(report["subjects"][0]["message"]
        .as_str()
        .unwrap()
        .contains("index.json"));
    let digest = run(vouch().args(["oci", "digest", &layout.reference("v1")])).expect(1);
    assert!(digest.stdout.is_empty());
    assert!(digest.stderr.contains("index.json"), "{}", digest.stderr);

    // A manifest blob larger than any real manifest is refused as such, not read in part.
    let manifest_blob = layout.blob_path(descriptor["digest"].as_str().unwrap());
    std::fs::write(&manifest_blob, vec![b' '; (4 << 20) + 1]).unwrap();
    let report = oci_verify(&layout.reference("v1"), &[]).expect(1).json();
    assert_eq!(report["subjects"][0]["verdict"], "rejected", "{report:#}");
    assert!(report["subjects"][0]["message"]
        .as_str()
        .unwrap()
        .contains("more than the 4194304 bytes a manifest may have"));
}

#[test]
fn sha512_descriptors_are_verified_and_an_empty_placeholder_layer_is_no_file() {
    let work = tempfile::tempdir().unwrap();
    let (approved, files) = approved_model(work.path());
    let approved = approved.to_str().unwrap();
    let layout = Layout::empty(&work.path().join("artifact"));
    let empty = "application/vnd.oci.empty.v1+json";
    let mut layers: Vec<Value> = files
        .iter()
        .map(|(name, bytes)| {
            let mut layer =
                layout.write_blob_as(Algorithm::Sha512, "application/octet-stream", bytes);
            layer["annotations"] = json!({"org.opencontainers.image.title": name});
            layer
        })
        .collect();
    layers.push(layout.write_blob_as(Algorithm::Sha512, empty, b"{}"));
    layout.put_manifest(
        "v1",
        &json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.vouch.model.v1",
            "config": layout.write_blob_as(Algorithm::Sha512, empty, b"{}"),
            "layers": layers,
        }),
    );
    let report = oci_verify(&layout.reference("v1"), &["--manifest", approved])
        .expect(0)
        .json();
    let weights = layers[1]["digest"].as_str().unwrap();
    assert!(weights.starts_with("sha512:"));
    let blob = subjects_named(&report, weights)[0];
    assert_eq!(blob["actual"], weights);
    let file = subjects_named(&report, "model.safetensors")
        .into_iter()
        .find(|s| s["name"] == "model.safetensors")
        .unwrap();
    assert_eq!(
        file["actual"],
        format!("sha256:{}", sha256_hex(&files[1].1))
    );

    flip_byte(&layout.blob_path(weights), 99);
    let report = oci_verify(&layout.reference("v1"), &["--manifest", approved])
        .expect(1)
        .json();
    assert_eq!(
        failures(&report),
        [
            (
                format!("layer 2 {weights} (model.safetensors)"),
                "changed".into()
            ),
            ("model.safetensors".into(), "changed".into()),
        ]
    );
}

#[test]
fn a_registry_on_loopback_that_speaks_tls_is_reached_over_verified_https() {
    const TEST: &str = "a_registry_on_loopback_that_speaks_tls_is_reached_over_verified_https";
    if !registry_peers(TEST) || require_tool(TEST, "openssl").is_none() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (authority, certificate, key) = test_certificates(work.path());
    let elsewhere = work.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let (another_authority, _, _) = test_certificates(&elsewhere);
    let registry = Registry::start_with_tls(&certificate, &key);
    let layout = two_layer_image(&work.path().join("img"), "v1", "amd64", 12);
    let reference = registry.reference("tls/app:v1");
    skopeo_copy(&layout.reference("v1"), &reference, false);

    let verify = |trusted: &Path| {
        let mut command = vouch();
        command
            .args(["oci", "verify", &reference, "--retries", "0"])
            .env("DOCKER_CONFIG", work.path().join("no-docker-config"))
            .env_remove("SSL_CERT_DIR")
            .env("SSL_CERT_FILE", trusted);
        run_within(&mut command, Duration::from_secs(60))
    };
    verify(&authority).expect(0);
    // Trusting another authority, the certificate is refused, and plain HTTP is no way
    // around it.
    let refused = verify(&another_authority).expect(3);
    assert!(
        refused.stderr.contains("after HTTPS failed") && refused.stderr.contains("certificate"),
        "{}",
        refused.stderr
    );
}

#[test]
fn the_build_has_no_openssl() {
    let lock = std::fs::read_to_string(project_root().join("Cargo.lock")).unwrap();
    for package in ["openssl-sys", "openssl", "native-tls"] {
        assert!(
            !lock.contains(&format!("name = \"{package}\"\n")),
            "{package} is in Cargo.lock: TLS must come from rustls alone"
        );
    }
    assert!(lock.contains("name = \"rustls\"\n"));
}

const TITLE: &str = "org.opencontainers.image.title";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// The approved model's files with the weights changed by one bit: what an attacker serves.
fn swapped_files(files: &[(&'static str, Vec<u8>)]) -> Vec<(&'static str, Vec<u8>)> {
    let mut swapped = files.to_vec();
    swapped[1].1[0] ^= 1;
    swapped
}

/// Layers that hold `files`, titled, written as blobs of `layout`.
fn titled_layers(layout: &Layout, files: &[(&str, Vec<u8>)]) -> Value {
    files
        .iter()
        .map(|(name, bytes)| {
            let mut layer = layout.write_blob("application/octet-stream", bytes);
            layer["annotations"] = json!({ TITLE: name });
            layer
        })
        .collect()
}

#[test]
fn a_manifest_whose_layers_go_reads_otherwise_is_refused() {
    let test = "a_manifest_whose_layers_go_reads_otherwise_is_refused";
    if require_tool(test, "skopeo").is_none() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (approved, files) = approved_model(work.path());
    let approved = approved.to_str().unwrap();
    let swapped = swapped_files(&files);
    let layout = Layout::empty(&work.path().join("artifact"));
    let config = layout.write_blob(EMPTY, b"{}");
    // serde reads `layers`; Go's encoding/json reads `Layers` into the same field, last.
    let text = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{config},"layers":{},"Layers":{}}}"#,
        titled_layers(&layout, &files),
        titled_layers(&layout, &swapped),
    );
    let descriptor = layout.write_blob(OCI_MANIFEST, text.as_bytes());
    layout.tag("v1", &descriptor);

    // skopeo (Go) copies the weights of `Layers`, not the approved ones of `layers`.
    let copied = work.path().join("copied");
    skopeo_copy(
        &layout.reference("v1"),
        &format!("dir:{}", copied.display()),
        false,
    );
    assert!(copied.join(sha256_hex(&swapped[1].1)).exists());
    assert!(!copied.join(sha256_hex(&files[1].1)).exists());

    let refused = |target: &str| {
        let report = oci_verify(target, &["--manifest", approved])
            .expect(1)
            .json();
        assert_eq!(
            failures(&report),
            [("manifest".into(), "rejected".into())],
            "{report:#}"
        );
        let message = report["subjects"][0]["message"].as_str().unwrap();
        assert!(
            message.contains(r#"key "Layers" differs from field "layers" only by case"#),
            "{message}"
        );
        assert_eq!(
            report["subjects"][0]["actual"], descriptor["digest"],
            "the subject names the manifest by its digest"
        );
    };
    refused(&layout.reference("v1"));
    if registry_peers(test) {
        let registry = Registry::start();
        let reference = registry.reference("models/ambiguous:v1");
        skopeo_copy(&layout.reference("v1"), &reference, false);
        refused(&reference);
    }
}

#[test]
fn an_index_json_whose_manifests_go_reads_otherwise_is_refused() {
    let test = "an_index_json_whose_manifests_go_reads_otherwise_is_refused";
    if require_tool(test, "skopeo").is_none() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (approved, files) = approved_model(work.path());
    let layout = Layout::empty(&work.path().join("artifact"));
    let borrowed = |files: &[(&str, Vec<u8>)]| -> Vec<(String, Vec<u8>)> {
        files
            .iter()
            .map(|(n, b)| (n.to_string(), b.clone()))
            .collect()
    };
    let put = |tag: &str, files: Vec<(String, Vec<u8>)>| {
        let files: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        layout.put_artifact(tag, &files)
    };
    let good = put("good", borrowed(&files));
    let bad = put("bad", borrowed(&swapped_files(&files)));
    let entry = |descriptor: &Value| {
        let mut entry = descriptor.clone();
        entry["annotations"] = json!({"org.opencontainers.image.ref.name": "v1"});
        entry
    };
    std::fs::write(
        layout.dir.join("index.json"),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{}],"Manifests":[{}]}}"#,
            entry(&good),
            entry(&bad)
        ),
    )
    .unwrap();

    // skopeo (Go) resolves the tag through `Manifests`.
    let raw = peer(Command::new("skopeo").args(["inspect", "--raw", &layout.reference("v1")]));
    let bad_manifest =
        std::fs::read_to_string(layout.blob_path(bad["digest"].as_str().unwrap())).unwrap();
    assert_eq!(raw.stdout().trim_end(), bad_manifest);

    let report = oci_verify(
        &layout.reference("v1"),
        &["--manifest", approved.to_str().unwrap()],
    )
    .expect(1)
    .json();
    assert_eq!(
        failures(&report),
        [("manifest".into(), "rejected".into())],
        "{report:#}"
    );
    let message = report["subjects"][0]["message"].as_str().unwrap();
    assert!(
        message.starts_with(r#"index.json: key "Manifests" differs from field "manifests""#),
        "{message}"
    );
    let digest = run(vouch().args(["oci", "digest", &layout.reference("v1")])).expect(1);
    assert!(digest.stdout.is_empty());
}

#[test]
fn every_titled_layer_is_a_file_whatever_its_media_type_or_name() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("model");
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("config.json", br#"{"hidden_size": 64}"#.to_vec()),
        ("empty.json", b"{}".to_vec()),
        ("model.safetensors", pseudo_random(50_000, 21)),
    ];
    let borrowed: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    write_tree(&model, &borrowed);
    let approved = work.path().join("approved.json");
    write_manifest(&model, &approved, &[]);
    let approved = approved.to_str().unwrap();
    let layout = Layout::empty(&work.path().join("artifact"));
    let manifest = |tag: &str, layers: Vec<Value>| {
        layout.put_manifest(
            tag,
            &json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": "application/vnd.vouch.model.v1",
                "config": layout.write_blob(EMPTY, b"{}"),
                "layers": layers,
            }),
        )
    };
    let titled = |media_type: &str, name: &str, bytes: &[u8]| {
        let mut layer = layout.write_blob(media_type, bytes);
        layer["annotations"] = json!({ TITLE: name });
        layer
    };
    let layers = |extra: Vec<Value>| {
        let mut layers = vec![
            titled("application/octet-stream", "config.json", &files[0].1),
            titled(EMPTY, "empty.json", b"{}"),
            titled(
                "application/vnd.vouch.weights",
                "model.safetensors",
                &files[2].1,
            ),
        ];
        layers.extend(extra);
        layers
    };

    // A titled empty descriptor is the approved file `empty.json`; an untitled one is a
    // placeholder, no file.
    manifest("v1", layers(vec![layout.write_blob(EMPTY, b"{}")]));
    let report = oci_verify(&layout.reference("v1"), &["--manifest", approved])
        .expect(0)
        .json();
    assert_files_ok(&report, &files);

    // Titled layers the approval does not list are extra, whatever their type, and names
    // ignored in a checkout on disk are no exception in an artifact.
    manifest(
        "v2",
        layers(vec![
            titled(EMPTY, "more.json", b"{}"),
            titled("application/vnd.git.config", ".git/config", b"[core]\n"),
            titled("text/plain", ".gitattributes", b"* -text\n"),
        ]),
    );
    let report = oci_verify(&layout.reference("v2"), &["--manifest", approved])
        .expect(1)
        .json();
    assert_eq!(
        failures(&report),
        [
            (".git/config".into(), "extra".into()),
            (".gitattributes".into(), "extra".into()),
            ("more.json".into(), "extra".into()),
        ],
        "{report:#}"
    );

    // A layer typed as the empty descriptor must hold exactly `{}`, titled or not.
    let not_empty = layout.write_blob(EMPTY, br#"{"a":1}"#);
    manifest("v3", layers(vec![not_empty.clone()]));
    let report = oci_verify(&layout.reference("v3"), &["--manifest", approved])
        .expect(1)
        .json();
    let name = format!("layer 4 {}", not_empty["digest"].as_str().unwrap());
    assert_eq!(failures(&report), [(name, "rejected".into())], "{report:#}");
}

#[test]
fn a_manifest_that_is_also_an_index_or_an_index_that_is_also_a_manifest_is_refused() {
    let test = "a_manifest_that_is_also_an_index_or_an_index_that_is_also_a_manifest_is_refused";
    let work = tempfile::tempdir().unwrap();
    let (approved, files) = approved_model(work.path());
    let approved = approved.to_str().unwrap();
    let layout = Layout::empty(&work.path().join("artifact"));
    let good = layout.put_artifact(
        "good",
        &files
            .iter()
            .map(|(n, b)| (*n, b.as_slice()))
            .collect::<Vec<_>>(),
    );
    let swapped = swapped_files(&files);
    let bad = layout.put_artifact(
        "bad",
        &swapped
            .iter()
            .map(|(n, b)| (*n, b.as_slice()))
            .collect::<Vec<_>>(),
    );
    let config = layout.write_blob(EMPTY, b"{}");
    let mut entry = bad.clone();
    entry["platform"] = json!({"os": "linux", "architecture": "amd64"});
    let manifest = |media_type: Option<&str>| {
        let mut document = json!({
            "schemaVersion": 2,
            "config": config,
            "layers": titled_layers(&layout, &files),
            "manifests": [entry],
        });
        if let Some(media_type) = media_type {
            document["mediaType"] = json!(media_type);
        }
        document
    };
    // A manifest that also lists manifests, typed or not (Go's guess reads the untyped one
    // as an index), and an index that also carries layers.
    let mut index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [good],
        "layers": titled_layers(&layout, &swapped),
    });
    index["manifests"][0]["platform"] = json!({"os": "linux", "architecture": "amd64"});
    let cases = [
        ("typed", manifest(Some(OCI_MANIFEST)), OCI_MANIFEST),
        ("untyped", manifest(None), OCI_MANIFEST),
        ("index", index, "application/vnd.oci.image.index.v1+json"),
    ];
    for (tag, document, media_type) in cases {
        let descriptor = layout.write_blob(media_type, document.to_string().as_bytes());
        layout.tag(tag, &descriptor);
        if require_tool(test, "skopeo").is_some() {
            let ran = run(Command::new("skopeo").args(["inspect", &layout.reference(tag)]));
            assert_ne!(ran.code, Some(0), "{tag}: skopeo read it");
        }
        let report = oci_verify(&layout.reference(tag), &["--manifest", approved])
            .expect(1)
            .json();
        let failed = failures(&report);
        assert_eq!(failed.len(), 1, "{tag}: {report:#}");
        assert_eq!(failed[0].1, "rejected", "{tag}: {report:#}");
        let subject = &report["subjects"][0];
        assert_eq!(subject["actual"], descriptor["digest"], "{tag}: {report:#}");
        let message = subject["message"].as_str().unwrap();
        assert!(message.contains("that also carries"), "{tag}: {message}");
    }
    // A case variant of the foreign field is the field, as Go reads it.
    let mut variant = manifest(Some(OCI_MANIFEST));
    variant["Manifests"] = variant["manifests"].take();
    variant.as_object_mut().unwrap().remove("manifests");
    let descriptor = layout.write_blob(OCI_MANIFEST, variant.to_string().as_bytes());
    layout.tag("variant", &descriptor);
    let report = oci_verify(&layout.reference("variant"), &["--manifest", approved])
        .expect(1)
        .json();
    assert_eq!(
        failures(&report),
        [("manifest".into(), "rejected".into())],
        "{report:#}"
    );
}
