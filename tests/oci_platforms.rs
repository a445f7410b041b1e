//! How `vouch oci verify` chooses the manifest of an image index for a platform: never one
//! manifest while a real puller could pull another for the same request. Indexes whose
//! entries containerd (Docker), containers/image (skopeo, Podman, CRI-O) and oras would
//! choose between differently (a variant beside no variant, `x86_64` beside `amd64`,
//! `Linux` beside `linux`, an empty OS, a fallback a puller takes) are refused for that
//! platform; skopeo's own choice is shown where it can be (`skopeo copy --override-*`).

mod common;
mod oci_support;

use std::path::Path;
use std::process::Command;

use common::*;
use oci_support::*;
use serde_json::{json, Value};

const GOOD: &[u8] = b"approved weights\n";
const EVIL: &[u8] = b"EVIL weights!!\n";

/// An uncompressed image layer holding `/models/model.bin` with `data`.
fn model_layer(data: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut directory = tar::Header::new_ustar();
    directory.set_entry_type(tar::EntryType::Directory);
    directory.set_path("models/").unwrap();
    directory.set_mode(0o755);
    directory.set_size(0);
    directory.set_cksum();
    builder.append(&directory, &[][..]).unwrap();
    let mut file = tar::Header::new_ustar();
    file.set_path("models/model.bin").unwrap();
    file.set_mode(0o644);
    file.set_size(data.len() as u64);
    file.set_cksum();
    builder.append(&file, data).unwrap();
    builder.into_inner().unwrap()
}

/// An OCI layout whose tag `v1` is an index of one image per entry of `entries` (the
/// model's bytes, the entry's platform or `null`), each with its own configuration (so a
/// copy is known by its configuration's digest). Returns the layout and, per entry, the
/// manifest's and the configuration's digests.
fn index_layout(dir: &Path, entries: &[(&[u8], Value)]) -> (Layout, Vec<(String, String)>) {
    let layout = Layout::empty(dir);
    let mut manifests = Vec::new();
    let mut digests = Vec::new();
    for (i, (data, platform)) in entries.iter().enumerate() {
        let tar = model_layer(data);
        let layer = layout.write_blob("application/vnd.oci.image.layer.v1.tar", &tar);
        let config = json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"entry": (i + 1).to_string()}},
            "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
        });
        let config = layout.write_blob(
            "application/vnd.oci.image.config.v1+json",
            config.to_string().as_bytes(),
        );
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config,
            "layers": [layer],
        });
        let mut entry = layout.write_blob(
            "application/vnd.oci.image.manifest.v1+json",
            manifest.to_string().as_bytes(),
        );
        digests.push((
            entry["digest"].as_str().unwrap().to_string(),
            config["digest"].as_str().unwrap().to_string(),
        ));
        if !platform.is_null() {
            entry["platform"] = platform.clone();
        }
        manifests.push(entry);
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    });
    let index = layout.write_blob(
        "application/vnd.oci.image.index.v1+json",
        index.to_string().as_bytes(),
    );
    layout.tag("v1", &index);
    (layout, digests)
}

/// An index case: its name, the platforms of its two entries, the platform asked for, and
/// skopeo's overrides for it (`None`: skopeo's choice is not shown).
type Case<'a> = (&'a str, Value, Value, &'a str, Option<Vec<&'a str>>);

fn platform(os: &str, architecture: &str, variant: Option<&str>) -> Value {
    let mut platform = json!({"os": os, "architecture": architecture});
    if let Some(variant) = variant {
        platform["variant"] = json!(variant);
    }
    platform
}

/// The approved manifest of a model whose `model.bin` holds [`GOOD`].
fn approval(dir: &Path) -> String {
    let model = dir.join("approved-model");
    write_tree(&model, &[("model.bin", GOOD)]);
    let approved = dir.join("approved.json");
    write_manifest(&model, &approved, &[]);
    approved.display().to_string()
}

/// `vouch oci verify REF --model-root /models --manifest APPROVED ARGS…`.
fn verify(reference: &str, approved: &str, args: &[&str]) -> Ran {
    let mut all = vec!["--model-root", "/models", "--manifest", approved];
    all.extend_from_slice(args);
    oci_verify(reference, &all)
}

