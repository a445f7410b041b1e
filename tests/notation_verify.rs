//! `vouch oci verify REF --trust-policy FILE --trust-store DIR` over the Notation-signed
//! image layouts of the shared fixtures (`image-signatures/`, cases.json's
//! `notation_oci_layouts`), under the trust policies that come with them, as given; and
//! the same signatures served by a real registry (Debian's docker-registry), found through
//! the referrers tag-schema fallback, until the tag moves.

mod common;
mod oci_support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

const V1: &str = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9";
const POLICIES: &str = "notation-e2e-oci-layouts/config/trustpolicies";
const LAYOUTS: &str = "notation-e2e-oci-layouts/registry/oci_layout";
const E2E: &str = "notation-e2e-oci-layouts/config/localkeys/e2e.crt";

fn fixtures(test: &str) -> Option<PathBuf> {
    common::shared_testdata(test).map(|d| d.join("image-signatures"))
}

/// A trust store directory holding `stores` (`TYPE:NAME` → certificate files), in a
/// temporary directory.
fn trust_store(root: &Path, stores: &[(&str, Vec<PathBuf>)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (store, files) in stores {
        let (kind, name) = store.split_once(':').unwrap();
        let named = dir.path().join("x509").join(kind).join(name);
        std::fs::create_dir_all(&named).unwrap();
        for file in files {
            let file = root.join(file);
            std::fs::copy(&file, named.join(file.file_name().unwrap())).unwrap();
        }
    }
    dir
}

/// The store `ca:e2e` with one certificate file.
fn e2e_store(root: &Path, certificate: &str) -> tempfile::TempDir {
    trust_store(root, &[("ca:e2e", vec![certificate.into()])])
}

fn verify(reference: &str, policy: &Path, store: &Path) -> common::Ran {
    oci_support::oci_verify(
        reference,
        &[
            "--trust-policy",
            policy.to_str().unwrap(),
            "--trust-store",
            store.to_str().unwrap(),
        ],
    )
}

fn layout_ref(root: &Path, layout: &str) -> String {
    format!("oci:{}:v1", root.join(LAYOUTS).join(layout).display())
}

/// The Notation signature subjects of a report, by the first 8 hex digits of their digest.
fn signatures(report: &Value) -> BTreeMap<String, (String, String)> {
    oci_support::subjects_named(report, "Notation signature")
        .into_iter()
        .map(|s| {
            let name = s["name"].as_str().unwrap();
            let hex = name.split("sha256:").nth(1).unwrap()[..8].to_string();
            (
                hex,
                (
                    s["verdict"].as_str().unwrap().to_string(),
                    s["message"].as_str().unwrap_or_default().to_string(),
                ),
            )
        })
        .collect()
}

fn warnings(report: &Value) -> String {
    report["warnings"].to_string()
}

/// What a case must give under one trust policy: the exit status, and text the report must
/// hold (in the refused signature's message, or for a pass, in the counted one's and the
/// warnings).
struct Expect {
    policy: &'static str,
    status: i32,
    says: &'static [&'static str],
}

