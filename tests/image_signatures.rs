//! Image signatures (issue 13): finding what is attached to a manifest digest in the
//! shared fixtures made by cosign, skopeo and Notation (`../shared/testdata/image-signatures`).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use vouch::hash::Digest;
use vouch::oci::referrers::{discover, Discovery, Place};
use vouch::oci::{Connection, ImageRef, DEFAULT_MIN_RATE};

fn fixtures(test: &str) -> Option<PathBuf> {
    common::shared_testdata(test).map(|d| d.join("image-signatures"))
}

fn connection() -> Connection {
    Connection {
        credentials: None,
        insecure: false,
        timeout: Duration::from_secs(30),
        retries: 0,
        min_rate: DEFAULT_MIN_RATE,
    }
}

fn digest(text: &str) -> Digest {
    vouch::oci::document::parse_digest(text).unwrap()
}

fn found_in(layout: &Path, subject: &str) -> Discovery {
    let reference = ImageRef::parse(&format!("oci:{}@{subject}", layout.display())).unwrap();
    discover(&reference, &connection(), &digest(subject)).unwrap()
}

const SKOPEO_V1: &str = "sha256:e936f50e430d02efea61abf04d1fd777dd8d873536ce661fd8e2cc60d9889764";
const EMPTY_IMAGE: &str = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4";
const NOTATION_V1: &str = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";

#[test]
fn the_cosign_sig_tag_skopeo_wrote_is_found_with_its_layers() {
    let Some(dir) = fixtures("the_cosign_sig_tag_skopeo_wrote_is_found_with_its_layers") else {
        return;
    };
    let found = found_in(&dir.join("skopeo-registry-legacy-sig/two-sigs"), SKOPEO_V1);
    assert_eq!(found.attached.len(), 1, "{found:?}");
    let sig = &found.attached[0];
    assert_eq!(
        sig.found,
        vec![Place::LegacyTag(format!("sha256-{}.sig", &SKOPEO_V1[7..]))]
    );
    assert_eq!(sig.layers.len(), 2);
    for layer in &sig.layers {
        assert_eq!(
            layer.descriptor.media_type,
            "application/vnd.dev.cosign.simplesigning.v1+json"
        );
        assert!(layer
            .descriptor
            .annotations
            .contains_key("dev.cosignproject.cosign/signature"));
        let bytes = layer.bytes.as_ref().unwrap();
        assert!(String::from_utf8_lossy(bytes).contains(SKOPEO_V1));
    }
    assert!(found.unreadable.is_empty(), "{:?}", found.unreadable);
}

#[test]
fn a_bundle_referrer_is_found_through_the_index_and_the_fallback_tag_once() {
    let Some(dir) =
        fixtures("a_bundle_referrer_is_found_through_the_index_and_the_fallback_tag_once")
    else {
        return;
    };
    let layout = dir.join("cosign-v3-bundle-referrer/oci-layout");
    let reference = ImageRef::parse(&format!("oci:{}:tag", layout.display())).unwrap();
    let found = discover(&reference, &connection(), &digest(EMPTY_IMAGE)).unwrap();
    assert_eq!(found.attached.len(), 1, "{found:?}");
    let bundle = &found.attached[0];
    assert_eq!(
        bundle.artifact_type.as_deref(),
        Some("application/vnd.dev.sigstore.bundle.v0.3+json")
    );
    assert_eq!(
        bundle
            .annotations
            .get("dev.sigstore.bundle.predicateType")
            .map(String::as_str),
        Some("https://cosign.sigstore.dev/attestation/v1")
    );
    assert_eq!(bundle.subject.as_ref().unwrap().digest, digest(EMPTY_IMAGE));
    assert!(
        bundle.found.contains(&Place::LayoutIndex),
        "{:?}",
        bundle.found
    );
    assert!(
        bundle
            .found
            .contains(&Place::FallbackTag(format!("sha256-{}", &EMPTY_IMAGE[7..]))),
        "{:?}",
        bundle.found
    );
    let layer = bundle.layers[0].bytes.as_ref().unwrap();
    assert_eq!(
        layer.as_slice(),
        std::fs::read(dir.join("cosign-v3-bundle-referrer/oci-attestation.sigstore.json"))
            .unwrap()
            .as_slice()
    );
}

#[test]
fn notation_signatures_are_found_with_the_artifact_type_of_their_config() {
    let Some(dir) =
        fixtures("notation_signatures_are_found_with_the_artifact_type_of_their_config")
    else {
        return;
    };
    let layouts = dir.join("notation-e2e-oci-layouts/registry/oci_layout");
    let reference = ImageRef::parse(&format!(
        "oci:{}:v1",
        layouts.join("e2e-valid-multiple-signatures").display()
    ))
    .unwrap();
    let found = discover(&reference, &connection(), &digest(NOTATION_V1)).unwrap();
    // Two signatures name the image; one of them is listed in index.json only.
    assert_eq!(found.attached.len(), 2, "{found:?}");
    for signature in &found.attached {
        assert_eq!(
            signature.artifact_type.as_deref(),
            Some("application/vnd.cncf.notary.signature")
        );
        assert_eq!(
            signature.layers[0].descriptor.media_type,
            "application/jose+json"
        );
        assert!(signature.layers[0].bytes.is_ok());
    }
    // The unsigned image has nothing attached.
    let reference = ImageRef::parse(&format!("oci:{}:v1", layouts.join("e2e").display())).unwrap();
    let found = discover(&reference, &connection(), &digest(NOTATION_V1)).unwrap();
    assert!(found.attached.is_empty(), "{found:?}");
}

use vouch::sign::cosign::{verify_simple_signing, CosignKey, Refusal, SIGNATURE_ANNOTATION};

/// A `signature-N` file of containers/image's `dir:` format: `\0sigstore-json\n` and JSON
/// with the layer's media type, payload (base64) and annotations.
fn dir_signature(path: &Path) -> (String, Vec<u8>, Option<String>) {
    let bytes = std::fs::read(path).unwrap();
    let json = bytes.strip_prefix(b"\x00sigstore-json\n").unwrap();
    let value: serde_json::Value = serde_json::from_slice(json).unwrap();
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(value["payload"].as_str().unwrap())
        .unwrap();
    let signature = value["annotations"][SIGNATURE_ANNOTATION]
        .as_str()
        .map(str::to_string);
    (
        value["mimeType"].as_str().unwrap().to_string(),
        payload,
        signature,
    )
}

fn key(path: &Path) -> CosignKey {
    CosignKey::from_pem(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn every_key_case_of_the_containers_image_fixtures_verifies_as_cases_json_says() {
    let Some(dir) =
        fixtures("every_key_case_of_the_containers_image_fixtures_verifies_as_cases_json_says")
    else {
        return;
    };
    let cases: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("cases.json")).unwrap()).unwrap();
    let mut checked = 0;
    for case in cases["cosign_legacy_dir_format"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        // Rekor, keyless and private-PKI cases need checks this module does not make yet.
        let Some(key_path) = case["key"].as_str() else {
            continue;
        };
        if case.get("rekor_key").is_some() {
            continue;
        }
        let key = key(&dir.join(key_path));
        let expect_valid = case["expect"].as_str().unwrap().starts_with("valid");
        let manifest = case["image_manifest"]
            .as_str()
            .map(|m| std::fs::read(dir.join(m)).unwrap());
        let verdicts: Vec<Result<_, Refusal>> = match &manifest {
            // No manifest: nothing a signature could name.
            None => vec![],
            Some(manifest) => {
                let resolved = digest(&format!("sha256:{}", common::sha256_hex(manifest)));
                case["signatures"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| {
                        let (media_type, payload, signature) =
                            dir_signature(&dir.join(s.as_str().unwrap()));
                        verify_simple_signing(
                            &media_type,
                            &payload,
                            signature.as_deref(),
                            &key,
                            &resolved,
                            None,
                        )
                    })
                    .collect()
            }
        };
        let passed = verdicts.iter().any(Result::is_ok);
        assert_eq!(passed, expect_valid, "{id}: {verdicts:?}");
        if let Some(identity) = case["signed_identity"].as_str() {
            let good = verdicts.iter().find_map(|v| v.as_ref().ok()).unwrap();
            assert_eq!(good.docker_reference.as_deref(), Some(identity), "{id}");
        }
        checked += 1;
    }
    assert_eq!(checked, 10, "every key-only case was checked");
}

#[test]
fn refusals_name_the_reason() {
    let Some(dir) = fixtures("refusals_name_the_reason") else {
        return;
    };
    let cimg = dir.join("containers-image-cosign");
    let manifest = std::fs::read(cimg.join("images/dir-img-cosign-valid/manifest.json")).unwrap();
    let resolved = digest(&format!("sha256:{}", common::sha256_hex(&manifest)));
    let (media_type, payload, signature) =
        dir_signature(&cimg.join("images/dir-img-cosign-valid/signature-1"));
    let verify = |key_file: &str, resolved: &Digest, repository: Option<&str>| {
        verify_simple_signing(
            &media_type,
            &payload,
            signature.as_deref(),
            &key(&cimg.join("keys").join(key_file)),
            resolved,
            repository,
        )
    };
    assert_eq!(
        verify("cosign2.pub", &resolved, None),
        Err(Refusal::WrongKey)
    );
    let other = digest(&format!("sha256:{}", "0".repeat(64)));
    assert!(matches!(
        verify("cosign.pub", &other, None),
        Err(Refusal::OtherDigest { .. })
    ));
    assert!(verify(
        "cosign.pub",
        &resolved,
        Some("192.168.64.2:5000/cosign-signed-single-sample")
    )
    .is_ok());
    assert!(matches!(
        verify(
            "cosign.pub",
            &resolved,
            Some("192.168.64.2:5000/cosign-signed")
        ),
        Err(Refusal::OtherRepository { .. })
    ));
    let (media_type, payload, signature) =
        dir_signature(&cimg.join("images/dir-img-cosign-other-attachment/signature-1"));
    assert!(matches!(
        verify_simple_signing(
            &media_type,
            &payload,
            signature.as_deref(),
            &key(&cimg.join("keys/cosign.pub")),
            &resolved,
            None
        ),
        Err(Refusal::NotSimpleSigning(_))
    ));
}

