//! Approval inputs and the details of signatures and ignores: every input vouch reads to
//! learn what was approved is opened without blocking, a statement cannot ignore its own
//! files, detached bundles are what they claim, certificate chains end in a root, and the
//! default git ignores are named.

mod common;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::*;
use serde_json::Value;

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// An EC P-256 key pair made by openssl: (private PEM, public PEM).
fn key_pair(dir: &Path, test: &str) -> Option<(PathBuf, PathBuf)> {
    let openssl = require_tool(test, "openssl")?;
    let private = dir.join("key.pem");
    let public = dir.join("pub.pem");
    let ok = |command: &mut Command| assert!(run(command).code == Some(0), "{command:?}");
    ok(Command::new(&openssl)
        .args([
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
        ])
        .arg(&private));
    ok(Command::new(&openssl)
        .args(["ec", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public));
    Some((private, public))
}

#[test]
fn every_approval_input_given_as_a_fifo_is_exit_2_naming_it() {
    let test = "every_approval_input_given_as_a_fifo_is_exit_2_naming_it";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some((private, public)) = key_pair(d, test) else {
        return;
    };
    write_tree(&d.join("model"), &[("w.bin", &pseudo_random(5000, 1))]);
    let model = d.join("model");
    let signature = d.join("model.sig");
    vouch_run([
        os("sign"),
        model.as_os_str(),
        os("--key"),
        private.as_os_str(),
        os("-o"),
        signature.as_os_str(),
    ])
    .expect(0);
    let fifo = |name: &str| {
        let path = d.join(name);
        mkfifo(&path);
        path
    };
    let verify = |flags: Vec<OsString>| {
        let mut args: Vec<OsString> = vec!["verify".into(), model.clone().into()];
        args.extend(flags);
        args
    };
    let manifest = fifo("manifest.json");
    let sums = fifo("sha256sums");
    let bundle = fifo("bundle.sig");
    let key = fifo("fifo-key.pem");
    let chain = fifo("chain.pem");
    let root = fifo("trusted_root.json");
    let detached = fifo("detached.sigstore.json");
    let password = fifo("password.txt");
    let certificate = fifo("leaf.pem");
    let config = fifo("vouch.toml");
    let docker = d.join("docker");
    std::fs::create_dir(&docker).unwrap();
    let docker_config = docker.join("config.json");
    mkfifo(&docker_config);
    let cases: Vec<(Vec<OsString>, &Path)> = vec![
        (
            verify(vec!["--manifest".into(), manifest.clone().into()]),
            &manifest,
        ),
        (verify(vec!["--check".into(), sums.clone().into()]), &sums),
        (
            verify(vec![
                "--signature".into(),
                bundle.clone().into(),
                "--key".into(),
                public.clone().into(),
            ]),
            &bundle,
        ),
        (
            verify(vec![
                "--signature".into(),
                signature.clone().into(),
                "--key".into(),
                key.clone().into(),
            ]),
            &key,
        ),
        (
            verify(vec![
                "--signature".into(),
                signature.clone().into(),
                "--certificate-chain".into(),
                chain.clone().into(),
            ]),
            &chain,
        ),
        (
            verify(vec![
                "--signature".into(),
                signature.clone().into(),
                "--identity".into(),
                "a@example.com".into(),
                "--issuer".into(),
                "https://issuer.example.com".into(),
                "--trusted-root".into(),
                root.clone().into(),
            ]),
            &root,
        ),
        (
            vec![
                "verify".into(),
                model.join("w.bin").into(),
                "--bundle".into(),
                detached.clone().into(),
                "--identity".into(),
                "a@example.com".into(),
                "--issuer".into(),
                "https://issuer.example.com".into(),
            ],
            &detached,
        ),
        (
            vec![
                "sign".into(),
                model.clone().into(),
                "--key".into(),
                private.clone().into(),
                "--password-file".into(),
                password.clone().into(),
                "-o".into(),
                d.join("out.sig").into(),
            ],
            &password,
        ),
        (
            vec![
                "sign".into(),
                model.clone().into(),
                "--key".into(),
                private.clone().into(),
                "--certificate".into(),
                certificate.clone().into(),
                "-o".into(),
                d.join("out.sig").into(),
            ],
            &certificate,
        ),
        (
            vec![
                "drift".into(),
                "run".into(),
                "-c".into(),
                config.clone().into(),
            ],
            &config,
        ),
        (
            vec![
                "oci".into(),
                "verify".into(),
                "docker://127.0.0.1:9/repo:tag".into(),
                "--digest".into(),
                format!("sha256:{}", "ab".repeat(32)).into(),
            ],
            &docker_config,
        ),
    ];
    for (args, input) in cases {
        let ran = run_within(
            vouch().env("DOCKER_CONFIG", &docker).args(&args),
            Duration::from_secs(10),
        )
        .expect(2);
        assert!(
            ran.stderr.contains(&input.display().to_string()) && ran.stderr.contains("FIFO"),
            "{args:?}: {}",
            ran.stderr
        );
    }
}

/// `payload` signed with `private` in a DSSE bundle shaped like `template` (a bundle vouch
/// wrote with the same key).
fn forge_bundle(
    template: &Path,
    payload: &[u8],
    private: &Path,
    out: &Path,
    test: &str,
) -> Option<()> {
    let openssl = require_tool(test, "openssl")?;
    let payload_type = "application/vnd.in-toto+json";
    let mut pae = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    pae.extend_from_slice(payload);
    let dir = out.parent().unwrap();
    std::fs::write(dir.join("pae.bin"), &pae).unwrap();
    let sig = dir.join("pae.sig");
    let ran = run(Command::new(openssl)
        .args(["dgst", "-sha256", "-sign"])
        .arg(private)
        .arg("-out")
        .arg(&sig)
        .arg(dir.join("pae.bin")));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    edited_bundle(template, out, |bundle| {
        bundle["dsseEnvelope"]["payload"] = STANDARD.encode(payload).into();
        bundle["dsseEnvelope"]["signatures"][0]["sig"] =
            STANDARD.encode(std::fs::read(&sig).unwrap()).into();
    });
    Some(())
}

#[test]
fn a_statement_that_ignores_its_own_file_is_refused_signed_or_not() {
    let test = "a_statement_that_ignores_its_own_file_is_refused_signed_or_not";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some((private, public)) = key_pair(d, test) else {
        return;
    };
    let model = d.join("model");
    write_tree(
        &model,
        &[
            ("weights.bin", &pseudo_random(3000, 2)),
            ("config.json", b"{}"),
        ],
    );
    let manifest = d.join("approved.json");
    write_manifest(&model, &manifest, &[]);
    let mut statement: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    statement["predicate"]["serialization"]["ignore_paths"]
        .as_array_mut()
        .unwrap()
        .push("weights.bin".into());
    let inconsistent = serde_json::to_vec(&statement).unwrap();
    std::fs::write(&manifest, &inconsistent).unwrap();
    // A swapped weights file would otherwise pass, skipped as ignored.
    std::fs::write(model.join("weights.bin"), pseudo_random(3000, 3)).unwrap();
    let ran = vouch_run([
        os("verify"),
        model.as_os_str(),
        os("--manifest"),
        manifest.as_os_str(),
    ])
    .expect(2);
    assert!(
        ran.stderr.contains("inconsistent") && ran.stderr.contains("'weights.bin'"),
        "{}",
        ran.stderr
    );

    let template = d.join("template.sig");
    vouch_run([
        os("sign"),
        model.as_os_str(),
        os("--key"),
        private.as_os_str(),
        os("-o"),
        template.as_os_str(),
    ])
    .expect(0);
    let forged = d.join("forged.sig");
    let Some(()) = forge_bundle(&template, &inconsistent, &private, &forged, test) else {
        return;
    };
    let ran = vouch_run([
        os("verify"),
        model.as_os_str(),
        os("--signature"),
        forged.as_os_str(),
        os("--key"),
        public.as_os_str(),
    ])
    .expect(2);
    assert!(
        ran.stderr.contains("inconsistent") && ran.stderr.contains("forged.sig"),
        "{}",
        ran.stderr
    );
}

#[test]
fn skipped_approved_files_are_named_with_where_the_ignore_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write_tree(&model, &[("a.bin", b"a"), ("notes/b.txt", b"b")]);
    let manifest = dir.path().join("approved.json");
    write_manifest(&model, &manifest, &[]);
    let report = vouch_run([
        os("verify"),
        model.as_os_str(),
        os("--manifest"),
        manifest.as_os_str(),
        os("--ignore-paths"),
        os("notes"),
        os("--format"),
        os("json"),
    ])
    .expect(0)
    .json();
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("1 approved file(s) not checked because of --ignore-paths: notes/b.txt"),
        "{warnings}"
    );

    // A drift target says so in the words of vouch.toml.
    let config = dir.path().join("vouch.toml");
    std::fs::write(
        &config,
        "[[target]]\nname = \"m\"\nowner = \"o\"\npath = \"model\"\nmanifest = \"approved.json\"\nignore_paths = [\"notes\"]\n",
    )
    .unwrap();
    let run = vouch_run([
        os("drift"),
        os("run"),
        os("--format"),
        os("json"),
        os("-c"),
        config.as_os_str(),
    ])
    .expect(0)
    .json();
    let warnings = run["targets"][0]["report"]["warnings"].to_string();
    assert!(
        warnings.contains("not checked because of the target's ignore_paths: notes/b.txt"),
        "{warnings}"
    );
}

