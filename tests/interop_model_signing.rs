//! vouch against model-signing 1.1.1 (the OMS reference implementation) on generated models.

mod common;

use std::ffi::OsStr;
use std::path::Path;

use common::*;

/// A model with the quirks that decide ordering and naming: nested folders, an empty file,
/// `a-b` beside `a/b`, non-ASCII names, a file larger than the test shard size, and git
/// files that are ignored by default.
fn quirky_model(root: &Path) {
    write_tree(
        root,
        &[
            ("a/b/weights.bin", &pseudo_random(2500, 1)),
            ("a/b/x", b"x"),
            ("a-b", b"dash"),
            ("a/b-c", b"dash inside"),
            ("a0", b"zero"),
            ("empty", b""),
            ("sub/deeper/empty2", b""),
            ("né/ü.txt", "non-ascii".as_bytes()),
            ("日本語.bin", &pseudo_random(1000, 2)),
            ("README.md", b"# model card"),
            (".git/config", b"[core]"),
            (".gitattributes", b"*.bin filter=lfs"),
        ],
    );
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

struct Signer {
    python: std::path::PathBuf,
    keys: tempfile::TempDir,
}

impl Signer {
    fn new(test: &str) -> Option<Signer> {
        let python = peer_python(test)?;
        let keys = tempfile::tempdir().unwrap();
        model_signing(&python, &[os("keygen"), keys.path().as_os_str()]);
        Some(Signer { python, keys })
    }

    /// Signs with model-signing and returns the signature's path (outside the model).
    fn sign(&self, model: &Path, extra: &[&str]) -> std::path::PathBuf {
        let sig = self.keys.path().join(format!("sig-{}.json", rand_suffix()));
        let key = self.keys.path().join("key.pem");
        let mut args: Vec<&OsStr> = vec![
            os("sign"),
            model.as_os_str(),
            sig.as_os_str(),
            key.as_os_str(),
        ];
        args.extend(extra.iter().map(|s| os(s)));
        model_signing(&self.python, &args);
        sig
    }

    fn subject(&self, sig: &Path) -> String {
        model_signing(&self.python, &[os("subject"), sig.as_os_str()])
            .stdout()
            .trim()
            .to_string()
    }

    fn payload(&self, sig: &Path) -> std::path::PathBuf {
        let out = sig.with_extension("payload.json");
        model_signing(
            &self.python,
            &[os("payload"), sig.as_os_str(), out.as_os_str()],
        );
        out
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// (model-signing helper flags, vouch flags) describing the same serialization.
const SERIALIZATIONS: &[(&[&str], &[&str])] = &[
    (&[], &[]),
    (&["--shard-size", "1000"], &["--shard-size", "1000"]),
    (
        &["--shard-size", "1000000000"],
        &["--shard-size", "1000000000"],
    ),
    (&["--algo", "blake2"], &["--algo", "blake2b"]),
    (&["--algo", "blake3"], &["--algo", "blake3"]),
    (
        &["--algo", "blake2", "--shard-size", "700"],
        &["--algo", "blake2b", "--shard-size", "700"],
    ),
    (&["--ignore", "README.md"], &["--ignore-paths", "README.md"]),
    (&["--ignore", "a/b"], &["--ignore-paths", "a/b"]),
    (&["--no-ignore-git-paths"], &["--no-ignore-git-paths"]),
];

#[test]
fn digest_equals_the_subject_model_signing_signs() {
    let Some(signer) = Signer::new("digest_equals_the_subject_model_signing_signs") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("quirky-model");
    quirky_model(&model);
    for (theirs, ours) in SERIALIZATIONS {
        let sig = signer.sign(&model, theirs);
        let expected = format!("sha256:{}\n", signer.subject(&sig));
        let ran = vouch_run(
            [os("digest"), model.as_os_str()]
                .into_iter()
                .chain(ours.iter().map(|s| os(s))),
        );
        let ran = ran.expect(0);
        assert_eq!(ran.stdout(), expected, "serialization {ours:?}");
    }
}

#[test]
fn digest_of_a_single_file_model_and_of_symlinks_equals_model_signing() {
    let Some(signer) =
        Signer::new("digest_of_a_single_file_model_and_of_symlinks_equals_model_signing")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("model.safetensors");
    std::fs::write(&weights, pseudo_random(3001, 3)).unwrap();
    for (theirs, ours) in [
        (&[][..], &[][..]),
        (&["--shard-size", "1000"][..], &["--shard-size", "1000"][..]),
    ] {
        let sig = signer.sign(&weights, theirs);
        let ran = vouch_run(
            [os("digest"), weights.as_os_str()]
                .into_iter()
                .chain(ours.iter().map(|s| os(s))),
        );
        assert_eq!(
            ran.expect(0).stdout(),
            format!("sha256:{}\n", signer.subject(&sig))
        );
    }

    let model = dir.path().join("linked");
    write_tree(
        &model,
        &[("real/w.bin", &pseudo_random(500, 4)), ("b.txt", b"b")],
    );
    std::os::unix::fs::symlink("real/w.bin", model.join("alias.bin")).unwrap();
    let sig = signer.sign(&model, &["--allow-symlinks"]);
    let ran = vouch_run([os("digest"), model.as_os_str(), os("--allow-symlinks")]);
    assert_eq!(
        ran.expect(0).stdout(),
        format!("sha256:{}\n", signer.subject(&sig))
    );
}

#[test]
fn verify_accepts_model_signing_statements_and_names_a_flipped_file() {
    let Some(signer) =
        Signer::new("verify_accepts_model_signing_statements_and_names_a_flipped_file")
    else {
        return;
    };
    for (theirs, flipped_name) in [
        (&[][..], "a/b/weights.bin"),
        (&["--shard-size", "1000"][..], "a/b/weights.bin:2000:2500"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model");
        quirky_model(&model);
        let payload = signer.payload(&signer.sign(&model, theirs));

        let ran = vouch_run([
            os("verify"),
            model.as_os_str(),
            os("--manifest"),
            payload.as_os_str(),
            os("--format"),
            os("json"),
        ]);
        let report = ran.expect(0).json();
        assert_eq!(report["status"], "verified");
        assert!(report["subjects"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["verdict"] == "ok"));

        flip_byte(&model.join("a/b/weights.bin"), 2100);
        let ran = vouch_run([
            os("verify"),
            model.as_os_str(),
            os("--manifest"),
            payload.as_os_str(),
            os("--format"),
            os("json"),
        ]);
        let report = ran.expect(1).json();
        assert_eq!(report["status"], "failed");
        let failed: Vec<_> = report["subjects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["verdict"] != "ok")
            .collect();
        assert_eq!(failed.len(), 1, "{report:#}");
        assert_eq!(failed[0]["name"], flipped_name);
        assert_eq!(failed[0]["verdict"], "changed");
        assert_ne!(failed[0]["expected"], failed[0]["actual"]);
    }
}
