//! The README's run command works on a fresh clone with the data the project ships.

mod common;

use common::*;

#[test]
fn the_shipped_example_verifies_and_its_manifest_is_current() {
    let root = project_root();
    let model = root.join("testdata/tiny-model");
    let manifest = root.join("testdata/tiny-model.oms.json");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(readme.contains("verify testdata/tiny-model --manifest testdata/tiny-model.oms.json"));
    vouch_run([
        "verify".as_ref(),
        model.as_os_str(),
        "--manifest".as_ref(),
        manifest.as_os_str(),
    ])
    .expect(0);
    let list = root.join("testdata/tiny-model.sha256sums");
    vouch_run([
        "verify".as_ref(),
        model.as_os_str(),
        "--check".as_ref(),
        list.as_os_str(),
    ])
    .expect(0);

    // The shipped manifest is what vouch writes today for the shipped model.
    let fresh = vouch_run(["manifest".as_ref(), model.as_os_str()]).expect(0);
    assert_eq!(fresh.stdout(), std::fs::read_to_string(&manifest).unwrap());
}

/// The install commands name the package Cargo.toml publishes (`vouch-cli`; crates.io's
/// `vouch` is another project), which installs the binary `vouch`, and every `cargo install`
/// that the README, the docs and the CI files show uses the lock file.
#[test]
fn the_install_commands_name_the_published_package_and_are_locked() {
    let root = project_root();
    let manifest: toml::Table = std::fs::read_to_string(root.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let package = manifest["package"]["name"].as_str().unwrap();
    assert_ne!(package, "vouch", "crates.io's vouch is another crate");
    assert_eq!(manifest["lib"]["name"].as_str(), Some("vouch"));
    let binaries = manifest["bin"].as_array().unwrap();
    assert_eq!(binaries.len(), 1);
    assert_eq!(binaries[0]["name"].as_str(), Some("vouch"));

    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(readme.contains(&format!("cargo install --locked {package} ")));
    assert!(readme.contains("cargo install --locked --path ."));
    let mut files = vec![
        root.join("README.md"),
        root.join("action.yml"),
        root.join("ci/vouch.gitlab-ci.yml"),
    ];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        files.push(entry.unwrap().path());
    }
    let mut installs = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for line in text.lines().filter(|l| l.contains("cargo install")) {
            installs += 1;
            assert!(line.contains("--locked"), "{}: {line}", file.display());
        }
    }
    assert!(
        installs >= 4,
        "the README, action and template install vouch"
    );
}

/// The README's `vouch oci sign` example uses flags the command has.
#[test]
fn the_oci_sign_example_uses_the_commands_flags() {
    let readme = std::fs::read_to_string(project_root().join("README.md")).unwrap();
    let example = readme
        .lines()
        .find(|l| l.starts_with("vouch oci sign "))
        .expect("the README shows vouch oci sign");
    let help = vouch_run(["oci", "sign", "--help"]).expect(0).stdout();
    for flag in example.split_whitespace().filter(|w| w.starts_with("--")) {
        assert!(
            help.contains(flag),
            "{flag} is not a flag of vouch oci sign:\n{help}"
        );
    }
}