const fn expect(policy: &'static str, status: i32, says: &'static [&'static str]) -> Expect {
    Expect {
        policy,
        status,
        says,
    }
}

/// Each case of cases.json's `notation_oci_layouts` under the trust policies its `expect`
/// names (the trust policy given, and for "(strict and permissive)", "valid under
/// permissive" and the like, permissive_trustpolicy.json); the inspect-only and unsigned
/// cases, which name no policy, under trustpolicy.json.
fn expectations(id: &str) -> Vec<Expect> {
    match id {
        "nt-valid" => vec![expect("", 0, &["CN=e2e,O=Notary", "integrity, its target, authenticity, expiry, the authentic timestamp, revocation"])],
        "nt-valid-identity" => vec![expect("", 0, &["CN=e2e"])],
        "nt-invalid-identity" => vec![expect("", 1, &["authenticity: ", "matches none of the trusted identities", "C=USB"])],
        "nt-wrong-store" => vec![
            expect("", 1, &["authenticity: the signing chain does not lead to a certificate in the trust store"]),
            expect("permissive_trustpolicy.json", 1, &["authenticity: the signing chain does not lead"]),
        ],
        "nt-multi" => vec![expect("", 0, &["c3ebe4a2", "authenticity"])],
        "nt-expired-sig" => vec![
            expect("", 1, &["expiry: the signature expired at 2023-06-27T13:21:21+08:00"]),
            expect("permissive_trustpolicy.json", 0, &["NOT verified, only logged", "expiry: the signature expired at 2023-06-27T13:21:21+08:00"]),
        ],
        "nt-invalid-sig" => vec![
            expect("", 1, &["integrity: its layer is \"application/vnd.oci.image.layer.v1.tar\""]),
            expect("permissive_trustpolicy.json", 1, &["integrity: "]),
        ],
        "nt-expired-cert" => vec![
            expect("", 1, &["authentic timestamp: x5c certificate 1", "there is no trusted timestamp"]),
            expect("permissive_trustpolicy.json", 0, &["NOT verified, only logged", "authentic timestamp: "]),
        ],
        // The signer (testcert7, self-signed) is in no shipped store.
        "nt-timestamped" | "nt-invalid-timestamp" => vec![expect("trustpolicy.json", 1, &["authenticity: the signing chain does not lead"])],
        "nt-unsigned" => vec![expect("trustpolicy.json", 1, &["no signature of sha256:b8479de3"])],
        other => panic!("cases.json has a Notation layout case this test does not know: {other}"),
    }
}

#[test]
fn every_notation_layout_case_verifies_as_cases_json_says() {
    let Some(root) = fixtures("every_notation_layout_case_verifies_as_cases_json_says") else {
        return;
    };
    let cases: Value =
        serde_json::from_slice(&std::fs::read(root.join("cases.json")).unwrap()).unwrap();
    let cases = cases["notation_oci_layouts"].as_array().unwrap();
    assert_eq!(cases.len(), 11);
    for case in cases {
        let id = case["id"].as_str().unwrap();
        let layout = case["layout"].as_str().unwrap();
        let reference = format!("oci:{}:v1", root.join(layout).display());
        let stores: Vec<(&str, Vec<PathBuf>)> = match case["trust_store"].as_object() {
            Some(stores) => stores
                .iter()
                .map(|(name, files)| {
                    let files = files
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|f| PathBuf::from(f.as_str().unwrap()))
                        .collect();
                    (name.as_str(), files)
                })
                .collect(),
            None => vec![("ca:e2e", vec![E2E.into()])],
        };
        let store = trust_store(&root, &stores);
        let expect_text = case["expect"].as_str().unwrap();
        for expected in expectations(id) {
            let policy = match expected.policy {
                "" => root.join(case["trust_policy"].as_str().unwrap()),
                file => root.join(POLICIES).join(file),
            };
            let ran = verify(&reference, &policy, store.path()).expect(expected.status);
            let report = ran.json();
            let text =
                format!("{} {}", report["subjects"], warnings(&report)).replace("\\\"", "\"");
            for says in expected.says {
                assert!(
                    text.contains(says),
                    "{id} ({expect_text}) under {}: the report lacks {says:?}:\n{report:#}",
                    policy.display()
                );
            }
            // Every signature found is named, with what was made of it.
            let found = signatures(&report);
            match expected.status {
                0 => {
                    assert!(found.values().any(|(v, _)| v == "ok"), "{id}: {report:#}");
                    assert_eq!(report["status"], "verified", "{id}: {report:#}");
                }
                _ => assert!(found.values().all(|(v, _)| v != "ok"), "{id}: {report:#}"),
            }
        }
    }
}

#[test]
fn the_multi_signature_layout_counts_the_good_one_and_names_the_other() {
    let Some(root) = fixtures("the_multi_signature_layout_counts_the_good_one_and_names_the_other")
    else {
        return;
    };
    let store = e2e_store(&root, E2E);
    let report = verify(
        &layout_ref(&root, "e2e-valid-multiple-signatures"),
        &root.join(POLICIES).join("trustpolicy.json"),
        store.path(),
    )
    .expect(0)
    .json();
    let found = signatures(&report);
    assert_eq!(found["90ceaff2"].0, "ok", "{report:#}");
    // The other is listed in index.json only, and refused: named in a warning.
    let warned = warnings(&report);
    assert!(
        warned.contains("Notation signature sha256:c3ebe4a2")
            && warned.contains("was not counted: authenticity"),
        "{report:#}"
    );
}

