//! `vouch oci sign` (issue 13, "Sign"): cosign legacy signatures written into a real
//! docker-registry and into OCI image layouts, with keys made by openssl and the cosign
//! keys of the shared fixtures; checked by `vouch oci verify --key` and, in the registry, by
//! sigstore-rs (`peers/sigstore-rs-check`, crates.io `sigstore` 0.15.0).

mod common;
mod oci_support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use oci_support::*;
use serde_json::Value;

const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// The cosign keys of the shared fixtures: `(dir of keys, password of vouch-test.cosign.key)`.
fn cosign_keys(test: &str) -> Option<PathBuf> {
    shared_testdata(test).map(|d| d.join("image-signatures/skopeo-registry-legacy-sig/keys"))
}

/// `vouch oci sign REF ARGS…` with no Docker configuration and no COSIGN_PASSWORD.
fn sign(reference: &str, args: &[&str]) -> Ran {
    run_within(
        vouch()
            .args(["oci", "sign", reference])
            .args(args)
            .env("DOCKER_CONFIG", "/nonexistent/vouch-test-docker-config")
            .env_remove("COSIGN_PASSWORD"),
        Duration::from_secs(120),
    )
}

/// A key made by openssl: `(private.pem, public.pem)`. `kind` picks the algorithm and the
/// encoding of the private key.
fn openssl_key(dir: &Path, name: &str, kind: &str) -> (PathBuf, PathBuf) {
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub"));
    let mut command = Command::new("openssl");
    match kind {
        // PKCS#8 PRIVATE KEY
        "p256" => command.args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ]),
        // SEC1 EC PRIVATE KEY
        "p384-sec1" => command.args(["ecparam", "-name", "secp384r1", "-genkey", "-noout"]),
        "ed25519" => command.args(["genpkey", "-algorithm", "ed25519"]),
        // PKCS#1 RSA PRIVATE KEY
        "rsa-pkcs1" => command.args(["genrsa", "-traditional"]),
        other => panic!("no key kind {other}"),
    };
    command.arg("-out").arg(&private);
    if kind == "rsa-pkcs1" {
        command.arg("2048");
    }
    peer(&mut command);
    peer(
        Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&private)
            .arg("-out")
            .arg(&public),
    );
    (private, public)
}

