//! Notation JWS envelopes from the shared fixtures (`image-signatures/`, cases.json's
//! `notation_envelopes` and `notation_oci_layouts`), checked by `vouch::sign::notation`.

use std::path::PathBuf;
use std::time::SystemTime;
use vouch::sign::notation::policy::{Action, Enforcement};
use vouch::sign::notation::{
    check_target, read_store, verify_jws, Anchors, Examined, Refusal, TargetArtifact,
};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/image-signatures")
}

fn store(rel: &str) -> Vec<Vec<u8>> {
    read_store(&fixtures().join(rel)).unwrap()
}

/// The envelope checked against `certs` as `ca` and `signingAuthority` anchors, at `strict`
/// (`permissive`: expiry and the authentic timestamp only logged).
fn verify_jws_at(
    envelope: &[u8],
    certs: &[Vec<u8>],
    now: SystemTime,
    permissive: bool,
) -> Result<Examined, Refusal> {
    let anchors = Anchors {
        ca: certs.to_vec(),
        signing_authority: certs.to_vec(),
        timestamps: None,
    };
    let logged = if permissive {
        Action::Log
    } else {
        Action::Enforce
    };
    let enforcement = Enforcement {
        authenticity: Action::Enforce,
        authentic_timestamp: logged,
        expiry: logged,
        revocation: Action::Enforce,
    };
    let examined = verify_jws(envelope, &anchors, now)?;
    examined.decide(&enforcement)?;
    Ok(examined)
}

fn envelope(rel: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(rel)).unwrap()
}

const CA: &str = "notation-go-envelopes/truststore/x509/ca/valid-trust-store";
const SA: &str = "notation-go-envelopes/truststore/x509/signingAuthority/valid-trust-store";

#[test]
fn ng_ca_valid_verifies_and_names_its_target() {
    let v = verify_jws_at(
        &envelope("notation-go-envelopes/envelopes/ca_valid_sig_env.json"),
        &store(CA),
        SystemTime::now(),
        false,
    )
    .unwrap();
    assert_eq!(v.signing_scheme, "notary.x509");
    let want = TargetArtifact {
        media_type: "application/vnd.docker.distribution.manifest.v2+json".into(),
        digest: "sha256:60043cf45eaebc4c0867fea485a039b598f52fd09fd5b07b0b2d2f88fad9d74e".into(),
        size: 528,
    };
    check_target(&v, &want).unwrap();
    let other = TargetArtifact { size: 529, ..want };
    assert!(matches!(
        check_target(&v, &other),
        Err(Refusal::OtherTarget { .. })
    ));
}

#[test]
fn ng_ca_valid_is_refused_with_another_store() {
    let r = verify_jws_at(
        &envelope("notation-go-envelopes/envelopes/ca_valid_sig_env.json"),
        &store("notation-go-envelopes/truststore/x509/ca/valid-trust-store-2"),
        SystemTime::now(),
        false,
    );
    assert!(matches!(r, Err(Refusal::Authenticity(_))), "{r:?}");
}

#[test]
fn ng_sa_valid_verifies() {
    let v = verify_jws_at(
        &envelope("notation-go-envelopes/envelopes/sa_valid_sig_env.json"),
        &store(SA),
        SystemTime::now(),
        false,
    )
    .unwrap();
    assert_eq!(v.signing_scheme, "notary.x509.signingAuthority");
}

#[test]
fn ng_invalid_envelopes_fail_integrity() {
    for (file, s) in [
        ("ca_invalid_sig_env.json", CA),
        ("sa_invalid_sig_env.json", SA),
    ] {
        let r = verify_jws_at(
            &envelope(&format!("notation-go-envelopes/envelopes/{file}")),
            &store(s),
            SystemTime::now(),
            false,
        );
        assert!(matches!(r, Err(Refusal::Integrity(_))), "{file}: {r:?}");
    }
}

#[test]
fn ng_expired_envelopes_fail_under_strict() {
    for (file, s) in [
        ("ca_expired_sig_env.json", CA),
        ("sa_expired_sig_env.json", SA),
    ] {
        let r = verify_jws_at(
            &envelope(&format!("notation-go-envelopes/envelopes/{file}")),
            &store(s),
            SystemTime::now(),
            false,
        );
        match r {
            Err(Refusal::Expired(m)) => assert!(m.contains("2022-07-29T23:59:00Z"), "{m}"),
            other => panic!("{file}: {other:?}"),
        }
    }
}

#[test]
fn trust_store_symlinks_and_directories_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pem = fixtures().join(CA).join("NotationTestRoot.pem");
    std::os::unix::fs::symlink(&pem, dir.path().join("link.pem")).unwrap();
    assert!(read_store(dir.path())
        .unwrap_err()
        .to_string()
        .contains("symlinks"));
    let link = dir.path().join("store-link");
    std::os::unix::fs::symlink(fixtures().join(CA), &link).unwrap();
    assert!(read_store(&link).is_err());
}