#[test]
fn audit_and_overridden_levels_enforce_what_they_say_and_say_what_was_only_logged() {
    let Some(root) = fixtures("audit_and_overridden_levels_enforce_what_they_say") else {
        return;
    };
    let policy = |file: &str| root.join(POLICIES).join(file);
    let wrong = e2e_store(
        &root,
        "notation-e2e-oci-layouts/config/localkeys/new_e2e.crt",
    );
    let right = e2e_store(&root, E2E);
    let valid = layout_ref(&root, "e2e-valid-signature");
    let expired = layout_ref(&root, "e2e-expired-signature");
    // audit: integrity only; an untrusted signer is logged, loudly.
    let report = verify(&valid, &policy("audit_trustpolicy.json"), wrong.path())
        .expect(0)
        .json();
    let (verdict, message) = &signatures(&report)["90ceaff2"];
    assert_eq!(verdict, "ok");
    assert!(
        message.contains("NOT verified, only logged at this level: authenticity: "),
        "{report:#}"
    );
    assert!(
        warnings(&report)
            .contains("counted although Notation's level audit only logged that authenticity"),
        "{report:#}"
    );
    // And the approval line, which the summary repeats, says so too.
    assert!(
        report["approval"].as_str().unwrap().ends_with(
            "the signature that counted did NOT pass authenticity, which this level only logs"
        ),
        "{report:#}"
    );
    // audit still enforces integrity.
    verify(
        &layout_ref(&root, "e2e-invalid-signature"),
        &policy("audit_trustpolicy.json"),
        right.path(),
    )
    .expect(1);
    // audit with authenticity enforced refuses the untrusted signer.
    let report = verify(
        &valid,
        &policy("override_audit_trustpolicy.json"),
        wrong.path(),
    )
    .expect(1)
    .json();
    assert!(report
        .to_string()
        .contains("authenticity: the signing chain"));
    // strict with everything logged passes an expired signature, saying so.
    let report = verify(
        &expired,
        &policy("override_strict_trustpolicy.json"),
        right.path(),
    )
    .expect(0)
    .json();
    assert!(
        signatures(&report)["3829708b"]
            .1
            .contains("expiry: the signature expired"),
        "{report:#}"
    );
    // permissive with expiry enforced refuses it.
    verify(
        &expired,
        &policy("override_permissive_trustpolicy.json"),
        right.path(),
    )
    .expect(1);
    // afterCertExpiry with a tsa store: a certificate valid now needs no timestamp.
    let tsa = trust_store(
        &root,
        &[
            ("ca:e2e", vec![E2E.into()]),
            (
                "tsa:e2e",
                vec!["notation-e2e-oci-layouts/config/timestamp/globalsignTSARoot.cer".into()],
            ),
        ],
    );
    verify(
        &valid,
        &policy("timestamp_after_cert_expiry_trustpolicy.json"),
        tsa.path(),
    )
    .expect(0);
    // always: Notation requires a timestamp, and this signature has none.
    let report = verify(&valid, &policy("timestamp_trustpolicy.json"), tsa.path())
        .expect(1)
        .json();
    assert!(
        report
            .to_string()
            .contains("verifyTimestamp: always), and no timestamp countersignature was found"),
        "{report:#}"
    );
}

#[test]
fn the_other_fixture_policies_that_notation_accepts_verify() {
    let Some(root) = fixtures("the_other_fixture_policies_that_notation_accepts_verify") else {
        return;
    };
    let store = e2e_store(&root, E2E);
    for file in [
        "any_registry_scope_trust_policy.json",
        "multi_statements_with_wildcard_registry_scope_trustpolicy.json",
        "multiple_trusted_identity_trustpolicy.json",
        "overlapped_trust_store_trustpolicy.json",
    ] {
        let ran = verify(
            &layout_ref(&root, "e2e-valid-signature"),
            &root.join(POLICIES).join(file),
            store.path(),
        );
        assert_eq!(
            ran.code,
            Some(0),
            "{file}: {}\n{}",
            ran.stdout(),
            ran.stderr
        );
    }
}