/// Whether sigstore-rs finds a signature of `image` (`HOST:PORT/REPO:TAG`) that verifies
/// with `public`.
fn sigstore_rs_verifies(peer_binary: &Path, image: &str, public: &Path) -> bool {
    let ran = run_within(
        Command::new(peer_binary).arg(image).arg(public),
        Duration::from_secs(60),
    );
    match ran.code {
        Some(0) => true,
        Some(1) => false,
        other => panic!(
            "sigstore-rs-check {image} {} exited {other:?}:\n{}\n{}",
            public.display(),
            ran.stdout(),
            ran.stderr
        ),
    }
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The layers of the `.sig` manifest of `digest` in a layout.
fn sig_layers(layout: &Layout, digest: &str) -> Vec<Value> {
    layout.manifest(&format!("sha256-{}.sig", &digest[7..]))["layers"]
        .as_array()
        .unwrap()
        .clone()
}

/// An image in a fresh layout, tagged `v1`: `(layout, its digest)`.
fn artifact_layout(dir: &Path, seed: u8) -> (Layout, String) {
    let layout = Layout::empty(dir);
    let weights = vec![seed; 1000];
    let descriptor = layout.put_artifact("v1", &[("weights.bin", &weights)]);
    (layout, descriptor["digest"].as_str().unwrap().to_string())
}

/// Each kind of key signs an image in a layout; `vouch oci verify` accepts the signature
/// with its public key and refuses it with another; a second signature is appended to the
/// same `.sig` manifest, and the layout holds nothing half-written.
#[test]
fn every_kind_of_key_signs_a_layout_image_that_verifies_with_its_public_key_only() {
    let test = "every_kind_of_key_signs_a_layout_image_that_verifies_with_its_public_key_only";
    if require_tool(test, "openssl").is_none() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let keys: Vec<(PathBuf, PathBuf)> = ["p256", "p384-sec1", "ed25519", "rsa-pkcs1"]
        .iter()
        .map(|kind| openssl_key(work.path(), kind, kind))
        .collect();
    let signed_as = "registry.example/team/model";
    for (i, (private, public)) in keys.iter().enumerate() {
        let (layout, digest) = artifact_layout(&work.path().join(format!("layout{i}")), i as u8);
        let reference = layout.reference("v1");
        let ran = sign(
            &reference,
            &["--key", text(private), "--signed-repository", signed_as],
        )
        .expect(0);
        let out = ran.stdout();
        assert!(out.contains(&format!("signed {digest}")), "{out}");
        assert!(
            out.contains(&format!(
                "{}:sha256-{}.sig",
                layout.dir.display(),
                &digest[7..]
            )),
            "{out}"
        );
        let verify = |key: &Path| {
            oci_verify(
                &reference,
                &["--key", text(key), "--signed-repository", signed_as],
            )
        };
        verify(public).expect(0);
        let (other_private, other) = &keys[(i + 1) % keys.len()];
        verify(other).expect(1);
        // The signature names the repository it was made for.
        oci_verify(
            &reference,
            &[
                "--key",
                text(public),
                "--signed-repository",
                "registry.example/other",
            ],
        )
        .expect(1);

        let layers = sig_layers(&layout, &digest);
        assert_eq!(layers.len(), 1);
        assert_eq!(layers[0]["mediaType"], SIMPLE_SIGNING);
        let payload =
            std::fs::read(layout.blob_path(layers[0]["digest"].as_str().unwrap())).unwrap();
        assert_eq!(
            String::from_utf8(payload).unwrap(),
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"{signed_as}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
            )
        );
        // The configuration as cosign writes it: one diff_id per layer, its digest.
        let manifest = layout.manifest(&format!("sha256-{}.sig", &digest[7..]));
        assert_eq!(
            manifest["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        let config = layout.read_json(manifest["config"]["digest"].as_str().unwrap());
        assert_eq!(config["rootfs"]["diff_ids"][0], layers[0]["digest"]);
        assert_eq!(config["history"].as_array().unwrap().len(), 1);

        // A second key's signature is appended; both verify.
        sign(
            &reference,
            &[
                "--key",
                text(other_private),
                "--signed-repository",
                signed_as,
            ],
        )
        .expect(0);
        let layers = sig_layers(&layout, &digest);
        assert_eq!(layers.len(), 2, "{layers:?}");
        verify(public).expect(0);
        verify(other).expect(0);
        let sig_tag = format!("sha256-{}.sig", &digest[7..]);
        let entries = layout.index()["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["annotations"]["org.opencontainers.image.ref.name"] == sig_tag.as_str())
            .count();
        assert_eq!(entries, 1, "one index.json entry for the tag");
        let leftovers: Vec<_> = files_under(&layout.dir)
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(".vouch-")
            })
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}

/// Ed25519 and RSA PKCS#1 v1.5 signatures are deterministic: signing again adds no
/// identical layer. ECDSA's are not: a second one is a second layer, and both count.
#[test]
fn signing_twice_keeps_both_signatures_and_never_an_identical_duplicate() {
    let test = "signing_twice_keeps_both_signatures_and_never_an_identical_duplicate";
    if require_tool(test, "openssl").is_none() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (ed25519, ed25519_pub) = openssl_key(work.path(), "ed", "ed25519");
    let (p256, p256_pub) = openssl_key(work.path(), "p256", "p256");
    let (layout, digest) = artifact_layout(&work.path().join("layout"), 7);
    let reference = layout.reference("v1");
    let args = |key: &Path| vec!["--key".to_string(), text(key).to_string()];
    let signed = |key: &Path| {
        let mut all = args(key);
        all.extend(["--signed-repository".into(), "registry.example/a".into()]);
        all
    };
    fn strs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    sign(&reference, &strs(&signed(&ed25519))).expect(0);
    let again = sign(&reference, &strs(&signed(&ed25519))).expect(0);
    assert!(
        again.stdout().contains("the same signature was already at"),
        "{}",
        again.stdout()
    );
    assert_eq!(sig_layers(&layout, &digest).len(), 1);
    sign(&reference, &strs(&signed(&p256))).expect(0);
    sign(&reference, &strs(&signed(&p256))).expect(0);
    let layers = sig_layers(&layout, &digest);
    assert_eq!(layers.len(), 3, "{layers:?}");
    assert_ne!(
        layers[1]["annotations"][SIGNATURE_ANNOTATION],
        layers[2]["annotations"][SIGNATURE_ANNOTATION]
    );
    for public in [&ed25519_pub, &p256_pub] {
        oci_verify(
            &reference,
            &[
                "--key",
                text(public),
                "--signed-repository",
                "registry.example/a",
            ],
        )
        .expect(0);
    }
}

/// The cosign keys of the shared fixtures: the encrypted one with its password (from a file,
/// or COSIGN_PASSWORD), sigstore-rs's empty-password one; a wrong password is exit 2 naming
/// the key file.
#[test]
fn cosign_encrypted_keys_sign_with_their_password_and_a_wrong_one_is_exit_2() {
    let test = "cosign_encrypted_keys_sign_with_their_password_and_a_wrong_one_is_exit_2";
    let Some(keys) = cosign_keys(test) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let (layout, _) = artifact_layout(&work.path().join("layout"), 1);
    let reference = layout.reference("v1");
    let repo = ["--signed-repository", "registry.example/a"];
    let cosign_key = keys.join("vouch-test.cosign.key");
    let password = keys.join("vouch-test.passphrase");
    let mut args = vec![
        "--key",
        text(&cosign_key),
        "--password-file",
        text(&password),
    ];
    args.extend(repo);
    sign(&reference, &args).expect(0);
    let vouch_test_pub = keys.join("vouch-test.pub");
    let other_pub = keys.join("other.pub");
    let mut verify = vec!["--key", text(&vouch_test_pub)];
    verify.extend(repo);
    oci_verify(&reference, &verify).expect(0);
    let mut other = vec!["--key", text(&other_pub)];
    other.extend(repo);
    oci_verify(&reference, &other).expect(1);

    // The password from COSIGN_PASSWORD, as cosign reads it.
    let from_env = run(vouch()
        .args(["oci", "sign", &reference, "--key", text(&cosign_key)])
        .args(repo)
        .env("COSIGN_PASSWORD", "vouch-test-pass"));
    from_env.expect(0);

    // A wrong password, from a file or the environment, or none at all.
    let wrong = work.path().join("wrong.txt");
    std::fs::write(&wrong, "not-the-password\n").unwrap();
    for ran in [
        sign(
            &reference,
            &[
                "--key",
                text(&cosign_key),
                "--password-file",
                text(&wrong),
                repo[0],
                repo[1],
            ],
        ),
        sign(&reference, &["--key", text(&cosign_key), repo[0], repo[1]]),
    ] {
        let ran = ran.expect(2);
        assert!(ran.stderr.contains(text(&cosign_key)), "{}", ran.stderr);
        assert!(ran.stderr.contains("wrong password"), "{}", ran.stderr);
        assert!(ran.stderr.contains("--password-file"), "{}", ran.stderr);
    }

    // sigstore-rs's key, made by cosign, with an empty password.
    let empty = keys.join("sigstore-rs_cosign_generated_encrypted_empty_private.key");
    let mut args = vec!["--key", text(&empty)];
    args.extend(repo);
    let ran = sign(&reference, &args).expect(0);
    assert!(ran.stdout().contains("ECDSA P-256"), "{}", ran.stdout());
    // Its public key, as sigstore-rs decrypts the key (when the peer is built).
    if let Some(peer_binary) = peer_sigstore_rs(test) {
        let ran = run(Command::new(&peer_binary)
            .args(["public-key", text(&empty)])
            .env_remove("COSIGN_PASSWORD"));
        assert_eq!(ran.code, Some(0), "{}", ran.stderr);
        let public = work.path().join("sigstore-rs.pub");
        std::fs::write(&public, ran.stdout()).unwrap();
        let mut verify = vec!["--key", text(&public)];
        verify.extend(repo);
        oci_verify(&reference, &verify).expect(0);
    }
}

/// Bad inputs are refused before anything is written, each with a message naming what is
/// wrong: a hostile scrypt cost (quickly), a file that is no key, a public key, a missing
/// file, a layout without --signed-repository, a malformed --signed-repository.
#[test]
fn bad_keys_and_settings_are_exit_2_naming_them_and_nothing_is_written() {
    let work = tempfile::tempdir().unwrap();
    let (layout, digest) = artifact_layout(&work.path().join("layout"), 2);
    let reference = layout.reference("v1");
    let index_before = std::fs::read(layout.dir.join("index.json")).unwrap();
    let hostile = work.path().join("hostile.key");
    let body = r#"{"kdf":{"name":"scrypt","params":{"N":1099511627776,"r":8,"p":1},"salt":"c2FsdA=="},"cipher":{"name":"nacl/secretbox","nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},"ciphertext":"AAAA"}"#;
    std::fs::write(
        &hostile,
        pem::encode(&pem::Pem::new(
            "ENCRYPTED COSIGN PRIVATE KEY",
            body.as_bytes().to_vec(),
        )),
    )
    .unwrap();
    let started = Instant::now();
    let ran = sign(
        &reference,
        &[
            "--key",
            text(&hostile),
            "--signed-repository",
            "registry.example/a",
        ],
    )
    .expect(2);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(ran.stderr.contains(text(&hostile)), "{}", ran.stderr);
    assert!(ran.stderr.contains("N=1099511627776"), "{}", ran.stderr);

    let not_pem = work.path().join("notes.txt");
    std::fs::write(&not_pem, "just text\n").unwrap();
    let public = work.path().join("only.pub");
    std::fs::write(
        &public,
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    let altered = work.path().join("altered.key");
    std::fs::write(
        &altered,
        pem::encode(&pem::Pem::new(
            "PRIVATE KEY",
            vec![0x30, 0x03, 0x02, 0x01, 0x00],
        )),
    )
    .unwrap();
    let missing = work.path().join("absent.key");
    for (key, says) in [
        (&not_pem, "no PEM block"),
        (&public, "no private key block"),
        (&altered, "not an ECDSA"),
        (&missing, "no such file"),
    ] {
        let ran = sign(
            &reference,
            &[
                "--key",
                text(key),
                "--signed-repository",
                "registry.example/a",
            ],
        )
        .expect(2);
        assert!(ran.stderr.contains(text(key)), "{}", ran.stderr);
        assert!(ran.stderr.contains(says), "{says}: {}", ran.stderr);
    }

    // A layout names no repository; a repository with a tag is not one.
    let ran = sign(&reference, &["--key", text(&hostile)]).expect(2);
    assert!(ran.stderr.contains("--signed-repository"), "{}", ran.stderr);
    let ran = sign(
        &reference,
        &[
            "--key",
            text(&hostile),
            "--signed-repository",
            "registry.example/a:v1",
        ],
    )
    .expect(2);
    assert!(
        ran.stderr
            .contains("'registry.example/a:v1': write HOST[:PORT]/PATH"),
        "{}",
        ran.stderr
    );

    // A password file that cannot be read is named.
    let ran = sign(
        &reference,
        &[
            "--key",
            text(&hostile),
            "--password-file",
            text(&missing),
            "--signed-repository",
            "registry.example/a",
        ],
    )
    .expect(2);
    assert!(ran.stderr.contains(text(&missing)), "{}", ran.stderr);

    assert_eq!(
        std::fs::read(layout.dir.join("index.json")).unwrap(),
        index_before
    );
    assert!(!layout
        .index()
        .to_string()
        .contains(&format!("sha256-{}.sig", &digest[7..])));
}

/// A tag that names nothing is not signed, and an unreachable registry is exit 3.
#[test]
fn nothing_is_signed_for_a_missing_tag_and_an_unreachable_registry_is_exit_3() {
    let work = tempfile::tempdir().unwrap();
    let (layout, _) = artifact_layout(&work.path().join("layout"), 3);
    let key = ed25519_key(work.path());
    let ran = sign(
        &layout.reference("nope"),
        &[
            "--key",
            text(&key),
            "--signed-repository",
            "registry.example/a",
        ],
    );
    // As `vouch oci digest` has it: a missing manifest is exit 1.
    let ran = ran.expect(1);
    assert!(ran.stderr.contains("nothing was signed"), "{}", ran.stderr);
    assert!(ran.stderr.contains("nope"), "{}", ran.stderr);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ran = sign(
        &format!("docker://127.0.0.1:{port}/vouch/app:v1"),
        &["--key", text(&key), "--retries", "0", "--timeout", "5"],
    )
    .expect(3);
    assert!(
        ran.stderr.contains(&format!("127.0.0.1:{port}")),
        "{}",
        ran.stderr
    );
}

/// The registry: each fixture and openssl key signs an image that skopeo pushed into a real
/// docker-registry; vouch and sigstore-rs verify it with the public key and refuse another;
/// two signatures of one image are both kept; and once the tag moves, the image at it has no
/// signature.
#[test]
fn signatures_pushed_to_a_real_registry_verify_with_vouch_and_sigstore_rs_until_the_tag_moves() {
    let test = "signatures_pushed_to_a_real_registry_verify_with_vouch_and_sigstore_rs_until_the_tag_moves";
    let Some(keys) = cosign_keys(test) else {
        return;
    };
    if !registry_peers(test) || require_tool(test, "openssl").is_none() {
        return;
    }
    let peer_binary = peer_sigstore_rs(test);
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let image = two_layer_image(&work.path().join("image"), "v1", "amd64", 5);
    let (p256, p256_pub) = openssl_key(work.path(), "p256", "p256");
    let (rsa, rsa_pub) = openssl_key(work.path(), "rsa", "rsa-pkcs1");
    let cosign_key = keys.join("vouch-test.cosign.key");
    let cosign_pub = keys.join("vouch-test.pub");
    let password = keys.join("vouch-test.passphrase");
    let cases: Vec<(&str, Vec<&str>, &Path)> = vec![
        ("p256", vec!["--key", text(&p256)], &p256_pub),
        ("rsa", vec!["--key", text(&rsa)], &rsa_pub),
        (
            "cosign",
            vec![
                "--key",
                text(&cosign_key),
                "--password-file",
                text(&password),
            ],
            &cosign_pub,
        ),
    ];
    let other_pub = keys.join("other.pub");
    for (name, args, public) in &cases {
        let reference = registry.reference(&format!("vouch/{name}:v1"));
        skopeo_copy(&image.reference("v1"), &reference, false);
        let digest = oci_digest(&reference);
        let ran = sign(&reference, args).expect(0);
        let out = ran.stdout();
        assert!(out.contains(&format!("signed {digest}")), "{out}");
        assert!(
            out.contains(&format!(
                "127.0.0.1:{}/vouch/{name}:sha256-{}.sig",
                registry.port,
                &digest[7..]
            )),
            "{out}"
        );
        oci_verify(&reference, &["--key", text(public)]).expect(0);
        oci_verify(&reference, &["--key", text(&other_pub)]).expect(1);
        // The bare form of the reference signs the same digest.
        let bare = format!("127.0.0.1:{}/vouch/{name}:v1", registry.port);
        if let Some(peer_binary) = &peer_binary {
            assert!(sigstore_rs_verifies(peer_binary, &bare, public), "{name}");
            assert!(
                !sigstore_rs_verifies(peer_binary, &bare, &other_pub),
                "{name}"
            );
        }
    }

    // Two keys sign one image (the bare reference form): both signatures stay.
    let reference = registry.reference("vouch/p256:v1");
    let bare = format!("127.0.0.1:{}/vouch/p256:v1", registry.port);
    sign(&bare, &["--key", text(&rsa)]).expect(0);
    let digest = oci_digest(&reference);
    let sig = registry.reference(&format!("vouch/p256:sha256-{}.sig", &digest[7..]));
    let copied = work.path().join("sig-layout");
    skopeo_copy(&sig, &format!("oci:{}:sig", copied.display()), false);
    let layers = Layout::at(&copied).manifest("sig")["layers"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(layers.len(), 2, "{layers:?}");
    for public in [&p256_pub, &rsa_pub] {
        oci_verify(&reference, &["--key", text(public)]).expect(0);
        if let Some(peer_binary) = &peer_binary {
            assert!(sigstore_rs_verifies(peer_binary, &bare, public));
        }
    }

    // The tag moves to another image: nothing signs it any more.
    let other = two_layer_image(&work.path().join("other"), "v2", "amd64", 6);
    skopeo_copy(&other.reference("v2"), &reference, false);
    assert_ne!(oci_digest(&reference), digest);
    oci_verify(&reference, &["--key", text(&p256_pub)]).expect(1);
    if let Some(peer_binary) = &peer_binary {
        assert!(!sigstore_rs_verifies(peer_binary, &bare, &p256_pub));
    }
}

/// A registry that takes bearer tokens from a token service (`peers/token_service.py`,
/// which grants what is asked for): vouch logs in with `--username`/`--password-stdin`,
/// asks for `pull,push` on the repository, and the registry accepts the upload; without
/// credentials the registry refuses the push (exit 3) and nothing is written.
#[test]
fn signing_through_a_token_service_asks_for_push_access_with_the_given_credentials() {
    const TEST: &str =
        "signing_through_a_token_service_asks_for_push_access_with_the_given_credentials";
    if !registry_peers(TEST) {
        return;
    }
    let Some(python) = peer_python(TEST) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let service = TokenService::start(&python, work.path());
    let registry = service.registry();
    let image = two_layer_image(&work.path().join("img"), "v1", "amd64", 14);
    let reference = registry.reference("private/signed:v1");
    peer(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        "--dest-creds",
        "vouch:s3cret",
        &image.reference("v1"),
        &reference,
    ]));
    let key = ed25519_key(work.path());

    // Anonymous: the token service refuses, so the registry does.
    let ran = sign(&reference, &["--key", text(&key), "--retries", "0"]).expect(3);
    assert!(ran.stderr.contains("refused"), "{}", ran.stderr);

    let mut signing = common::start(
        vouch()
            .args(["oci", "sign", &reference, "--key", text(&key)])
            .args(["--username", "vouch", "--password-stdin"])
            .env("DOCKER_CONFIG", "/nonexistent/vouch-test-docker-config")
            .stdin(std::process::Stdio::piped()),
    );
    signing.stdin().write_all(b"s3cret\n").unwrap();
    let ran = signing.finish_within(Duration::from_secs(60)).expect(0);
    assert!(ran.stdout().contains("1 signature)"), "{}", ran.stdout());
    let scopes = std::fs::read_to_string(&service.log).unwrap();
    assert!(
        scopes.contains("repository:private/signed:pull,push"),
        "vouch did not ask for push access: {scopes}"
    );
    // The signature is there, for skopeo too (with the credentials).
    let digest = {
        let mut digest = common::start(
            vouch()
                .args(["oci", "digest", &reference])
                .args(["--username", "vouch", "--password-stdin"])
                .env("DOCKER_CONFIG", "/nonexistent/vouch-test-docker-config")
                .stdin(std::process::Stdio::piped()),
        );
        digest.stdin().write_all(b"s3cret\n").unwrap();
        digest
            .finish_within(Duration::from_secs(60))
            .expect(0)
            .stdout()
            .trim()
            .to_string()
    };
    let copied = work.path().join("sig");
    peer(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--src-creds",
        "vouch:s3cret",
        &registry.reference(&format!("private/signed:sha256-{}.sig", &digest[7..])),
        &format!("oci:{}:sig", copied.display()),
    ]));
    let layers = Layout::at(&copied).manifest("sig")["layers"].clone();
    assert_eq!(layers.as_array().unwrap().len(), 1, "{layers}");
    assert_eq!(layers[0]["mediaType"], SIMPLE_SIGNING);
}

