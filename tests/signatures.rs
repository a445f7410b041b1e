//! Signatures: the model-signing fixtures (every release from 0.2 to 1.1, key, certificate and
//! Sigstore keyless), forged and altered variants of them, the OMS spec vectors, and
//! round trips with model-signing 1.1.1 in both directions.

mod common;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::*;
use serde_json::Value;

const IDENTITY: &str = "stefanb@us.ibm.com";
const ISSUER: &str = "https://sigstore.verify.ibm.com/oauth2";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Method {
    Key,
    Certificate,
    Sigstore,
}

struct Fixture {
    name: String,
    dir: PathBuf,
    method: Method,
}

impl Fixture {
    fn is_v1(&self) -> bool {
        self.name.starts_with("v1.")
    }

    /// The model: the folder, or `signme-1` alone for the fixtures signed as one file.
    fn model_in(&self, dir: &Path) -> PathBuf {
        if self.dir.join("signme-2").exists() {
            dir.to_path_buf()
        } else {
            dir.join("signme-1")
        }
    }

    /// A private copy of the fixture to damage.
    fn copy(&self) -> tempfile::TempDir {
        let copy = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(&self.dir).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
        }
        copy
    }

    /// `vouch verify` of the copy in `dir` with this fixture's documented policy.
    fn verify(&self, testdata: &Path, dir: &Path, signature: &Path) -> Ran {
        let mut args: Vec<OsString> = vec![
            "verify".into(),
            self.model_in(dir).into(),
            "--signature".into(),
            signature.into(),
        ];
        args.extend(policy(testdata, self.method));
        if dir.join("ignore-me").exists() {
            args.extend(["--ignore-paths".into(), "ignore-me".into()]);
        }
        args.extend(["--format".into(), "json".into()]);
        vouch_run(args)
    }
}

fn policy(testdata: &Path, method: Method) -> Vec<OsString> {
    let keys = testdata.join("model-signing-fixtures/keys/certificate");
    match method {
        Method::Key => vec!["--key".into(), keys.join("signing-key-pub.pem").into()],
        Method::Certificate => vec![
            "--certificate-chain".into(),
            keys.join("ca-cert.pem").into(),
        ],
        Method::Sigstore => vec![
            "--identity".into(),
            IDENTITY.into(),
            "--issuer".into(),
            ISSUER.into(),
            "--trusted-root".into(),
            testdata
                .join("sigstore/trusted_root.public-good.json")
                .into(),
        ],
    }
}

fn fixtures(testdata: &Path) -> Vec<Fixture> {
    let mut all: Vec<Fixture> = std::fs::read_dir(testdata.join("model-signing-fixtures"))
        .unwrap()
        .filter_map(|e| {
            let dir = e.unwrap().path();
            let name = dir.file_name()?.to_str()?.to_string();
            let method = if name.ends_with("elliptic-key") {
                Method::Key
            } else if name.ends_with("certificate") {
                Method::Certificate
            } else if name.ends_with("sigstore") {
                Method::Sigstore
            } else {
                return None;
            };
            Some(Fixture { name, dir, method })
        })
        .collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        all.len() >= 12,
        "expected the model-signing fixtures, found {}",
        all.len()
    );
    all
}