/// Every fixture policy Notation refuses (or that names a store the test does not give, or
/// does not cover an image layout) is an input error naming the file and the problem.
#[test]
fn malformed_policies_and_stores_are_exit_2_naming_the_file() {
    let Some(root) = fixtures("malformed_policies_and_stores_are_exit_2_naming_the_file") else {
        return;
    };
    let store = e2e_store(&root, E2E);
    let cases: &[(&str, &str)] = &[
        (
            "invalid_format_trustpolicy.json",
            "not a Notation trust policy document",
        ),
        (
            "unset_trusted_identity_trustpolicy.json",
            "names no trusted identities",
        ),
        (
            "empty_trusted_identity_trustpolicy.json",
            "is not x509.subject: DN",
        ),
        (
            "malformed_trusted_identity_trustpolicy.json",
            "is not x509.subject: DN (no ':')",
        ),
        ("overlapped_trusted_identity_trustpolicy.json", "overlap"),
        (
            "wildcard_plus_other_trusted_identity_trustpolicy.json",
            "wildcard trusted identity '*' cannot go with other",
        ),
        (
            "missing_organization_trusted_identity_trustpolicy.json",
            "has no O",
        ),
        (
            "missing_state_trusted_identity_trustpolicy.json",
            "has no ST",
        ),
        (
            "missing_country_trusted_identity_trustpolicy.json",
            "has no C",
        ),
        (
            "unset_trust_store_trustpolicy.json",
            "names no trust stores",
        ),
        (
            "malformed_trust_store_trustpolicy.json",
            "a store name is made of",
        ),
        ("wildcard_trust_store_trustpolicy.json", "is not TYPE:NAME"),
        ("invalid_trust_store_trustpolicy.json", "invalid_store"),
        ("multiple_trust_store_trustpolicy.json", "e2e-new"),
        ("quickstart_trustpolicy.json", "wabbit-networks.io"),
        ("generate_test_trustpolicy.json", "sKey"),
        (
            "empty_registry_scope_trustpolicy.json",
            "has no registry scopes",
        ),
        ("blob_trust_policy.json", "has no registry scopes"),
        (
            "malformed_registry_scope_trustpolicy.json",
            "is not a repository HOST/PATH",
        ),
        (
            "wildcard_plus_other_registry_scope_trustpolicy.json",
            "wildcard registry scope '*' cannot go with other",
        ),
        (
            "overlapped_registry_scope_trustpolicy.json",
            "\"localhost:5000/test-repo6\" is given more than once",
        ),
        (
            "multi_statements_with_the_same_registry_scope_trustpolicy.json",
            "\"localhost:5000/test-repo8\" is given more than once",
        ),
        (
            "multi_statements_with_multi_wildcard_registry_scope_trustpolicy.json",
            "\"*\" is given more than once",
        ),
        (
            "multi_statements_with_the_same_name_trustpolicy.json",
            "two trust policy statements are named \"e2e\"",
        ),
        (
            "override_integrity_for_permissive_trustpolicy.json",
            "integrity cannot be overridden",
        ),
        (
            "skip_trustpolicy.json",
            "has the level skip: it verifies nothing, and vouch refuses it",
        ),
        (
            "registry_scope_trustpolicy.json",
            "no trust policy statement applies to an image layout",
        ),
        (
            "invalid_registry_scope_trustpolicy.json",
            "no trust policy statement applies",
        ),
        (
            "multiple_registry_scope_trustpolicy.json",
            "no trust policy statement applies",
        ),
    ];
    for (file, says) in cases {
        let policy = root.join(POLICIES).join(file);
        let ran = verify(
            &layout_ref(&root, "e2e-valid-signature"),
            &policy,
            store.path(),
        );
        assert_eq!(
            ran.code,
            Some(2),
            "{file}: {}\n{}",
            ran.stdout(),
            ran.stderr
        );
        assert!(
            ran.stderr.contains(says),
            "{file}: {says:?} not in {}",
            ran.stderr
        );
        let named = ran.stderr.contains(&policy.display().to_string())
            || ran.stderr.contains(&store.path().display().to_string());
        assert!(named, "{file}: the file is not named: {}", ran.stderr);
    }
    // Every fixture policy is run by one of this file's tests.
    let used = cases.len() + 4 + 10;
    assert_eq!(
        std::fs::read_dir(root.join(POLICIES)).unwrap().count(),
        used
    );
}

#[test]
fn a_symlinked_or_malformed_trust_store_is_exit_2_naming_it() {
    let Some(root) = fixtures("a_symlinked_or_malformed_trust_store_is_exit_2_naming_it") else {
        return;
    };
    let policy = root.join(POLICIES).join("trustpolicy.json");
    let valid = layout_ref(&root, "e2e-valid-signature");
    let store = tempfile::tempdir().unwrap();
    let ca = store.path().join("x509/ca");
    std::fs::create_dir_all(&ca).unwrap();
    let real = tempfile::tempdir().unwrap();
    std::fs::copy(root.join(E2E), real.path().join("e2e.crt")).unwrap();
    std::os::unix::fs::symlink(real.path(), ca.join("e2e")).unwrap();
    let ran = verify(&valid, &policy, store.path()).expect(2);
    assert!(
        ran.stderr.contains(&ca.join("e2e").display().to_string())
            && ran.stderr.contains("symlinks are refused"),
        "{}",
        ran.stderr
    );
    std::fs::remove_file(ca.join("e2e")).unwrap();
    std::fs::create_dir(ca.join("e2e")).unwrap();
    std::os::unix::fs::symlink(real.path().join("e2e.crt"), ca.join("e2e/e2e.crt")).unwrap();
    verify(&valid, &policy, store.path()).expect(2);
    std::fs::remove_file(ca.join("e2e/e2e.crt")).unwrap();
    std::fs::write(ca.join("e2e/e2e.crt"), "not a certificate").unwrap();
    let ran = verify(&valid, &policy, store.path()).expect(2);
    assert!(ran.stderr.contains("e2e.crt"), "{}", ran.stderr);
    // Without the store at all.
    let ran = verify(&valid, &policy, &store.path().join("nowhere")).expect(2);
    assert!(ran.stderr.contains("nowhere"), "{}", ran.stderr);
}