/// The payload vouch signs is byte for byte the one of the fixtures' `.sig` tags (cosign's
/// shape): signing the fixture image for its repository gives a layer with the same payload
/// digest, appended after the layer skopeo wrote.
#[test]
fn the_payload_is_byte_for_byte_the_one_the_fixture_signatures_sign() {
    let test = "the_payload_is_byte_for_byte_the_one_the_fixture_signatures_sign";
    let Some(keys) = cosign_keys(test) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let layout_dir = work.path().join("signed");
    let from = keys.parent().unwrap().join("signed");
    copy_tree(&from, &layout_dir);
    let layout = Layout::at(&layout_dir);
    let digest = "sha256:e936f50e430d02efea61abf04d1fd777dd8d873536ce661fd8e2cc60d9889764";
    let before = sig_layers(&layout, digest);
    assert_eq!(before.len(), 1);
    sign(
        &layout.reference("v1"),
        &[
            "--key",
            text(&keys.join("vouch-test.cosign.key")),
            "--password-file",
            text(&keys.join("vouch-test.passphrase")),
            "--signed-repository",
            "127.0.0.1:5123/vouch/signed",
        ],
    )
    .expect(0);
    let after = sig_layers(&layout, digest);
    assert_eq!(after.len(), 2);
    assert_eq!(
        after[0], before[0],
        "the layer skopeo wrote is kept as it was"
    );
    assert_eq!(after[1]["digest"], before[0]["digest"]);
    assert_eq!(after[1]["size"], before[0]["size"]);
    oci_verify(
        &layout.reference("v1"),
        &[
            "--key",
            text(&keys.join("vouch-test.pub")),
            "--signed-repository",
            "127.0.0.1:5123/vouch/signed",
        ],
    )
    .expect(0);
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::write(&target, std::fs::read(entry.path()).unwrap()).unwrap();
        }
    }
}

