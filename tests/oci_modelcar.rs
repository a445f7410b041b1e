//! KServe ModelCar images as the real `olot` (PyPI) builds them: a base image made by
//! umoci, one layer per model file under /models appended by olot, carried to Debian's
//! docker-registry on loopback by skopeo. `vouch oci verify --model-root /models` applies
//! the layers (with the whiteouts umoci writes) and compares the files under /models with
//! the OMS manifest of the same files on disk. Hostile layers are written with Python's
//! tarfile.

mod common;
mod oci_support;

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use common::*;
use oci_support::*;
use serde_json::Value;

const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

fn modelcar_peers(test: &str) -> bool {
    registry_peers(test) && require_tool(test, "olot").is_some()
}

fn model_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("config.json", br#"{"hidden_size": 64}"#.to_vec()),
        ("model.safetensors", pseudo_random(300_000, 41)),
        ("tokenizer/vocab.txt", b"hello\nworld\n".to_vec()),
    ]
}

/// The model directory `files` make under `dir/name`.
fn model_dir(dir: &Path, name: &str, files: &[(&str, Vec<u8>)]) -> std::path::PathBuf {
    let model = dir.join(name);
    let borrowed: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    write_tree(&model, &borrowed);
    model
}

/// A ModelCar image tagged `latest` in a new layout `dir`: umoci makes a base image of one
/// layer (/etc/hostname; olot needs a base with a layer), then olot appends each file of
/// `model` under /models, keeping its path relative to `model`.
fn modelcar(dir: &Path, model: &Path) -> Layout {
    peer(Command::new("umoci").arg("init").arg("--layout").arg(dir));
    let image = format!("{}:latest", dir.display());
    peer(Command::new("umoci").args(["new", "--image", &image]));
    let base = tempfile::tempdir().unwrap();
    write_tree(base.path(), &[("etc/hostname", b"modelcar\n".as_slice())]);
    peer(
        Command::new("umoci")
            .args(["insert", "--rootless", "--image", &image])
            .arg(base.path().join("etc"))
            .arg("/etc"),
    );
    let mut files: Vec<std::path::PathBuf> = files_under(model);
    files.sort();
    peer(
        Command::new("olot")
            .arg(dir)
            .arg("--root-dir")
            .arg(model)
            .args(&files),
    );
    Layout::at(dir)
}

/// The OMS manifest of the model's files on disk, and the olot ModelCar of them in a layout
/// under `work` with its manifest (tag `latest`).
fn approved_modelcar(work: &Path) -> (std::path::PathBuf, Layout, Value) {
    let model = model_dir(work, "model", &model_files());
    let approved = work.join("approved.json");
    write_manifest(&model, &approved, &[]);
    let layout = modelcar(&work.join("car"), &model);
    let clean = layout.manifest("latest");
    (approved, layout, clean)
}

fn verify(reference: &str, approved: &Path) -> Ran {
    oci_verify(
        reference,
        &[
            "--model-root",
            "/models",
            "--manifest",
            approved.to_str().unwrap(),
        ],
    )
}