#[test]
fn a_trust_policy_goes_with_its_store_and_no_other_signature_policy() {
    let Some(root) = fixtures("a_trust_policy_goes_with_its_store_and_no_other_signature_policy")
    else {
        return;
    };
    let policy = root.join(POLICIES).join("trustpolicy.json");
    let valid = layout_ref(&root, "e2e-valid-signature");
    let ran =
        oci_support::oci_verify(&valid, &["--trust-policy", policy.to_str().unwrap()]).expect(2);
    assert!(ran.stderr.contains("--trust-store"), "{}", ran.stderr);
    let store = e2e_store(&root, E2E);
    let key = root.join("containers-image-cosign/keys/cosign.pub");
    let ran = oci_support::oci_verify(
        &valid,
        &[
            "--trust-policy",
            policy.to_str().unwrap(),
            "--trust-store",
            store.path().to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    )
    .expect(2);
    assert!(
        ran.stderr
            .contains("--trust-policy and --key each approve on their own"),
        "{}",
        ran.stderr
    );
}

/// A copy of the layout `name` in `dir`.
/// A Notation JWS envelope (ES256, `notary.x509`) over `target`, signed by a fresh
/// self-signed code-signing certificate: (envelope, certificate DER).
fn es256_envelope(target: &Value) -> (Vec<u8>, Vec<u8>) {
    use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine;
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose};
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CountryName, "US");
    params
        .distinguished_name
        .push(DnType::StateOrProvinceName, "WA");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Notary");
    params.distinguished_name.push(DnType::CommonName, "e2e");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    let cert = params.self_signed(&key).unwrap().der().to_vec();
    let protected = URL_SAFE_NO_PAD.encode(
        json!({
            "alg": "ES256",
            "cty": "application/vnd.cncf.notary.payload.v1+json",
            "crit": ["io.cncf.notary.signingScheme"],
            "io.cncf.notary.signingScheme": "notary.x509",
            "io.cncf.notary.signingTime": "2026-01-01T00:00:00Z",
        })
        .to_string(),
    );
    let payload = URL_SAFE_NO_PAD.encode(
        json!({"targetArtifact": {
            "mediaType": target["mediaType"],
            "digest": target["digest"],
            "size": target["size"],
        }})
        .to_string(),
    );
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key.serialize_der()).unwrap();
    let signature = pair
        .sign(
            &aws_lc_rs::rand::SystemRandom::new(),
            format!("{protected}.{payload}").as_bytes(),
        )
        .unwrap();
    let envelope = json!({
        "protected": protected,
        "payload": payload,
        "signature": URL_SAFE_NO_PAD.encode(signature.as_ref()),
        "header": {"x5c": [STANDARD.encode(&cert)]},
    });
    (envelope.to_string().into_bytes(), cert)
}

#[test]
fn a_registry_manifest_without_a_media_type_has_the_one_it_is_served_as() {
    let test = "a_registry_manifest_without_a_media_type_has_the_one_it_is_served_as";
    let Some(root) = fixtures(test) else {
        return;
    };
    if common::require_tool(test, "docker-registry").is_none() {
        return;
    }
    let registry = oci_support::Registry::start();
    let port = registry.port;
    let work = tempfile::tempdir().unwrap();
    let layout = copy_layout(&root, "e2e", work.path());
    // v1 without its mediaType (as umoci writes manifests), and a signature that names it
    // as the OCI image manifest the registry serves it as.
    let mut bare = layout.manifest("v1");
    bare.as_object_mut().unwrap().remove("mediaType");
    let bare = layout.put_manifest("bare", &bare);
    let digest = bare["digest"].as_str().unwrap().to_string();
    push(port, "vouch/bare", &layout, &digest, Some("v1"));
    let (envelope, cert) = es256_envelope(&bare);
    put_signature(&layout, "sig", &bare, "application/jose+json", &envelope);
    let sig = layout.descriptor("sig");
    let fallback = layout.write_blob(
        "application/vnd.oci.image.index.v1+json",
        json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": sig["mediaType"],
                "digest": sig["digest"],
                "size": sig["size"],
                "artifactType": "application/vnd.cncf.notary.signature",
            }],
        })
        .to_string()
        .as_bytes(),
    );
    push(
        port,
        "vouch/bare",
        &layout,
        fallback["digest"].as_str().unwrap(),
        Some(&format!("sha256-{}", &digest[7..])),
    );
    std::fs::write(work.path().join("signer.crt"), cert).unwrap();
    let store = trust_store(work.path(), &[("ca:e2e", vec!["signer.crt".into()])]);
    let policy = root.join(POLICIES).join("trustpolicy.json");
    let report = verify(&registry.reference("vouch/bare:v1"), &policy, store.path())
        .expect(0)
        .json();
    let found = signatures(&report);
    assert_eq!(found.len(), 1, "{report:#}");
    assert!(
        found.values().all(|(verdict, _)| verdict == "ok"),
        "{report:#}"
    );
}