/// An image manifest with no layers, as the hostile registries below serve it.
const EMPTY_MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;

/// A fresh Ed25519 key (PKCS#8 PEM) in `dir`, made without openssl.
fn ed25519_key(dir: &Path) -> PathBuf {
    let key = dir.join("key.pem");
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = aws_lc_rs::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    std::fs::write(
        &key,
        pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.as_ref().to_vec())),
    )
    .unwrap();
    key
}

/// A registry that sends the upload elsewhere (another port) gets the blob there without
/// the credentials, which go to the registry only; and a registry that says it stored the
/// manifest under another digest did not store it: exit 3, naming both digests.
#[test]
fn credentials_stay_with_the_registry_and_a_manifest_stored_otherwise_is_exit_3() {
    use oci_support::hostile::{Hostile, Reply};
    let elsewhere = Hostile::start(|request| match request.method.as_str() {
        "PUT" => Reply::status("201 Created", ""),
        _ => Reply::status("404 Not Found", ""),
    });
    let upload_port = elsewhere.port;
    let manifest = EMPTY_MANIFEST;
    let digest = format!("sha256:{}", sha256_hex(manifest.as_bytes()));
    let sig_path = format!("/v2/app/manifests/sha256-{}.sig", &digest[7..]);
    let registry = Hostile::start(move |request| {
        let authorized = request.header("authorization").is_some();
        match (request.method.as_str(), request.target.as_str()) {
            (_, "/v2/") if !authorized => Reply::status(
                "401 Unauthorized",
                "\r\nWWW-Authenticate: Basic realm=\"test\"",
            ),
            (_, _) if !authorized => Reply::status("401 Unauthorized", ""),
            ("GET", "/v2/") => Reply::ok("application/json", b"{}"),
            ("GET", "/v2/app/manifests/v1") => Reply::ok(
                "application/vnd.oci.image.manifest.v1+json",
                manifest.as_bytes(),
            ),
            ("POST", "/v2/app/blobs/uploads/") => Reply::status(
                "202 Accepted",
                &format!("\r\nLocation: http://127.0.0.1:{upload_port}/upload/1?state=x"),
            ),
            ("PUT", path) if path == sig_path => Reply::status(
                "201 Created",
                "\r\nDocker-Content-Digest: sha256:0000000000000000000000000000000000000000000000000000000000000000",
            ),
            _ => Reply::status("404 Not Found", ""),
        }
    });
    let work = tempfile::tempdir().unwrap();
    let key = ed25519_key(work.path());
    let mut signing = common::start(
        vouch()
            .args([
                "oci",
                "sign",
                &registry.reference("app:v1"),
                "--key",
                text(&key),
            ])
            .args(["--username", "vouch", "--password-stdin", "--retries", "0"])
            .env("DOCKER_CONFIG", "/nonexistent/vouch-test-docker-config")
            .stdin(std::process::Stdio::piped()),
    );
    signing.stdin().write_all(b"s3cret\n").unwrap();
    let ran = signing.finish_within(Duration::from_secs(60)).expect(3);
    assert!(
        ran.stderr.contains("sha256:0000000000000000") && ran.stderr.contains(".sig"),
        "{}",
        ran.stderr
    );
    // Both blobs (payload and configuration) went to the upload location, without the
    // credentials, each with its digest.
    let uploads = elsewhere.requests();
    assert_eq!(uploads.len(), 2, "{uploads:?}");
    for upload in &uploads {
        assert_eq!(upload.method, "PUT");
        assert!(
            upload
                .target
                .starts_with("/upload/1?state=x&digest=sha256%3A"),
            "{upload:?}"
        );
        assert_eq!(upload.header("authorization"), None, "{upload:?}");
    }
    let posts = registry
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect::<Vec<_>>();
    assert_eq!(posts.len(), 2);
    assert!(posts.iter().all(|p| p.header("authorization").is_some()));
}

