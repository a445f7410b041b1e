//! `vouch verify FILE --bundle B --key PUB`: detached Sigstore bundles signed with a key,
//! made and checked by sigstore-js (`tests/peers/sigstore_js_peer.js`, `@sigstore/sign` and
//! `@sigstore/verify` from `cargo xtask peers`), with keys made by openssl as cosign users
//! make them. vouch and the peer must agree on every bundle.

mod common;
mod oci_support;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::{
    edited_bundle, flip_byte, pseudo_random, require_tool, run, sha256_hex, shared_testdata, skip,
    vouch_run, Ran,
};
use serde_json::Value;

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// node with the sigstore-js packages `cargo xtask peers` installs.
struct Peer {
    node: PathBuf,
    modules: PathBuf,
}

impl Peer {
    fn find(test: &str) -> Option<Peer> {
        let node = require_tool(test, "node")?;
        let modules = common::project_root().join("target/peers/npm/node_modules");
        if !modules.join("@sigstore/sign/package.json").is_file()
            || !modules.join("@sigstore/verify/package.json").is_file()
        {
            skip(
                test,
                &format!("sigstore-js is not installed in {}", modules.display()),
            );
            return None;
        }
        Some(Peer { node, modules })
    }

    fn run(&self, args: &[&OsStr]) -> Ran {
        self.run_certified(args, None)
    }

    /// Runs the peer; with `certificate`, its signer returns that certificate as its key
    /// material.
    fn run_certified(&self, args: &[&OsStr], certificate: Option<&Path>) -> Ran {
        let mut command = Command::new(&self.node);
        command
            .env("NODE_PATH", &self.modules)
            .arg(common::project_root().join("tests/peers/sigstore_js_peer.js"))
            .args(args);
        if let Some(certificate) = certificate {
            command.env("SIGSTORE_PEER_CERTIFICATE", certificate);
        }
        run(&mut command)
    }

    /// Signs `file` with `key` as `kind` (`sign-message` or `sign-dsse`) into `bundle`.
    fn sign(&self, kind: &str, key: &Path, file: &Path, bundle: &Path) {
        self.sign_as(kind, key, file, bundle, None);
    }

    /// As [`Peer::sign`], a DSSE statement of `predicate_type` when given.
    fn sign_as(
        &self,
        kind: &str,
        key: &Path,
        file: &Path,
        bundle: &Path,
        predicate_type: Option<&str>,
    ) {
        self.sign_certified(kind, key, None, file, bundle, predicate_type);
    }

    /// As [`Peer::sign_as`], the bundle carrying `certificate` (of `key`) when given.
    fn sign_certified(
        &self,
        kind: &str,
        key: &Path,
        certificate: Option<&Path>,
        file: &Path,
        bundle: &Path,
        predicate_type: Option<&str>,
    ) {
        let mut args = vec![
            os(kind),
            key.as_os_str(),
            file.as_os_str(),
            bundle.as_os_str(),
        ];
        args.extend(predicate_type.map(os));
        let ran = self.run_certified(&args, certificate);
        assert_eq!(
            ran.code,
            Some(0),
            "sigstore-js {kind} failed:\n{}",
            ran.stderr
        );
    }

    /// Whether @sigstore/verify accepts `bundle` over `file` with `public`.
    fn accepts(&self, public: &Path, file: &Path, bundle: &Path) -> bool {
        let ran = self.run(&[
            os("verify"),
            public.as_os_str(),
            file.as_os_str(),
            bundle.as_os_str(),
        ]);
        match ran.code {
            Some(0) => true,
            Some(1) => false,
            _ => panic!(
                "sigstore-js verify failed to run:\n{}{}",
                ran.stdout(),
                ran.stderr
            ),
        }
    }
}

/// Two P-256 key pairs made by openssl: `a` as `ecparam -genkey` writes it (SEC1), `b` as
/// `genpkey` writes it (PKCS#8); their public halves as `pkey -pubout` writes them (the
/// SubjectPublicKeyInfo PEM of cosign.pub).
struct Keys {
    a: PathBuf,
    a_pub: PathBuf,
    b: PathBuf,
    b_pub: PathBuf,
}

