//! `vouch hash` against sha256sum, sha512sum, b2sum and b3sum on the same files.

mod common;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// Files whose names exercise every escaping rule, plus sizes on both reader paths.
fn awkward_tree(root: &Path) -> Vec<PathBuf> {
    let names: Vec<OsString> = vec![
        OsString::from("plain.bin"),
        OsString::from("with space"),
        OsString::from("back\\slash"),
        OsString::from("new\nline"),
        OsString::from("car\rriage"),
        OsString::from_vec(b"not-utf8-\xff".to_vec()),
        OsString::from("empty"),
        OsString::from("nested/deeper/large.bin"),
        OsString::from("nested/a-b"),
        OsString::from("nested/a/b"),
        OsString::from("ünïcödé"),
    ];
    let mut paths = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let len = match name.to_str() {
            Some("empty") => 0,
            Some("nested/deeper/large.bin") => 3_000_001,
            _ => 100 + i * 37,
        };
        std::fs::write(&path, pseudo_random(len, i as u64)).unwrap();
        paths.push(path);
    }
    // The order `find DIR -type f | LC_ALL=C sort` gives.
    paths.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
    paths
}

const PEERS: [(&str, &str); 4] = [
    ("sha256sum", "sha256"),
    ("sha512sum", "sha512"),
    ("b2sum", "blake2b"),
    ("b3sum", "blake3"),
];

#[test]
fn hash_output_is_byte_identical_to_the_peer_tools() {
    let dir = tempfile::tempdir().unwrap();
    let files = awkward_tree(&dir.path().join("m"));
    let relative: Vec<&OsStr> = files
        .iter()
        .map(|p| p.strip_prefix(dir.path()).unwrap().as_os_str())
        .collect();
    for (tool_name, algo) in PEERS {
        let Some(tool) = require_tool("hash_output_is_byte_identical_to_the_peer_tools", tool_name)
        else {
            continue;
        };
        let theirs = run(Command::new(&tool).current_dir(dir.path()).args(&relative)).expect(0);
        // A directory argument is walked in sorted order ...
        let ours = run(vouch()
            .current_dir(dir.path())
            .args(["hash", "--algo", algo, "m"]))
        .expect(0);
        assert_eq!(
            String::from_utf8_lossy(&ours.stdout),
            String::from_utf8_lossy(&theirs.stdout),
            "{tool_name} vs vouch hash --algo {algo} (directory)"
        );
        // ... and file arguments keep their order.
        let reversed: Vec<&OsStr> = relative.iter().rev().copied().collect();
        let theirs = run(Command::new(&tool).current_dir(dir.path()).args(&reversed)).expect(0);
        let ours = run(vouch()
            .current_dir(dir.path())
            .args(["hash", "--algo", algo])
            .args(&reversed))
        .expect(0);
        assert_eq!(
            ours.stdout, theirs.stdout,
            "{tool_name} vs vouch hash --algo {algo} (files)"
        );
    }
}

#[test]
fn check_lists_written_by_either_side_are_read_by_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m");
    write_tree(
        &model,
        &[
            ("a.bin", &pseudo_random(5000, 9)),
            ("sub/b.bin", &pseudo_random(2_500_000, 10)),
            ("c", b""),
        ],
    );
    for (tool_name, algo) in [
        ("sha256sum", "sha256"),
        ("b3sum", "blake3"),
        ("b2sum", "blake2b"),
    ] {
        let test = "check_lists_written_by_either_side_are_read_by_the_other";
        let Some(tool) = require_tool(test, tool_name) else {
            continue;
        };
        let files = ["m/a.bin", "m/c", "m/sub/b.bin"];
        let theirs = run(Command::new(&tool).current_dir(dir.path()).args(files)).expect(0);
        let list = dir.path().join(format!("{tool_name}.list"));
        std::fs::write(&list, &theirs.stdout).unwrap();

        // Their list, our check: every line OK, as they print it.
        let ours = run(vouch()
            .current_dir(dir.path())
            .args(["hash", "--algo", algo, "--check"])
            .arg(&list))
        .expect(0);
        assert_eq!(ours.stdout(), "m/a.bin: OK\nm/c: OK\nm/sub/b.bin: OK\n");
        let their_check = run(Command::new(&tool)
            .current_dir(dir.path())
            .arg("--check")
            .arg(&list))
        .expect(0);
        assert_eq!(
            ours.stdout, their_check.stdout,
            "same -c output as {tool_name}"
        );

        // Our list, their check.
        let ours = run(vouch()
            .current_dir(dir.path())
            .args(["hash", "--algo", algo, "m"]))
        .expect(0);
        let ours_list = dir.path().join(format!("vouch-{algo}.list"));
        std::fs::write(&ours_list, &ours.stdout).unwrap();
        run(Command::new(&tool)
            .current_dir(dir.path())
            .arg("--check")
            .arg(&ours_list))
        .expect(0);
    }
}