/// Keys openssl encrypts with a password (PKCS#8 PBES2, and SEC1 with OpenSSL's traditional
/// PEM encryption) sign with the password from --password-file; a wrong one is exit 2
/// naming the file.
#[test]
fn password_protected_openssl_keys_sign_with_the_password_file() {
    let test = "password_protected_openssl_keys_sign_with_the_password_file";
    if require_tool(test, "openssl").is_none() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (plain, public) = openssl_key(work.path(), "plain", "p256");
    let pkcs8 = work.path().join("pkcs8.pem");
    peer(
        Command::new("openssl")
            .args([
                "pkcs8",
                "-topk8",
                "-v2",
                "aes-256-cbc",
                "-passout",
                "pass:pw1",
                "-in",
            ])
            .arg(&plain)
            .arg("-out")
            .arg(&pkcs8),
    );
    let legacy = work.path().join("legacy.pem");
    peer(
        Command::new("openssl")
            .args(["ec", "-aes256", "-passout", "pass:pw1", "-in"])
            .arg(&plain)
            .arg("-out")
            .arg(&legacy),
    );
    assert!(std::fs::read_to_string(&pkcs8)
        .unwrap()
        .contains("ENCRYPTED PRIVATE KEY"));
    assert!(std::fs::read_to_string(&legacy)
        .unwrap()
        .contains("Proc-Type: 4,ENCRYPTED"));
    let password = work.path().join("pw.txt");
    std::fs::write(&password, "pw1\n").unwrap();
    let wrong = work.path().join("wrong.txt");
    std::fs::write(&wrong, "pw2\n").unwrap();
    let (layout, digest) = artifact_layout(&work.path().join("layout"), 9);
    let reference = layout.reference("v1");
    let repo = "registry.example/a";
    for key in [&pkcs8, &legacy] {
        let ran = sign(
            &reference,
            &[
                "--key",
                text(key),
                "--password-file",
                text(&wrong),
                "--signed-repository",
                repo,
            ],
        )
        .expect(2);
        assert!(ran.stderr.contains(text(key)), "{}", ran.stderr);
        assert!(ran.stderr.contains("wrong password"), "{}", ran.stderr);
        sign(
            &reference,
            &[
                "--key",
                text(key),
                "--password-file",
                text(&password),
                "--signed-repository",
                repo,
            ],
        )
        .expect(0);
    }
    assert_eq!(sig_layers(&layout, &digest).len(), 2);
    oci_verify(
        &reference,
        &["--key", text(&public), "--signed-repository", repo],
    )
    .expect(0);
}