fn subjects(report: &Value) -> Vec<(String, String, String)> {
    report["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["verdict"].as_str().unwrap().to_string(),
                s["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The rejection reason of a report whose only subject is a rejected signature.
fn rejection(ran: Ran) -> String {
    let report = ran.expect(1).json();
    let subjects = subjects(&report);
    assert_eq!(subjects.len(), 1, "{report:#}");
    assert_eq!(subjects[0].1, "rejected", "{report:#}");
    subjects[0].2.clone()
}

#[test]
fn every_fixture_verifies_or_is_refused_as_unsupported() {
    let Some(testdata) = shared_testdata("every_fixture_verifies_or_is_refused_as_unsupported")
    else {
        return;
    };
    for fixture in fixtures(&testdata) {
        let ran = fixture.verify(&testdata, &fixture.dir, &fixture.dir.join("model.sig"));
        match ran.code {
            Some(0) => {
                let report = ran.json();
                let subjects = subjects(&report);
                assert!(
                    subjects[0].2.starts_with("signed by"),
                    "{}: {report:#}",
                    fixture.name
                );
                assert!(
                    subjects.len() >= 2 && subjects.iter().all(|s| s.1 == "ok"),
                    "{}",
                    fixture.name
                );
            }
            Some(2) if !fixture.is_v1() => {
                assert!(
                    ran.stderr.contains("unsupported"),
                    "{}: {}",
                    fixture.name,
                    ran.stderr
                );
            }
            other => panic!(
                "{}: exit {other:?}\n{}\n{}",
                fixture.name,
                ran.stdout(),
                ran.stderr
            ),
        }
        if fixture.is_v1() {
            assert_eq!(
                ran.code,
                Some(0),
                "{}: every v1 signature verifies",
                fixture.name
            );
        }
    }
}

#[test]
fn a_flipped_byte_in_a_signed_model_is_named() {
    let Some(testdata) = shared_testdata("a_flipped_byte_in_a_signed_model_is_named") else {
        return;
    };
    for fixture in fixtures(&testdata)
        .into_iter()
        .filter(|f| f.name != "v0.2.0-certificate")
    {
        let copy = fixture.copy();
        flip_byte(&copy.path().join("signme-1"), 0);
        let report = fixture
            .verify(&testdata, copy.path(), &copy.path().join("model.sig"))
            .expect(1)
            .json();
        let failed: Vec<_> = subjects(&report)
            .into_iter()
            .filter(|s| s.1 != "ok")
            .collect();
        assert_eq!(failed.len(), 1, "{}: {report:#}", fixture.name);
        assert_eq!(failed[0].1, "changed", "{}", fixture.name);
        assert!(
            failed[0].0.ends_with("signme-1"),
            "{}: {:?}",
            fixture.name,
            failed[0]
        );
    }
}

#[test]
fn a_wrong_key_chain_identity_or_issuer_is_rejected_with_the_reason() {
    let test = "a_wrong_key_chain_identity_or_issuer_is_rejected_with_the_reason";
    let Some(testdata) = shared_testdata(test) else {
        return;
    };
    let Some(python) = peer_python(test) else {
        return;
    };
    let other = tempfile::tempdir().unwrap();
    model_signing(
        &python,
        &[
            OsStr::new("keygen"),
            other.path().as_os_str(),
            OsStr::new("--curve"),
            OsStr::new("p384"),
        ],
    );
    model_signing(&python, &[OsStr::new("pki"), other.path().as_os_str()]);
    let other_key = other.path().join("pub.pem");
    let other_root = other.path().join("root.pem");
    for fixture in fixtures(&testdata)
        .into_iter()
        .filter(|f| f.name != "v0.2.0-certificate")
    {
        let signature = fixture.dir.join("model.sig");
        let verify_with = |policy: Vec<OsString>| {
            let mut args: Vec<OsString> = vec![
                "verify".into(),
                fixture.model_in(&fixture.dir).into(),
                "--signature".into(),
                signature.clone().into(),
            ];
            args.extend(policy);
            args.extend([
                "--ignore-paths".into(),
                "ignore-me".into(),
                "--format".into(),
                "json".into(),
            ]);
            vouch_run(args)
        };
        match fixture.method {
            Method::Key => {
                let reason = rejection(verify_with(vec!["--key".into(), other_key.clone().into()]));
                assert!(
                    reason.contains("wrong key") || reason.contains("does not verify"),
                    "{}: {reason}",
                    fixture.name
                );
            }
            Method::Certificate => {
                let reason = rejection(verify_with(vec![
                    "--certificate-chain".into(),
                    other_root.clone().into(),
                ]));
                assert!(reason.contains("not trusted"), "{}: {reason}", fixture.name);
            }
            Method::Sigstore => {
                let root: OsString = testdata
                    .join("sigstore/trusted_root.public-good.json")
                    .into();
                let with = |identity: &str, issuer: &str| {
                    vec![
                        "--identity".into(),
                        identity.into(),
                        "--issuer".into(),
                        issuer.into(),
                        "--trusted-root".into(),
                        root.clone(),
                    ]
                };
                let reason = rejection(verify_with(with("someone@example.com", ISSUER)));
                assert!(
                    reason.contains("identity mismatch"),
                    "{}: {reason}",
                    fixture.name
                );
                let reason = rejection(verify_with(with(IDENTITY, "https://accounts.google.com")));
                assert!(
                    reason.contains("issuer mismatch"),
                    "{}: {reason}",
                    fixture.name
                );
                // A pattern must match the whole identity.
                let pattern = |re: &str| {
                    vec![
                        "--identity-regexp".into(),
                        re.into(),
                        "--issuer".into(),
                        ISSUER.into(),
                        "--trusted-root".into(),
                        root.clone(),
                    ]
                };
                verify_with(pattern(r".*@us\.ibm\.com")).expect(0);
                let reason = rejection(verify_with(pattern(r"stefanb@us\.ibm")));
                assert!(
                    reason.contains("does not match"),
                    "{}: {reason}",
                    fixture.name
                );
            }
        }
        // A signature made one way and checked another is refused, not misread.
        if fixture.method != Method::Key {
            let reason = rejection(verify_with(vec!["--key".into(), other_key.clone().into()]));
            assert!(
                reason.contains("verification asked for a key"),
                "{}: {reason}",
                fixture.name
            );
        }
    }
}

#[test]
fn an_altered_payload_is_rejected() {
    let Some(testdata) = shared_testdata("an_altered_payload_is_rejected") else {
        return;
    };
    for fixture in fixtures(&testdata) {
        let copy = fixture.copy();
        let forged = copy.path().join("model.sig");
        edited_bundle(&fixture.dir.join("model.sig"), &forged, alter_payload);
        let reason = rejection(fixture.verify(&testdata, copy.path(), &forged));
        assert!(
            reason.contains("does not verify") || reason.contains("invalid signature"),
            "{}: {reason}",
            fixture.name
        );
    }
}

#[test]
fn a_keyless_signature_with_an_altered_log_proof_is_rejected() {
    let Some(testdata) =
        shared_testdata("a_keyless_signature_with_an_altered_log_proof_is_rejected")
    else {
        return;
    };
    let flip_base64 = |text: &str| {
        let mut bytes = STANDARD.decode(text).unwrap();
        bytes[0] ^= 0x01;
        STANDARD.encode(bytes)
    };
    type Edit = Box<dyn Fn(&mut Value)>;
    let edits: Vec<(&str, Edit)> = vec![
        (
            "inclusion proof hash",
            Box::new(move |b: &mut Value| {
                let hash =
                    &mut b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"][0];
                *hash = flip_base64(hash.as_str().unwrap()).into();
            }),
        ),
        (
            "inclusion proof root",
            Box::new(move |b: &mut Value| {
                let root =
                    &mut b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["rootHash"];
                *root = flip_base64(root.as_str().unwrap()).into();
            }),
        ),
        (
            "checkpoint",
            Box::new(|b: &mut Value| {
                let checkpoint = &mut b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
                    ["checkpoint"]["envelope"];
                let text = checkpoint.as_str().unwrap();
                // The second line is the tree size: claim a bigger tree.
                let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
                lines[1] = (lines[1].parse::<u64>().unwrap() + 1).to_string();
                *checkpoint = (lines.join("\n") + "\n").into();
            }),
        ),
        (
            "signed entry timestamp",
            Box::new(move |b: &mut Value| {
                let set = &mut b["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"]
                    ["signedEntryTimestamp"];
                *set = flip_base64(set.as_str().unwrap()).into();
            }),
        ),
    ];
    for fixture in fixtures(&testdata)
        .into_iter()
        .filter(|f| f.method == Method::Sigstore && f.is_v1())
    {
        // Unaltered, it verifies; each alteration is refused by the log checks.
        fixture
            .verify(&testdata, &fixture.dir, &fixture.dir.join("model.sig"))
            .expect(0);
        for (what, edit) in &edits {
            let copy = fixture.copy();
            let forged = copy.path().join("model.sig");
            edited_bundle(&fixture.dir.join("model.sig"), &forged, edit);
            let reason = rejection(fixture.verify(&testdata, copy.path(), &forged));
            assert!(
                reason.contains("transparency log")
                    || reason.contains("checkpoint")
                    || reason.contains("inclusion"),
                "{} with altered {what}: {reason}",
                fixture.name
            );
        }
    }
}

#[test]
fn the_oms_spec_vectors_parse_or_are_rejected_clearly() {
    let Some(testdata) = shared_testdata("the_oms_spec_vectors_parse_or_are_rejected_clearly")
    else {
        return;
    };
    let spec = testdata.join("oms-spec");
    let all = fixtures(&testdata);
    let fixture = |name: &str| all.iter().find(|f| f.name == name).unwrap();
    // valid/: the signature verifies and the statement parses into resources.
    for (vector, name) in [
        ("key.bundle.json", "v1.1.0-elliptic-key"),
        ("certificate.bundle.json", "v1.1.0-certificate"),
        ("sigstore.bundle.json", "v1.1.0-sigstore"),
    ] {
        let fixture = fixture(name);
        let copy = fixture.copy();
        std::fs::remove_file(copy.path().join("model.sig")).unwrap();
        let ran = fixture.verify(&testdata, copy.path(), &spec.join("valid").join(vector));
        assert!(matches!(ran.code, Some(0 | 1)), "{vector}: {}", ran.stderr);
        let report = ran.json();
        let subjects = subjects(&report);
        assert_eq!(
            subjects[0].1, "ok",
            "{vector}: the signature verifies: {report:#}"
        );
        assert!(
            subjects.iter().any(|s| s.0 == "signme-2"),
            "{vector}: the statement's resources are used"
        );
    }
    // invalid/: structurally broken bundles are input errors naming what is wrong.
    let key = fixture("v1.1.0-elliptic-key");
    for (vector, needle) in [
        ("empty.bundle.json", "malformed JSON"),
        ("missing-envelope.bundle.json", "dsseEnvelope is missing"),
        ("missing-tlog-entries.bundle.json", "tlogEntries"),
        (
            "missing-verification-material.bundle.json",
            "verificationMaterial is missing",
        ),
    ] {
        let ran = key
            .verify(&testdata, &key.dir, &spec.join("invalid").join(vector))
            .expect(2);
        assert!(
            ran.stderr.contains(needle) && ran.stderr.contains(vector),
            "{vector}: {}",
            ran.stderr
        );
    }
    // invalid-payload/: a payload changed after signing never gets used.
    let reason = rejection(key.verify(
        &testdata,
        &key.dir,
        &spec.join("invalid-payload/wrong-predicate.bundle.json"),
    ));
    assert!(reason.contains("does not verify"), "{reason}");
}

/// A generated model: nested files, an empty file, a file spanning several test shards.
fn generated_model(root: &Path) {
    write_tree(
        root,
        &[
            ("weights/part-1.bin", &pseudo_random(700_000, 11)),
            ("weights/part-2.bin", &pseudo_random(300_000, 12)),
            ("config.json", b"{\"model_type\": \"test\"}"),
            ("empty", b""),
            ("tokenizer/vocab.txt", "a\nb\nünï\n".as_bytes()),
        ],
    );
}

fn model_signing_cli(python: &Path) -> PathBuf {
    python.parent().unwrap().join("model_signing")
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

#[test]
fn model_signing_signatures_verify_in_vouch() {
    let test = "model_signing_signatures_verify_in_vouch";
    let Some(python) = peer_python(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    generated_model(&model);
    model_signing(
        &python,
        &[
            os("keygen"),
            dir.path().as_os_str(),
            os("--curve"),
            os("p384"),
        ],
    );
    model_signing(&python, &[os("pki"), dir.path().as_os_str()]);
    let d = |name: &str| dir.path().join(name);

    let key_sig = d("key.sig");
    run(Command::new(model_signing_cli(&python)).args([
        os("sign"),
        os("key"),
        os("--private_key"),
        d("key.pem").as_os_str(),
        os("--signature"),
        key_sig.as_os_str(),
        model.as_os_str(),
    ]))
    .expect(0);
    vouch_run([
        os("verify"),
        model.as_os_str(),
        os("--signature"),
        key_sig.as_os_str(),
        os("--key"),
        d("pub.pem").as_os_str(),
    ])
    .expect(0);

    let cert_sig = d("cert.sig");
    run(Command::new(model_signing_cli(&python)).args([
        os("sign"),
        os("certificate"),
        os("--private_key"),
        d("leaf-key.pem").as_os_str(),
        os("--signing_certificate"),
        d("leaf.pem").as_os_str(),
        os("--certificate_chain"),
        d("intermediate.pem").as_os_str(),
        os("--signature"),
        cert_sig.as_os_str(),
        model.as_os_str(),
    ]))
    .expect(0);
    vouch_run([
        os("verify"),
        model.as_os_str(),
        os("--signature"),
        cert_sig.as_os_str(),
        os("--certificate-chain"),
        d("root.pem").as_os_str(),
    ])
    .expect(0);

    // Shards, signed through model-signing's API.
    let shard_sig = d("shards.sig");
    model_signing(
        &python,
        &[
            os("sign"),
            model.as_os_str(),
            shard_sig.as_os_str(),
            d("key.pem").as_os_str(),
            os("--shard-size"),
            os("250000"),
        ],
    );
    let report = vouch_run([
        os("verify"),
        model.as_os_str(),
        os("--signature"),
        shard_sig.as_os_str(),
        os("--key"),
        d("pub.pem").as_os_str(),
        os("--format"),
        os("json"),
    ])
    .expect(0)
    .json();
    assert!(
        subjects(&report)
            .iter()
            .any(|s| s.0 == "weights/part-1.bin:500000:700000"),
        "{report:#}"
    );

    // And a change after signing is caught.
    flip_byte(&model.join("weights/part-2.bin"), 123);
    vouch_run([
        os("verify"),
        model.as_os_str(),
        os("--signature"),
        cert_sig.as_os_str(),
        os("--certificate-chain"),
        d("root.pem").as_os_str(),
    ])
    .expect(1);
}

#[test]
fn vouch_signatures_verify_in_model_signing_for_every_key_format() {
    let test = "vouch_signatures_verify_in_model_signing_for_every_key_format";
    let Some(python) = peer_python(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    generated_model(&model);
    let password = dir.path().join("password");
    std::fs::write(&password, "correct horse\n").unwrap();
    for curve in ["p256", "p384", "p521"] {
        for format in ["pkcs8", "sec1"] {
            for encrypted in [false, true] {
                let keys = tempfile::tempdir().unwrap();
                let mut args = vec![
                    os("keygen"),
                    keys.path().as_os_str(),
                    os("--curve"),
                    os(curve),
                    os("--format"),
                    os(format),
                ];
                if encrypted {
                    args.extend([os("--password"), os("correct horse")]);
                }
                model_signing(&python, &args);
                let sig = keys.path().join("model.sig");
                let private = keys.path().join("key.pem");
                let mut sign: Vec<&OsStr> = vec![
                    os("sign"),
                    model.as_os_str(),
                    os("--key"),
                    private.as_os_str(),
                    os("-o"),
                    sig.as_os_str(),
                ];
                if encrypted {
                    sign.extend([os("--password-file"), password.as_os_str()]);
                }
                vouch_run(&sign).expect(0);
                let label = format!("{curve} {format} encrypted={encrypted}");
                let ran = run(Command::new(model_signing_cli(&python)).args([
                    os("verify"),
                    os("key"),
                    os("--public_key"),
                    keys.path().join("pub.pem").as_os_str(),
                    os("--signature"),
                    sig.as_os_str(),
                    model.as_os_str(),
                ]));
                assert_eq!(
                    ran.code,
                    Some(0),
                    "{label}: model-signing refused vouch's signature: {}",
                    ran.stderr
                );
                // The hint names the key as model-signing computes it.
                let bundle: Value = serde_json::from_slice(&std::fs::read(&sig).unwrap()).unwrap();
                let pem = std::fs::read(keys.path().join("pub.pem")).unwrap();
                assert_eq!(
                    bundle["verificationMaterial"]["publicKey"]["hint"],
                    sha256_hex(&pem),
                    "{label}"
                );
            }
        }
    }
    // A wrong password is an input error, not a crash.
    let keys = tempfile::tempdir().unwrap();
    model_signing(
        &python,
        &[
            os("keygen"),
            keys.path().as_os_str(),
            os("--password"),
            os("another"),
        ],
    );
    let ran = vouch_run([
        os("sign"),
        model.as_os_str(),
        os("--key"),
        keys.path().join("key.pem").as_os_str(),
        os("--password-file"),
        password.as_os_str(),
        os("-o"),
        keys.path().join("x.sig").as_os_str(),
    ])
    .expect(2);
    assert!(ran.stderr.contains("password"), "{}", ran.stderr);
}

#[test]
fn vouch_certificate_signatures_verify_in_model_signing() {
    let test = "vouch_certificate_signatures_verify_in_model_signing";
    let Some(python) = peer_python(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    generated_model(&model);
    model_signing(
        &python,
        &[os("pki"), dir.path().as_os_str(), os("--curve"), os("p256")],
    );
    let d = |name: &str| dir.path().join(name);
    let sig = d("model.sig");
    vouch_run([
        os("sign"),
        model.as_os_str(),
        os("--key"),
        d("leaf-key.pem").as_os_str(),
        os("--certificate"),
        d("leaf.pem").as_os_str(),
        os("--certificate-chain"),
        d("intermediate.pem").as_os_str(),
        os("-o"),
        sig.as_os_str(),
    ])
    .expect(0);
    let ran = run(Command::new(model_signing_cli(&python)).args([
        os("verify"),
        os("certificate"),
        os("--certificate_chain"),
        d("root.pem").as_os_str(),
        os("--signature"),
        sig.as_os_str(),
        model.as_os_str(),
    ]));
    assert_eq!(
        ran.code,
        Some(0),
        "model-signing refused vouch's certificate signature: {}",
        ran.stderr
    );
    vouch_run([
        os("verify"),
        model.as_os_str(),
        os("--signature"),
        sig.as_os_str(),
        os("--certificate-chain"),
        d("root.pem").as_os_str(),
    ])
    .expect(0);

    // A certificate that does not hold the signing key is refused at signing time.
    model_signing(&python, &[os("keygen"), dir.path().as_os_str()]);
    let ran = vouch_run([
        os("sign"),
        model.as_os_str(),
        os("--key"),
        d("key.pem").as_os_str(),
        os("--certificate"),
        d("leaf.pem").as_os_str(),
        os("-o"),
        d("bad.sig").as_os_str(),
    ])
    .expect(2);
    assert!(
        ran.stderr.contains("does not match the private key"),
        "{}",
        ran.stderr
    );
}

#[test]
fn shards_and_blake3_round_trip_through_vouch() {
    let test = "shards_and_blake3_round_trip_through_vouch";
    let Some(python) = peer_python(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    generated_model(&model);
    model_signing(
        &python,
        &[
            os("keygen"),
            dir.path().as_os_str(),
            os("--curve"),
            os("p521"),
        ],
    );
    let key = dir.path().join("key.pem");
    let public = dir.path().join("pub.pem");
    for (flags, shard_name) in [
        (
            &["--shard-size", "200000"][..],
            Some("weights/part-1.bin:600000:700000"),
        ),
        (&["--algo", "blake3"][..], None),
    ] {
        let sig = dir.path().join("model.sig");
        let mut args = vec![
            os("sign"),
            model.as_os_str(),
            os("--key"),
            key.as_os_str(),
            os("-o"),
            sig.as_os_str(),
        ];
        args.extend(flags.iter().map(|f| os(f)));
        vouch_run(&args).expect(0);
        let verify = [
            os("verify"),
            model.as_os_str(),
            os("--signature"),
            sig.as_os_str(),
            os("--key"),
            public.as_os_str(),
            os("--format"),
            os("json"),
        ];
        let report = vouch_run(verify).expect(0).json();
        if let Some(name) = shard_name {
            assert!(subjects(&report).iter().any(|s| s.0 == name), "{report:#}");
        }
        // model-signing verifies them too (through its API: its CLI always hashes whole files
        // with sha256, so it cannot check a shards or blake3 signature, even its own).
        model_signing(
            &python,
            &[
                os("verify"),
                model.as_os_str(),
                sig.as_os_str(),
                public.as_os_str(),
            ],
        );
        flip_byte(&model.join("weights/part-1.bin"), 650_000);
        vouch_run(verify).expect(1);
        flip_byte(&model.join("weights/part-1.bin"), 650_000);
    }
}

#[test]
fn signature_flags_are_checked_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &[("m/a", b"a"), ("model.sig", b"{}")]);
    let model = dir.path().join("m");
    let sig = dir.path().join("model.sig");
    let cases: Vec<(Vec<&OsStr>, &str)> = vec![
        (vec![os("--signature"), sig.as_os_str()], "exactly one of"),
        (
            vec![
                os("--signature"),
                sig.as_os_str(),
                os("--identity"),
                os("x"),
            ],
            "--issuer",
        ),
        (
            vec![
                os("--signature"),
                sig.as_os_str(),
                os("--key"),
                sig.as_os_str(),
                os("--issuer"),
                os("y"),
            ],
            "exactly one of",
        ),
        (
            vec![
                os("--digest"),
                os("sha256:00"),
                os("--key"),
                sig.as_os_str(),
            ],
            "go with --signature",
        ),
        (
            vec![
                os("--signature"),
                sig.as_os_str(),
                os("--identity-regexp"),
                os("("),
                os("--issuer"),
                os("y"),
            ],
            "identity pattern is not a valid regular expression",
        ),
        (
            vec![
                os("--signature"),
                sig.as_os_str(),
                os("--key"),
                sig.as_os_str(),
                os("--algo"),
                os("blake3"),
            ],
            "records its own serialization",
        ),
    ];
    for (flags, needle) in cases {
        let mut args = vec![os("verify"), model.as_os_str()];
        args.extend(flags.iter().copied());
        let ran = vouch_run(&args).expect(2);
        assert!(ran.stderr.contains(needle), "{flags:?}: {}", ran.stderr);
        // The library names no flag; the command line adds the one to change.
        if needle.contains("identity pattern") {
            assert!(
                ran.stderr
                    .ends_with("\nhint: give --identity-regexp a regular expression the whole identity must match\n"),
                "{}",
                ran.stderr
            );
        }
    }
}

/// A bundle whose DSSE envelope gives `payload` twice, or a trusted root with a key in
/// another case beside a field, is an input error naming the file: readers that keep the
/// first key, or fold case as Go does, would verify another document.
#[test]
fn a_bundle_or_trusted_root_with_an_ambiguous_key_is_an_input_error() {
    let Some(testdata) =
        shared_testdata("a_bundle_or_trusted_root_with_an_ambiguous_key_is_an_input_error")
    else {
        return;
    };
    for fixture in fixtures(&testdata).iter().filter(|f| f.is_v1()) {
        let copy = fixture.copy();
        let original = copy.path().join("model.sig");
        let bundle: Value = serde_json::from_slice(&std::fs::read(&original).unwrap()).unwrap();
        let mut forged = bundle.clone();
        alter_payload(&mut forged);
        // Compact JSON, with the forged payload first and the signed one last.
        let text = serde_json::to_string(&bundle).unwrap().replacen(
            r#""payload":""#,
            &format!(
                r#""payload":{},"payload":""#,
                forged["dsseEnvelope"]["payload"]
            ),
            1,
        );
        let elsewhere = tempfile::tempdir().unwrap();
        let twice = elsewhere.path().join("twice.sig");
        std::fs::write(&twice, text).unwrap();
        let ran = fixture.verify(&testdata, copy.path(), &twice).expect(2);
        assert!(
            ran.stderr.contains("twice.sig")
                && ran
                    .stderr
                    .contains(r#"dsseEnvelope: duplicate key "payload""#),
            "{}: {}",
            fixture.name,
            ran.stderr
        );
        fixture.verify(&testdata, copy.path(), &original).expect(0);
    }

    let fixture = testdata.join("model-signing-fixtures/v1.1.0-sigstore");
    let root_path = testdata.join("sigstore/trusted_root.public-good.json");
    let root = std::fs::read_to_string(&root_path).unwrap();
    let dir = tempfile::tempdir().unwrap();

    // A detached bundle, read by the Sigstore types (which flatten it), is checked too.
    let bundle: Value =
        serde_json::from_slice(&std::fs::read(fixture.join("model.sig")).unwrap()).unwrap();
    let detached = dir.path().join("detached.sig");
    let text = serde_json::to_string(&bundle).unwrap().replacen(
        r#""rawBytes":"#,
        r#""rawBytes":"AA==","rawBytes":"#,
        1,
    );
    std::fs::write(&detached, text).unwrap();
    let ran = vouch_run([
        os("verify"),
        fixture.join("signme-1").as_os_str(),
        os("--bundle"),
        detached.as_os_str(),
        os("--identity"),
        os(IDENTITY),
        os("--issuer"),
        os(ISSUER),
        os("--trusted-root"),
        root_path.as_os_str(),
    ])
    .expect(2);
    assert!(
        ran.stderr.contains("detached.sig") && ran.stderr.contains(r#"duplicate key "rawBytes""#),
        "{}",
        ran.stderr
    );

    let variant = dir.path().join("trusted_root.json");
    std::fs::write(
        &variant,
        root.replacen(r#""tlogs""#, r#""Tlogs": [], "tlogs""#, 1),
    )
    .unwrap();
    let ran = vouch_run([
        os("verify"),
        fixture.as_os_str(),
        os("--signature"),
        fixture.join("model.sig").as_os_str(),
        os("--identity"),
        os(IDENTITY),
        os("--issuer"),
        os(ISSUER),
        os("--trusted-root"),
        variant.as_os_str(),
    ])
    .expect(2);
    assert!(
        ran.stderr.contains("trusted_root.json")
            && ran
                .stderr
                .contains(r#"key "Tlogs" differs from field "tlogs""#),
        "{}",
        ran.stderr
    );
}

#[test]
fn cosign_spellings_and_an_issuer_pattern_verify_keyless_signatures() {
    let test = "cosign_spellings_and_an_issuer_pattern_verify_keyless_signatures";
    let Some(testdata) = shared_testdata(test) else {
        return;
    };
    let root = testdata.join("sigstore/trusted_root.public-good.json");
    let keyless: Vec<Fixture> = fixtures(&testdata)
        .into_iter()
        .filter(|f| f.method == Method::Sigstore && f.is_v1())
        .collect();
    assert!(!keyless.is_empty(), "no v1 keyless fixture");
    for fixture in keyless {
        let verify_with = |trust: &[&str]| {
            let mut args: Vec<OsString> = vec![
                "verify".into(),
                fixture.model_in(&fixture.dir).into(),
                "--signature".into(),
                fixture.dir.join("model.sig").into(),
                "--trusted-root".into(),
                root.clone().into(),
                "--ignore-paths".into(),
                "ignore-me".into(),
                "--format".into(),
                "json".into(),
            ];
            args.extend(trust.iter().map(OsString::from));
            vouch_run(args)
        };
        // cosign's and model-signing's spellings mean what vouch's own do.
        verify_with(&[
            "--certificate-identity",
            IDENTITY,
            "--certificate-oidc-issuer",
            ISSUER,
        ])
        .expect(0);
        verify_with(&[
            "--certificate-identity-regexp",
            r".*@us\.ibm\.com",
            "--certificate-oidc-issuer-regexp",
            r"https://sigstore\.verify\.ibm\.com/.*",
        ])
        .expect(0);
        verify_with(&[
            "--identity",
            IDENTITY,
            "--issuer-regexp",
            r"https://[a-z.]+\.ibm\.com/oauth2",
        ])
        .expect(0);
        let reason = rejection(verify_with(&[
            "--certificate-identity",
            "someone@example.com",
            "--certificate-oidc-issuer",
            ISSUER,
        ]));
        assert!(
            reason.contains("identity mismatch"),
            "{}: {reason}",
            fixture.name
        );
        // An issuer pattern must match the whole issuer.
        let reason = rejection(verify_with(&[
            "--identity",
            IDENTITY,
            "--issuer-regexp",
            r"https://sigstore\.verify\.ibm\.com",
        ]));
        assert!(
            reason.contains("issuer mismatch") && reason.contains(ISSUER),
            "{}: {reason}",
            fixture.name
        );
        let reason = rejection(verify_with(&[
            "--identity",
            IDENTITY,
            "--issuer-regexp",
            r"https://accounts\.google\.com",
        ]));
        assert!(
            reason.contains("issuer mismatch"),
            "{}: {reason}",
            fixture.name
        );
    }
    // An exact issuer and a pattern together are refused before anything is read.
    let both = vouch_run([
        "verify",
        "model",
        "--signature",
        "model.sig",
        "--identity",
        IDENTITY,
        "--issuer",
        ISSUER,
        "--issuer-regexp",
        ".*",
    ])
    .expect(2);
    assert!(both.stderr.contains("--issuer-regexp"), "{}", both.stderr);
    // A bad pattern is a usage error naming the problem.
    let bad = vouch_run([
        "verify",
        "model",
        "--signature",
        "model.sig",
        "--identity",
        IDENTITY,
        "--issuer-regexp",
        "(",
    ]);
    let bad = bad.expect(2);
    assert!(bad.stderr.contains("issuer pattern"), "{}", bad.stderr);
}
