//! Notation JWS envelopes from the shared fixtures (`image-signatures/`, cases.json's
//! `notation_envelopes` and `notation_oci_layouts`), checked by `vouch::sign::notation`.

use std::path::PathBuf;
use std::time::SystemTime;
use vouch::sign::notation::policy::{Action, Enforcement, VerifyTimestamp};
use vouch::sign::notation::{
    check_target, read_store, verify_cose, verify_jws, Algorithm, Anchors, Examined, Refusal,
    TargetArtifact,
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
        tsa: Vec::new(),
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

const TS: &str = "notation-go-envelopes/timestamp";
const TSA: &str = "notation-go-envelopes/truststore/x509/tsa/test-timestamp";

/// `ca:valid-trust-store` with `tsa` certificates `tsa` and `verifyTimestamp: always`.
fn timestamp_anchors(tsa: Vec<Vec<u8>>) -> Anchors {
    Anchors {
        ca: store(CA),
        signing_authority: Vec::new(),
        tsa,
        timestamps: Some(VerifyTimestamp::Always),
    }
}

fn strict() -> Enforcement {
    Enforcement {
        authenticity: Action::Enforce,
        authentic_timestamp: Action::Enforce,
        expiry: Action::Enforce,
        revocation: Action::Log,
    }
}

/// The authentic-timestamp failure of an envelope under `anchors`, `None` when it held.
fn timestamp_failure(
    verify: fn(&[u8], &Anchors, SystemTime) -> Result<Examined, Refusal>,
    envelope: &[u8],
    anchors: &Anchors,
) -> Option<String> {
    let v = verify(envelope, anchors, SystemTime::now()).unwrap();
    assert_eq!(v.authenticity, None);
    v.authentic_timestamp
}

#[test]
fn ng_jws_ts_and_ng_cose_ts_verify_with_their_rfc3161_timestamps() {
    let anchors = timestamp_anchors(store(TSA));
    let jws = verify_jws(
        &envelope(&format!("{TS}/jwsWithTimestamp.sig")),
        &anchors,
        SystemTime::now(),
    )
    .unwrap();
    let cose = verify_cose(
        &envelope(&format!("{TS}/coseWithTimestamp.sig")),
        &anchors,
        SystemTime::now(),
    )
    .unwrap();
    for v in [&jws, &cose] {
        assert_eq!(v.algorithm, Algorithm::Ps256);
        assert_eq!(v.authentic_timestamp, None, "{v:?}");
        assert!(v.subject.to_string().contains("CN=alpine"), "{}", v.subject);
        v.decide(&strict()).unwrap();
    }
    assert_eq!(cose.signing_scheme, "notary.x509");
    // The COSE payload names an image, as the JWS one does.
    assert!(
        cose.target.digest.starts_with("sha256:"),
        "{:?}",
        cose.target
    );
}

#[test]
fn ng_jws_no_ts_fails_the_timestamp_check_when_the_policy_asks_for_one() {
    let without = envelope(&format!("{TS}/withoutTimestamp.sig"));
    let why = timestamp_failure(verify_jws, &without, &timestamp_anchors(store(TSA))).unwrap();
    assert!(
        why.contains("no timestamp countersignature was found"),
        "{why}"
    );
    // Without a tsa store in the policy the signature verifies (its certificate is valid now).
    let anchors = Anchors {
        ca: store(CA),
        ..Anchors::default()
    };
    assert_eq!(timestamp_failure(verify_jws, &without, &anchors), None);
}

#[test]
fn a_timestamp_from_a_tsa_outside_the_store_is_refused() {
    let other = store("notation-go-envelopes/truststore/x509/ca/valid-trust-store-2");
    for (verify, file) in [
        (
            verify_jws as fn(&[u8], &Anchors, SystemTime) -> _,
            "jwsWithTimestamp.sig",
        ),
        (verify_cose, "coseWithTimestamp.sig"),
    ] {
        let bytes = envelope(&format!("{TS}/{file}"));
        let why = timestamp_failure(verify, &bytes, &timestamp_anchors(other.clone())).unwrap();
        assert!(
            why.contains("does not chain to a certificate of the tsa trust store"),
            "{file}: {why}"
        );
    }
}

/// The JWS envelope `doc` with its timestamp token replaced by `edit(token)`.
fn with_token(doc: &[u8], mut edit: impl FnMut(&mut Vec<u8>)) -> Vec<u8> {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    let mut doc: serde_json::Value = serde_json::from_slice(doc).unwrap();
    let header = doc["header"].as_object_mut().unwrap();
    let mut token = header
        .get("io.cncf.notary.timestampSignature")
        .map(|t| STANDARD.decode(t.as_str().unwrap()).unwrap())
        .unwrap_or_default();
    edit(&mut token);
    header.insert(
        "io.cncf.notary.timestampSignature".into(),
        STANDARD.encode(token).into(),
    );
    serde_json::to_vec(&doc).unwrap()
}

#[test]
fn a_tampered_timestamp_token_or_one_over_other_bytes_is_refused() {
    let anchors = timestamp_anchors(store(TSA));
    let stamped = envelope(&format!("{TS}/jwsWithTimestamp.sig"));
    let token = {
        let mut t = Vec::new();
        with_token(&stamped, |tok| t = tok.clone());
        t
    };
    // A byte of the TSTInfo's genTime ("20240618062937Z" -> "20240618062938Z").
    let at = token
        .windows(15)
        .position(|w| w == b"20240618062937Z")
        .unwrap();
    let tampered = with_token(&stamped, |t| t[at + 13] = b'8');
    let why = timestamp_failure(verify_jws, &tampered, &anchors).unwrap();
    assert!(
        why.contains("message-digest attribute is not the hash"),
        "{why}"
    );
    // The last byte of the TSA's signature.
    let tampered = with_token(&stamped, |t| *t.last_mut().unwrap() ^= 1);
    let why = timestamp_failure(verify_jws, &tampered, &anchors).unwrap();
    assert!(why.contains("signature does not verify"), "{why}");
    // A valid token, moved to an envelope whose signature it did not stamp.
    let moved = with_token(&envelope(&format!("{TS}/withoutTimestamp.sig")), |t| {
        *t = token.clone()
    });
    let why = timestamp_failure(verify_jws, &moved, &anchors).unwrap();
    assert!(
        why.contains("message imprint is not the hash of this signature"),
        "{why}"
    );
    // Garbage is a named failure, not a panic.
    let garbage = with_token(&stamped, |t| t.truncate(12));
    let why = timestamp_failure(verify_jws, &garbage, &anchors).unwrap();
    assert!(why.contains("not a CMS ContentInfo"), "{why}");
}

/// The signing certificate of a JWS envelope's `x5c`.
fn jws_leaf(envelope: &[u8]) -> Vec<u8> {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    let doc: serde_json::Value = serde_json::from_slice(envelope).unwrap();
    STANDARD
        .decode(doc["header"]["x5c"][0].as_str().unwrap())
        .unwrap()
}

#[test]
fn a_signer_expired_now_counts_when_the_timestamp_shows_it_was_valid_then() {
    // Signed by a self-signed testTSA certificate valid 2024-06-18 07:20:31 to 07:30:31 UTC
    // (upstream ships no store file for it: it is trusted here by its own DER).
    let jws = envelope(&format!("{TS}/jwsExpiredWithTimestamp.sig"));
    let cose = envelope(&format!("{TS}/coseExpiredWithTimestamp.sig"));
    let leaf = jws_leaf(&jws);
    for (verify, bytes) in [
        (verify_jws as fn(&[u8], &Anchors, SystemTime) -> _, &jws),
        (verify_cose, &cose),
    ] {
        let mut anchors = timestamp_anchors(store(TSA));
        anchors.ca = vec![leaf.clone()];
        assert_eq!(timestamp_failure(verify, bytes, &anchors), None);
        anchors.timestamps = Some(VerifyTimestamp::AfterCertExpiry);
        assert_eq!(timestamp_failure(verify, bytes, &anchors), None);
        // With no tsa store the certificate must be valid now, and it is not.
        let why = timestamp_failure(
            verify,
            bytes,
            &Anchors {
                ca: vec![leaf.clone()],
                ..Anchors::default()
            },
        )
        .unwrap();
        assert!(why.contains("no trusted timestamp"), "{why}");
    }
}

#[test]
fn a_timestamp_outside_the_signers_validity_is_refused() {
    // Signed by TestTimestampNotYetValid.crt (valid from 2099), timestamped in 2024.
    let bytes = envelope(&format!("{TS}/timestampBeforeNotBefore.sig"));
    let why = timestamp_failure(verify_jws, &bytes, &timestamp_anchors(store(TSA))).unwrap();
    assert!(
        why.contains("valid only 2099-09-18T11:54:34Z")
            && why.contains("timestamp says it was signed between 2024-06-19"),
        "{why}"
    );
    let bytes = envelope(&format!("{TS}/timestampAfterNotAfter.sig"));
    // Signed by a testTSA certificate valid 2000 to 2001 (in no store), timestamped in 2024.
    let v = verify_cose(&bytes, &timestamp_anchors(store(TSA)), SystemTime::now()).unwrap();
    let why = v.authentic_timestamp.unwrap();
    assert!(
        why.contains("valid only 2000-09-18T11:54:34Z to 2001-09-18T11:54:34Z")
            && why.contains("timestamp says it was signed between 2024-06-19"),
        "{why}"
    );
}

/// The COSE envelope with the first occurrence of `needle` changed in its last byte.
fn flipped(bytes: &[u8], needle: &[u8]) -> Vec<u8> {
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
        + needle.len()
        - 1;
    let mut out = bytes.to_vec();
    out[at] ^= 1;
    out
}

#[test]
fn ng_cose_ts_with_a_flipped_payload_or_signature_byte_or_another_store_is_refused() {
    let anchors = timestamp_anchors(store(TSA));
    let cose = envelope(&format!("{TS}/coseWithTimestamp.sig"));
    // A byte of the payload's digest, and the last byte of the signature (the last item).
    for bad in [flipped(&cose, b"\"digest\":\"sha256:"), {
        let sig_end = cose.len() - 1;
        let mut b = cose.clone();
        // The signature is the last item, unless the envelope ends elsewhere: check it.
        assert!(verify_cose(&b, &anchors, SystemTime::now()).is_ok());
        b[sig_end] ^= 1;
        b
    }] {
        match verify_cose(&bad, &anchors, SystemTime::now()) {
            Err(Refusal::Integrity(m)) => assert!(m.contains("does not verify"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
    let other = Anchors {
        ca: store("notation-go-envelopes/truststore/x509/ca/valid-trust-store-2"),
        ..timestamp_anchors(store(TSA))
    };
    let v = verify_cose(&cose, &other, SystemTime::now()).unwrap();
    assert!(v
        .authenticity
        .unwrap()
        .contains("does not lead to a certificate in the trust store"));
}

#[test]
fn malformed_cose_is_a_named_integrity_refusal() {
    let cose = envelope(&format!("{TS}/coseWithTimestamp.sig"));
    let anchors = timestamp_anchors(store(TSA));
    let mut untagged = cose.clone();
    untagged[0] = 0x84; // the array without tag 18
    let mut deep = vec![0x81u8; 10_000]; // arrays nested 10 000 deep
    deep.push(0x00);
    for (bytes, says) in [
        (cose[..cose.len() / 2].to_vec(), "malformed CBOR"),
        (untagged[1..].to_vec(), "not a COSE_Sign1 (CBOR tag 18)"),
        (deep, "malformed CBOR"),
        (
            [cose.clone(), vec![0]].concat(),
            "1 bytes after the envelope",
        ),
        (b"{}".to_vec(), "malformed CBOR"),
    ] {
        match verify_cose(&bytes, &anchors, SystemTime::now()) {
            Err(Refusal::Integrity(m)) => assert!(m.contains(says), "{says}: {m}"),
            other => panic!("{says}: {other:?}"),
        }
    }
}

#[test]
fn nt_timestamped_and_nt_invalid_timestamp_tokens_are_checked_when_the_policy_asks() {
    let globalsign = cert_store("notation-e2e-oci-layouts/config/timestamp/globalsignTSARoot.cer");
    for (layout, subject, says) in [
        (
            "e2e-with-timestamped-signature",
            "sha256:53b0191218aed9a3c1f7c661736ac40cfc8eb928642348fd843ba3f0483c0c20",
            // Its token is from a Microsoft TSA; the store holds GlobalSign's root.
            "does not chain to a certificate of the tsa trust store",
        ),
        (
            "e2e-with-invalid-timestamped-signature",
            "sha256:f1da8cd70d6d851fa2313c8d6618f79508cf1e86877edf1c0bfe49a1b0a6467a",
            "not a CMS ContentInfo",
        ),
    ] {
        let sigs = layout_signatures(layout, subject);
        assert_eq!(sigs.len(), 1, "{layout}");
        let bytes = &sigs[0].1;
        let anchors = Anchors {
            ca: vec![jws_leaf(bytes)],
            signing_authority: Vec::new(),
            tsa: globalsign.clone(),
            timestamps: Some(VerifyTimestamp::Always),
        };
        let why = timestamp_failure(verify_jws, bytes, &anchors).unwrap();
        assert!(why.contains(says), "{layout}: {why}");
    }
}