/// A registry that starts an upload without saying where to send it, or refuses the blob,
/// is exit 3 with what it did; the manifest is never put.
#[test]
fn an_upload_the_registry_does_not_take_is_exit_3_and_no_manifest_is_put() {
    use oci_support::hostile::{Hostile, Reply};
    let manifest = EMPTY_MANIFEST;
    let work = tempfile::tempdir().unwrap();
    let key = ed25519_key(work.path());
    for (upload_headers, says) in [
        ("", "named no Location"),
        ("\r\nLocation: /v2/app/blobs/uploads/1", "HTTP 400"),
    ] {
        let registry = Hostile::start(move |request| {
            match (request.method.as_str(), request.target.as_str()) {
                ("GET", "/v2/") => Reply::ok("application/json", b"{}"),
                ("GET", "/v2/app/manifests/v1") => Reply::ok(
                    "application/vnd.oci.image.manifest.v1+json",
                    manifest.as_bytes(),
                ),
                ("POST", "/v2/app/blobs/uploads/") => Reply::status("202 Accepted", upload_headers),
                ("PUT", path) if path.starts_with("/v2/app/blobs/uploads/1") => {
                    Reply::status("400 Bad Request", "")
                }
                _ => Reply::status("404 Not Found", ""),
            }
        });
        let ran = sign(
            &registry.reference("app:v1"),
            &["--key", text(&key), "--retries", "0"],
        )
        .expect(3);
        assert!(ran.stderr.contains(says), "{says}: {}", ran.stderr);
        assert!(
            !registry
                .requests()
                .iter()
                .any(|r| r.method == "PUT" && r.target.contains("/manifests/")),
            "a manifest was put"
        );
    }
}