/// The `.sig` tags skopeo wrote, found by discovery and checked layer by layer.
#[test]
fn the_sig_tags_skopeo_wrote_verify_as_cases_json_says() {
    let Some(dir) = fixtures("the_sig_tags_skopeo_wrote_verify_as_cases_json_says") else {
        return;
    };
    let sets = dir.join("skopeo-registry-legacy-sig");
    let outcome = |layout: &str, key_file: &Path, repository: &str| -> Vec<Result<(), Refusal>> {
        let found = found_in(&sets.join(layout), SKOPEO_V1);
        let key = key(key_file);
        found
            .attached
            .iter()
            .flat_map(|a| &a.layers)
            .map(|layer| {
                verify_simple_signing(
                    &layer.descriptor.media_type,
                    layer.bytes.as_ref().unwrap(),
                    layer
                        .descriptor
                        .annotations
                        .get(SIGNATURE_ANNOTATION)
                        .map(String::as_str),
                    &key,
                    &digest(SKOPEO_V1),
                    Some(repository),
                )
                .map(|_| ())
            })
            .collect()
    };
    let keys = sets.join("keys");
    let cosign = dir.join("containers-image-cosign/keys/cosign.pub");
    let signed = "127.0.0.1:5123/vouch/signed";
    let two = "127.0.0.1:5123/vouch/two-sigs";
    assert_eq!(
        outcome("signed", &keys.join("vouch-test.pub"), signed),
        vec![Ok(())]
    );
    assert_eq!(
        outcome("signed", &keys.join("other.pub"), signed),
        vec![Err(Refusal::WrongKey)]
    );
    assert_eq!(
        outcome("two-sigs", &keys.join("vouch-test.pub"), two),
        vec![Err(Refusal::WrongKey), Ok(())]
    );
    assert_eq!(
        outcome("two-sigs", &keys.join("other.pub"), two),
        vec![Ok(()), Err(Refusal::WrongKey)]
    );
    assert!(outcome("two-sigs", &cosign, two).iter().all(Result::is_err));
    assert_eq!(
        outcome("tampered", &keys.join("vouch-test.pub"), signed),
        vec![Err(Refusal::WrongKey)]
    );
}

#[test]
fn cosign_public_keys_of_each_kind_are_read() {
    let Some(dir) = fixtures("cosign_public_keys_of_each_kind_are_read") else {
        return;
    };
    let keys = dir.join("containers-image-cosign/keys");
    assert!(matches!(key(&keys.join("cosign.pub")), CosignKey::Ecdsa(_)));
    assert!(matches!(
        key(&keys.join("some-rsa-key.pub")),
        CosignKey::Rsa(_)
    ));
    let error = CosignKey::from_pem(b"not a key").unwrap_err();
    assert!(!error.to_string().is_empty());
}

// ---------------------------------------------------------------------------------------
// The cosign key policy of `vouch oci verify --key` (issue 13): discovery, then every
// signature judged, one subject each.

mod oci_support;

use serde_json::{json, Value};
use vouch::report::{Report, Status, Verdict};
use vouch::sign::rekor::RekorLogs;
use vouch::verify::image_signatures::{judge, KeyPolicy, NO_SIGNATURE_SUBJECT};

/// An OCI layout holding what a registry holds for a containers/image `dir:` fixture:
/// the image manifest tagged `v1` (when there is one) and its signatures as the layers of
/// a manifest tagged `sha256-HEX.sig` (HEX: the digest `subject`), with the layer media
/// types and annotations of the `signature-N` files and skopeo's config.
fn layout_of_dir_fixture(
    dir: &Path,
    manifest: Option<&[u8]>,
    subject: &str,
    signatures: &[PathBuf],
) -> oci_support::Layout {
    let layout = oci_support::Layout::empty(dir);
    if let Some(manifest) = manifest {
        let media_type = serde_json::from_slice::<Value>(manifest)
            .ok()
            .and_then(|m| m["mediaType"].as_str().map(str::to_string))
            .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".into());
        let descriptor = layout.write_blob(&media_type, manifest);
        layout.tag("v1", &descriptor);
    }
    let layers: Vec<Value> = signatures
        .iter()
        .map(|path| {
            let bytes = std::fs::read(path).unwrap();
            let value: Value =
                serde_json::from_slice(bytes.strip_prefix(b"\x00sigstore-json\n").unwrap())
                    .unwrap();
            use base64::Engine as _;
            let payload = base64::engine::general_purpose::STANDARD
                .decode(value["payload"].as_str().unwrap())
                .unwrap();
            let mut layer = layout.write_blob(value["mimeType"].as_str().unwrap(), &payload);
            layer["annotations"] = value["annotations"].clone();
            layer
        })
        .collect();
    let diff_ids: Vec<Value> = layers.iter().map(|l| l["digest"].clone()).collect();
    let config = layout.write_blob(
        "application/vnd.oci.image.config.v1+json",
        json!({"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":diff_ids}})
            .to_string()
            .as_bytes(),
    );
    layout.put_manifest(
        &format!("sha256-{}.sig", &subject[7..]),
        &json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config,
            "layers": layers,
        }),
    );
    layout
}

/// A report judged under `policy` for the signatures attached to `subject` in `layout`.
fn judged(layout: &Path, subject: &str, policy: &KeyPolicy) -> Report {
    let found = found_in(layout, subject);
    let mut report = Report::default();
    judge(&found, &digest(subject), policy, &mut report);
    report
}

fn key_policy(path: &Path, repository: Option<&str>) -> KeyPolicy {
    KeyPolicy::new(
        key(path),
        path,
        repository.map(str::to_string),
        RekorLogs::public_good().unwrap(),
    )
}

/// The repository a signed identity names (its tag dropped).
fn repository_of(identity: &str) -> &str {
    match identity.rfind(':') {
        Some(colon) if !identity[colon..].contains('/') => &identity[..colon],
        _ => identity,
    }
}