/// The subjects of a report that are files of the model, by name with their verdicts.
fn verdicts(report: &Value) -> Vec<(String, String)> {
    let files = [
        "config.json",
        "model.safetensors",
        "tokenizer/vocab.txt",
        "extra.txt",
    ];
    let mut found: Vec<(String, String)> = report["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| files.contains(&s["name"].as_str().unwrap()))
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    found.sort();
    found
}

fn expected(changed: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> =
        ["config.json", "model.safetensors", "tokenizer/vocab.txt"]
            .iter()
            .map(|n| (n.to_string(), "ok".to_string()))
            .collect();
    for (name, verdict) in changed {
        all.retain(|(n, _)| n != name);
        all.push((name.to_string(), verdict.to_string()));
    }
    all.sort();
    all
}

#[test]
fn an_olot_modelcar_verifies_from_the_layout_and_the_registry() {
    let test = "an_olot_modelcar_verifies_from_the_layout_and_the_registry";
    if !modelcar_peers(test) {
        return;
    }
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let model = model_dir(work.path(), "model", &model_files());
    let approved = work.path().join("approved.json");
    write_manifest(&model, &approved, &[]);
    let layout = modelcar(&work.path().join("car"), &model);

    // What olot wrote is what this test is about: plain tar layers placing files under
    // /models, on top of umoci's gzip base layer.
    let manifest = layout.manifest("latest");
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 4, "{manifest:#}");
    assert!(
        layers[1..].iter().all(|l| l["mediaType"] == LAYER),
        "{manifest:#}"
    );
    let placed: Vec<&str> = layers[1..]
        .iter()
        .map(|l| {
            l["annotations"]["olot.layer.content.inlayerpath"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert!(
        placed.contains(&"/models/tokenizer/vocab.txt"),
        "{placed:?}"
    );

    let reference = registry.reference("models/car:v1");
    skopeo_copy(&layout.reference("latest"), &reference, false);
    for target in [layout.reference("latest"), reference] {
        let ran = verify(&target, &approved).expect(0);
        let report = ran.json();
        assert_eq!(verdicts(&report), expected(&[]), "{report:#}");
        let weights = report["subjects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "model.safetensors")
            .unwrap();
        assert!(
            weights["message"]
                .as_str()
                .unwrap()
                .starts_with("/models in the image's filesystem, from layer "),
            "{weights:#}"
        );
        let warnings = report["warnings"].to_string();
        assert!(
            warnings.contains("lie outside it and were not compared"),
            "{report:#}"
        );
    }

    // Without --model-root the layers are taken as one file each, named by their titles
    // (olot gives the base names): not the approved files.
    let ran = oci_verify(
        &layout.reference("latest"),
        &["--manifest", approved.to_str().unwrap()],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.stdout());
    // --model-root without an approval, and a root that leaves the filesystem, are input
    // errors.
    let ran = oci_verify(&layout.reference("latest"), &["--model-root", "/models"]);
    assert_eq!(ran.code, Some(2), "{}", ran.stderr);
    assert!(ran.stderr.contains("--model-root"), "{}", ran.stderr);
    let ran = oci_verify(
        &layout.reference("latest"),
        &[
            "--model-root",
            "/models/../etc",
            "--manifest",
            approved.to_str().unwrap(),
        ],
    );
    assert_eq!(ran.code, Some(2), "{}", ran.stderr);
}

#[test]
fn a_changed_file_a_removed_or_extra_layer_and_a_whiteout_are_named() {
    let test = "a_changed_file_a_removed_or_extra_layer_and_a_whiteout_are_named";
    if !modelcar_peers(test) {
        return;
    }
    let registry = Registry::start();
    let work = tempfile::tempdir().unwrap();
    let files = model_files();
    let model = model_dir(work.path(), "model", &files);
    let approved = work.path().join("approved.json");
    write_manifest(&model, &approved, &[]);

    // A changed file: the image is built from another vocabulary.
    let mut changed = files.clone();
    changed[2].1 = b"hello\nmoon\n".to_vec();
    let changed = modelcar(
        &work.path().join("changed"),
        &model_dir(work.path(), "changed-model", &changed),
    );
    let ran = verify(&changed.reference("latest"), &approved);
    assert_eq!(ran.code, Some(1), "{}", ran.stdout());
    assert_eq!(
        verdicts(&ran.json()),
        expected(&[("tokenizer/vocab.txt", "changed")])
    );

    // An extra layer: olot appends an unapproved file.
    let mut extra = files.clone();
    extra.push(("extra.txt", b"unapproved\n".to_vec()));
    let extra = modelcar(
        &work.path().join("extra"),
        &model_dir(work.path(), "extra-model", &extra),
    );
    let ran = verify(&extra.reference("latest"), &approved);
    assert_eq!(ran.code, Some(1), "{}", ran.stdout());
    assert_eq!(verdicts(&ran.json()), expected(&[("extra.txt", "extra")]));

    // A removed layer: the manifest without the layer olot placed the weights with.
    let layout = modelcar(&work.path().join("car"), &model);
    let mut manifest = layout.manifest("latest");
    manifest["layers"].as_array_mut().unwrap().retain(|l| {
        l["annotations"]["olot.layer.content.inlayerpath"] != "/models/model.safetensors"
    });
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 3);
    layout.put_manifest("removed", &manifest);
    let ran = verify(&layout.reference("removed"), &approved);
    assert_eq!(ran.code, Some(1), "{}", ran.stdout());
    assert_eq!(
        verdicts(&ran.json()),
        expected(&[("model.safetensors", "missing")])
    );

    // A whiteout, made the real way: umoci unpacks the image, the file is removed, and
    // umoci repacks the change as a layer holding models/.wh.config.json.
    let bundle = work.path().join("bundle");
    let image = |tag: &str| format!("{}:{tag}", layout.dir.display());
    peer(
        Command::new("umoci")
            .args(["unpack", "--rootless", "--image", &image("latest")])
            .arg(&bundle),
    );
    std::fs::remove_file(bundle.join("rootfs/models/config.json")).unwrap();
    peer(
        Command::new("umoci")
            .args(["repack", "--image", &image("whiteout")])
            .arg(&bundle),
    );
    assert_eq!(
        layout.manifest("whiteout")["layers"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    let reference = registry.reference("models/car:whiteout");
    skopeo_copy(&layout.reference("whiteout"), &reference, false);
    for target in [layout.reference("whiteout"), reference] {
        let ran = verify(&target, &approved);
        assert_eq!(ran.code, Some(1), "{}", ran.stdout());
        let report = ran.json();
        assert_eq!(
            verdicts(&report),
            expected(&[("config.json", "missing")]),
            "{report:#}"
        );
    }
}

#[test]
fn hostile_layers_are_refused_naming_the_entry_and_a_whiteout_of_the_root_deletes() {
    let test = "hostile_layers_are_refused_naming_the_entry_and_a_whiteout_of_the_root_deletes";
    if !modelcar_peers(test) {
        return;
    }
    let Some(python) = peer_python(test) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let (approved, layout, clean) = approved_modelcar(work.path());

    let cases = [
        (
            r#"[("../x", "file", "escaped")]"#,
            "../x",
            "no safe relative name",
        ),
        (
            r#"[("/models/x", "file", "absolute")]"#,
            "/models/x",
            "no safe relative name",
        ),
        (
            r#"[("models/link", "symlink", "/etc/passwd")]"#,
            "models/link",
            "a symbolic link to '/etc/passwd'",
        ),
        (
            r#"[("models/hard", "hardlink", "etc/hostname")]"#,
            "models/hard",
            "a hard link to 'etc/hostname'",
        ),
        (
            r#"[("models", "symlink", "/tmp")]"#,
            "models",
            "replaces the model root /models with a symbolic link",
        ),
        (
            r#"[("models/config.json", "file", "1"), ("./models/config.json", "file", "2")]"#,
            "./models/config.json",
            "more than once",
        ),
    ];
    for (i, (entries, entry, why)) in cases.iter().enumerate() {
        let bytes = python_tar(
            &python,
            &work.path().join(format!("{i}.tar")),
            entries,
            "tar",
        );
        let mut manifest = clean.clone();
        let layer = layout.write_blob(LAYER, &bytes);
        manifest["layers"].as_array_mut().unwrap().push(layer);
        let tag = format!("hostile{i}");
        layout.put_manifest(&tag, &manifest);
        let ran = verify(&layout.reference(&tag), &approved);
        assert_eq!(ran.code, Some(1), "{entries}: {}", ran.stdout());
        let report = ran.json();
        let named: Vec<&Value> = report["subjects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["name"] == *entry)
            .collect();
        assert_eq!(named.len(), 1, "{entries}: {report:#}");
        assert_eq!(named[0]["verdict"], "rejected", "{report:#}");
        let message = named[0]["message"].as_str().unwrap();
        assert!(
            message.contains("an entry of layer 5 ") && message.contains(why),
            "{entries}: {message}"
        );
    }

    // A whiteout of the model root itself deletes every file below it.
    let bytes = python_tar(
        &python,
        &work.path().join("root.tar"),
        r#"[(".wh.models", "file", "")]"#,
        "tar",
    );
    let mut manifest = clean.clone();
    manifest["layers"]
        .as_array_mut()
        .unwrap()
        .push(layout.write_blob(LAYER, &bytes));
    layout.put_manifest("gone", &manifest);
    let ran = verify(&layout.reference("gone"), &approved);
    assert_eq!(ran.code, Some(1), "{}", ran.stdout());
    assert_eq!(
        verdicts(&ran.json()),
        expected(&[
            ("config.json", "missing"),
            ("model.safetensors", "missing"),
            ("tokenizer/vocab.txt", "missing")
        ])
    );
}

#[test]
fn a_modelcar_is_approved_by_model_signings_signature_and_its_manifest_is_the_files_on_disk() {
    let test =
        "a_modelcar_is_approved_by_model_signings_signature_and_its_manifest_is_the_files_on_disk";
    if !modelcar_peers(test) {
        return;
    }
    let Some(python) = peer_python(test) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    // The model is named as the layout's directory, as `vouch manifest REF` names it.
    let model = model_dir(&work.path().join("source"), "car", &model_files());
    let layout = modelcar(&work.path().join("car"), &model);
    let reference = layout.reference("latest");

    let keys = tempfile::tempdir().unwrap();
    model_signing(&python, &[OsStr::new("keygen"), keys.path().as_os_str()]);
    let signature = keys.path().join("model.sig");
    model_signing(
        &python,
        &[
            OsStr::new("sign"),
            model.as_os_str(),
            signature.as_os_str(),
            keys.path().join("key.pem").as_os_str(),
        ],
    );
    let key = keys.path().join("pub.pem");
    let ran = oci_verify(
        &reference,
        &[
            "--model-root",
            "/models",
            "--signature",
            signature.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    )
    .expect(0);
    assert_eq!(verdicts(&ran.json()), expected(&[]));

    // `vouch manifest REF --model-root` states the files as `vouch manifest` does on disk,
    // and `vouch digest` gives the digest model-signing signed.
    let from_files = vouch_run([OsStr::new("manifest"), model.as_os_str()]).expect(0);
    let from_image = vouch_run(["manifest", &reference, "--model-root", "/models"]).expect(0);
    assert_eq!(from_image.stdout(), from_files.stdout());
    let signed = model_signing(&python, &[OsStr::new("subject"), signature.as_os_str()]);
    let digest = vouch_run(["digest", &reference, "--model-root", "/models"]).expect(0);
    assert_eq!(
        digest.stdout(),
        format!("sha256:{}\n", signed.stdout().trim())
    );

    // `vouch sbom REF --model-root` describes the same files as the image's model, in a
    // document the CycloneDX library validates.
    let cdx = work.path().join("car.cdx.json");
    vouch_run([
        OsStr::new("sbom"),
        OsStr::new(&reference),
        OsStr::new("--model-root"),
        OsStr::new("/models"),
        OsStr::new("-o"),
        cdx.as_os_str(),
    ])
    .expect(0);
    validate_cyclonedx(&python, &cdx);
    let bom: Value = serde_json::from_slice(&std::fs::read(&cdx).unwrap()).unwrap();
    let described = bom["metadata"]["component"]["components"]
        .as_array()
        .unwrap()
        .last()
        .unwrap();
    assert_eq!(described["type"], "machine-learning-model", "{bom:#}");
    let root = lookup(
        &described["properties"],
        "name",
        "vouch:oms:root-digest",
        "value",
    );
    assert_eq!(root, Some(digest.stdout().trim().to_string()));
    let described: Vec<(String, Option<String>)> = described["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                lookup(&f["hashes"], "alg", "SHA-256", "content"),
            )
        })
        .collect();
    let on_disk: Vec<(String, Option<String>)> = model_files()
        .iter()
        .map(|(name, bytes)| (name.to_string(), Some(sha256_hex(bytes))))
        .collect();
    assert_eq!(described, on_disk);
}

/// One ustar header block for `name` of tar type `kind` claiming `size` bytes, with its
/// checksum; `magic` replaces the magic and version (bytes 257 to 265).
fn tar_header(name: &str, kind: u8, size: usize, magic: &[u8; 8]) -> Vec<u8> {
    let mut block = vec![0u8; 512];
    block[..name.len()].copy_from_slice(name.as_bytes());
    block[100..108].copy_from_slice(b"0000644\0");
    block[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    block[136..148].copy_from_slice(b"00000000000\0");
    block[156] = kind;
    block[257..265].copy_from_slice(magic);
    block[148..156].fill(b' ');
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    block
}

const USTAR: &[u8; 8] = b"ustar\x0000";

/// A symbolic link `name -> target`.
fn tar_link(name: &str, target: &str) -> Vec<u8> {
    let mut block = tar_header(name, b'2', 0, USTAR);
    block[157..157 + target.len()].copy_from_slice(target.as_bytes());
    block[148..156].fill(b' ');
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    block
}

/// A header and its data, padded to whole blocks.
fn tar_entry(name: &str, kind: u8, data: &[u8], magic: &[u8; 8]) -> Vec<u8> {
    let mut bytes = tar_header(name, kind, data.len(), magic);
    bytes.extend_from_slice(data);
    bytes.resize(bytes.len().div_ceil(512) * 512, 0);
    bytes
}

/// A PAX header (`x`) of `records`, in order, given twice or not.
fn pax_header(records: &[(&str, &str)], magic: &[u8; 8]) -> Vec<u8> {
    let mut data = Vec::new();
    for (key, value) in records {
        let body = format!(" {key}={value}\n");
        let mut length = body.len() + 1;
        while format!("{length}{body}").len() != length {
            length += 1;
        }
        data.extend(format!("{length}{body}").into_bytes());
    }
    tar_entry("PaxHeaders/x", b'x', &data, magic)
}

/// `image` with `layer` (an uncompressed tar) appended, its diff_id in the configuration,
/// tagged `tag`.
fn with_layer(layout: &Layout, image: &Value, layer: &[u8], tag: &str) {
    let mut manifest = image.clone();
    let mut config = layout.read_json(manifest["config"]["digest"].as_str().unwrap());
    let diff_id = format!("sha256:{}", sha256_hex(layer));
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .unwrap()
        .push(diff_id.into());
    manifest["config"] = layout.write_blob(
        manifest["config"]["mediaType"].as_str().unwrap(),
        config.to_string().as_bytes(),
    );
    manifest["layers"]
        .as_array_mut()
        .unwrap()
        .push(layout.write_blob(LAYER, layer));
    layout.put_manifest(tag, &manifest);
}

#[test]
fn layers_that_tar_readers_read_differently_are_refused_whole() {
    let test = "layers_that_tar_readers_read_differently_are_refused_whole";
    if !modelcar_peers(test) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (approved, layout, clean) = approved_modelcar(work.path());
    let evil = b"EVIL config";
    let end = [0u8; 1024];
    let gnu: &[u8; 8] = b"ustar  \0";
    let hidden = tar_entry("models/config.json", b'0', evil, USTAR);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "pax-path-twice",
            [
                pax_header(
                    &[("path", "etc/decoy"), ("path", "models/config.json")],
                    USTAR,
                ),
                tar_entry("etc/decoy", b'0', evil, USTAR),
            ]
            .concat(),
            "gives 'path' twice",
        ),
        (
            "gnu-sparse-name",
            [
                pax_header(
                    &[
                        ("GNU.sparse.major", "1"),
                        ("GNU.sparse.minor", "0"),
                        ("GNU.sparse.name", "models/config.json"),
                    ],
                    USTAR,
                ),
                tar_entry("etc/GNUSparseFile.0/config.json", b'0', evil, USTAR),
            ]
            .concat(),
            "GNU sparse",
        ),
        (
            "v7-pax-header",
            [
                pax_header(&[("path", "models/config.json")], &[0; 8]),
                tar_entry("etc/decoy", b'0', evil, USTAR),
            ]
            .concat(),
            "neither POSIX ustar",
        ),
        (
            "directory-with-data",
            tar_entry("etc/cover/", b'5', &hidden, USTAR),
            "claims data",
        ),
        (
            "gnu-name-prefix",
            {
                let mut entry = tar_entry("config.json", b'0', evil, gnu);
                entry[345..351].copy_from_slice(b"models");
                let sum: u32 = entry[..512]
                    .iter()
                    .enumerate()
                    .map(|(i, &b)| {
                        if (148..156).contains(&i) {
                            32
                        } else {
                            u32::from(b)
                        }
                    })
                    .sum();
                entry[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
                entry
            },
            "name prefix",
        ),
    ];
    for (tag, mut layer, why) in cases {
        layer.extend_from_slice(&end);
        with_layer(&layout, &clean, &layer, tag);
        let ran = verify(&layout.reference(tag), &approved);
        assert_eq!(ran.code, Some(1), "{tag}: {}", ran.stdout());
        let report = ran.json();
        let rejected = with_verdict(&report, "rejected");
        assert_eq!(rejected.len(), 1, "{tag}: {report:#}");
        assert!(
            rejected[0]["name"]
                .as_str()
                .unwrap()
                .starts_with("layer 5 "),
            "{tag}: {report:#}"
        );
        let message = rejected[0]["message"].as_str().unwrap();
        assert!(
            message.contains("cannot read the layer") && message.contains(why),
            "{tag}: {message}"
        );
    }
    // What the refusal protects: umoci (Go's archive/tar) takes the last PAX path and reads
    // the entry a directory's "data" hides, so it unpacks the other file.
    for tag in ["pax-path-twice", "directory-with-data"] {
        let bundle = work.path().join(format!("bundle-{tag}"));
        peer(
            Command::new("umoci")
                .args(["unpack", "--rootless", "--image"])
                .arg(format!("{}:{tag}", work.path().join("car").display()))
                .arg(&bundle),
        );
        assert_eq!(
            std::fs::read(bundle.join("rootfs/models/config.json")).unwrap(),
            evil,
            "{tag}"
        );
    }

    // A whiteout of a file the same layer wrote: containerd removes it, umoci keeps it.
    let mut layer = tar_entry("models/extra.txt", b'0', b"x", USTAR);
    layer.extend(tar_entry("models/.wh.extra.txt", b'0', b"", USTAR));
    layer.extend_from_slice(&end);
    with_layer(&layout, &clean, &layer, "same-layer-whiteout");
    let ran = verify(&layout.reference("same-layer-whiteout"), &approved);
    assert_eq!(ran.code, Some(1), "{}", ran.stdout());
    let report = ran.json();
    let named = subjects_named(&report, "models/.wh.extra.txt");
    assert_eq!(named.len(), 1, "{report:#}");
    assert_eq!(named[0]["verdict"], "rejected");
    assert!(named[0]["message"]
        .as_str()
        .unwrap()
        .contains("whites out what this same layer wrote before it"));
}

/// A link outside the model root that leads into it: what a later layer writes through the
/// link lands in the model, as umoci (and containerd) unpack it, so it is refused.
#[test]
fn an_entry_written_through_a_link_into_the_model_root_is_refused() {
    let test = "an_entry_written_through_a_link_into_the_model_root_is_refused";
    if !modelcar_peers(test) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (approved, layout, clean) = approved_modelcar(work.path());
    let end = [0u8; 1024];
    for (tag, target) in [
        ("relative", "models"),
        ("absolute", "/models"),
        ("up", "../models"),
    ] {
        let link = [tar_link("data", target), end.to_vec()].concat();
        with_layer(&layout, &clean, &link, &format!("{tag}-link"));
        let linked = layout.manifest(&format!("{tag}-link"));
        let write = [
            tar_entry("data/config.json", b'0', b"EVIL config", USTAR),
            end.to_vec(),
        ]
        .concat();
        with_layer(&layout, &linked, &write, tag);
        let ran = verify(&layout.reference(tag), &approved);
        assert_eq!(ran.code, Some(1), "{tag}: {}", ran.stdout());
        let report = ran.json();
        let named = subjects_named(&report, "/data");
        assert_eq!(named.len(), 1, "{tag}: {report:#}");
        assert_eq!(named[0]["verdict"], "rejected");
        assert!(
            named[0]["message"]
                .as_str()
                .unwrap()
                .contains("the link /data ->"),
            "{tag}: {report:#}"
        );
    }
    let bundle = work.path().join("bundle");
    peer(
        Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:relative", work.path().join("car").display()))
            .arg(&bundle),
    );
    assert_eq!(
        std::fs::read(bundle.join("rootfs/models/config.json")).unwrap(),
        b"EVIL config"
    );
    // The link alone, with nothing written through it, changes nothing under the root.
    let ran = verify(&layout.reference("relative-link"), &approved);
    assert_eq!(ran.code, Some(0), "{}", ran.stdout());
}