/// Whether sigstore-js (`@sigstore/verify`, from `cargo xtask peers`) accepts `bundle` over
/// `file` with the key `public`.
fn sigstore_js_accepts(node: &Path, public: &Path, file: &Path, bundle: &Path) -> bool {
    let ran = run(Command::new(node)
        .env(
            "NODE_PATH",
            project_root().join("target/peers/npm/node_modules"),
        )
        .arg(project_root().join("tests/peers/sigstore_js_peer.js"))
        .arg("verify")
        .args([public, file, bundle]));
    match ran.code {
        Some(0) => true,
        Some(1) => false,
        _ => panic!("sigstore-js verify failed:\n{}", ran.stderr),
    }
}

/// `vouch oci sign --bundle` writes cosign 3's signature: a Sigstore bundle v0.3 referrer of
/// the image, listed in the referrers fallback tag, in a real docker-registry (which has no
/// referrers API) and in a layout. vouch verifies it with the key and refuses another;
/// sigstore-js accepts the bundle over the image manifest with the key and refuses it with
/// another; its statement names the repository and the digest under cosign's sign
/// predicate. Signing again lists a second referrer; RSA and Ed25519 keys sign bundles that
/// count under their own key only.
#[test]
fn a_bundle_signature_is_a_referrer_that_vouch_and_sigstore_js_verify() {
    let test = "a_bundle_signature_is_a_referrer_that_vouch_and_sigstore_js_verify";
    if !registry_peers(test) || require_tool(test, "openssl").is_none() {
        return;
    }
    let Some(node) = require_tool(test, "node") else {
        return;
    };
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let image = two_layer_image(&work.path().join("image"), "v1", "amd64", 7);
    let (p256, p256_pub) = openssl_key(work.path(), "p256", "p256");
    let (_, other_pub) = openssl_key(work.path(), "other", "p256");
    let counted = |reference: &str, digest: &str| {
        let report = oci_verify(reference, &["--key", text(&p256_pub)])
            .expect(0)
            .json();
        let referrers = subjects_named(&report, "referrer ");
        assert!(!referrers.is_empty(), "{report}");
        for referrer in &referrers {
            assert_eq!(referrer["verdict"], "ok", "{report}");
            let message = referrer["message"].as_str().unwrap();
            assert!(
                message.contains(&format!(
                    "its statement (https://sigstore.dev/cosign/sign/v1) names {digest}"
                )) && message.contains("referrers fallback tag"),
                "{message}"
            );
        }
        oci_verify(reference, &["--key", text(&other_pub)]).expect(1);
        referrers.len()
    };

    let reference = registry.reference("vouch/bundled:v1");
    skopeo_copy(&image.reference("v1"), &reference, false);
    let digest = oci_digest(&reference);
    let ran = sign(&reference, &["--key", text(&p256), "--bundle"]).expect(0);
    assert!(
        ran.stderr.contains("names a tag: signed") && ran.stderr.contains(&format!("@{digest}")),
        "{}",
        ran.stderr
    );
    let out = ran.stdout();
    assert!(
        out.contains("Sigstore bundle written as the referrer")
            && out.contains(&format!("vouch/bundled:sha256-{}", &digest[7..])),
        "{out}"
    );
    assert_eq!(counted(&reference, &digest), 1);
    sign(&reference, &["--key", text(&p256), "--bundle"]).expect(0);
    assert_eq!(counted(&reference, &digest), 2);
    // RSA and Ed25519 keys sign the statement too; their bundles count under their key only.
    for (name, kind) in [("rsa", "rsa-pkcs1"), ("ed25519", "ed25519")] {
        let (private, public) = openssl_key(work.path(), name, kind);
        let reference = registry.reference(&format!("vouch/bundled-{name}:v1"));
        skopeo_copy(&image.reference("v1"), &reference, false);
        sign(&reference, &["--key", text(&private), "--bundle"]).expect(0);
        let report = oci_verify(&reference, &["--key", text(&public)])
            .expect(0)
            .json();
        let referrers = subjects_named(&report, "referrer ");
        assert_eq!(referrers.len(), 1, "{report}");
        assert_eq!(referrers[0]["verdict"], "ok", "{report}");
        oci_verify(&reference, &["--key", text(&p256_pub)]).expect(1);
    }

    // In the layout: the bundle, read back, is what sigstore-js checks.
    let local = image.reference("v1");
    let digest = oci_digest(&local);
    sign(
        &local,
        &[
            "--key",
            text(&p256),
            "--bundle",
            "--signed-repository",
            "registry.example/vouch/bundled",
        ],
    )
    .expect(0);
    assert_eq!(counted(&local, &digest), 1);
    let fallback = image.manifest(&format!("sha256-{}", &digest[7..]));
    let listed = fallback["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{fallback}");
    assert_eq!(
        listed[0]["artifactType"],
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    );
    let referrer = image.read_json(listed[0]["digest"].as_str().unwrap());
    assert_eq!(referrer["subject"]["digest"], digest.as_str(), "{referrer}");
    let bundle_path = image.blob_path(referrer["layers"][0]["digest"].as_str().unwrap());
    let manifest = image.blob_path(&digest);
    assert!(sigstore_js_accepts(
        &node,
        &p256_pub,
        &manifest,
        &bundle_path
    ));
    assert!(!sigstore_js_accepts(
        &node,
        &other_pub,
        &manifest,
        &bundle_path
    ));
    let bundle: Value = serde_json::from_slice(&std::fs::read(&bundle_path).unwrap()).unwrap();
    use base64::Engine as _;
    let statement: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        statement["predicateType"],
        "https://sigstore.dev/cosign/sign/v1"
    );
    assert_eq!(
        statement["subject"][0]["name"],
        "registry.example/vouch/bundled"
    );
    assert_eq!(statement["subject"][0]["digest"]["sha256"], &digest[7..]);
}