fn openssl_keys(test: &str, dir: &Path) -> Option<Keys> {
    let openssl = require_tool(test, "openssl")?;
    let openssl = |args: &[&OsStr]| {
        let ran = run(Command::new(&openssl).args(args));
        assert_eq!(ran.code, Some(0), "openssl {args:?}: {}", ran.stderr);
    };
    let keys = Keys {
        a: dir.join("a.key"),
        a_pub: dir.join("a.pub"),
        b: dir.join("b.key"),
        b_pub: dir.join("b.pub"),
    };
    openssl(&[
        os("ecparam"),
        os("-genkey"),
        os("-name"),
        os("prime256v1"),
        os("-noout"),
        os("-out"),
        keys.a.as_os_str(),
    ]);
    openssl(&[
        os("genpkey"),
        os("-algorithm"),
        os("EC"),
        os("-pkeyopt"),
        os("ec_paramgen_curve:P-256"),
        os("-out"),
        keys.b.as_os_str(),
    ]);
    for (private, public) in [(&keys.a, &keys.a_pub), (&keys.b, &keys.b_pub)] {
        openssl(&[
            os("pkey"),
            os("-in"),
            private.as_os_str(),
            os("-pubout"),
            os("-out"),
            public.as_os_str(),
        ]);
    }
    Some(keys)
}

/// `vouch verify FILE --bundle BUNDLE --key KEY --format json`.
fn verify(file: &Path, bundle: &Path, key: &Path) -> Ran {
    vouch_run([
        os("verify"),
        file.as_os_str(),
        os("--bundle"),
        bundle.as_os_str(),
        os("--key"),
        key.as_os_str(),
        os("--format"),
        os("json"),
    ])
}

/// The (name, verdict, message) of each subject of a JSON report.
fn subjects(ran: &Ran) -> Vec<(String, String, String)> {
    ran.json()["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let text = |k: &str| s[k].as_str().unwrap_or_default().to_string();
            (text("name"), text("verdict"), text("message"))
        })
        .collect()
}

/// A report that passed, naming the signer by the key's fingerprint (hex SHA-256 of its
/// PEM, as vouch names keys elsewhere).
fn assert_signed_by(ran: Ran, key: &Path) {
    let subjects = subjects(&ran.expect(0));
    let fingerprint = sha256_hex(&std::fs::read(key).unwrap());
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert_eq!(subjects[0].1, "ok");
    assert_eq!(
        subjects[0].2,
        format!("signed by key {fingerprint} (P-256)"),
        "{subjects:?}"
    );
    assert_eq!(subjects[1].1, "ok");
}

/// A report that failed with one subject of `verdict` whose message holds `needle`.
fn assert_refused(ran: Ran, verdict: &str, needle: &str) {
    let subjects = subjects(&ran.expect(1));
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    assert_eq!(subjects[0].1, verdict, "{subjects:?}");
    assert!(subjects[0].2.contains(needle), "{subjects:?}");
}

/// Decodes the base64 at `pointer`, flips a bit of its first byte and writes it back.
fn flip_base64(bundle: &mut Value, pointer: &str) {
    let field = bundle.pointer_mut(pointer).unwrap();
    let mut bytes = STANDARD.decode(field.as_str().unwrap()).unwrap();
    bytes[8] ^= 0x01;
    *field = STANDARD.encode(bytes).into();
}

