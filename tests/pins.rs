//! Pins of a whole model: the OMS root digest binds contents only, the manifest digest binds
//! names and file boundaries too.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn digest_of(model: &Path, extra: &[&str]) -> String {
    run(vouch().arg("digest").arg(model).args(extra))
        .expect(0)
        .stdout()
        .trim()
        .to_string()
}

fn verify_pinned(model: &Path, flag: &str, pin: &str, extra: &[&str]) -> Ran {
    run(vouch()
        .arg("verify")
        .arg(model)
        .args([flag, pin, "--format", "json"])
        .args(extra))
}

/// A model whose trainer loads `model.pkl`; `unused.pkl` is never loaded.
fn write_loaded_and_unused_pickles(model: &Path) {
    write_tree(
        model,
        &[
            ("config.json", b"{}"),
            ("model.pkl", &pseudo_random(5000, 1)),
            ("unused.pkl", &pseudo_random(7000, 2)),
        ],
    );
}

/// The unused pickle takes the name the trainer loads; the digests keep their order, so the
/// root digest stays the same.
fn move_unused_pickle_to_the_loaded_name(model: &Path) {
    std::fs::rename(model.join("model.pkl"), model.join("d.pkl")).unwrap();
    std::fs::rename(model.join("unused.pkl"), model.join("model.pkl")).unwrap();
}

fn warnings(ran: &Ran) -> String {
    ran.json()["warnings"].to_string()
}

/// An untrusted pickle moved to the name a trainer loads: the root digest cannot tell, the
/// manifest digest can.
#[test]
fn a_renamed_file_passes_a_root_digest_with_a_warning_and_fails_a_manifest_digest() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write_loaded_and_unused_pickles(&model);
    let root = digest_of(&model, &[]);
    let pin = digest_of(&model, &["--manifest-digest"]);
    assert!(pin.starts_with("sha256:") && pin != root, "{pin} {root}");

    let ran = verify_pinned(&model, "--manifest-digest", &pin, &[]).expect(0);
    assert!(
        !warnings(&ran).contains("root digest binds"),
        "{}",
        ran.stdout()
    );

    move_unused_pickle_to_the_loaded_name(&model);

    let ran = verify_pinned(&model, "--digest", &root, &[]).expect(0);
    assert!(
        warnings(&ran).contains("not their names or boundaries"),
        "{}",
        ran.stdout()
    );
    let ran = verify_pinned(&model, "--manifest-digest", &pin, &[]).expect(1);
    let subject = &ran.json()["subjects"][0];
    assert_eq!(subject["verdict"], "changed", "{}", ran.stdout());
    assert_eq!(subject["expected"], pin.as_str());
    assert!(subject["message"]
        .as_str()
        .unwrap()
        .contains("manifest digest differs"));
}

/// A sharded file split at a shard boundary into two files keeps the root digest (the same
/// shard digests in the same order) but not the manifest digest.
#[test]
fn a_file_split_at_a_shard_boundary_fails_a_manifest_digest() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    let data = pseudo_random(8192, 3);
    write_tree(&model, &[("w.bin", &data)]);
    let shards = ["--shard-size", "4096"];
    let root = digest_of(&model, &shards);
    let pin = digest_of(&model, &["--manifest-digest", "--shard-size", "4096"]);

    write_tree(
        &model,
        &[("w.bin", &data[..4096]), ("x.bin", &data[4096..])],
    );
    assert_eq!(digest_of(&model, &shards), root, "the split keeps the root");
    verify_pinned(&model, "--digest", &root, &shards).expect(0);
    verify_pinned(&model, "--manifest-digest", &pin, &shards).expect(1);
    // The pin records the serialization: a files pin is not a shards pin.
    verify_pinned(&model, "--manifest-digest", &pin, &[]).expect(1);
}

/// The canonical form is what the README documents: Python's json.dumps over the manifest
/// vouch writes gives the same digest.
#[test]
fn the_manifest_digest_is_sha256_of_the_documented_canonical_form() {
    let Some(python) =
        peer_python("the_manifest_digest_is_sha256_of_the_documented_canonical_form")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write_tree(
        &model,
        &[
            ("a-b", b"1"),
            ("a/b", b"2"),
            ("tab\tand \"quote\" \u{e9}", b"3"),
            ("big", &pseudo_random(10_000, 4)),
        ],
    );
    for extra in [
        &[][..],
        &["--shard-size", "3000"][..],
        &["--algo", "blake3"][..],
    ] {
        let manifest = dir.path().join("m.json");
        write_manifest(&model, &manifest, extra);
        let mut args = vec!["--manifest-digest"];
        args.extend_from_slice(extra);
        let ours = digest_of(&model, &args);
        let script = r#"
import hashlib, json, sys
predicate = json.load(open(sys.argv[1]))["predicate"]
serialization = predicate["serialization"]
form = {
    "algorithm": serialization["hash_type"],
    "allow_symlinks": serialization["allow_symlinks"],
    "method": serialization["method"],
    "resources": [[r["name"], r["digest"]] for r in predicate["resources"]],
    "version": 1,
}
if serialization["method"] == "shards":
    form["shard_size"] = int(serialization["shard_size"])
text = json.dumps(form, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
print("sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest())
"#;
        let ran = run(Command::new(&python).arg("-c").arg(script).arg(&manifest)).expect(0);
        assert_eq!(ran.stdout().trim(), ours, "options {extra:?}");
    }
}

#[test]
fn a_manifest_digest_pin_is_a_sha256_digest_and_excludes_other_approvals() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write_tree(&model, &[("f", b"x")]);
    let ran = verify_pinned(&model, "--manifest-digest", "sha512:00", &[]).expect(2);
    assert!(ran.stderr.contains("--manifest-digest"), "{}", ran.stderr);
    let pin = digest_of(&model, &["--manifest-digest"]);
    let ran = verify_pinned(&model, "--manifest-digest", &pin, &["--digest", &pin]).expect(2);
    assert!(ran.stderr.contains("--digest"), "{}", ran.stderr);
}

/// `manifest_digest` in vouch.toml is the same pin; a root-digest target's report warns.
#[test]
fn drift_targets_take_a_manifest_digest_and_warn_on_a_root_digest() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write_loaded_and_unused_pickles(&model);
    let pin = digest_of(&model, &["--manifest-digest"]);
    let root = digest_of(&model, &[]);
    let config = dir.path().join("vouch.toml");
    std::fs::write(
        &config,
        format!(
            r#"history = "history.db"

[[target]]
name = "bound"
owner = "ml@example.com"
path = "model"
manifest_digest = "{pin}"

[[target]]
name = "contents-only"
owner = "ml@example.com"
path = "model"
digest = "{root}"
"#
        ),
    )
    .unwrap();
    let drift = || {
        run(vouch()
            .args(["drift", "run", "--format", "json", "-c"])
            .arg(&config))
    };
    let report = drift().expect(0).json();
    assert!(
        report.to_string().contains("not their names or boundaries"),
        "{report}"
    );

    move_unused_pickle_to_the_loaded_name(&model);
    let report = drift().expect(1).json();
    let text = report.to_string();
    assert!(text.contains("manifest digest differs"), "{report:#}");

    // An image target has no manifest digest: its digest already binds everything.
    std::fs::write(
        &config,
        format!(
            "[[target]]\nname = \"i\"\nowner = \"o\"\nimage = \"oci:layout:v1\"\nmanifest_digest = \"{pin}\"\n"
        ),
    )
    .unwrap();
    let ran = drift().expect(2);
    assert!(ran.stderr.contains("\"i\""), "{}", ran.stderr);
}