/// Asserts that the report refuses the index for `wanted`, naming the candidate manifests
/// (and only them), with nothing read beyond the index.
fn assert_refused(ran: Ran, wanted: &str, candidates: &[&str], others: &[&str]) {
    let report = ran.expect(1).json();
    let failed = failures(&report);
    assert_eq!(failed.len(), 1, "{report}");
    assert!(
        failed[0].0.starts_with("index sha256:")
            && failed[0].0.ends_with(&format!(" for {wanted}")),
        "{failed:?}"
    );
    assert_eq!(failed[0].1, "rejected");
    let subject = subjects_named(&report, &failed[0].0)[0];
    let message = subject["message"].as_str().unwrap();
    for candidate in candidates {
        assert!(message.contains(candidate), "{candidate} in {message}");
    }
    for other in others {
        assert!(!message.contains(other), "{other} in {message}");
    }
    assert!(message.contains("REF@sha256:"), "{message}");
    assert!(
        subjects_named(&report, " manifest sha256:").is_empty(),
        "{report}"
    );
    assert!(subjects_named(&report, "model.bin").is_empty(), "{report}");
}

/// The entry (1-based) whose configuration `skopeo copy` with `overrides` copied out of
/// `layout`'s `v1`, or `None` without skopeo (reported as a skip).
fn skopeo_takes(
    test: &str,
    layout: &Layout,
    digests: &[(String, String)],
    overrides: &[&str],
) -> Option<usize> {
    require_tool(test, "skopeo")?;
    let out = tempfile::tempdir().unwrap();
    let copy = Layout::at(&out.path().join("copy"));
    peer(
        Command::new("skopeo")
            .args(["--insecure-policy", "copy", "--quiet"])
            .args(overrides)
            .args([&layout.reference("v1"), &copy.reference("v1")]),
    );
    let config = copy.manifest("v1")["config"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let entry = digests.iter().position(|(_, c)| *c == config);
    Some(entry.expect("skopeo copied one of the entries") + 1)
}

/// Case (a) of the red team: `linux/amd64/v3 -> GOOD` before `linux/amd64 -> EVIL`. vouch
/// took the first entry whose OS and architecture matched (as oras does); skopeo and
/// containerd take the entry without a variant. Refused for linux/amd64 (and on this
/// machine by default), verified for linux/amd64/v3, which every puller takes alike; a
/// digest names one manifest; every entry is verified with --all-platforms, with a warning.
#[test]
fn a_variant_entry_does_not_stand_in_for_the_entry_without_one() {
    let test = "a_variant_entry_does_not_stand_in_for_the_entry_without_one";
    let work = tempfile::tempdir().unwrap();
    let approved = approval(work.path());
    let (layout, digests) = index_layout(
        &work.path().join("layout"),
        &[
            (GOOD, platform("linux", "amd64", Some("v3"))),
            (EVIL, platform("linux", "amd64", None)),
        ],
    );
    let reference = layout.reference("v1");
    let (good, evil) = (&digests[0].0, &digests[1].0);

    assert_refused(
        verify(&reference, &approved, &["--platform", "linux/amd64"]),
        "linux/amd64",
        &[good, evil, "linux/amd64/v3", "oras takes entry 1"],
        &[],
    );
    if cfg!(target_arch = "x86_64") {
        assert_refused(
            verify(&reference, &approved, &[]),
            "linux/amd64",
            &[good, evil],
            &[],
        );
    }
    let amd64 = ["--override-os", "linux", "--override-arch", "amd64"];
    if let Some(entry) = skopeo_takes(test, &layout, &digests, &amd64) {
        assert_eq!(entry, 2, "skopeo copies the entry without a variant: EVIL");
    }

    let v3 = verify(&reference, &approved, &["--platform", "linux/amd64/v3"])
        .expect(0)
        .json();
    assert_eq!(
        subjects_named(&v3, &format!("linux/amd64/v3 manifest {good}")).len(),
        1
    );
    assert!(subjects_named(&v3, evil).is_empty());
    let v3_overrides = [&amd64[..], &["--override-variant", "v3"]].concat();
    if let Some(entry) = skopeo_takes(test, &layout, &digests, &v3_overrides) {
        assert_eq!(entry, 1);
    }

    // A digest names one manifest: no index to choose from.
    let dir = layout.dir.display();
    verify(&format!("oci:{dir}@{good}"), &approved, &[]).expect(0);
    let pinned = verify(&format!("oci:{dir}@{evil}"), &approved, &[])
        .expect(1)
        .json();
    assert_eq!(
        failures(&pinned),
        [("model.bin".to_string(), "changed".to_string())]
    );

    let all = verify(&reference, &approved, &["--all-platforms"])
        .expect(1)
        .json();
    assert_eq!(
        failures(&all),
        [("linux/amd64 model.bin".to_string(), "changed".to_string())]
    );
    assert_eq!(
        subjects_named(&all, "linux/amd64/v3 model.bin")[0]["verdict"],
        "ok"
    );
    let warnings = all["warnings"].as_array().unwrap();
    let ambiguous: Vec<&Value> = warnings
        .iter()
        .filter(|w| {
            w.as_str()
                .unwrap()
                .contains("could each be pulled for linux/amd64")
        })
        .collect();
    assert_eq!(ambiguous.len(), 1, "{warnings:?}");
    assert!(ambiguous[0]
        .as_str()
        .unwrap()
        .contains("every entry was verified"));
}

/// Case (b): entries that are one platform once normalised as containerd normalises them
/// (OS lower-cased, an empty OS meaning this machine's, `x86_64` for `amd64`, `aarch64` for
/// `arm64`, `armhf` for `arm/v7`, `arm64/v8` for `arm64`) or that differ only in
/// `os.version`: containerd stably sorts them as equals and takes the first, skopeo and oras
/// compare strings and take the canonical one. Each index is refused for that platform.
#[test]
fn entries_that_normalise_to_one_platform_are_ambiguous() {
    let test = "entries_that_normalise_to_one_platform_are_ambiguous";
    let work = tempfile::tempdir().unwrap();
    let approved = approval(work.path());
    let mut os_version = platform("linux", "amd64", None);
    os_version["os.version"] = json!("99");
    let amd64 = platform("linux", "amd64", None);
    let cases: Vec<Case> = vec![
        (
            "x86_64",
            platform("linux", "x86_64", None),
            amd64.clone(),
            "linux/amd64",
            Some(vec!["--override-os", "linux", "--override-arch", "amd64"]),
        ),
        (
            "Linux",
            platform("Linux", "amd64", None),
            amd64.clone(),
            "linux/amd64",
            Some(vec!["--override-os", "linux", "--override-arch", "amd64"]),
        ),
        (
            "empty-os",
            platform("", "amd64", None),
            amd64.clone(),
            "linux/amd64",
            None,
        ),
        ("os-version", os_version, amd64.clone(), "linux/amd64", None),
        (
            "aarch64",
            platform("linux", "aarch64", None),
            platform("linux", "arm64", Some("v8")),
            "linux/arm64/v8",
            Some(vec![
                "--override-os",
                "linux",
                "--override-arch",
                "arm64",
                "--override-variant",
                "v8",
            ]),
        ),
        (
            "armhf",
            platform("linux", "armhf", None),
            platform("linux", "arm", Some("v7")),
            "linux/arm/v7",
            Some(vec![
                "--override-os",
                "linux",
                "--override-arch",
                "arm",
                "--override-variant",
                "v7",
            ]),
        ),
        (
            "arm64-without-v8",
            platform("linux", "arm64", None),
            platform("linux", "arm64", Some("v8")),
            "linux/arm64/v8",
            None,
        ),
    ];
    for (name, first, second, wanted, overrides) in cases {
        let (layout, digests) = index_layout(
            &work.path().join(name),
            &[(EVIL, first.clone()), (GOOD, second.clone())],
        );
        let reference = layout.reference("v1");
        assert_refused(
            verify(&reference, &approved, &["--platform", wanted]),
            wanted,
            &[&digests[0].0, &digests[1].0],
            &[],
        );
        if let Some(overrides) = overrides {
            // skopeo compares strings: it copies the canonical entry, containerd the first.
            if let Some(entry) = skopeo_takes(test, &layout, &digests, &overrides) {
                assert_eq!(entry, 2, "{name}: skopeo takes the canonical entry");
            }
        }
    }
}

/// What a puller takes when no entry is the request itself: containerd runs 386 on amd64
/// and lower arm variants, containers/image an entry without a variant or a lower one,
/// both an entry without a platform. Such an entry is a candidate too: vouch verifies no
/// entry that one puller would pass over for another.
#[test]
fn entries_pullers_fall_back_to_are_candidates() {
    let test = "entries_pullers_fall_back_to_are_candidates";
    let work = tempfile::tempdir().unwrap();
    let approved = approval(work.path());
    let cases: Vec<Case> = vec![
        // containerd: linux/amd64 also runs 386; amd64/v3 is no match for it.
        (
            "386",
            platform("linux", "amd64", Some("v3")),
            platform("linux", "386", None),
            "linux/amd64",
            None,
        ),
        // An entry without a platform: containerd and skopeo take it when nothing matches.
        (
            "no-platform",
            platform("linux", "amd64", Some("v3")),
            Value::Null,
            "linux/amd64",
            Some(vec!["--override-os", "linux", "--override-arch", "amd64"]),
        ),
        // containerd normalises x86_64 to amd64; skopeo, comparing strings, falls back to
        // the entry without a variant.
        (
            "no-variant",
            platform("linux", "x86_64", Some("v3")),
            platform("linux", "amd64", None),
            "linux/amd64/v3",
            Some(vec![
                "--override-os",
                "linux",
                "--override-arch",
                "amd64",
                "--override-variant",
                "v3",
            ]),
        ),
        // containerd reads a bare arm as arm/v7; skopeo walks down to v6 first.
        (
            "lower-variant",
            platform("linux", "arm", None),
            platform("linux", "arm", Some("v6")),
            "linux/arm/v7",
            Some(vec![
                "--override-os",
                "linux",
                "--override-arch",
                "arm",
                "--override-variant",
                "v7",
            ]),
        ),
    ];
    for (name, first, second, wanted, overrides) in cases {
        let (layout, digests) = index_layout(
            &work.path().join(name),
            &[(GOOD, first.clone()), (EVIL, second.clone())],
        );
        let reference = layout.reference("v1");
        assert_refused(
            verify(&reference, &approved, &["--platform", wanted]),
            wanted,
            &[&digests[0].0, &digests[1].0],
            &[],
        );
        if let Some(overrides) = overrides {
            if let Some(entry) = skopeo_takes(test, &layout, &digests, &overrides) {
                assert_eq!(entry, 2, "{name}: skopeo falls back to the second entry");
            }
        }
    }
}

/// An ordinary multi-platform index (as buildx and the official images write them) still
/// gives one manifest for each platform it serves, the one every puller takes; only a
/// request that several entries serve alike (linux/arm beside arm/v6 and arm/v7) is
/// refused.
#[test]
fn an_ordinary_multi_platform_index_gives_one_manifest_per_platform() {
    let test = "an_ordinary_multi_platform_index_gives_one_manifest_per_platform";
    let work = tempfile::tempdir().unwrap();
    let approved = approval(work.path());
    let platforms = [
        platform("linux", "amd64", None),
        platform("linux", "arm", Some("v6")),
        platform("linux", "arm", Some("v7")),
        platform("linux", "arm64", Some("v8")),
        platform("linux", "386", None),
        platform("linux", "ppc64le", None),
        platform("unknown", "unknown", None),
    ];
    let entries: Vec<(&[u8], Value)> = platforms.iter().map(|p| (GOOD, p.clone())).collect();
    let (layout, digests) = index_layout(&work.path().join("layout"), &entries);
    let reference = layout.reference("v1");
    for (wanted, entry, overrides) in [
        ("linux/amd64", 0, vec!["--override-arch", "amd64"]),
        (
            "linux/arm/v6",
            1,
            vec!["--override-arch", "arm", "--override-variant", "v6"],
        ),
        (
            "linux/arm/v7",
            2,
            vec!["--override-arch", "arm", "--override-variant", "v7"],
        ),
        ("linux/arm64", 3, vec!["--override-arch", "arm64"]),
        (
            "linux/arm64/v8",
            3,
            vec!["--override-arch", "arm64", "--override-variant", "v8"],
        ),
        ("linux/386", 4, vec!["--override-arch", "386"]),
        ("linux/ppc64le", 5, vec!["--override-arch", "ppc64le"]),
    ] {
        let report = verify(&reference, &approved, &["--platform", wanted])
            .expect(0)
            .json();
        let manifests = subjects_named(&report, " manifest sha256:");
        assert_eq!(manifests.len(), 1, "{wanted}: {report}");
        assert!(
            manifests[0]["name"]
                .as_str()
                .unwrap()
                .ends_with(&digests[entry].0),
            "{wanted}: {report}"
        );
        let overrides = [&["--override-os", "linux"][..], &overrides].concat();
        if let Some(taken) = skopeo_takes(test, &layout, &digests, &overrides) {
            assert_eq!(taken, entry + 1, "{wanted}: skopeo agrees");
        }
    }
    assert_refused(
        verify(&reference, &approved, &["--platform", "linux/arm"]),
        "linux/arm",
        &[&digests[1].0, &digests[2].0],
        &[&digests[0].0, &digests[3].0],
    );
    let all = verify(&reference, &approved, &["--all-platforms"])
        .expect(0)
        .json();
    assert_eq!(
        subjects_named(&all, " manifest sha256:").len(),
        platforms.len()
    );
    let warnings: Vec<&str> = all["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .filter(|w| w.contains("could each be pulled"))
        .collect();
    assert!(warnings.is_empty(), "{warnings:?}");
}