fn copy_layout(root: &Path, name: &str, dir: &Path) -> oci_support::Layout {
    let from = root.join(LAYOUTS).join(name);
    let to = dir.join(name);
    std::fs::create_dir_all(to.join("blobs/sha256")).unwrap();
    for file in ["oci-layout", "index.json"] {
        std::fs::copy(from.join(file), to.join(file)).unwrap();
    }
    for entry in std::fs::read_dir(from.join("blobs/sha256")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            to.join("blobs/sha256").join(entry.file_name()),
        )
        .unwrap();
    }
    oci_support::Layout::at(&to)
}

/// A signature manifest over `subject` whose one layer is `envelope`, as Notation writes one.
fn put_signature(
    layout: &oci_support::Layout,
    tag: &str,
    subject: &Value,
    media_type: &str,
    envelope: &[u8],
) {
    let config = layout.write_blob("application/vnd.cncf.notary.signature", b"{}");
    let layer = layout.write_blob(media_type, envelope);
    layout.put_manifest(
        tag,
        &json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config,
            "layers": [layer],
            "subject": {"mediaType": subject["mediaType"], "digest": subject["digest"], "size": subject["size"]},
        }),
    );
}

/// The JWS envelope of the valid signature of `v1`.
fn valid_envelope(root: &Path) -> Vec<u8> {
    let layout = oci_support::Layout::at(&root.join(LAYOUTS).join("e2e-valid-signature"));
    let manifest =
        layout.read_json("sha256:90ceaff260d657d797c408ac73564a9c7bb9d86055877c2a811f0e63b8c6524f");
    std::fs::read(layout.blob_path(manifest["layers"][0]["digest"].as_str().unwrap())).unwrap()
}

#[test]
fn a_valid_signature_of_another_image_and_a_cose_envelope_do_not_count() {
    let Some(root) =
        fixtures("a_valid_signature_of_another_image_and_a_cose_envelope_do_not_count")
    else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let store = e2e_store(&root, E2E);
    let policy = root.join(POLICIES).join("trustpolicy.json");
    // Another image (v1 with an annotation), carrying v1's valid signature.
    let layout = copy_layout(&root, "e2e", work.path());
    let mut other = layout.manifest("v1");
    other["annotations"] = json!({"vouch.test": "another image"});
    let v2 = layout.put_manifest("v2", &other);
    put_signature(
        &layout,
        "sig-v2",
        &v2,
        "application/jose+json",
        &valid_envelope(&root),
    );
    let report = verify(&layout.reference("v2"), &policy, store.path())
        .expect(1)
        .json();
    let message = report.to_string();
    assert!(
        message.contains(&format!("the signature is for {V1} (517 bytes, application/vnd.oci.image.manifest.v1+json), not {}", v2["digest"].as_str().unwrap())),
        "{report:#}"
    );
    // A COSE envelope of another image, by a signer the store trusts, is verified and
    // refused for its target.
    let cose =
        std::fs::read(root.join("notation-go-envelopes/timestamp/coseWithTimestamp.sig")).unwrap();
    let v1 = layout.descriptor("v1");
    put_signature(&layout, "sig-cose", &v1, "application/cose", &cose);
    let alpine = trust_store(
        &root,
        &[(
            "ca:e2e",
            vec![
                "notation-go-envelopes/truststore/x509/ca/valid-trust-store/TestTimestamp.crt"
                    .into(),
            ],
        )],
    );
    let report = verify(&layout.reference("v1"), &policy, alpine.path())
        .expect(1)
        .json();
    assert!(
        report.to_string().contains(&format!(
            "the signature is for sha256:c0669ef34cdc14332c0f1ab0c2c01acb91d96014b172f1a76f3a39e63d1f0bda (528 bytes, application/vnd.docker.distribution.manifest.v2+json), not {V1}"
        )),
        "{report:#}"
    );
}

/// One plain-HTTP request to the registry on loopback: the status and the response headers.
fn http(port: u16, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    (status, text)
}

/// Pushes a blob with a monolithic upload (POST, then PUT with its digest).
fn push_blob(port: u16, repository: &str, bytes: &[u8]) {
    let digest = format!("sha256:{}", common::sha256_hex(bytes));
    let (status, response) = http(
        port,
        "POST",
        &format!("/v2/{repository}/blobs/uploads/"),
        "application/octet-stream",
        b"",
    );
    assert_eq!(status, 202, "{response}");
    let location = response
        .lines()
        .find_map(|l| l.strip_prefix("Location: "))
        .unwrap()
        .trim();
    let location = location
        .strip_prefix(&format!("http://127.0.0.1:{port}"))
        .unwrap_or(location);
    let sep = if location.contains('?') { '&' } else { '?' };
    let (status, response) = http(
        port,
        "PUT",
        &format!("{location}{sep}digest={digest}"),
        "application/octet-stream",
        bytes,
    );
    assert_eq!(status, 201, "{response}");
}

