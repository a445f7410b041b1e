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