/// The JWS layers of the signature manifests in a layout whose subject is `subject`.
fn layout_signatures(layout: &str, subject: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fixtures()
        .join("notation-e2e-oci-layouts/registry/oci_layout")
        .join(layout);
    let blobs = dir.join("blobs/sha256");
    let mut out = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&blobs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for p in names {
        let bytes = std::fs::read(&p).unwrap();
        let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        if doc.pointer("/config/mediaType").and_then(|v| v.as_str())
            != Some("application/vnd.cncf.notary.signature")
            || doc.pointer("/subject/digest").and_then(|v| v.as_str()) != Some(subject)
        {
            continue;
        }
        let layer = &doc["layers"][0];
        let digest = layer["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:");
        out.push((
            p.file_name().unwrap().to_string_lossy().into_owned(),
            std::fs::read(blobs.join(digest)).unwrap(),
        ));
    }
    out
}

const V1: &str = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";
const E2E: &str = "notation-e2e-oci-layouts/config/localkeys/e2e.crt";

fn cert_store(rel: &str) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures().join(rel), dir.path().join("c.crt")).unwrap();
    read_store(dir.path()).unwrap()
}

fn v1() -> TargetArtifact {
    TargetArtifact {
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        digest: V1.into(),
        size: 517,
    }
}

#[test]
fn nt_valid_and_wrong_store() {
    let sigs = layout_signatures("e2e-valid-signature", V1);
    assert_eq!(sigs.len(), 1);
    let v = verify_jws_at(&sigs[0].1, &cert_store(E2E), SystemTime::now(), false).unwrap();
    check_target(&v, &v1()).unwrap();
    assert_eq!(
        v.subject.to_string(),
        "CN=e2e,O=Notary,L=Seattle,ST=WA,C=US"
    );
    for permissive in [false, true] {
        let r = verify_jws_at(
            &sigs[0].1,
            &cert_store("notation-e2e-oci-layouts/config/localkeys/new_e2e.crt"),
            SystemTime::now(),
            permissive,
        );
        assert!(matches!(r, Err(Refusal::Authenticity(_))), "{r:?}");
    }
}

#[test]
fn nt_multi_one_good_one_untrusted() {
    let sigs = layout_signatures("e2e-valid-multiple-signatures", V1);
    let results: Vec<_> = sigs
        .iter()
        .map(|(n, s)| {
            (
                n.clone(),
                verify_jws_at(s, &cert_store(E2E), SystemTime::now(), false),
            )
        })
        .collect();
    assert_eq!(
        results.iter().filter(|(_, r)| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    let good = results.iter().find(|(_, r)| r.is_ok()).unwrap();
    assert!(good.0.starts_with("90ceaff2"), "{}", good.0);
}

#[test]
fn nt_expired_signature_strict_and_permissive() {
    let sigs = layout_signatures("e2e-expired-signature", V1);
    let r = verify_jws_at(&sigs[0].1, &cert_store(E2E), SystemTime::now(), false);
    assert!(matches!(r, Err(Refusal::Expired(_))), "{r:?}");
    verify_jws_at(&sigs[0].1, &cert_store(E2E), SystemTime::now(), true).unwrap();
}

#[test]
fn nt_invalid_signature_fails_integrity() {
    let sigs = layout_signatures("e2e-invalid-signature", V1);
    for permissive in [false, true] {
        let r = verify_jws_at(&sigs[0].1, &cert_store(E2E), SystemTime::now(), permissive);
        assert!(matches!(r, Err(Refusal::Integrity(_))), "{r:?}");
    }
}

#[test]
fn nt_expired_cert_strict_and_permissive() {
    let sigs = layout_signatures("e2e-with-expired-cert", V1);
    let store = cert_store("notation-e2e-oci-layouts/config/localkeys/expired_e2e.crt");
    let r = verify_jws_at(&sigs[0].1, &store, SystemTime::now(), false);
    assert!(matches!(r, Err(Refusal::AuthenticTimestamp(_))), "{r:?}");
    verify_jws_at(&sigs[0].1, &store, SystemTime::now(), true).unwrap();
}

#[test]
fn nt_unsigned_has_no_signature() {
    assert!(layout_signatures("e2e", V1).is_empty());
}

/// The envelope is read by the strict JSON reader: a second `payload` key (Go's reader keeps
/// the last one) is refused rather than one of them silently chosen.
#[test]
fn an_envelope_with_a_key_given_twice_is_refused() {
    let good = envelope("notation-go-envelopes/envelopes/ca_valid_sig_env.json");
    let text = String::from_utf8(good).unwrap();
    let body = text.trim_start().strip_prefix('{').unwrap();
    let doubled = format!("{{\"payload\":\"e30\",{body}");
    let r = verify_jws_at(doubled.as_bytes(), &store(CA), SystemTime::now(), false);
    match r {
        Err(Refusal::Integrity(m)) => assert!(m.contains("ambiguous"), "{m}"),
        other => panic!("{other:?}"),
    }
}