/// Pushes the manifest or index `digest` of `layout` (with its blobs, or the manifests it
/// lists) and tags it `tag` (or puts it by digest).
fn push(
    port: u16,
    repository: &str,
    layout: &oci_support::Layout,
    digest: &str,
    tag: Option<&str>,
) {
    let bytes = std::fs::read(layout.blob_path(digest)).unwrap();
    let document: Value = serde_json::from_slice(&bytes).unwrap();
    if let Some(manifests) = document["manifests"].as_array() {
        for m in manifests {
            push(
                port,
                repository,
                layout,
                m["digest"].as_str().unwrap(),
                None,
            );
        }
    } else {
        let mut blobs = vec![document["config"].clone()];
        blobs.extend(document["layers"].as_array().unwrap().iter().cloned());
        for blob in blobs {
            let data = std::fs::read(layout.blob_path(blob["digest"].as_str().unwrap())).unwrap();
            push_blob(port, repository, &data);
        }
    }
    let (status, response) = http(
        port,
        "PUT",
        &format!("/v2/{repository}/manifests/{}", tag.unwrap_or(digest)),
        // A manifest without a mediaType is put as what it is, an OCI image manifest.
        document["mediaType"]
            .as_str()
            .unwrap_or("application/vnd.oci.image.manifest.v1+json"),
        &bytes,
    );
    assert_eq!(status, 201, "{response}");
}

#[test]
fn notation_signatures_in_a_real_registry_verify_until_the_tag_moves() {
    let test = "notation_signatures_in_a_real_registry_verify_until_the_tag_moves";
    let Some(root) = fixtures(test) else {
        return;
    };
    if common::require_tool(test, "docker-registry").is_none() {
        return;
    }
    let registry = oci_support::Registry::start();
    let port = registry.port;
    let layout = oci_support::Layout::at(&root.join(LAYOUTS).join("e2e-valid-signature"));
    let fallback = format!("sha256-{}", &V1[7..]);
    push(port, "vouch/nt", &layout, V1, Some("v1"));
    // The signature manifest and its referrers fallback index (docker-registry 2.8 has
    // no referrers API), as Notation pushes them.
    let index = layout.descriptor(&fallback);
    push(
        port,
        "vouch/nt",
        &layout,
        index["digest"].as_str().unwrap(),
        Some(&fallback),
    );
    let reference = registry.reference("vouch/nt:v1");
    assert_eq!(oci_support::oci_digest(&reference), V1);
    let store = e2e_store(&root, E2E);
    let any = root.join(POLICIES).join("trustpolicy.json");
    let report = verify(&reference, &any, store.path()).expect(0).json();
    let found = signatures(&report);
    assert_eq!(found["90ceaff2"].0, "ok", "{report:#}");
    // A statement for exactly this repository is chosen over the global one.
    let scoped = tempfile::NamedTempFile::new().unwrap();
    let mut document: Value = serde_json::from_slice(&std::fs::read(&any).unwrap()).unwrap();
    let mut exact = document["trustPolicies"][0].clone();
    exact["name"] = json!("this-repository");
    exact["registryScopes"] = json!([format!("127.0.0.1:{port}/vouch/nt")]);
    exact["trustedIdentities"] = json!(["x509.subject: C=US, ST=WA, O=Notary, CN=someone else"]);
    document["trustPolicies"]
        .as_array_mut()
        .unwrap()
        .push(exact);
    std::fs::write(scoped.path(), document.to_string()).unwrap();
    let report = verify(&reference, scoped.path(), store.path())
        .expect(1)
        .json();
    assert!(
        report
            .to_string()
            .contains("statement \\\"this-repository\\\"")
            && report
                .to_string()
                .contains("matches none of the trusted identities"),
        "{report:#}"
    );
    // The tag moves to another image: it has no signature.
    let moved_dir = tempfile::tempdir().unwrap();
    let moved = copy_layout(&root, "e2e", moved_dir.path());
    let mut other = moved.manifest("v1");
    other["annotations"] = json!({"vouch.test": "moved"});
    let other = moved.put_manifest("v2", &other);
    push(
        port,
        "vouch/nt",
        &moved,
        other["digest"].as_str().unwrap(),
        Some("v1"),
    );
    let report = verify(&reference, &any, store.path()).expect(1).json();
    assert!(signatures(&report).is_empty(), "{report:#}");
    assert!(
        report.to_string().contains(&format!(
            "no signature of {} was found",
            other["digest"].as_str().unwrap()
        )),
        "{report:#}"
    );
}