#[test]
fn unlisted_git_paths_are_named_and_no_ignore_git_paths_checks_them() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write_tree(&model, &[("w.bin", &pseudo_random(2000, 4))]);
    let manifest = dir.path().join("approved.json");
    write_manifest(&model, &manifest, &[]);
    // Dropped in after approval: a filter driver and a workflow nobody approved.
    write_tree(
        &model,
        &[
            (".gitattributes", b"*.bin filter=evil\n"),
            (".github/workflows/x.yml", b"on: push\n"),
        ],
    );
    let verify = |extra: &[&str]| {
        let mut args = vec![
            os("verify"),
            model.as_os_str(),
            os("--manifest"),
            manifest.as_os_str(),
        ];
        args.extend(extra.iter().map(|a| os(a)));
        args.extend([os("--format"), os("json")]);
        vouch_run(args)
    };
    let report = verify(&[]).expect(0).json();
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("default git ignores") && warnings.contains(".gitattributes, .github"),
        "{warnings}"
    );
    let report = verify(&["--no-ignore-git-paths"]).expect(1).json();
    let extra: Vec<&str> = with_verdict(&report, "extra")
        .into_iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        extra,
        [".gitattributes", ".github/workflows/x.yml"],
        "{report:#}"
    );

    // With the flag, a manifest includes them and then verifies them like any file.
    let with_git = dir.path().join("with-git.json");
    write_manifest(&model, &with_git, &["--no-ignore-git-paths"]);
    let recorded: Value = serde_json::from_slice(&std::fs::read(&with_git).unwrap()).unwrap();
    assert!(recorded.to_string().contains(".github/workflows/x.yml"));
    std::fs::write(model.join(".gitattributes"), b"*.bin filter=other\n").unwrap();
    let ran = vouch_run([
        os("verify"),
        model.as_os_str(),
        os("--manifest"),
        with_git.as_os_str(),
    ]);
    let ran = ran.expect(1);
    assert!(ran.stdout().contains(".gitattributes"), "{}", ran.stdout());
}

