//! oras-style artifacts, one titled layer per file, pushed by the real oras Python client
//! (PyPI `oras`) to Debian's docker-registry on loopback, verified against the OMS manifest
//! of the same files on disk: clean, then a changed, a removed and an extra file, each
//! named.

mod common;
mod oci_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use oci_support::*;

/// `oras.client.OrasClient().push` of the files `names` (relative to `dir`, each the
/// title of its layer) to `reference`.
fn oras_push(python: &Path, dir: &Path, reference: &str, names: &[&str]) {
    let target = reference.strip_prefix("docker://").unwrap();
    let script = "import sys, oras.client\n\
        client = oras.client.OrasClient(hostname=sys.argv[1].split('/')[0], insecure=True)\n\
        client.push(target=sys.argv[1], files=sys.argv[2:])\n";
    peer(
        Command::new(python)
            .current_dir(dir)
            .args(["-c", script, target])
            .args(names),
    );
}

fn oras_peers(test: &str) -> Option<PathBuf> {
    if !registry_peers(test) {
        return None;
    }
    let python = peer_python(test)?;
    // The module must be importable: in CI a missing peer fails.
    peer(Command::new(&python).args(["-c", "import oras.client"]));
    Some(python)
}

#[test]
fn an_oras_artifact_verifies_and_each_drift_names_its_file() {
    let test = "an_oras_artifact_verifies_and_each_drift_names_its_file";
    let Some(python) = oras_peers(test) else {
        return;
    };
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let weights = pseudo_random(200_000, 41);
    let files: Vec<(&str, &[u8])> = vec![
        ("config.json", br#"{"hidden_size": 64}"#),
        ("model.safetensors", &weights),
        ("vocab.txt", b"hello\nworld\n"),
    ];
    let model = work.path().join("model");
    write_tree(&model, &files);
    let approved = work.path().join("approved.json");
    write_manifest(&model, &approved, &[]);
    let approved = approved.to_str().unwrap();
    let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();

    let clean = registry.reference("models/tiny:v1");
    oras_push(&python, &model, &clean, &names);
    // What oras wrote is what this test is about: one layer per file, titled by its name.
    let ran = peer(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", &clean]));
    let manifest: serde_json::Value = serde_json::from_str(&ran.stdout()).unwrap();
    let titles: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["annotations"]["org.opencontainers.image.title"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(titles, names, "{manifest:#}");
    let report = oci_verify(&clean, &["--manifest", approved])
        .expect(0)
        .json();
    for (name, bytes) in &files {
        let subject = subjects_named(&report, name)
            .into_iter()
            .find(|s| s["name"] == *name)
            .unwrap_or_else(|| panic!("no subject {name}: {report:#}"));
        assert_eq!(subject["verdict"], "ok", "{name}: {report:#}");
        assert_eq!(subject["actual"], format!("sha256:{}", sha256_hex(bytes)));
    }

    // One bit of the weights flipped.
    let drifted = work.path().join("drifted");
    let mut changed = weights.clone();
    changed[100_000] ^= 1;
    let mut drifted_files = files.clone();
    drifted_files[1].1 = &changed;
    write_tree(&drifted, &drifted_files);
    let reference = registry.reference("models/tiny:changed");
    oras_push(&python, &drifted, &reference, &names);
    let report = oci_verify(&reference, &["--manifest", approved])
        .expect(1)
        .json();
    assert_eq!(
        failures(&report),
        [("model.safetensors".into(), "changed".into())],
        "{report:#}"
    );

    // A file left out.
    let reference = registry.reference("models/tiny:removed");
    oras_push(
        &python,
        &model,
        &reference,
        &["config.json", "model.safetensors"],
    );
    let report = oci_verify(&reference, &["--manifest", approved])
        .expect(1)
        .json();
    assert_eq!(
        failures(&report),
        [("vocab.txt".into(), "missing".into())],
        "{report:#}"
    );

    // A file nobody approved, beside the approved ones.
    let extra = work.path().join("extra");
    write_tree(&extra, &files);
    std::fs::write(extra.join("notes.txt"), b"not approved").unwrap();
    let reference = registry.reference("models/tiny:extra");
    let mut with_extra = names.clone();
    with_extra.push("notes.txt");
    oras_push(&python, &extra, &reference, &with_extra);
    let report = oci_verify(&reference, &["--manifest", approved])
        .expect(1)
        .json();
    assert_eq!(
        failures(&report),
        [("notes.txt".into(), "extra".into())],
        "{report:#}"
    );
}

/// oras pushes a directory as one tar+gzip layer titled by the directory's name (oras-go also
/// marks it `io.deis.oras.content.unpack`); `oras pull` writes the archive's files, not one
/// file. vouch refuses such a layer rather than compare it as a file of that name.
#[test]
fn a_directory_oras_unpacks_is_no_file_of_its_title() {
    let test = "a_directory_oras_unpacks_is_no_file_of_its_title";
    let Some(python) = oras_peers(test) else {
        return;
    };
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("model");
    write_tree(
        &model,
        &[
            ("config.json", br#"{"hidden_size": 64}"#.as_slice()),
            ("extras/run.py", b"import os".as_slice()),
        ],
    );
    let reference = registry.reference("models/packed:v1");
    oras_push(&python, &model, &reference, &["config.json", "extras"]);
    let ran =
        peer(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", &reference]));
    let manifest: serde_json::Value = serde_json::from_str(&ran.stdout()).unwrap();
    let packed = &manifest["layers"][1];
    assert_eq!(
        packed["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip",
        "{manifest:#}"
    );
    // What oras pull makes of it: the directory's files.
    let pulled = work.path().join("pulled");
    let script = "import sys, oras.client\n\
        client = oras.client.OrasClient(hostname=sys.argv[1].split('/')[0], insecure=True)\n\
        client.pull(target=sys.argv[1], outdir=sys.argv[2])\n";
    peer(
        Command::new(&python)
            .args(["-c", script, reference.strip_prefix("docker://").unwrap()])
            .arg(&pulled),
    );
    assert_eq!(
        std::fs::read(pulled.join("extras/run.py")).unwrap(),
        b"import os"
    );
    let approved = work.path().join("approved.json");
    write_manifest(&model, &approved, &[]);
    let report = oci_verify(&reference, &["--manifest", approved.to_str().unwrap()])
        .expect(1)
        .json();
    let named = subjects_named(&report, "extras");
    let rejected: Vec<_> = named
        .iter()
        .filter(|s| s["verdict"] == "rejected")
        .collect();
    assert_eq!(rejected.len(), 1, "{report:#}");
    assert!(
        rejected[0]["message"]
            .as_str()
            .unwrap()
            .contains("a directory oras unpacks"),
        "{report:#}"
    );
}