/// A blob planted in a layout where the signature's payload goes (same name, other bytes)
/// is written anew, not trusted for its name: the signature verifies.
#[test]
fn a_planted_blob_under_the_payloads_name_is_replaced_and_the_signature_verifies() {
    let test = "a_planted_blob_under_the_payloads_name_is_replaced_and_the_signature_verifies";
    if require_tool(test, "openssl").is_none() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (layout, digest) = artifact_layout(&work.path().join("layout"), 3);
    let (p256, p256_pub) = openssl_key(work.path(), "p256", "p256");
    let repository = "registry.example/a";
    let payload = vouch::sign::cosign::simple_signing_payload(
        repository,
        &vouch::hash::Digest::from_prefixed(&digest).unwrap(),
    );
    let planted = layout.blob_path(&format!("sha256:{}", sha256_hex(&payload)));
    std::fs::create_dir_all(planted.parent().unwrap()).unwrap();
    std::fs::write(&planted, b"not the payload").unwrap();
    sign(
        &layout.reference("v1"),
        &["--key", text(&p256), "--signed-repository", repository],
    )
    .expect(0);
    assert_eq!(std::fs::read(&planted).unwrap(), payload);
    oci_verify(
        &layout.reference("v1"),
        &["--key", text(&p256_pub), "--signed-repository", repository],
    )
    .expect(0);
}