#[test]
fn every_key_case_of_cases_json_is_judged_as_it_says_after_discovery() {
    let Some(dir) = fixtures("every_key_case_of_cases_json_is_judged_as_it_says_after_discovery")
    else {
        return;
    };
    let cases: Value =
        serde_json::from_slice(&std::fs::read(dir.join("cases.json")).unwrap()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut checked = Vec::new();
    for case in cases["cosign_legacy_dir_format"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let (Some(key_path), Some(manifest)) =
            (case["key"].as_str(), case["image_manifest"].as_str())
        else {
            // Keyless and private-PKI cases; the case without a manifest is a CLI test.
            continue;
        };
        let manifest = std::fs::read(dir.join(manifest)).unwrap();
        let subject = format!("sha256:{}", common::sha256_hex(&manifest));
        let signatures: Vec<PathBuf> = case["signatures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| dir.join(s.as_str().unwrap()))
            .collect();
        let layout = work.path().join(id);
        layout_of_dir_fixture(&layout, Some(&manifest), &subject, &signatures);
        let repository = case["signed_identity"].as_str().map(repository_of);
        let report = judged(
            &layout,
            &subject,
            &key_policy(&dir.join(key_path), repository),
        );
        let expect = case["expect"].as_str().unwrap();
        let signature_subjects: Vec<_> = report
            .subjects
            .iter()
            .filter(|s| s.name.starts_with("cosign signature "))
            .collect();
        if expect.starts_with("valid") {
            assert_eq!(report.status(), Status::Verified, "{id}: {report:?}");
            assert!(!signature_subjects.is_empty(), "{id}: {report:?}");
            assert!(
                signature_subjects.iter().all(|s| s.verdict == Verdict::Ok),
                "{id}: {report:?}"
            );
            // Every other signature found is named, with why it did not count.
            assert_eq!(
                signature_subjects.len() + report.warnings.len(),
                signatures.len(),
                "{id}: {report:?}"
            );
        } else {
            assert_eq!(report.status(), Status::Failed, "{id}: {report:?}");
            assert_eq!(
                signature_subjects.len(),
                signatures.len(),
                "{id}: {report:?}"
            );
            let reason = match id {
                "cimg-key-wrong-key" | "cimg-key-unknown-signer" => "does not verify with the key",
                "cimg-key-modified-manifest" | "cimg-key-schema1-manifest" => {
                    "not the image's digest"
                }
                "cimg-other-attachment" => "is text/plain, not a simple-signing payload",
                other => panic!("{other}: no reason is known for this refusal"),
            };
            for s in &signature_subjects {
                assert_eq!(s.verdict, Verdict::Rejected, "{id}: {s:?}");
                assert!(
                    s.message.as_deref().unwrap().contains(reason),
                    "{id}: {s:?}"
                );
            }
            let summary = report
                .subjects
                .iter()
                .find(|s| s.name == NO_SIGNATURE_SUBJECT)
                .unwrap_or_else(|| panic!("{id}: {report:?}"));
            assert_eq!(summary.verdict, Verdict::Rejected);
        }
        checked.push(id.to_string());
    }
    assert_eq!(checked.len(), 10, "{checked:?}");
}

#[test]
fn a_signature_naming_another_repository_is_refused_and_the_mixed_case_names_both() {
    let Some(dir) =
        fixtures("a_signature_naming_another_repository_is_refused_and_the_mixed_case_names_both")
    else {
        return;
    };
    let cimg = dir.join("containers-image-cosign");
    let work = tempfile::tempdir().unwrap();
    let image = cimg.join("images/dir-img-cosign-mixed");
    let manifest = std::fs::read(image.join("manifest.json")).unwrap();
    let subject = format!("sha256:{}", common::sha256_hex(&manifest));
    let layout = work.path().join("mixed");
    layout_of_dir_fixture(
        &layout,
        Some(&manifest),
        &subject,
        &[image.join("signature-1"), image.join("signature-2")],
    );
    let key_file = cimg.join("keys/cosign.pub");
    let report = judged(
        &layout,
        &subject,
        &key_policy(
            &key_file,
            Some("192.168.64.2:5000/cosign-signed-single-sample"),
        ),
    );
    assert_eq!(report.status(), Status::Verified, "{report:?}");
    let ok: Vec<_> = report.subjects.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(ok.len(), 1, "{report:?}");
    assert!(ok[0].contains("layer 2"), "{ok:?}");
    assert_eq!(report.warnings.len(), 1, "{report:?}");
    assert!(
        report.warnings[0].contains("layer 1") && report.warnings[0].contains("does not verify"),
        "{:?}",
        report.warnings
    );
    assert!(
        report.approval.contains("cosign.pub"),
        "{}",
        report.approval
    );
    // The same good signature, for another repository: refused, saying which it names.
    let report = judged(
        &layout,
        &subject,
        &key_policy(&key_file, Some("192.168.64.2:5000/cosign-signed")),
    );
    assert_eq!(report.status(), Status::Failed, "{report:?}");
    let layer2 = report
        .subjects
        .iter()
        .find(|s| s.name.contains("layer 2"))
        .unwrap();
    assert_eq!(layer2.verdict, Verdict::Rejected);
    assert!(
        layer2
            .message
            .as_deref()
            .unwrap()
            .contains("names the image 192.168.64.2:5000/cosign-signed-single-sample, not the repository 192.168.64.2:5000/cosign-signed"),
        "{layer2:?}"
    );
}

fn skopeo_sets(dir: &Path) -> PathBuf {
    dir.join("skopeo-registry-legacy-sig")
}

/// `vouch oci verify` on the layouts skopeo dumped from a real registry, as cases.json says.
#[test]
fn oci_verify_with_a_key_checks_the_sig_tags_skopeo_wrote() {
    let Some(dir) = fixtures("oci_verify_with_a_key_checks_the_sig_tags_skopeo_wrote") else {
        return;
    };
    let sets = skopeo_sets(&dir);
    let keys = sets.join("keys");
    let key_arg = |name: &str| keys.join(name).display().to_string();
    let verify = |layout: &str, key: &str, repository: Option<&str>| {
        let reference = format!("oci:{}:v1", sets.join(layout).display());
        let mut args = vec!["--key".to_string(), key.to_string()];
        if let Some(repository) = repository {
            args.extend(["--signed-repository".to_string(), repository.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        oci_support::oci_verify(&reference, &args)
    };
    let signed = "127.0.0.1:5123/vouch/signed";
    let ran = verify("signed", &key_arg("vouch-test.pub"), Some(signed)).expect(0);
    let report = ran.json();
    let good = oci_support::subjects_named(&report, "cosign signature");
    assert_eq!(good.len(), 1, "{report}");
    assert_eq!(good[0]["verdict"], "ok");
    assert!(
        good[0]["message"].as_str().unwrap().contains(signed),
        "{report}"
    );
    assert!(oci_support::failures(&report).is_empty(), "{report}");
    // Without a repository, a layout's signatures are checked but their repository is not,
    // and the report says so.
    let ran = verify("signed", &key_arg("vouch-test.pub"), None).expect(0);
    let warnings = ran.json()["warnings"].to_string();
    assert!(warnings.contains("was not checked"), "{warnings}");
    // Another repository, another key, a tampered payload: each fails and says why.
    for (layout, key, repository, why) in [
        (
            "signed",
            key_arg("vouch-test.pub"),
            "127.0.0.1:5123/vouch/other",
            "not the repository",
        ),
        ("signed", key_arg("other.pub"), signed, "does not verify"),
        (
            "tampered",
            key_arg("vouch-test.pub"),
            signed,
            "does not verify",
        ),
        (
            "two-sigs",
            dir.join("containers-image-cosign/keys/cosign.pub")
                .display()
                .to_string(),
            "127.0.0.1:5123/vouch/two-sigs",
            "does not verify",
        ),
    ] {
        let report = verify(layout, &key, Some(repository)).expect(1).json();
        let refused = oci_support::subjects_named(&report, "cosign signature");
        assert!(!refused.is_empty(), "{layout}: {report}");
        for subject in refused {
            assert_eq!(subject["verdict"], "rejected", "{layout}: {report}");
            assert!(
                subject["message"].as_str().unwrap().contains(why),
                "{layout}: {report}"
            );
        }
        let summary = oci_support::subjects_named(&report, NO_SIGNATURE_SUBJECT);
        assert_eq!(summary.len(), 1, "{layout}: {report}");
        assert_eq!(summary[0]["verdict"], "rejected");
    }
    // Two signatures in one .sig manifest, one by each key: either key passes.
    for key in ["vouch-test.pub", "other.pub"] {
        let report = verify(
            "two-sigs",
            &key_arg(key),
            Some("127.0.0.1:5123/vouch/two-sigs"),
        )
        .expect(0)
        .json();
        assert_eq!(
            oci_support::subjects_named(&report, "cosign signature").len(),
            1
        );
        assert!(
            report["warnings"].to_string().contains("was not counted"),
            "{report}"
        );
    }
}

#[test]
fn oci_verify_with_a_key_fails_an_unsigned_image_and_a_signature_without_its_image() {
    let Some(dir) =
        fixtures("oci_verify_with_a_key_fails_an_unsigned_image_and_a_signature_without_its_image")
    else {
        return;
    };
    let key_file = dir.join("containers-image-cosign/keys/cosign.pub");
    let key_arg = key_file.display().to_string();
    // Notation's unsigned image: nothing attached.
    let unsigned = dir.join("notation-e2e-oci-layouts/registry/oci_layout/e2e");
    let report = oci_support::oci_verify(
        &format!("oci:{}:v1", unsigned.display()),
        &["--key", &key_arg],
    )
    .expect(1)
    .json();
    let summary = oci_support::subjects_named(&report, NO_SIGNATURE_SUBJECT);
    assert_eq!(summary.len(), 1, "{report}");
    assert!(
        summary[0]["message"]
            .as_str()
            .unwrap()
            .contains("no signature of sha256:"),
        "{report}"
    );
    // Notation-signed: its signatures are named, and none counts under a cosign key.
    let notation = dir.join("notation-e2e-oci-layouts/registry/oci_layout/e2e-valid-signature");
    let report = oci_support::oci_verify(
        &format!("oci:{}:v1", notation.display()),
        &["--key", &key_arg],
    )
    .expect(1)
    .json();
    let referrers = oci_support::subjects_named(&report, "referrer ");
    assert!(!referrers.is_empty(), "{report}");
    assert!(
        referrers.iter().all(|r| r["verdict"] == "rejected"),
        "{report}"
    );
    // A good signature whose image is not there (cases.json cimg-key-no-manifest).
    let work = tempfile::tempdir().unwrap();
    let signed = "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00";
    let layout = layout_of_dir_fixture(
        &work.path().join("no-manifest"),
        None,
        signed,
        &[dir.join("containers-image-cosign/images/dir-img-cosign-no-manifest/signature-1")],
    );
    let reference = format!("oci:{}@{signed}", layout.dir.display());
    let report = oci_support::oci_verify(&reference, &["--key", &key_arg])
        .expect(1)
        .json();
    assert_eq!(
        oci_support::failures(&report),
        vec![
            (NO_SIGNATURE_SUBJECT.to_string(), "unreadable".to_string()),
            ("manifest".to_string(), "missing".to_string())
        ],
        "{report}"
    );
}

#[test]
fn a_bad_key_or_policy_setting_is_an_input_error_naming_it() {
    let Some(dir) = fixtures("a_bad_key_or_policy_setting_is_an_input_error_naming_it") else {
        return;
    };
    let layout = skopeo_sets(&dir).join("signed");
    let reference = format!("oci:{}:v1", layout.display());
    let work = tempfile::tempdir().unwrap();
    let not_a_key = work.path().join("not-a-key.pem");
    std::fs::write(&not_a_key, "hello\n").unwrap();
    let ran =
        oci_support::oci_verify(&reference, &["--key", not_a_key.to_str().unwrap()]).expect(2);
    assert!(ran.stderr.contains("not-a-key.pem"), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("not a cosign public key"),
        "{}",
        ran.stderr
    );
    let missing = work.path().join("absent.pub");
    let ran = oci_support::oci_verify(&reference, &["--key", missing.to_str().unwrap()]).expect(2);
    assert!(ran.stderr.contains("absent.pub"), "{}", ran.stderr);
    let good_key = skopeo_sets(&dir).join("keys/vouch-test.pub");
    let ran = oci_support::oci_verify(
        &reference,
        &[
            "--key",
            good_key.to_str().unwrap(),
            "--signed-repository",
            "host/app:v1",
        ],
    )
    .expect(2);
    assert!(
        ran.stderr.contains("--signed-repository 'host/app:v1'"),
        "{}",
        ran.stderr
    );
    let ran = oci_support::oci_verify(&reference, &["--signed-repository", "host/app"]).expect(2);
    assert!(
        ran.stderr.contains("--signed-repository goes with --key"),
        "{}",
        ran.stderr
    );
    let ran = oci_support::oci_verify(
        &reference,
        &[
            "--key",
            good_key.to_str().unwrap(),
            "--identity",
            "a@example.com",
            "--issuer",
            "https://issuer.example",
        ],
    )
    .expect(2);
    assert!(
        ran.stderr
            .contains("checked with one of: --key PUBLIC.pem (cosign's key policy"),
        "{}",
        ran.stderr
    );
    let ran = oci_support::oci_verify(&reference, &["--identity", "a@example.com"]).expect(2);
    assert!(
        ran.stderr.contains("needs --issuer or --issuer-regexp"),
        "{}",
        ran.stderr
    );
}

/// Writes the cosign signatures of the layout's `.sig` tag as containers/image `dir:`
/// `signature-N` files into `dir`, which skopeo pushes as a `.sig` tag again.
fn write_dir_signatures(layout: &oci_support::Layout, subject: &str, dir: &Path) {
    let manifest = layout.manifest(&format!("sha256-{}.sig", &subject[7..]));
    for (i, layer) in manifest["layers"].as_array().unwrap().iter().enumerate() {
        use base64::Engine as _;
        let payload = std::fs::read(layout.blob_path(layer["digest"].as_str().unwrap())).unwrap();
        let body = json!({
            "mimeType": layer["mediaType"],
            "payload": base64::engine::general_purpose::STANDARD.encode(payload),
            "annotations": layer["annotations"],
        });
        let mut bytes = b"\x00sigstore-json\n".to_vec();
        bytes.extend_from_slice(body.to_string().as_bytes());
        std::fs::write(dir.join(format!("signature-{}", i + 1)), bytes).unwrap();
    }
}

/// skopeo with `use-sigstore-attachments` for the registry at `port`.
fn skopeo_with_attachments(registries_d: &Path, from: &str, to: &str) {
    oci_support::peer(std::process::Command::new("skopeo").args([
        "--insecure-policy",
        "--registries.d",
        registries_d.to_str().unwrap(),
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        from,
        to,
    ]));
}

/// The skopeo-made signatures pushed by skopeo into a real docker-registry (as `.sig`
/// tags, through `use-sigstore-attachments`) and verified there; a moved tag fails, and so
/// does the old signature copied to the new digest's tag.
#[test]
fn cosign_signatures_pushed_by_skopeo_verify_in_a_real_registry_until_the_tag_moves() {
    let test = "cosign_signatures_pushed_by_skopeo_verify_in_a_real_registry_until_the_tag_moves";
    let Some(dir) = fixtures(test) else {
        return;
    };
    if !oci_support::registry_peers(test) {
        return;
    }
    let registry = oci_support::Registry::start();
    let work = tempfile::tempdir().unwrap();
    let registries_d = work.path().join("registries.d");
    std::fs::create_dir_all(&registries_d).unwrap();
    std::fs::write(
        registries_d.join("default.yaml"),
        format!(
            "docker:\n  127.0.0.1:{}:\n    use-sigstore-attachments: true\n",
            registry.port
        ),
    )
    .unwrap();
    let sets = skopeo_sets(&dir);
    let layout = oci_support::Layout::at(&sets.join("signed"));
    let image_dir = work.path().join("dir-image");
    oci_support::skopeo_copy(
        &layout.reference("v1"),
        &format!("dir:{}", image_dir.display()),
        false,
    );
    write_dir_signatures(&layout, SKOPEO_V1, &image_dir);
    let reference = registry.reference("vouch/signed:v1");
    skopeo_with_attachments(
        &registries_d,
        &format!("dir:{}", image_dir.display()),
        &reference,
    );
    assert_eq!(oci_support::oci_digest(&reference), SKOPEO_V1);
    let key = sets.join("keys/vouch-test.pub").display().to_string();
    let signed_as = "127.0.0.1:5123/vouch/signed";
    let verify = |args: &[&str]| {
        let mut all = vec!["--key", key.as_str()];
        all.extend_from_slice(args);
        oci_support::oci_verify(&reference, &all)
    };
    let report = verify(&["--signed-repository", signed_as]).expect(0).json();
    let good = oci_support::subjects_named(&report, "cosign signature");
    assert_eq!(good.len(), 1, "{report}");
    assert!(
        good[0]["name"].as_str().unwrap().contains(".sig"),
        "{report}"
    );
    // The signature names the registry it was made for, not this one.
    let report = verify(&[]).expect(1).json();
    let refused = oci_support::subjects_named(&report, "cosign signature");
    assert!(
        refused[0]["message"].as_str().unwrap().contains(&format!(
            "not the repository 127.0.0.1:{}/vouch/signed",
            registry.port
        )),
        "{report}"
    );
    // The tag moves to another image: it has no signature.
    let other =
        oci_support::two_layer_image(&work.path().join("other.signature"), "v2", "amd64", 13);
    oci_support::skopeo_copy(&other.reference("v2"), &reference, false);
    let moved = oci_support::oci_digest(&reference);
    assert_ne!(moved, SKOPEO_V1);
    let report = verify(&["--signed-repository", signed_as]).expect(1).json();
    assert!(oci_support::subjects_named(&report, "cosign signature").is_empty());
    let summary = oci_support::subjects_named(&report, NO_SIGNATURE_SUBJECT);
    assert!(
        summary[0]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("no signature of {moved} was found")),
        "{report}"
    );
    // The old signature copied to the new digest's tag signs the old digest only.
    oci_support::skopeo_copy(
        &registry.reference(&format!("vouch/signed:sha256-{}.sig", &SKOPEO_V1[7..])),
        &registry.reference(&format!("vouch/signed:sha256-{}.sig", &moved[7..])),
        false,
    );
    let report = verify(&["--signed-repository", signed_as]).expect(1).json();
    let refused = oci_support::subjects_named(&report, "cosign signature");
    assert_eq!(refused.len(), 1, "{report}");
    assert!(
        refused[0]["message"].as_str().unwrap().contains(&format!(
            "signs {SKOPEO_V1}, not the image's digest {moved}"
        )),
        "{report}"
    );
}

/// A copy of a `signature-N` file (in `dir`) with its annotations edited.
fn edited_signature(from: &Path, to: &Path, edit: impl Fn(&mut Value)) -> PathBuf {
    let bytes = std::fs::read(from).unwrap();
    let mut value: Value =
        serde_json::from_slice(bytes.strip_prefix(b"\x00sigstore-json\n").unwrap()).unwrap();
    edit(&mut value["annotations"]);
    let mut out = b"\x00sigstore-json\n".to_vec();
    out.extend_from_slice(value.to_string().as_bytes());
    std::fs::write(to, out).unwrap();
    to.to_path_buf()
}

/// The Rekor SET of cases.json cimg-key-rekor, checked against the public-good trusted
/// root's log key; an edited entry, a root without that log or with another key for it,
/// and a valid SET of another entry are each refused.
#[test]
fn a_rekor_set_is_checked_against_the_trusted_roots_log_and_must_log_this_signature() {
    let Some(dir) = fixtures(
        "a_rekor_set_is_checked_against_the_trusted_roots_log_and_must_log_this_signature",
    ) else {
        return;
    };
    let cimg = dir.join("containers-image-cosign");
    let image = cimg.join("images/dir-img-cosign-key-rekor-valid");
    let manifest = std::fs::read(image.join("manifest.json")).unwrap();
    let subject = format!("sha256:{}", common::sha256_hex(&manifest));
    let key_file = cimg.join("keys/cosign2.pub");
    let work = tempfile::tempdir().unwrap();
    let outcome = |name: &str, signature: &Path, rekor: RekorLogs| {
        let layout = work.path().join(name);
        layout_of_dir_fixture(
            &layout,
            Some(&manifest),
            &subject,
            &[signature.to_path_buf()],
        );
        let policy = KeyPolicy::new(key(&key_file), &key_file, None, rekor);
        let report = judged(&layout, &subject, &policy);
        let first = report.subjects[0].clone();
        (report.status(), first.message.unwrap_or_default())
    };
    let public_good = || RekorLogs::public_good().unwrap();
    let original = image.join("signature-1");
    let (status, message) = outcome("valid", &original, public_good());
    assert_eq!(status, Status::Verified, "{message}");
    assert!(
        message.contains("logged in Rekor at index 11608800 on 2023-01-20T21:57:39Z"),
        "{message}"
    );
    // The integrated time moved by a second.
    let later = edited_signature(
        &original,
        &work.path().join("later.signature"),
        |annotations| {
            let mut bundle: Value =
                serde_json::from_str(annotations["dev.sigstore.cosign/bundle"].as_str().unwrap())
                    .unwrap();
            bundle["Payload"]["integratedTime"] = json!(1674251860);
            annotations["dev.sigstore.cosign/bundle"] = json!(bundle.to_string());
        },
    );
    let (status, message) = outcome("later", &later, public_good());
    assert_eq!(status, Status::Failed);
    assert!(
        message.contains("does not verify with the log's key"),
        "{message}"
    );
    // A valid SET, of another entry (containers/image's rekor-set sample).
    let sample = std::fs::read_to_string(cimg.join("rekor-set-sample/rekor-set")).unwrap();
    let other = edited_signature(
        &original,
        &work.path().join("other.signature"),
        |annotations| {
            annotations["dev.sigstore.cosign/bundle"] = json!(sample.trim_end());
        },
    );
    let (status, message) = outcome("other-entry", &other, public_good());
    assert_eq!(status, Status::Failed);
    assert!(
        message.contains("logs another payload, not this signature"),
        "{message}"
    );
    // A trusted root that gives the log another key (cosign.pub), or lacks the log.
    let root: Value =
        serde_json::from_str(sigstore_trust_root::SIGSTORE_PRODUCTION_TRUSTED_ROOT).unwrap();
    let cosign_pub = std::fs::read_to_string(cimg.join("keys/cosign.pub")).unwrap();
    let der: String = cosign_pub
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let mut swapped = root.clone();
    for tlog in swapped["tlogs"].as_array_mut().unwrap() {
        tlog["publicKey"]["rawBytes"] = json!(der);
    }
    let rekor = RekorLogs::from_trusted_root(&swapped.to_string()).unwrap();
    let (status, message) = outcome("swapped-key", &original, rekor);
    assert_eq!(status, Status::Failed);
    assert!(
        message.contains("does not verify with the log's key"),
        "{message}"
    );
    let mut without = root;
    without["tlogs"] = json!([]);
    let rekor = RekorLogs::from_trusted_root(&without.to_string()).unwrap();
    let (status, message) = outcome("no-log", &original, rekor);
    assert_eq!(status, Status::Failed);
    assert!(
        message.contains("c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d, which the trusted root does not name"),
        "{message}"
    );
}

/// A `vouch drift` image target takes the key policy as `oci verify --key` does.
#[test]
fn a_drift_image_target_with_a_key_checks_the_images_signatures() {
    let Some(dir) = fixtures("a_drift_image_target_with_a_key_checks_the_images_signatures") else {
        return;
    };
    let sets = skopeo_sets(&dir);
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("vouch.toml");
    let run = |key: &str, repository: &str| {
        std::fs::write(
            &config,
            format!(
                "[[target]]\nname = \"app\"\nowner = \"ops@example.com\"\nimage = \"oci:{}:v1\"\nkey = \"{}\"\nsigned_repository = \"{repository}\"\n",
                sets.join("signed").display(),
                sets.join("keys").join(key).display()
            ),
        )
        .unwrap();
        common::run(
            common::vouch()
                .args(["drift", "run", "--format", "json", "-c"])
                .arg(&config),
        )
    };
    let report = run("vouch-test.pub", "127.0.0.1:5123/vouch/signed")
        .expect(0)
        .json();
    assert!(report.to_string().contains("signed by the key"), "{report}");
    let report = run("other.pub", "127.0.0.1:5123/vouch/signed")
        .expect(1)
        .json();
    assert!(
        report.to_string().contains("does not verify with the key"),
        "{report}"
    );
    let ran = run("vouch-test.pub", "127.0.0.1:5123/vouch/signed:v1").expect(2);
    assert!(
        ran.stderr
            .contains("signed_repository '127.0.0.1:5123/vouch/signed:v1'"),
        "{}",
        ran.stderr
    );
}

/// A `.sig` layer that cannot be read is `unreadable`, and with no other signature the image
/// is not verified: exit 3, naming the layer; one good signature beside it still counts.
#[test]
fn an_unreadable_signature_layer_is_exit_3_unless_another_counts() {
    let Some(dir) = fixtures("an_unreadable_signature_layer_is_exit_3_unless_another_counts")
    else {
        return;
    };
    let sets = skopeo_sets(&dir);
    let work = tempfile::tempdir().unwrap();
    let copy = |layout: &str| {
        let to = work.path().join(layout);
        let ran = common::run(
            std::process::Command::new("cp")
                .arg("-r")
                .arg(sets.join(layout))
                .arg(&to),
        );
        assert_eq!(ran.code, Some(0), "{}", ran.stderr);
        oci_support::Layout::at(&to)
    };
    let key = sets.join("keys/vouch-test.pub").display().to_string();
    let sig_tag = format!("sha256-{}.sig", &SKOPEO_V1[7..]);
    let signed = copy("signed");
    let layer = signed.manifest(&sig_tag)["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::remove_file(signed.blob_path(&layer)).unwrap();
    let report = oci_support::oci_verify(&signed.reference("v1"), &["--key", &key])
        .expect(3)
        .json();
    assert_eq!(
        oci_support::failures(&report),
        vec![
            (
                format!("cosign signature {sig_tag} layer 1 ({layer})"),
                "unreadable".to_string()
            ),
            (NO_SIGNATURE_SUBJECT.to_string(), "unreadable".to_string()),
        ],
        "{report}"
    );
    // two-sigs: layer 1 (by other.pub) made unreadable by a descriptor size its blob does
    // not have (both layers share one payload blob, which cannot be removed for one alone);
    // layer 2 counts, and layer 1 is named in a warning.
    let two = copy("two-sigs");
    let mut manifest = two.manifest(&sig_tag);
    manifest["layers"][0]["size"] = json!(1);
    two.put_manifest(&sig_tag, &manifest);
    let report = oci_support::oci_verify(&two.reference("v1"), &["--key", &key])
        .expect(0)
        .json();
    assert!(
        report["warnings"].to_string().contains("layer 1"),
        "{report}"
    );
}

// ---------------------------------------------------------------------------------------
// cosign's certificate policies (issue 13): keyless (Fulcio + Rekor) and a private PKI.

use base64::Engine as _;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The DER of the one PEM block of `path`.
fn pem_der(path: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

/// The CT logs of the shipped public-good trusted root (the fixture's Fulcio certificate
/// embeds an SCT from one of them).
fn public_good_ct_logs() -> Value {
    let root: Value =
        serde_json::from_str(sigstore_trust_root::SIGSTORE_PRODUCTION_TRUSTED_ROOT).unwrap();
    root["ctlogs"].clone()
}

/// A trusted_root.json as a user writes one for their own Fulcio and Rekor: one CA of
/// `fulcio` (a PEM certificate) and one log of `rekor` (a PEM key), with the log ID
/// `log_id` (base64; the SHA-256 of the key when `None`), and the public-good CT logs.
fn trusted_root(fulcio: &Path, rekor: &Path, log_id: Option<&str>) -> String {
    let key = pem_der(rekor);
    let id = log_id
        .map(str::to_string)
        .unwrap_or_else(|| b64(&hex::decode(common::sha256_hex(&key)).unwrap()));
    json!({
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "tlogs": [{
            "baseUrl": "https://rekor.example",
            "hashAlgorithm": "SHA2_256",
            "publicKey": {
                "rawBytes": b64(&key),
                "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                "validFor": {"start": "2021-01-01T00:00:00Z"}
            },
            "logId": {"keyId": id}
        }],
        "certificateAuthorities": [{
            "subject": {"organization": "example", "commonName": "ca"},
            "uri": "https://fulcio.example",
            "certChain": {"certificates": [{"rawBytes": b64(&pem_der(fulcio))}]},
            "validFor": {"start": "2021-01-01T00:00:00Z"}
        }],
        "ctlogs": public_good_ct_logs(),
        "timestampAuthorities": []
    })
    .to_string()
}

/// The report of an `oci verify` run on a containers/image fixture in which one cosign
/// signature counts: the run fails only because the fixture has no config or layer blobs
/// (upstream ships none), which is all it names as failures.
fn counted(ran: common::Ran) -> Value {
    let report = ran.expect(1).json();
    let failures = oci_support::failures(&report);
    assert!(!failures.is_empty(), "{report}");
    assert!(
        failures
            .iter()
            .all(
                |(name, verdict)| (name.starts_with("config ") || name.starts_with("layer "))
                    && verdict == "missing"
            ),
        "{report}"
    );
    let good = oci_support::subjects_named(&report, "cosign signature");
    assert_eq!(good.len(), 1, "{report}");
    assert_eq!(good[0]["verdict"], "ok", "{report}");
    report
}

const KEYLESS_REPOSITORY: &str = "192.168.64.2:5000/cosign-signed/fulcio-rekor-1";

/// `vouch oci verify --identity --issuer` on cases.json cimg-keyless-fulcio-rekor: the
/// Fulcio certificate chained to the shipped public-good root and to a trusted root built
/// from the fixture's Fulcio root and Rekor key, judged at the log's time; every way it
/// must fail fails, naming why.
#[test]
fn a_keyless_cosign_signature_verifies_at_the_logs_time_and_each_refusal_is_named() {
    let Some(dir) =
        fixtures("a_keyless_cosign_signature_verifies_at_the_logs_time_and_each_refusal_is_named")
    else {
        return;
    };
    let cimg = dir.join("containers-image-cosign");
    let keys = cimg.join("keys");
    let image = cimg.join("images/dir-img-cosign-fulcio-rekor-valid");
    let manifest = std::fs::read(image.join("manifest.json")).unwrap();
    let subject = format!("sha256:{}", common::sha256_hex(&manifest));
    let work = tempfile::tempdir().unwrap();
    let layout_with = |name: &str, manifest: &[u8], signature: &Path| {
        let subject = format!("sha256:{}", common::sha256_hex(manifest));
        let layout = layout_of_dir_fixture(
            &work.path().join(name),
            Some(manifest),
            &subject,
            &[signature.to_path_buf()],
        );
        layout.reference("v1")
    };
    let original = image.join("signature-1");
    let reference = layout_with("valid", &manifest, &original);
    let verify = |reference: &str, identity: &str, issuer: &str, extra: &[&str]| {
        let mut args = vec![
            "--identity",
            identity,
            "--issuer",
            issuer,
            "--signed-repository",
            KEYLESS_REPOSITORY,
        ];
        args.extend_from_slice(extra);
        oci_support::oci_verify(reference, &args)
    };
    let email = "mitr@redhat.com";
    let github = "https://github.com/login/oauth";
    // The shipped public-good root.
    let report = counted(verify(&reference, email, github, &[]));
    let good = oci_support::subjects_named(&report, "cosign signature");
    assert_eq!(good.len(), 1, "{report}");
    let message = good[0]["message"].as_str().unwrap();
    for part in [
        "signed by a certificate for mitr@redhat.com from https://github.com/login/oauth",
        "shipped Sigstore public-good trusted root",
        "names 192.168.64.2:5000/cosign-signed/fulcio-rekor-1",
        "logged in Rekor at index 11605770 on 2023-01-20T20:51:33Z",
    ] {
        assert!(message.contains(part), "{part}: {message}");
    }
    assert!(
        report["approval"]
            .as_str()
            .unwrap()
            .contains("a certificate for mitr@redhat.com from https://github.com/login/oauth"),
        "{report}"
    );
    // A trusted root a user builds from the fixture's Fulcio root and Rekor key; and
    // patterns for both.
    let root = work.path().join("trusted_root.json");
    std::fs::write(
        &root,
        trusted_root(
            &keys.join("fulcio_v1.crt.pem"),
            &keys.join("rekor.pub"),
            None,
        ),
    )
    .unwrap();
    let root_arg = root.display().to_string();
    counted(verify(
        &reference,
        email,
        github,
        &["--trusted-root", &root_arg],
    ));
    counted(oci_support::oci_verify(
        &reference,
        &[
            "--identity-regexp",
            ".*@redhat\\.com",
            "--issuer-regexp",
            "https://github\\.com/.*",
        ],
    ));
    // Each refusal, with its reason in the signature's subject.
    let refused = |ran: common::Ran, why: &str| {
        let report = ran.expect(1).json();
        let subjects = oci_support::subjects_named(&report, "cosign signature");
        assert_eq!(subjects.len(), 1, "{why}: {report}");
        assert_eq!(subjects[0]["verdict"], "rejected", "{why}: {report}");
        let message = subjects[0]["message"].as_str().unwrap();
        assert!(message.contains(why), "{why}: {message}");
        let summary = oci_support::subjects_named(&report, NO_SIGNATURE_SUBJECT);
        assert_eq!(summary[0]["verdict"], "rejected", "{report}");
    };
    refused(
        verify(&reference, "this-does-not-match@example.com", github, &[]),
        "wrong identity: the certificate names mitr@redhat.com, none of which is this-does-not-match@example.com",
    );
    refused(
        oci_support::oci_verify(
            &reference,
            &["--identity-regexp", "mitr@redhat", "--issuer", github],
        ),
        "none of which matches",
    );
    refused(
        verify(&reference, email, "https://accounts.google.com", &[]),
        "wrong issuer: the certificate names the OIDC issuer https://github.com/login/oauth, which is not https://accounts.google.com",
    );
    refused(
        oci_support::oci_verify(
            &reference,
            &[
                "--identity",
                email,
                "--issuer",
                github,
                "--signed-repository",
                "192.168.64.2:5000/other",
            ],
        ),
        "not the repository 192.168.64.2:5000/other",
    );
    // The log's key replaced (same log ID): the SET does not verify.
    let swapped = work.path().join("swapped_root.json");
    let rekor_id =
        b64(&hex::decode(common::sha256_hex(&pem_der(&keys.join("rekor.pub")))).unwrap());
    std::fs::write(
        &swapped,
        trusted_root(
            &keys.join("fulcio_v1.crt.pem"),
            &keys.join("cosign.pub"),
            Some(&rekor_id),
        ),
    )
    .unwrap();
    refused(
        verify(
            &reference,
            email,
            github,
            &["--trusted-root", swapped.to_str().unwrap()],
        ),
        "signed entry timestamp does not verify with the log's key",
    );
    // Without the CT log that logged the certificate, or with that log's key replaced
    // (same log ID): the certificate's SCT proves nothing.
    let mut rooted: Value = serde_json::from_str(&std::fs::read_to_string(&root).unwrap()).unwrap();
    let issued_by = "3T0wasbHETJjGR4cmWc3AqJKXrjePK3/h4pygC8p7o4=";
    let logs = rooted["ctlogs"].as_array_mut().unwrap();
    assert!(logs.iter().any(|log| log["logId"]["keyId"] == issued_by));
    logs.retain(|log| log["logId"]["keyId"] != issued_by);
    let without_ct = work.path().join("without_ct_root.json");
    std::fs::write(&without_ct, rooted.to_string()).unwrap();
    refused(
        verify(&reference, email, github, &["--trusted-root", without_ct.to_str().unwrap()]),
        &format!(
            "no certificate transparency: its SCT is from the CT log {}, which the trusted root does not name",
            hex::encode(base64::engine::general_purpose::STANDARD.decode(issued_by).unwrap())
        ),
    );
    let mut replaced = public_good_ct_logs();
    for log in replaced.as_array_mut().unwrap() {
        log["publicKey"]["rawBytes"] = b64(&pem_der(&keys.join("cosign.pub"))).into();
    }
    rooted["ctlogs"] = replaced;
    let replaced_ct = work.path().join("replaced_ct_root.json");
    std::fs::write(&replaced_ct, rooted.to_string()).unwrap();
    refused(
        verify(
            &reference,
            email,
            github,
            &["--trusted-root", replaced_ct.to_str().unwrap()],
        ),
        "does not verify with the log's key for this certificate",
    );
    // Another CA: the certificate does not chain.
    let other_ca = work.path().join("other_ca_root.json");
    std::fs::write(
        &other_ca,
        trusted_root(
            &keys.join("pki_root_crts.pem"),
            &keys.join("rekor.pub"),
            None,
        ),
    )
    .unwrap();
    refused(
        verify(
            &reference,
            email,
            github,
            &["--trusted-root", other_ca.to_str().unwrap()],
        ),
        "untrusted chain: the chain does not lead to a trusted certificate",
    );
    // The same signature attached to another manifest (the modified-manifest fixture).
    let modified =
        std::fs::read(cimg.join("images/dir-img-cosign-modified-manifest/manifest.json")).unwrap();
    refused(
        verify(
            &layout_with("modified", &modified, &original),
            email,
            github,
            &[],
        ),
        &format!("the payload signs {subject}, not the image's digest"),
    );
    // Without its SET, its certificate or its chain; with a flipped signature.
    let edited = |name: &str, edit: &dyn Fn(&mut Value)| {
        let signature = edited_signature(
            &original,
            &work.path().join(format!("{name}.signature")),
            edit,
        );
        layout_with(name, &manifest, &signature)
    };
    refused(
        verify(
            &edited("no-set", &|a| {
                a.as_object_mut()
                    .unwrap()
                    .remove("dev.sigstore.cosign/bundle");
            }),
            email,
            github,
            &[],
        ),
        "no SET: the layer has no Rekor entry",
    );
    refused(
        verify(
            &edited("no-cert", &|a| {
                a.as_object_mut()
                    .unwrap()
                    .remove("dev.sigstore.cosign/certificate");
            }),
            email,
            github,
            &[],
        ),
        "has no dev.sigstore.cosign/certificate annotation",
    );
    // Without the chain annotation the shipped root still has the intermediate; the
    // fixture root (the Fulcio root alone) does not.
    let no_chain = edited("no-chain", &|a| {
        a.as_object_mut()
            .unwrap()
            .remove("dev.sigstore.cosign/chain");
    });
    counted(verify(&no_chain, email, github, &[]));
    refused(
        verify(&no_chain, email, github, &["--trusted-root", &root_arg]),
        "untrusted chain",
    );
    refused(
        verify(
            &edited("other-sig", &|a| {
                let cosign = dir.join(
                    "containers-image-cosign/images/dir-img-cosign-key-rekor-valid/signature-1",
                );
                let (_, _, signature) = dir_signature(&cosign);
                a["dev.cosignproject.cosign/signature"] = json!(signature.unwrap());
            }),
            email,
            github,
            &[],
        ),
        "does not verify with its certificate's key",
    );
    refused(
        verify(
            &edited("bad-cert", &|a| {
                a["dev.sigstore.cosign/certificate"] =
                    json!("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
            }),
            email,
            github,
            &[],
        ),
        "malformed: its certificate is not readable",
    );
    // A malformed trusted root is exit 2, naming the file.
    let bad_root = work.path().join("bad_root.json");
    std::fs::write(&bad_root, "{\"tlogs\": 1}").unwrap();
    let ran = verify(
        &reference,
        email,
        github,
        &["--trusted-root", bad_root.to_str().unwrap()],
    )
    .expect(2);
    assert!(ran.stderr.contains("bad_root.json"), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("not a Sigstore trusted root"),
        "{}",
        ran.stderr
    );
}

/// `vouch oci verify --certificate-chain --identity` on cases.json cimg-byo-pki: an RSA
/// signature by a private PKI's certificate, with no transparency log; the chain through
/// the annotation or the given intermediates, and each refusal named.
#[test]
fn a_private_pki_cosign_signature_verifies_without_a_log_and_each_refusal_is_named() {
    let Some(dir) =
        fixtures("a_private_pki_cosign_signature_verifies_without_a_log_and_each_refusal_is_named")
    else {
        return;
    };
    let cimg = dir.join("containers-image-cosign");
    let keys = cimg.join("keys");
    let image = cimg.join("images/dir-img-cosign-pki-valid");
    let manifest = std::fs::read(image.join("manifest.json")).unwrap();
    let subject = format!("sha256:{}", common::sha256_hex(&manifest));
    let work = tempfile::tempdir().unwrap();
    let original = image.join("signature-1");
    let layout_with = |name: &str, signature: &Path| {
        layout_of_dir_fixture(
            &work.path().join(name),
            Some(&manifest),
            &subject,
            &[signature.to_path_buf()],
        )
        .reference("v1")
    };
    let reference = layout_with("valid", &original);
    let roots = keys.join("pki_root_crts.pem").display().to_string();
    let intermediates = keys.join("pki_intermediate_crts.pem").display().to_string();
    let verify = |reference: &str, identity: &str, chain: &[&str], extra: &[&str]| {
        let mut args = vec![
            "--identity",
            identity,
            "--signed-repository",
            "localhost:5000/test",
        ];
        for file in chain {
            args.extend(["--certificate-chain", file]);
        }
        args.extend_from_slice(extra);
        oci_support::oci_verify(reference, &args)
    };
    let report = counted(verify(&reference, "qiwan@redhat.com", &[&roots], &[]));
    let message = oci_support::subjects_named(&report, "cosign signature")[0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("signed by a certificate for qiwan@redhat.com, myhost.example.com, chained to the certificates of")
            && message.contains("pki_root_crts.pem; names localhost:5000/test"),
        "{message}"
    );
    assert!(
        report["approval"]
            .as_str()
            .unwrap()
            .contains("a private PKI: no transparency log required"),
        "{report}"
    );
    // The DNS name is a subject alternative name too.
    counted(verify(&reference, "myhost.example.com", &[&roots], &[]));
    // Without the chain annotation: the intermediates given beside the roots complete it,
    // the intermediates alone end it only with --allow-partial-chain.
    let no_chain = edited_signature(&original, &work.path().join("no-chain.signature"), |a| {
        a.as_object_mut()
            .unwrap()
            .remove("dev.sigstore.cosign/chain");
    });
    let no_chain = layout_with("no-chain", &no_chain);
    counted(verify(
        &no_chain,
        "qiwan@redhat.com",
        &[&roots, &intermediates],
        &[],
    ));
    counted(verify(
        &no_chain,
        "qiwan@redhat.com",
        &[&intermediates],
        &["--allow-partial-chain"],
    ));
    let refused = |ran: common::Ran, why: &str| {
        let report = ran.expect(1).json();
        let subjects = oci_support::subjects_named(&report, "cosign signature");
        assert_eq!(subjects.len(), 1, "{why}: {report}");
        assert_eq!(subjects[0]["verdict"], "rejected", "{why}: {report}");
        let message = subjects[0]["message"].as_str().unwrap();
        assert!(message.contains(why), "{why}: {message}");
    };
    refused(
        verify(&no_chain, "qiwan@redhat.com", &[&intermediates], &[]),
        "which is not a self-signed root",
    );
    refused(
        verify(&no_chain, "qiwan@redhat.com", &[&roots], &[]),
        "untrusted chain",
    );
    let fulcio = keys.join("fulcio_v1.crt.pem").display().to_string();
    refused(
        verify(&reference, "qiwan@redhat.com", &[&fulcio], &[]),
        "untrusted chain: the chain does not lead to a trusted certificate",
    );
    refused(
        verify(&reference, "someone@redhat.com", &[&roots], &[]),
        "wrong identity: the certificate names qiwan@redhat.com, myhost.example.com, none of which is someone@redhat.com",
    );
    refused(
        verify(
            &reference,
            "qiwan@redhat.com",
            &[&roots],
            &["--issuer", "https://github.com/login/oauth"],
        ),
        "the certificate names no OIDC issuer",
    );
    // The keyless fixture is no PKI signature: its Fulcio certificate does not chain here.
    let keyless = cimg.join("images/dir-img-cosign-fulcio-rekor-valid/signature-1");
    let other = layout_with("keyless", &keyless);
    refused(
        verify(&other, "mitr@redhat.com", &[&roots], &[]),
        "the payload signs sha256:0489474d",
    );
    // A chain file that holds no certificate is exit 2, naming it.
    let not_pem = work.path().join("not-a-chain.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let ran = verify(
        &reference,
        "qiwan@redhat.com",
        &[not_pem.to_str().unwrap()],
        &[],
    )
    .expect(2);
    assert!(ran.stderr.contains("not-a-chain.pem"), "{}", ran.stderr);
}

/// A private PKI's certificates are judged at the time of the check: the same signature
/// is refused as expired once its certificate has lapsed (here: checked in 2053).
#[test]
fn a_private_pki_signature_is_refused_once_its_certificate_has_expired() {
    let Some(dir) = fixtures("a_private_pki_signature_is_refused_once_its_certificate_has_expired")
    else {
        return;
    };
    use vouch::sign::fulcio::{CertificateAnchors, SignerRules};
    use vouch::sign::keyless::IdentityRule;
    use vouch::verify::image_signatures::{judge_certified, CertificatePolicy};
    let cimg = dir.join("containers-image-cosign");
    let image = cimg.join("images/dir-img-cosign-pki-valid");
    let manifest = std::fs::read(image.join("manifest.json")).unwrap();
    let subject = format!("sha256:{}", common::sha256_hex(&manifest));
    let work = tempfile::tempdir().unwrap();
    let layout = layout_of_dir_fixture(
        work.path(),
        Some(&manifest),
        &subject,
        &[image.join("signature-1")],
    );
    let roots = vouch::sign::x509::pem_certificates(
        &std::fs::read(cimg.join("keys/pki_root_crts.pem")).unwrap(),
    )
    .unwrap();
    let policy = CertificatePolicy::new(
        SignerRules {
            identity: IdentityRule::Exact("qiwan@redhat.com".into()),
            issuer: None,
        },
        CertificateAnchors::Pki {
            certificates: roots,
            allow_partial: false,
        },
        "the PKI roots".into(),
        Some("localhost:5000/test".into()),
    );
    let judge_at = |seconds: u64| {
        let mut report = Report::default();
        let at = std::time::UNIX_EPOCH + Duration::from_secs(seconds);
        judge_certified(
            &found_in(&layout.dir, &subject),
            &digest(&subject),
            &policy,
            at,
            &mut report,
        );
        report
    };
    // 2026-01-01 and 2053-01-01.
    let report = judge_at(1_767_225_600);
    assert_eq!(report.status(), Status::Verified, "{report:?}");
    let report = judge_at(2_619_302_400);
    assert_eq!(report.status(), Status::Failed, "{report:?}");
    let message = report.subjects[0].message.clone().unwrap();
    assert!(
        message.contains("is not valid at the time of this check 2053-01-01T00:00:00Z")
            && message.contains("valid 2024-10-01T14:28:43Z to 2052-02-16T14:28:43Z"),
        "{message}"
    );
}

/// cases.json cosign-v3-dsse-bundle: the cosign bundle v0.3 referrer (an attestation),
/// found through index.json and the fallback tag and named once; it counts only under
/// --attestation-type with its predicate, and is refused for another identity, issuer,
/// predicate, a trusted root with the Rekor key replaced, and a flipped payload byte.
#[test]
fn a_cosign_bundle_referrer_is_checked_by_sigstore_and_counts_as_an_attestation_only() {
    let Some(dir) = fixtures(
        "a_cosign_bundle_referrer_is_checked_by_sigstore_and_counts_as_an_attestation_only",
    ) else {
        return;
    };
    let set = dir.join("cosign-v3-bundle-referrer");
    let layout = set.join("oci-layout");
    let reference = format!("oci:{}:tag", layout.display());
    let root = set.join("trusted_root_pgi.json");
    let attestation = "https://cosign.sigstore.dev/attestation/v1";
    let email = "cody@soyland.com";
    let github = "https://github.com/login/oauth";
    let verify = |identity: &str, issuer: &str, root: &Path, extra: &[&str]| {
        let mut args = vec![
            "--identity",
            identity,
            "--issuer",
            issuer,
            "--trusted-root",
            root.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        oci_support::oci_verify(&reference, &args)
    };
    let report = verify(email, github, &root, &["--attestation-type", attestation])
        .expect(0)
        .json();
    let referrers = oci_support::subjects_named(&report, "referrer ");
    assert_eq!(referrers.len(), 1, "{report}");
    assert_eq!(referrers[0]["verdict"], "ok", "{report}");
    let message = referrers[0]["message"].as_str().unwrap();
    for part in [
        "Sigstore identity cody@soyland.com from https://github.com/login/oauth, logged at 2025-02-28T19:18:11Z",
        &format!("its attestation ({attestation}) names {EMPTY_IMAGE}"),
        "found by the index.json referrer and referrers fallback tag",
    ] {
        assert!(message.contains(part), "{part}: {message}");
    }
    assert!(
        report["approval"]
            .as_str()
            .unwrap()
            .contains(&format!("a cosign attestation of {attestation}")),
        "{report}"
    );
    let refused = |ran: common::Ran, why: &str| {
        let report = ran.expect(1).json();
        let referrers = oci_support::subjects_named(&report, "referrer ");
        assert_eq!(referrers.len(), 1, "{why}: {report}");
        assert_eq!(referrers[0]["verdict"], "rejected", "{why}: {report}");
        let message = referrers[0]["message"].as_str().unwrap();
        assert!(message.contains(why), "{why}: {message}");
    };
    // Without --attestation-type it is named, checked, and not counted.
    refused(
        verify(email, github, &root, &[]),
        &format!("an attestation (predicate {attestation}), not a signature"),
    );
    refused(
        verify(
            email,
            github,
            &root,
            &["--attestation-type", "https://slsa.dev/provenance/v1"],
        ),
        &format!("not an attestation of https://slsa.dev/provenance/v1: it is an attestation of {attestation}"),
    );
    refused(
        verify(
            "someone@example.com",
            github,
            &root,
            &["--attestation-type", attestation],
        ),
        "someone@example.com",
    );
    refused(
        verify(
            email,
            "https://accounts.google.com",
            &root,
            &["--attestation-type", attestation],
        ),
        "https://accounts.google.com",
    );
    // The trusted root with its Rekor keys replaced (by the containers/image cosign key).
    let work = tempfile::tempdir().unwrap();
    let mut swapped: Value = serde_json::from_slice(&std::fs::read(&root).unwrap()).unwrap();
    let other_key = b64(&pem_der(
        &dir.join("containers-image-cosign/keys/cosign.pub"),
    ));
    for tlog in swapped["tlogs"].as_array_mut().unwrap() {
        tlog["publicKey"]["rawBytes"] = json!(other_key);
    }
    let swapped_root = work.path().join("swapped_root.json");
    std::fs::write(&swapped_root, swapped.to_string()).unwrap();
    refused(
        verify(
            email,
            github,
            &swapped_root,
            &["--attestation-type", attestation],
        ),
        "transparency log",
    );
    // A legacy signature does not count as an attestation.
    let skopeo = skopeo_sets(&dir).join("signed");
    let report = oci_support::oci_verify(
        &format!("oci:{}:v1", skopeo.display()),
        &[
            "--identity",
            email,
            "--issuer",
            github,
            "--attestation-type",
            attestation,
        ],
    )
    .expect(1)
    .json();
    let legacy = oci_support::subjects_named(&report, "cosign signature");
    assert!(
        legacy[0]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("a signature, not an attestation of {attestation}")),
        "{report}"
    );
}

/// The bundle's DSSE payload with one byte flipped (the statement changed after signing):
/// refused by the signature check, judged through the library on the discovered referrer.
#[test]
fn a_cosign_bundle_referrer_with_a_flipped_payload_byte_is_refused() {
    let Some(dir) = fixtures("a_cosign_bundle_referrer_with_a_flipped_payload_byte_is_refused")
    else {
        return;
    };
    use vouch::approval::{CertificateRoots, IdentitySpec, ImageSigners};
    use vouch::verify::image_signatures::{judge_certified, Policy};
    let set = dir.join("cosign-v3-bundle-referrer");
    let reference =
        ImageRef::parse(&format!("oci:{}:tag", set.join("oci-layout").display())).unwrap();
    let signers = ImageSigners::CosignCertificate {
        identity: IdentitySpec::Exact("cody@soyland.com".into()),
        issuer: Some(IdentitySpec::Exact("https://github.com/login/oauth".into())),
        roots: CertificateRoots::TrustedRoot(Some(set.join("trusted_root_pgi.json"))),
        repository: None,
        attestation_type: Some("https://cosign.sigstore.dev/attestation/v1".into()),
    };
    let Policy::Certificate(policy) = Policy::load(&signers, &reference).unwrap() else {
        panic!("a certificate policy")
    };
    let mut found = discover(&reference, &connection(), &digest(EMPTY_IMAGE)).unwrap();
    let judge = |found: &Discovery| {
        let mut report = Report::default();
        judge_certified(
            found,
            &digest(EMPTY_IMAGE),
            &policy,
            std::time::SystemTime::now(),
            &mut report,
        );
        report
    };
    assert_eq!(judge(&found).status(), Status::Verified);
    let layer = &mut found.attached[0].layers[0];
    let mut bundle: Value = serde_json::from_slice(layer.bytes.as_ref().unwrap()).unwrap();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    // One byte of the subject's name ("127.0.0.1:60943/repo"), so the statement still parses.
    let mut flipped = payload.clone();
    let at = payload.windows(5).position(|w| w == b"/repo").unwrap() + 1;
    flipped[at] ^= 0x20;
    bundle["dsseEnvelope"]["payload"] = json!(b64(&flipped));
    layer.bytes = Ok(serde_json::to_vec(&bundle).unwrap());
    let report = judge(&found);
    assert_eq!(report.status(), Status::Failed, "{report:?}");
    let message = report.subjects[0].message.clone().unwrap();
    assert!(message.contains("the payload was altered"), "{message}");
}

/// A `vouch drift` image target takes the keyless settings (and attestation_type) as
/// `oci verify` does.
#[test]
fn a_drift_image_target_with_an_identity_checks_the_images_bundle_referrer() {
    let Some(dir) =
        fixtures("a_drift_image_target_with_an_identity_checks_the_images_bundle_referrer")
    else {
        return;
    };
    let set = dir.join("cosign-v3-bundle-referrer");
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("vouch.toml");
    let run = |identity: &str, extra: &str| {
        std::fs::write(
            &config,
            format!(
                "[[target]]\nname = \"app\"\nowner = \"ops@example.com\"\nimage = \"oci:{}:tag\"\n\
                 identity = \"{identity}\"\nissuer = \"https://github.com/login/oauth\"\n\
                 trusted_root = \"{}\"\n{extra}",
                set.join("oci-layout").display(),
                set.join("trusted_root_pgi.json").display()
            ),
        )
        .unwrap();
        common::run(
            common::vouch()
                .args(["drift", "run", "--format", "json", "-c"])
                .arg(&config),
        )
    };
    let attestation = "attestation_type = \"https://cosign.sigstore.dev/attestation/v1\"\n";
    let report = run("cody@soyland.com", attestation).expect(0).json();
    assert!(
        report
            .to_string()
            .contains("its attestation (https://cosign.sigstore.dev/attestation/v1)"),
        "{report}"
    );
    let report = run("someone@example.com", attestation).expect(1).json();
    assert!(
        report.to_string().contains("someone@example.com"),
        "{report}"
    );
    let report = run("cody@soyland.com", "").expect(1).json();
    assert!(report.to_string().contains("not a signature"), "{report}");
    // A private PKI's chain beside the trusted root: refused, exit 2, naming both keys.
    let ran = run(
        "cody@soyland.com",
        &format!("{attestation}certificate_chain = [\"roots.pem\"]\n"),
    )
    .expect(2);
    assert!(
        ran.stderr
            .contains("certificate_chain and trusted_root each approve on their own"),
        "{}",
        ran.stderr
    );
}

/// The registry's referrers API (OCI 1.1), which docker-registry 2.8 lacks: a small server
/// serves the cosign-v3 fixture layout as a registry that answers
/// `GET /v2/NAME/referrers/DIGEST` and has no fallback tag. The bundle referrer is found
/// through the API alone, verifies, and counts for the repository its statement names (not
/// for the one it is served from); the request for it was made.
#[test]
fn a_bundle_referrer_is_found_through_a_registrys_referrers_api() {
    use oci_support::hostile::{Hostile, Reply};
    let Some(dir) = fixtures("a_bundle_referrer_is_found_through_a_registrys_referrers_api") else {
        return;
    };
    let set = dir.join("cosign-v3-bundle-referrer");
    let layout = set.join("oci-layout");
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let entries = index["manifests"].as_array().unwrap().clone();
    let blob = move |digest: &str| {
        let hex = digest.strip_prefix("sha256:")?;
        std::fs::read(layout.join("blobs/sha256").join(hex)).ok()
    };
    let registry = Hostile::start(move |request| {
        let target = request.target.as_str();
        let not_found = || Reply::status("404 Not Found", "\r\nContent-Length: 0");
        if target == "/v2/" {
            return Reply::ok("application/json", b"{}");
        }
        if let Some(subject) = target.strip_prefix("/v2/app/referrers/") {
            let found: Vec<&Value> = entries
                .iter()
                .filter(|entry| {
                    blob(entry["digest"].as_str().unwrap())
                        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
                        .is_some_and(|manifest| manifest["subject"]["digest"] == subject)
                })
                .collect();
            let listed = json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": found,
            });
            return Reply::ok(
                "application/vnd.oci.image.index.v1+json",
                listed.to_string().as_bytes(),
            );
        }
        if let Some(reference) = target.strip_prefix("/v2/app/manifests/") {
            let entry = entries.iter().find(|entry| {
                entry["digest"] == reference
                    || entry["annotations"]["org.opencontainers.image.ref.name"] == reference
            });
            // Only the image's own tag: the fallback tag is not served.
            return match entry {
                Some(entry) if !reference.starts_with("sha256-") => {
                    match blob(entry["digest"].as_str().unwrap()) {
                        Some(bytes) => Reply::ok(entry["mediaType"].as_str().unwrap(), &bytes),
                        None => not_found(),
                    }
                }
                _ => not_found(),
            };
        }
        match target.strip_prefix("/v2/app/blobs/").and_then(&blob) {
            Some(bytes) => Reply::ok("application/octet-stream", &bytes),
            None => not_found(),
        }
    });
    let attestation = "https://cosign.sigstore.dev/attestation/v1";
    let root = set.join("trusted_root_pgi.json");
    let verify = |extra: &[&str]| {
        let mut args = vec![
            "--identity",
            "cody@soyland.com",
            "--issuer",
            "https://github.com/login/oauth",
            "--trusted-root",
            root.to_str().unwrap(),
            "--attestation-type",
            attestation,
        ];
        args.extend_from_slice(extra);
        oci_support::oci_verify(&registry.reference("app:tag"), &args)
    };
    // The statement names the repository it was signed for, not this one: refused, as a
    // legacy signature naming another repository is.
    let report = verify(&[]).expect(1).json();
    let referrers = oci_support::subjects_named(&report, "referrer ");
    assert_eq!(referrers.len(), 1, "{report}");
    let message = referrers[0]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "other repository: the statement's subject is 127.0.0.1:60943/repo, not the repository 127.0.0.1:{}/app",
            registry.port
        )),
        "{message}"
    );
    let report = verify(&["--signed-repository", "127.0.0.1:60943/repo"])
        .expect(0)
        .json();
    let referrers = oci_support::subjects_named(&report, "referrer ");
    assert_eq!(referrers.len(), 1, "{report}");
    assert_eq!(referrers[0]["verdict"], "ok", "{report}");
    let message = referrers[0]["message"].as_str().unwrap();
    assert!(message.contains("found by the referrers API"), "{message}");
    assert!(
        !message.contains("fallback tag"),
        "the fallback tag is not served: {message}"
    );
    assert!(
        registry
            .requests()
            .iter()
            .any(|r| r.target == format!("/v2/app/referrers/{EMPTY_IMAGE}")),
        "{:?}",
        registry.requests()
    );
}