#[test]
fn a_partial_certificate_chain_is_refused_unless_asked_for() {
    let test = "a_partial_certificate_chain_is_refused_unless_asked_for";
    let Some(testdata) = shared_testdata(test) else {
        return;
    };
    let fixture = testdata.join("model-signing-fixtures/v1.1.0-certificate");
    let keys = testdata.join("model-signing-fixtures/keys/certificate");
    let verify = |chain: &str, extra: &[&str]| {
        let chain = keys.join(chain);
        let signature = fixture.join("model.sig");
        let mut args = vec![
            os("verify"),
            fixture.as_os_str(),
            os("--signature"),
            signature.as_os_str(),
            os("--certificate-chain"),
            chain.as_os_str(),
        ];
        if fixture.join("ignore-me").exists() {
            args.extend([os("--ignore-paths"), os("ignore-me")]);
        }
        args.extend(extra.iter().map(|a| os(a)));
        vouch_run(args)
    };
    verify("ca-cert.pem", &[]).expect(0);
    let ran = verify("int-ca-cert.pem", &[]).expect(1);
    assert!(
        ran.stdout().contains("not a self-signed root"),
        "{}",
        ran.stdout()
    );
    verify("int-ca-cert.pem", &["--allow-partial-chain"]).expect(0);
    let ran = verify("ca-cert.pem", &["--allow-partial-chain", "--key", "k.pem"]).expect(2);
    assert!(ran.stderr.contains("exactly one of"), "{}", ran.stderr);
}

