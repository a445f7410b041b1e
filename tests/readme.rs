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
