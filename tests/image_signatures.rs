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