#[test]
fn a_detached_bundle_must_be_a_sigstore_bundle_about_a_file() {
    let test = "a_detached_bundle_must_be_a_sigstore_bundle_about_a_file";
    let Some(testdata) = shared_testdata(test) else {
        return;
    };
    // A keyless OMS bundle signs the model's root digest, SHA-256 over its files' digests: a
    // file holding those digests has that digest, but it is not what was signed.
    let fixture = testdata.join("model-signing-fixtures/v1.1.0-sigstore");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("digests.bin");
    let mut bytes = Vec::new();
    for name in ["signme-1", "signme-2"] {
        let hex = sha256_hex(&std::fs::read(fixture.join(name)).unwrap());
        bytes.extend(
            (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()),
        );
    }
    std::fs::write(&file, &bytes).unwrap();
    let root = testdata.join("sigstore/trusted_root.public-good.json");
    let verify = |bundle: &Path| {
        vouch_run([
            os("verify"),
            file.as_os_str(),
            os("--bundle"),
            bundle.as_os_str(),
            os("--identity"),
            os("stefanb@us.ibm.com"),
            os("--issuer"),
            os("https://sigstore.verify.ibm.com/oauth2"),
            os("--trusted-root"),
            root.as_os_str(),
        ])
    };
    let ran = verify(&fixture.join("model.sig")).expect(2);
    assert!(
        ran.stderr.contains("OMS model signature")
            && ran.stderr.contains("model_signing/signature/v1.0"),
        "{}",
        ran.stderr
    );
    for media_type in [
        "application/vnd.dev.sigstore.bundle+json;version=9",
        "application/json",
        "",
    ] {
        let edited = dir.path().join("edited.sig");
        edited_bundle(&fixture.join("model.sig"), &edited, |b| {
            b["mediaType"] = media_type.into()
        });
        let ran = verify(&edited).expect(2);
        assert!(
            ran.stderr.contains("mediaType"),
            "{media_type}: {}",
            ran.stderr
        );
    }
}

#[test]
fn model_signing_and_vouch_both_refuse_an_intermediate_as_the_only_trust() {
    let test = "model_signing_and_vouch_both_refuse_an_intermediate_as_the_only_trust";
    let Some(python) = peer_python(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name);
    write_tree(&d("model"), &[("w.bin", &pseudo_random(4000, 5))]);
    model_signing(
        &python,
        &[os("pki"), dir.path().as_os_str(), os("--curve"), os("p256")],
    );
    let signature = d("model.sig");
    vouch_run([
        os("sign"),
        d("model").as_os_str(),
        os("--key"),
        d("leaf-key.pem").as_os_str(),
        os("--certificate"),
        d("leaf.pem").as_os_str(),
        os("--certificate-chain"),
        d("intermediate.pem").as_os_str(),
        os("-o"),
        signature.as_os_str(),
    ])
    .expect(0);
    let peer = |anchor: &str| {
        run(
            Command::new(python.parent().unwrap().join("model_signing")).args([
                os("verify"),
                os("certificate"),
                os("--certificate_chain"),
                d(anchor).as_os_str(),
                os("--signature"),
                signature.as_os_str(),
                d("model").as_os_str(),
            ]),
        )
    };
    let vouch = |anchor: &str, extra: &[&str]| {
        let mut args: Vec<OsString> = vec![
            "verify".into(),
            d("model").into(),
            "--signature".into(),
            signature.clone().into(),
            "--certificate-chain".into(),
            d(anchor).into(),
        ];
        args.extend(extra.iter().map(OsString::from));
        vouch_run(args).code
    };
    let peer_root = peer("root.pem");
    assert!(
        peer_root.stdout().contains("succeeded"),
        "{}",
        peer_root.stderr
    );
    assert_eq!(vouch("root.pem", &[]), Some(0));
    let peer_intermediate = peer("intermediate.pem");
    assert!(
        !peer_intermediate.stdout().contains("succeeded"),
        "model-signing accepted an intermediate alone: {}",
        peer_intermediate.stdout()
    );
    assert_eq!(vouch("intermediate.pem", &[]), Some(1));
    assert_eq!(
        vouch("intermediate.pem", &["--allow-partial-chain"]),
        Some(0)
    );
}

#[test]
fn a_signature_bundle_with_a_malformed_media_type_is_exit_2() {
    let test = "a_signature_bundle_with_a_malformed_media_type_is_exit_2";
    let Some(testdata) = shared_testdata(test) else {
        return;
    };
    let fixture = testdata.join("model-signing-fixtures/v1.1.0-elliptic-key");
    let key = testdata.join("model-signing-fixtures/keys/certificate/signing-key-pub.pem");
    let dir = tempfile::tempdir().unwrap();
    let verify = |signature: &Path| {
        vouch_run([
            os("verify"),
            fixture.as_os_str(),
            os("--signature"),
            signature.as_os_str(),
            os("--key"),
            key.as_os_str(),
            os("--ignore-paths"),
            os("ignore-me"),
        ])
    };
    verify(&fixture.join("model.sig")).expect(0);
    // The media type is not signed: only its form says what the bundle is.
    for media_type in [
        "application/vnd.dev.sigstore.bundle.v9+json",
        "application/vnd.dev.sigstore.bundlex",
    ] {
        let edited = dir.path().join("model.sig");
        edited_bundle(&fixture.join("model.sig"), &edited, |b| {
            b["mediaType"] = media_type.into()
        });
        let ran = verify(&edited).expect(2);
        assert!(
            ran.stderr.contains("is not a Sigstore bundle media type"),
            "{media_type}: {}",
            ran.stderr
        );
    }
}