#[test]
fn hash_check_reports_changed_and_missing_files_like_sha256sum() {
    let test = "hash_check_reports_changed_and_missing_files_like_sha256sum";
    let Some(sha256sum) = require_tool(test, "sha256sum") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write_tree(
        dir.path(),
        &[("a", b"alpha"), ("b", b"beta"), ("c", b"gamma")],
    );
    let theirs = run(Command::new(&sha256sum)
        .current_dir(dir.path())
        .args(["a", "b", "c"]))
    .expect(0);
    std::fs::write(dir.path().join("SUMS"), &theirs.stdout).unwrap();
    flip_byte(&dir.path().join("a"), 0);
    std::fs::remove_file(dir.path().join("c")).unwrap();

    let ours = run(vouch()
        .current_dir(dir.path())
        .args(["hash", "--check", "SUMS"]))
    .expect(1);
    let theirs = run(Command::new(&sha256sum)
        .current_dir(dir.path())
        .args(["-c", "SUMS"]))
    .expect(1);
    assert_eq!(ours.stdout(), "a: FAILED\nb: OK\nc: FAILED open or read\n");
    assert_eq!(ours.stdout, theirs.stdout);
    assert!(
        ours.stderr.contains("1 computed checksum did NOT match"),
        "{}",
        ours.stderr
    );
    assert!(
        ours.stderr.contains("1 listed file could not be read"),
        "{}",
        ours.stderr
    );

    let json = run(vouch()
        .current_dir(dir.path())
        .args(["hash", "--check", "SUMS", "--format", "json"]))
    .expect(1)
    .json();
    let verdicts: Vec<_> = json["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["changed", "ok", "missing"]);
}

/// `vouch hash --check` and `sha256sum -c` with the same options, on the same list and files.
fn both_check(dir: &Path, sha256sum: &Path, options: &[&str]) -> (Ran, Ran) {
    let ours = run(vouch()
        .current_dir(dir)
        .args(["hash", "--check", "SUMS"])
        .args(options));
    let theirs = run(Command::new(sha256sum)
        .current_dir(dir)
        .args(["-c", "SUMS"])
        .args(options));
    (ours, theirs)
}

#[test]
fn check_options_mean_what_sha256sum_makes_them_mean() {
    let test = "check_options_mean_what_sha256sum_makes_them_mean";
    let Some(sha256sum) = require_tool(test, "sha256sum") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write_tree(
        dir.path(),
        &[("a", b"alpha"), ("b", b"beta"), ("c", b"gamma")],
    );
    let listed = run(Command::new(&sha256sum)
        .current_dir(dir.path())
        .args(["a", "b", "c"]))
    .expect(0);
    std::fs::write(dir.path().join("SUMS"), &listed.stdout).unwrap();

    // --ignore-missing: a missing file is neither printed nor a failure.
    std::fs::remove_file(dir.path().join("c")).unwrap();
    let (ours, theirs) = both_check(dir.path(), &sha256sum, &["--ignore-missing"]);
    let (ours, theirs) = (ours.expect(0), theirs.expect(0));
    assert_eq!(ours.stdout(), "a: OK\nb: OK\n");
    assert_eq!(ours.stdout, theirs.stdout);

    // --quiet: only the failures are printed.
    flip_byte(&dir.path().join("a"), 0);
    let (ours, theirs) = both_check(dir.path(), &sha256sum, &["--quiet", "--ignore-missing"]);
    let (ours, theirs) = (ours.expect(1), theirs.expect(1));
    assert_eq!(ours.stdout(), "a: FAILED\n");
    assert_eq!(ours.stdout, theirs.stdout);
    assert!(
        ours.stderr.contains("1 computed checksum did NOT match"),
        "{}",
        ours.stderr
    );

    // --status: nothing at all, the exit status says it; for a mismatch and a missing file.
    let (ours, theirs) = both_check(dir.path(), &sha256sum, &["--status"]);
    let (ours, theirs) = (ours.expect(1), theirs.expect(1));
    assert_eq!((ours.stdout().as_str(), ours.stderr.as_str()), ("", ""));
    assert_eq!(ours.stdout, theirs.stdout);
    // sha256sum still names the file it could not open; it prints no warning either.
    assert!(
        theirs.stderr.contains("c: No such file"),
        "{}",
        theirs.stderr
    );
    assert!(!theirs.stderr.contains("WARNING"), "{}", theirs.stderr);

    // --ignore-missing when no listed file exists: nothing verified is a failure.
    let only_c = format!("{}  c\n", sha256_hex(b"gamma"));
    std::fs::write(dir.path().join("SUMS"), &only_c).unwrap();
    let (ours, theirs) = both_check(dir.path(), &sha256sum, &["--ignore-missing"]);
    let (ours, theirs) = (ours.expect(1), theirs.expect(1));
    assert_eq!(ours.stdout, theirs.stdout);
    assert!(
        ours.stderr.contains("SUMS: no file was verified"),
        "{}",
        ours.stderr
    );
    assert!(
        theirs.stderr.contains("SUMS: no file was verified"),
        "{}",
        theirs.stderr
    );

    // --strict: an improperly formatted line fails the check. sha256sum exits 1; vouch
    // refuses the list as bad input (exit 2), with or without --strict.
    let malformed = format!("{}  b\nnot a checksum line\n", sha256_hex(b"beta"));
    std::fs::write(dir.path().join("SUMS"), &malformed).unwrap();
    let (ours, theirs) = both_check(dir.path(), &sha256sum, &["--strict"]);
    let (ours, _) = (ours.expect(2), theirs.expect(1));
    assert!(
        ours.stderr.contains("SUMS") && ours.stderr.contains("line 2"),
        "{}",
        ours.stderr
    );
    let (ours, theirs) = both_check(dir.path(), &sha256sum, &[]);
    ours.expect(2);
    // Without --strict sha256sum only warns and checks the rest.
    let theirs = theirs.expect(0);
    assert!(
        theirs.stderr.contains("improperly formatted"),
        "{}",
        theirs.stderr
    );
}

#[test]
fn hash_of_standard_input_is_printed_as_sha256sum_prints_it() {
    let test = "hash_of_standard_input_is_printed_as_sha256sum_prints_it";
    let Some(sha256sum) = require_tool(test, "sha256sum") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    std::fs::write(&input, pseudo_random(200_000, 7)).unwrap();
    std::fs::write(dir.path().join("f"), b"file").unwrap();
    let stdin = || std::fs::File::open(&input).unwrap();
    let ours = run(vouch()
        .current_dir(dir.path())
        .args(["hash", "f", "-"])
        .stdin(stdin()))
    .expect(0);
    let theirs = run(Command::new(&sha256sum)
        .current_dir(dir.path())
        .args(["f", "-"])
        .stdin(stdin()))
    .expect(0);
    assert!(ours.stdout().ends_with("  -\n"), "{}", ours.stdout());
    assert_eq!(ours.stdout, theirs.stdout);
}