#[test]
fn a_message_signature_made_by_sigstore_js_verifies_with_its_key_only() {
    let test = "a_message_signature_made_by_sigstore_js_verifies_with_its_key_only";
    let Some(peer) = Peer::find(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(keys) = openssl_keys(test, dir.path()) else {
        return;
    };
    let file = dir.path().join("weights.bin");
    std::fs::write(&file, pseudo_random(70_000, 17)).unwrap();
    let bundle = dir.path().join("weights.bin.sigstore.json");
    peer.sign("sign-message", &keys.a, &file, &bundle);
    let json: Value = serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    assert!(json.get("messageSignature").is_some(), "{json}");

    // The right key: both accept, and vouch names the key (under either spelling).
    assert!(peer.accepts(&keys.a_pub, &file, &bundle));
    assert_signed_by(verify(&file, &bundle, &keys.a_pub), &keys.a_pub);
    let ran = vouch_run([
        os("verify"),
        file.as_os_str(),
        os("--bundle"),
        bundle.as_os_str(),
        os("--public-key"),
        keys.a_pub.as_os_str(),
        os("--format"),
        os("json"),
    ]);
    assert_signed_by(ran, &keys.a_pub);

    // Another key: both refuse.
    assert!(!peer.accepts(&keys.b_pub, &file, &bundle));
    assert_refused(
        verify(&file, &bundle, &keys.b_pub),
        "rejected",
        "does not verify with the key",
    );

    // One flipped byte in the file: both refuse; vouch says the file changed.
    let changed = dir.path().join("changed.bin");
    std::fs::copy(&file, &changed).unwrap();
    flip_byte(&changed, 40_000);
    assert!(!peer.accepts(&keys.a_pub, &changed, &bundle));
    assert_refused(
        verify(&changed, &bundle, &keys.a_pub),
        "changed",
        "the bundle's message digest is sha256:",
    );

    // An altered signature: both refuse.
    let forged = dir.path().join("forged-signature.json");
    edited_bundle(&bundle, &forged, |b| {
        flip_base64(b, "/messageSignature/signature")
    });
    assert!(!peer.accepts(&keys.a_pub, &file, &forged));
    assert_refused(
        verify(&file, &forged, &keys.a_pub),
        "rejected",
        "does not verify with the key",
    );

    // The file changed and the digest edited to match it: the signature no longer holds.
    let chased = dir.path().join("chased-digest.json");
    let hex = sha256_hex(&std::fs::read(&changed).unwrap());
    let digest: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let digest = STANDARD.encode(digest);
    edited_bundle(&bundle, &chased, |b| {
        b["messageSignature"]["messageDigest"]["digest"] = digest.clone().into();
    });
    assert!(!peer.accepts(&keys.a_pub, &changed, &chased));
    assert_refused(
        verify(&changed, &chased, &keys.a_pub),
        "rejected",
        "does not verify with the key",
    );

    // An edited digest over the unchanged file: vouch refuses, since the bundle's digest
    // must name the file. @sigstore/verify compares the digest only with a log entry's, so
    // without one it goes by the signature alone and accepts.
    let edited = dir.path().join("edited-digest.json");
    edited_bundle(&bundle, &edited, |b| {
        flip_base64(b, "/messageSignature/messageDigest/digest")
    });
    assert!(peer.accepts(&keys.a_pub, &file, &edited));
    assert_refused(
        verify(&file, &edited, &keys.a_pub),
        "changed",
        "the bundle's message digest is sha256:",
    );

    // The key hint is informative: a hint naming another key changes nothing for either.
    let hinted = dir.path().join("other-hint.json");
    let other = sha256_hex(&std::fs::read(&keys.b_pub).unwrap());
    edited_bundle(&bundle, &hinted, |b| {
        b["verificationMaterial"]["publicKey"]["hint"] = other.clone().into();
    });
    assert!(peer.accepts(&keys.a_pub, &file, &hinted));
    assert_signed_by(verify(&file, &hinted, &keys.a_pub), &keys.a_pub);
    assert!(!peer.accepts(&keys.b_pub, &file, &hinted));
    verify(&file, &hinted, &keys.b_pub).expect(1);
}

#[test]
fn a_p384_message_signature_verifies_with_the_hash_its_digest_names() {
    let test = "a_p384_message_signature_verifies_with_the_hash_its_digest_names";
    let Some(peer) = Peer::find(test) else {
        return;
    };
    let Some(openssl) = require_tool(test, "openssl") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = (dir.path().join("p384.key"), dir.path().join("p384.pub"));
    for args in [
        vec![
            os("ecparam"),
            os("-genkey"),
            os("-name"),
            os("secp384r1"),
            os("-noout"),
            os("-out"),
            key.as_os_str(),
        ],
        vec![
            os("pkey"),
            os("-in"),
            key.as_os_str(),
            os("-pubout"),
            os("-out"),
            public.as_os_str(),
        ],
    ] {
        let ran = run(Command::new(&openssl).args(&args));
        assert_eq!(ran.code, Some(0), "openssl {args:?}: {}", ran.stderr);
    }
    let file = dir.path().join("weights.bin");
    std::fs::write(&file, pseudo_random(9_000, 2)).unwrap();
    let bundle = dir.path().join("bundle.json");
    // sigstore-js names SHA2_256 and signs with it whatever the curve.
    peer.sign("sign-message", &key, &file, &bundle);
    assert!(peer.accepts(&public, &file, &bundle));
    let subjects = subjects(&verify(&file, &bundle, &public).expect(0));
    assert!(subjects[0].2.ends_with("(P-384)"), "{subjects:?}");
    let changed = dir.path().join("changed.bin");
    std::fs::copy(&file, &changed).unwrap();
    flip_byte(&changed, 8_999);
    assert!(!peer.accepts(&public, &changed, &bundle));
    verify(&changed, &bundle, &public).expect(1);
}

#[test]
fn a_dsse_statement_made_by_sigstore_js_verifies_with_its_key_only() {
    let test = "a_dsse_statement_made_by_sigstore_js_verifies_with_its_key_only";
    let Some(peer) = Peer::find(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(keys) = openssl_keys(test, dir.path()) else {
        return;
    };
    let file = dir.path().join("model.gguf");
    std::fs::write(&file, pseudo_random(30_000, 5)).unwrap();
    let bundle = dir.path().join("model.gguf.sigstore.json");
    peer.sign("sign-dsse", &keys.b, &file, &bundle);

    assert!(peer.accepts(&keys.b_pub, &file, &bundle));
    assert_signed_by(verify(&file, &bundle, &keys.b_pub), &keys.b_pub);

    assert!(!peer.accepts(&keys.a_pub, &file, &bundle));
    assert_refused(
        verify(&file, &bundle, &keys.a_pub),
        "rejected",
        "does not verify with the key",
    );

    let changed = dir.path().join("changed.gguf");
    std::fs::copy(&file, &changed).unwrap();
    flip_byte(&changed, 0);
    assert!(!peer.accepts(&keys.b_pub, &changed, &bundle));
    assert_refused(
        verify(&changed, &bundle, &keys.b_pub),
        "changed",
        "the signed statement's subject is sha256:",
    );

    // A statement edited to name another digest: its signature no longer holds.
    let altered = dir.path().join("altered.json");
    edited_bundle(&bundle, &altered, common::alter_payload);
    assert!(!peer.accepts(&keys.b_pub, &file, &altered));
    assert_refused(
        verify(&file, &altered, &keys.b_pub),
        "rejected",
        "does not verify with the key",
    );
}

#[test]
fn a_key_bundle_with_a_log_entry_of_another_signature_is_refused() {
    let test = "a_key_bundle_with_a_log_entry_of_another_signature_is_refused";
    let Some(peer) = Peer::find(test) else {
        return;
    };
    let Some(testdata) = shared_testdata(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(keys) = openssl_keys(test, dir.path()) else {
        return;
    };
    let file = dir.path().join("weights.bin");
    std::fs::write(&file, pseudo_random(4_000, 9)).unwrap();
    let bundle = dir.path().join("bundle.json");
    peer.sign("sign-message", &keys.a, &file, &bundle);
    // A real Rekor entry (model-signing's keyless fixture): its proofs hold, but it logs
    // another signature by another key, so it vouches for nothing here.
    let keyless: Value = serde_json::from_slice(
        &std::fs::read(testdata.join("model-signing-fixtures/v1.1.0-sigstore/model.sig")).unwrap(),
    )
    .unwrap();
    let grafted = dir.path().join("grafted.json");
    edited_bundle(&bundle, &grafted, |b| {
        b["verificationMaterial"]["tlogEntries"] =
            keyless["verificationMaterial"]["tlogEntries"].clone();
    });
    assert!(!peer.accepts(&keys.a_pub, &file, &grafted));
    let subjects = subjects(&verify(&file, &grafted, &keys.a_pub).expect(1));
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    assert_eq!(subjects[0].1, "rejected", "{subjects:?}");
}

#[test]
fn unreadable_keys_and_malformed_key_bundles_are_input_errors() {
    let test = "unreadable_keys_and_malformed_key_bundles_are_input_errors";
    let Some(peer) = Peer::find(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(keys) = openssl_keys(test, dir.path()) else {
        return;
    };
    let file = dir.path().join("weights.bin");
    std::fs::write(&file, pseudo_random(1_000, 3)).unwrap();
    let bundle = dir.path().join("bundle.json");
    peer.sign("sign-message", &keys.a, &file, &bundle);

    let expect_input_error = |ran: Ran, names: &Path, needle: &str| {
        let ran = ran.expect(2);
        let name = names.file_name().unwrap().to_str().unwrap();
        assert!(
            ran.stderr.contains(name) && ran.stderr.contains(needle),
            "{}",
            ran.stderr
        );
    };
    let garbage = dir.path().join("garbage.pub");
    std::fs::write(&garbage, "not a key\n").unwrap();
    expect_input_error(verify(&file, &bundle, &garbage), &garbage, "PEM");
    // The private key is no public key.
    expect_input_error(verify(&file, &bundle, &keys.a), &keys.a, "PUBLIC KEY");
    let missing = dir.path().join("missing.pub");
    expect_input_error(verify(&file, &bundle, &missing), &missing, "missing.pub");

    let no_digest = dir.path().join("no-digest.json");
    edited_bundle(&bundle, &no_digest, |b| {
        b["messageSignature"]
            .as_object_mut()
            .unwrap()
            .remove("messageDigest");
    });
    expect_input_error(
        verify(&file, &no_digest, &keys.a_pub),
        &no_digest,
        "messageDigest is missing",
    );
    let no_signature = dir.path().join("no-signature.json");
    edited_bundle(&bundle, &no_signature, |b| {
        b["messageSignature"]
            .as_object_mut()
            .unwrap()
            .remove("signature");
    });
    expect_input_error(
        verify(&file, &no_signature, &keys.a_pub),
        &no_signature,
        "Sigstore bundle format",
    );

    // A bundle signed with a certificate is no key's signature.
    let certified = dir.path().join("certified.json");
    edited_bundle(&bundle, &certified, |b| {
        b["verificationMaterial"] = serde_json::json!({
            "certificate": {"rawBytes": STANDARD.encode(b"not checked: refused by its kind")}
        });
    });
    assert_refused(
        verify(&file, &certified, &keys.a_pub),
        "rejected",
        "signed with a certificate, not a key",
    );

    // A key goes alone: not with certificates, nor an identity.
    let ran = vouch_run([
        os("verify"),
        file.as_os_str(),
        os("--bundle"),
        bundle.as_os_str(),
        os("--certificate-chain"),
        keys.a_pub.as_os_str(),
    ])
    .expect(2);
    assert!(ran.stderr.contains("--key"), "{}", ran.stderr);
    vouch_run([
        os("verify"),
        file.as_os_str(),
        os("--bundle"),
        bundle.as_os_str(),
        os("--key"),
        keys.a_pub.as_os_str(),
        os("--identity"),
        os("a@example.com"),
        os("--issuer"),
        os("https://issuer.example.com"),
    ])
    .expect(2);
    // Log entries are checked against the root shipped with vouch; a trusted root goes with
    // an identity only.
    vouch_run([
        os("verify"),
        file.as_os_str(),
        os("--bundle"),
        bundle.as_os_str(),
        os("--key"),
        keys.a_pub.as_os_str(),
        os("--trusted-root"),
        keys.a_pub.as_os_str(),
    ])
    .expect(2);
}

const BUNDLE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A layout holding an artifact of `files` tagged `v1` and, when given, `bundle` attached to
/// it as an OCI 1.1 referrer in index.json: (layout, the image's descriptor).
fn image_with_referrer(
    dir: &Path,
    files: &[(&str, &[u8])],
    bundle: Option<&Path>,
) -> (oci_support::Layout, Value) {
    let layout = oci_support::Layout::empty(dir);
    let image = layout.put_artifact("v1", files);
    if let Some(bundle) = bundle {
        let layer = layout.write_blob(BUNDLE, &std::fs::read(bundle).unwrap());
        let config = layout.write_blob("application/vnd.oci.empty.v1+json", b"{}");
        let referrer = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "artifactType": BUNDLE,
            "config": config,
            "layers": [layer],
            "subject": image,
        });
        let descriptor = layout.write_blob(MANIFEST, referrer.to_string().as_bytes());
        let mut index = layout.index();
        index["manifests"].as_array_mut().unwrap().push(descriptor);
        std::fs::write(layout.dir.join("index.json"), index.to_string()).unwrap();
    }
    (layout, image)
}

/// cosign 3 signs an image with a key as a Sigstore bundle v0.3 referrer of its manifest.
/// Under `oci verify --key`, such a bundle counts when the key verifies it and it names the
/// resolved digest: sigstore-js signs the manifest bytes (a message signature, and a DSSE
/// statement of cosign's sign predicate) and agrees with vouch on each bundle; another key,
/// a bundle of another manifest and an attestation of another predicate do not count.
#[test]
fn an_image_bundle_referrer_signed_with_a_key_counts_under_that_key_only() {
    let test = "an_image_bundle_referrer_signed_with_a_key_counts_under_that_key_only";
    let Some(peer) = Peer::find(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(keys) = openssl_keys(test, dir.path()) else {
        return;
    };
    let files: &[(&str, &[u8])] = &[("model.bin", b"weights")];
    let image_with = |name: &str, bundle: Option<&Path>| {
        image_with_referrer(&dir.path().join(name), files, bundle)
    };
    let (plain, image) = image_with("plain", None);
    let digest = image["digest"].as_str().unwrap().to_string();
    let manifest = plain.blob_path(&digest);
    let (other_layout, other) = {
        let layout = oci_support::Layout::empty(&dir.path().join("other"));
        let other = layout.put_artifact("v1", &[("model.bin", b"other weights")]);
        (layout, other)
    };
    let other_manifest = other_layout.blob_path(other["digest"].as_str().unwrap());
    let bundle = |name: &str, kind: &str, key: &Path, file: &Path, predicate: Option<&str>| {
        let path = dir.path().join(name);
        peer.sign_as(kind, key, file, &path, predicate);
        path
    };
    let sign_predicate = "https://sigstore.dev/cosign/sign/v1";
    let message = bundle("message.json", "sign-message", &keys.a, &manifest, None);
    let statement = bundle(
        "sign.json",
        "sign-dsse",
        &keys.a,
        &manifest,
        Some(sign_predicate),
    );
    let attestation = bundle("att.json", "sign-dsse", &keys.a, &manifest, None);
    let elsewhere = bundle("other.json", "sign-message", &keys.a, &other_manifest, None);
    for signed in [&message, &statement] {
        assert!(peer.accepts(&keys.a_pub, &manifest, signed));
        assert!(!peer.accepts(&keys.b_pub, &manifest, signed));
    }
    let referrer_of = |bundle: &Path, key: &Path, code: i32| {
        let name = bundle.file_stem().unwrap().to_str().unwrap();
        let (layout, _) = image_with(&format!("{name}-layout"), Some(bundle));
        let report =
            oci_support::oci_verify(&layout.reference("v1"), &["--key", key.to_str().unwrap()])
                .expect(code)
                .json();
        let referrers = oci_support::subjects_named(&report, "referrer ");
        assert_eq!(referrers.len(), 1, "{report}");
        referrers[0]["message"].as_str().unwrap().to_string()
    };
    let said = referrer_of(&message, &keys.a_pub, 0);
    assert!(
        said.contains("a Sigstore bundle by key")
            && said.contains(&format!("a message signature of {digest}")),
        "{said}"
    );
    let said = referrer_of(&statement, &keys.a_pub, 0);
    assert!(
        said.contains(&format!("its statement ({sign_predicate}) names {digest}")),
        "{said}"
    );
    // A genuine message signature with a forged DSSE envelope added after it: the two
    // readers of the bundle must not see different content, so it is malformed.
    let doubled = dir.path().join("doubled.json");
    let text = std::fs::read_to_string(&message).unwrap();
    let forged = format!(
        "{},\"dsseEnvelope\":{{\"payload\":\"{}\",\"payloadType\":\"application/vnd.in-toto+json\",\"signatures\":[{{\"sig\":\"AAAA\"}}]}}}}",
        text.trim_end().strip_suffix('}').unwrap(),
        STANDARD.encode(format!(
            "{{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[{{\"name\":\"x\",\"digest\":{{\"sha256\":\"{}\"}}}}],\"predicateType\":\"https://example.com/forged/v1\",\"predicate\":{{}}}}",
            &digest[7..]
        ))
    );
    std::fs::write(&doubled, forged).unwrap();
    let said = referrer_of(&doubled, &keys.a_pub, 1);
    assert!(
        said.contains("holds both or neither of a message signature and a DSSE envelope"),
        "{said}"
    );
    for (bundle, key, needle) in [
        (
            &message,
            &keys.b_pub,
            "does not verify with the key".to_string(),
        ),
        (
            &statement,
            &keys.b_pub,
            "does not verify with the key".to_string(),
        ),
        (
            &elsewhere,
            &keys.a_pub,
            format!(
                "other digest: the bundle's statement does not name the image's digest {digest}"
            ),
        ),
        (
            &attestation,
            &keys.a_pub,
            "an attestation (predicate https://example.com/vouch-peer/v1), not a signature"
                .to_string(),
        ),
    ] {
        let said = referrer_of(bundle, key, 1);
        assert!(said.contains(&needle), "{needle}: {said}");
    }
}

/// A private PKI made by openssl: a root CA and a P-256 code-signing leaf for `identity`
/// that it issued: (root.pem, leaf.key, leaf.pem).
fn openssl_pki(openssl: &Path, dir: &Path, identity: &str) -> (PathBuf, PathBuf, PathBuf) {
    let run_openssl = |args: &mut Command| {
        let ran = run(args);
        assert_eq!(ran.code, Some(0), "openssl {args:?}: {}", ran.stderr);
    };
    let file = |name: &str| dir.join(name);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        file("root.cnf"),
        "[req]\ndistinguished_name=dn\nx509_extensions=v3\nprompt=no\n[dn]\nCN=vouch test PKI root\n\
         [v3]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\nsubjectKeyIdentifier=hash\n",
    )
    .unwrap();
    std::fs::write(
        file("leaf.ext"),
        format!(
            "subjectAltName=email:{identity}\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=codeSigning\nbasicConstraints=CA:FALSE\n"
        ),
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    run_openssl(
        Command::new(openssl)
            .args(["req", "-x509"])
            .args(ec)
            .arg("-config")
            .arg(file("root.cnf"))
            .args(["-days", "2", "-keyout"])
            .arg(file("root.key"))
            .arg("-out")
            .arg(file("root.pem")),
    );
    run_openssl(
        Command::new(openssl)
            .arg("req")
            .args(ec)
            .args(["-subj", "/CN=release", "-keyout"])
            .arg(file("leaf.key"))
            .arg("-out")
            .arg(file("leaf.csr")),
    );
    run_openssl(
        Command::new(openssl)
            .args(["x509", "-req", "-days", "2", "-in"])
            .arg(file("leaf.csr"))
            .arg("-CA")
            .arg(file("root.pem"))
            .arg("-CAkey")
            .arg(file("root.key"))
            .args(["-CAcreateserial", "-extfile"])
            .arg(file("leaf.ext"))
            .arg("-out")
            .arg(file("leaf.pem")),
    );
    (file("root.pem"), file("leaf.key"), file("leaf.pem"))
}

/// Under a private PKI (`--certificate-chain ROOTS --identity`), a bundle referrer signed by
/// a certificate of that PKI counts: sigstore-js signs the image manifest with the leaf's
/// key and carries the leaf as its material (a message signature, and a statement of
/// cosign's sign predicate). Another identity, another PKI's root and a bundle signed with
/// a bare key are refused, each naming why.
#[test]
fn an_image_bundle_referrer_of_a_private_pki_counts_under_its_roots_and_identity() {
    let test = "an_image_bundle_referrer_of_a_private_pki_counts_under_its_roots_and_identity";
    let Some(peer) = Peer::find(test) else {
        return;
    };
    let Some(openssl) = require_tool(test, "openssl") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let identity = "release@example.com";
    let (root, leaf_key, leaf) = openssl_pki(&openssl, &dir.path().join("pki"), identity);
    let (other_root, _, _) = openssl_pki(&openssl, &dir.path().join("other-pki"), identity);
    let Some(keys) = openssl_keys(test, dir.path()) else {
        return;
    };
    let files: &[(&str, &[u8])] = &[("model.bin", b"weights")];
    let (plain, image) = image_with_referrer(&dir.path().join("plain"), files, None);
    let digest = image["digest"].as_str().unwrap().to_string();
    let manifest = plain.blob_path(&digest);
    let signed = |name: &str, kind: &str, predicate: Option<&str>, certified: bool| {
        let bundle = dir.path().join(format!("{name}.json"));
        let (key, certificate) = match certified {
            true => (&leaf_key, Some(leaf.as_path())),
            false => (&keys.a, None),
        };
        peer.sign_certified(kind, key, certificate, &manifest, &bundle, predicate);
        let (layout, _) = image_with_referrer(&dir.path().join(name), files, Some(&bundle));
        layout.reference("v1")
    };
    let message = signed("message", "sign-message", None, true);
    let statement = signed(
        "statement",
        "sign-dsse",
        Some("https://sigstore.dev/cosign/sign/v1"),
        true,
    );
    let keyed = signed("keyed", "sign-message", None, false);
    let verify = |reference: &str, roots: &Path, identity: &str, code: i32| {
        let report = oci_support::oci_verify(
            reference,
            &[
                "--certificate-chain",
                roots.to_str().unwrap(),
                "--identity",
                identity,
            ],
        )
        .expect(code)
        .json();
        let referrers = oci_support::subjects_named(&report, "referrer ");
        assert_eq!(referrers.len(), 1, "{report}");
        referrers[0]["message"].as_str().unwrap().to_string()
    };
    for (reference, what) in [
        (&message, format!("a message signature of {digest}")),
        (
            &statement,
            format!("its statement (https://sigstore.dev/cosign/sign/v1) names {digest}"),
        ),
    ] {
        let said = verify(reference, &root, identity, 0);
        assert!(
            said.contains(&format!(
                "a Sigstore bundle by a certificate for {identity}"
            )) && said.contains("no log read")
                && said.contains(&what),
            "{said}"
        );
        let said = verify(reference, &root, "other@example.com", 1);
        assert!(said.contains("wrong identity"), "{said}");
        let said = verify(reference, &other_root, identity, 1);
        assert!(said.contains("untrusted chain"), "{said}");
    }
    let said = verify(&keyed, &root, identity, 1);
    assert!(
        said.contains("signed with a key, not a certificate"),
        "{said}"
    );
}