#[test]
fn a_drift_image_target_takes_a_trust_policy_and_store() {
    let Some(root) = fixtures("a_drift_image_target_takes_a_trust_policy_and_store") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("vouch.toml");
    // The store beside the config, named relative to it.
    let store = work.path().join("truststore/x509/ca/e2e");
    std::fs::create_dir_all(&store).unwrap();
    let run = |layout: &str, certificate: &str, extra: &str| {
        std::fs::copy(root.join(certificate), store.join("e2e.crt")).unwrap();
        std::fs::write(
            &config,
            format!(
                "[[target]]\nname = \"app\"\nowner = \"ops@example.com\"\nimage = \"{}\"\ntrust_policy = \"{}\"\ntrust_store = \"truststore\"\n{extra}",
                layout_ref(&root, layout),
                root.join(POLICIES).join("trustpolicy.json").display()
            ),
        )
        .unwrap();
        common::run(
            common::vouch()
                .args(["drift", "run", "--format", "json", "-c"])
                .arg(&config),
        )
    };
    let report = run("e2e-valid-signature", E2E, "").expect(0).json();
    assert!(
        report
            .to_string()
            .contains("Notation signature sha256:90ceaff2"),
        "{report}"
    );
    let report = run(
        "e2e-valid-signature",
        "notation-e2e-oci-layouts/config/localkeys/new_e2e.crt",
        "",
    )
    .expect(1)
    .json();
    assert!(report.to_string().contains("authenticity: "), "{report}");
    let ran = run("e2e-valid-signature", E2E, "key = \"cosign.pub\"\n").expect(2);
    assert!(
        ran.stderr
            .contains("trust_policy and key each approve on their own"),
        "{}",
        ran.stderr
    );
}

/// The RFC 3161-timestamped signature of the fixtures, its self-signed signer (expired
/// 2025-01-22) made the store's one certificate: vouch verifies no timestamp, so under a
/// policy with a tsa store the authentic-timestamp validation fails, and says why.
#[test]
fn nt_timestamped_is_not_rescued_by_a_timestamp_from_a_tsa_outside_the_store() {
    let Some(root) =
        fixtures("a_timestamped_signature_is_not_rescued_by_a_timestamp_vouch_does_not_verify")
    else {
        return;
    };
    let layout =
        oci_support::Layout::at(&root.join(LAYOUTS).join("e2e-with-timestamped-signature"));
    let signature = layout.read_json(layout.index()["manifests"][1]["digest"].as_str().unwrap());
    let envelope: Value = serde_json::from_slice(
        &std::fs::read(layout.blob_path(signature["layers"][0]["digest"].as_str().unwrap()))
            .unwrap(),
    )
    .unwrap();
    assert!(envelope["header"]["io.cncf.notary.timestampSignature"].is_string());
    let signer = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        envelope["header"]["x5c"][0].as_str().unwrap(),
    )
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("testcert7.crt"), signer).unwrap();
    let store = trust_store(
        work.path(),
        &[
            ("ca:e2e", vec!["testcert7.crt".into()]),
            (
                "tsa:e2e",
                vec![root.join("notation-e2e-oci-layouts/config/timestamp/globalsignTSARoot.cer")],
            ),
        ],
    );
    let reference = layout.reference("v1");
    // It also expired (io.cncf.notary.expiry 2025-01-21), refused first at strict.
    let strict = root.join(POLICIES).join("timestamp_trustpolicy.json");
    let report = verify(&reference, &strict, store.path()).expect(1).json();
    assert!(
        signatures(&report)["6a5cd3a8"]
            .1
            .starts_with("expiry: the signature expired at 2025-01-21"),
        "{report:#}"
    );
    // With expiry only logged, the timestamp is what refuses it.
    for (file, says) in [
        // Its token is from a Microsoft TSA, whose root the store does not hold.
        (
            "timestamp_trustpolicy.json",
            "the timestamp countersignature does not verify: the TSA certificate",
        ),
        (
            "timestamp_after_cert_expiry_trustpolicy.json",
            "does not chain to a certificate of the tsa trust store",
        ),
    ] {
        let mut policy: Value =
            serde_json::from_slice(&std::fs::read(root.join(POLICIES).join(file)).unwrap())
                .unwrap();
        policy["trustPolicies"][0]["signatureVerification"]["override"] = json!({"expiry": "log"});
        let path = work.path().join(file);
        std::fs::write(&path, policy.to_string()).unwrap();
        let report = verify(&reference, &path, store.path()).expect(1).json();
        let (verdict, message) = &signatures(&report)["6a5cd3a8"];
        assert_eq!(verdict, "rejected", "{report:#}");
        assert!(
            message.starts_with("authentic timestamp: ") && message.contains(says),
            "{file}: {report:#}"
        );
    }
}
