//! Bad input and faults: files that change while hashed, special files, symlinks, hostile
//! manifests, unreadable files, and outputs that must never be left half-written.

mod common;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o644) },
        0,
        "mkfifo {}",
        path.display()
    );
}

/// Writes a manifest of `model` with vouch itself, to `out`.
fn manifest_of(model: &Path, out: &Path) {
    vouch_run([
        Path::new("manifest").as_os_str(),
        model.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ])
    .expect(0);
}

fn subjects(report: &serde_json::Value) -> Vec<(String, String)> {
    report["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn failures(report: &serde_json::Value) -> Vec<(String, String)> {
    subjects(report)
        .into_iter()
        .filter(|(_, v)| v != "ok")
        .collect()
}

/// Truncating or rewriting a 256 MiB file while vouch hashes it: every run ends with an
/// exit status (never a signal), and runs that overlapped the change say `unstable`.
#[test]
fn a_file_truncated_or_rewritten_while_hashed_is_unstable_never_a_crash() {
    const SIZE: usize = 256 << 20;
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("weights.bin");
    let content = pseudo_random(SIZE, 42);
    std::fs::write(&weights, &content).unwrap();
    let pinned = vouch_run(["digest".as_ref(), weights.as_os_str()])
        .expect(0)
        .stdout()
        .trim()
        .to_string();
    let verify = || {
        let mut command = vouch();
        command.args([
            "verify".as_ref(),
            weights.as_os_str(),
            "--digest".as_ref(),
            pinned.as_ref(),
        ]);
        command.args(["--format", "json", "--progress", "never"]);
        command
    };

    // How long one undisturbed run takes, to spread the disturbances over it.
    let started = Instant::now();
    run(&mut verify()).expect(0);
    let baseline = started.elapsed();

    let mut unstable = 0;
    let runs = 60;
    for i in 0..runs {
        std::fs::write(&weights, &content).unwrap();
        let delay = baseline.mul_f64(1.2 * i as f64 / runs as f64);
        let child = start(&mut verify());
        std::thread::sleep(delay);
        if i % 6 == 5 {
            // Rewrite in place: same size, new bytes.
            use std::os::unix::fs::FileExt;
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&weights)
                .unwrap();
            file.write_all_at(&pseudo_random(1 << 20, i as u64), (SIZE / 2) as u64)
                .unwrap();
        } else {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&weights)
                .unwrap()
                .set_len((SIZE / 3) as u64)
                .unwrap();
        }
        let ran = child.finish_within(Duration::from_secs(300));
        assert_eq!(
            ran.signal, None,
            "run {i} died by signal {:?}; stderr: {}",
            ran.signal, ran.stderr
        );
        let code = ran.code.unwrap();
        assert!(
            code == 0 || code == 1,
            "run {i}: exit {code}: {}",
            ran.stderr
        );
        let report = ran.json();
        let verdicts: Vec<String> = subjects(&report).into_iter().map(|(_, v)| v).collect();
        match code {
            0 => assert_eq!(verdicts, ["ok"], "run {i}"),
            _ => {
                assert!(
                    verdicts == ["unstable"] || verdicts == ["changed"],
                    "run {i}: {report:#}"
                );
                unstable += usize::from(verdicts == ["unstable"]);
            }
        }
    }
    eprintln!("{unstable} of {runs} runs were unstable");
    assert!(
        unstable >= 5,
        "only {unstable} of {runs} runs overlapped the change; the test did not exercise it"
    );
}

#[test]
fn special_files_are_reported_and_never_opened() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write_tree(&model, &[("w.bin", b"weights")]);
    let manifest = dir.path().join("approved.json");
    manifest_of(&model, &manifest);
    mkfifo(&model.join("pipe"));
    let limit = Duration::from_secs(20);

    let ran = run_within(
        vouch().args([
            "verify".as_ref(),
            model.as_os_str(),
            "--manifest".as_ref(),
            manifest.as_os_str(),
            "--format".as_ref(),
            "json".as_ref(),
        ]),
        limit,
    )
    .expect(1);
    let report = ran.json();
    assert_eq!(
        failures(&report),
        [("pipe".to_string(), "extra".to_string())]
    );
    let message = report["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "pipe")
        .unwrap()["message"]
        .clone();
    assert!(message.as_str().unwrap().contains("FIFO"), "{message}");

    let ran = run_within(vouch().args(["digest".as_ref(), model.as_os_str()]), limit).expect(2);
    assert!(
        ran.stderr.contains("pipe") && ran.stderr.contains("FIFO"),
        "{}",
        ran.stderr
    );

    let ran = run_within(vouch().args(["hash".as_ref(), model.as_os_str()]), limit).expect(2);
    assert!(
        ran.stdout().contains("w.bin"),
        "the regular file is still hashed"
    );
    assert!(
        ran.stderr.contains("pipe") && ran.stderr.contains("FIFO"),
        "{}",
        ran.stderr
    );

    // A FIFO named directly, and one listed in a check list.
    run_within(
        vouch().args(["hash".as_ref(), model.join("pipe").as_os_str()]),
        limit,
    )
    .expect(2);
    std::fs::write(
        dir.path().join("SUMS"),
        format!("{}  model/pipe\n", sha256_hex(b"")),
    )
    .unwrap();
    let ran = run_within(
        vouch()
            .current_dir(dir.path())
            .args(["hash", "--check", "SUMS"]),
        limit,
    )
    .expect(1);
    assert_eq!(ran.stdout(), "model/pipe: FAILED\n");
}

/// Runs vouch under strace and returns the paths it opened.
fn opened_paths(args: &[&std::ffi::OsStr]) -> Option<(Ran, String)> {
    let strace = require_tool("opened_paths", "strace")?;
    let trace = tempfile::NamedTempFile::new().unwrap();
    let ran = run(Command::new(strace)
        .args(["-f", "-qq", "-e", "trace=open,openat,openat2", "-o"])
        .arg(trace.path())
        .arg(env!("CARGO_BIN_EXE_vouch"))
        .args(args));
    Some((ran, std::fs::read_to_string(trace.path()).unwrap()))
}

#[test]
fn symlinks_are_refused_unless_allowed_and_never_followed_outside_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write_tree(
        &model,
        &[("real.bin", b"real weights"), ("sub/other.bin", b"other")],
    );
    std::fs::write(dir.path().join("secret"), b"outside the model").unwrap();
    std::os::unix::fs::symlink("real.bin", model.join("inside-link")).unwrap();

    // Refused by default, with the way out named.
    let ran = vouch_run(["digest".as_ref(), model.as_os_str()]).expect(2);
    assert!(
        ran.stderr.contains("inside-link") && ran.stderr.contains("--allow-symlinks"),
        "{}",
        ran.stderr
    );

    // Allowed: hashed as the target's content.
    let with_link = vouch_run([
        "digest".as_ref(),
        model.as_os_str(),
        "--allow-symlinks".as_ref(),
    ])
    .expect(0)
    .stdout();
    std::fs::remove_file(model.join("inside-link")).unwrap();
    std::fs::copy(model.join("real.bin"), model.join("inside-link")).unwrap();
    let with_copy = vouch_run(["digest".as_ref(), model.as_os_str()])
        .expect(0)
        .stdout();
    assert_eq!(
        with_link, with_copy,
        "a link is hashed as its target's content"
    );
    std::fs::remove_file(model.join("inside-link")).unwrap();

    // A link that leads outside the root is rejected even when links are allowed, and the
    // file it points to is never opened.
    std::os::unix::fs::symlink("../secret", model.join("escape")).unwrap();
    let ran = vouch_run([
        "digest".as_ref(),
        model.as_os_str(),
        "--allow-symlinks".as_ref(),
    ])
    .expect(2);
    assert!(
        ran.stderr.contains("escape") && ran.stderr.contains("outside"),
        "{}",
        ran.stderr
    );
    let manifest = dir.path().join("approved.json");
    std::fs::rename(model.join("escape"), dir.path().join("escape-aside")).unwrap();
    manifest_of(&model, &manifest);
    std::fs::rename(dir.path().join("escape-aside"), model.join("escape")).unwrap();
    let args = [
        "verify".as_ref(),
        model.as_os_str(),
        "--manifest".as_ref(),
        manifest.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ];
    let ran = vouch_run(args).expect(1);
    assert_eq!(
        failures(&ran.json()),
        [("escape".to_string(), "rejected".to_string())]
    );
    if let Some((ran, trace)) = opened_paths(&args) {
        assert_eq!(ran.code, Some(1));
        assert!(
            !trace.contains("secret"),
            "the file outside the root was opened:\n{trace}"
        );
    }
}

#[test]
fn hostile_manifest_entries_are_refused_before_any_file_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write_tree(&model, &[("a.bin", b"a"), ("b.bin", b"b")]);
    std::fs::write(dir.path().join("secret"), b"outside").unwrap();
    let good = dir.path().join("good.json");
    manifest_of(&model, &good);
    let statement: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&good).unwrap()).unwrap();

    for (bad_name, needle) in [
        ("../secret", "'..'"),
        ("/etc/passwd", "absolute"),
        ("a\u{0}b", "NUL"),
        ("b.bin", "twice"),
    ] {
        let mut edited = statement.clone();
        edited["predicate"]["resources"][0]["name"] = bad_name.into();
        // Keep the root consistent so the entry itself is what is refused.
        let path = dir.path().join("hostile.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&edited).unwrap()).unwrap();
        let args = [
            "verify".as_ref(),
            model.as_os_str(),
            "--manifest".as_ref(),
            path.as_os_str(),
        ];
        let ran = vouch_run(args).expect(2);
        assert!(
            ran.stderr.contains("predicate.resources[") && ran.stderr.contains(needle),
            "{bad_name:?}: {}",
            ran.stderr
        );
        if let Some((_, trace)) = opened_paths(&args) {
            assert!(
                !trace.contains("secret") && !trace.contains("a.bin"),
                "{bad_name:?}: files were opened:\n{trace}"
            );
        }
    }
}

#[test]
fn missing_extra_and_changed_files_are_each_named() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write_tree(
        &model,
        &[
            ("keep.bin", b"same"),
            ("edit.bin", b"before"),
            ("gone.bin", b"bye"),
            ("empty", b""),
            ("d/nested", b"n"),
        ],
    );
    let manifest = dir.path().join("approved.json");
    manifest_of(&model, &manifest);
    std::fs::write(model.join("edit.bin"), b"after!").unwrap();
    std::fs::remove_file(model.join("gone.bin")).unwrap();
    std::fs::write(model.join("new.bin"), b"surprise").unwrap();
    std::fs::write(model.join("d/empty-too"), b"").unwrap();

    let ran = vouch_run([
        "verify".as_ref(),
        model.as_os_str(),
        "--manifest".as_ref(),
        manifest.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    let report = ran.expect(1).json();
    assert_eq!(
        failures(&report),
        [
            ("d/empty-too".to_string(), "extra".to_string()),
            ("edit.bin".to_string(), "changed".to_string()),
            ("gone.bin".to_string(), "missing".to_string()),
            ("new.bin".to_string(), "extra".to_string()),
        ]
    );
    let edited = report["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "edit.bin")
        .unwrap();
    assert_eq!(
        edited["expected"],
        format!("sha256:{}", sha256_hex(b"before"))
    );
    assert_eq!(
        edited["actual"],
        format!("sha256:{}", sha256_hex(b"after!"))
    );

    // The text report names each one too.
    let text = vouch_run([
        "verify".as_ref(),
        model.as_os_str(),
        "--manifest".as_ref(),
        manifest.as_os_str(),
    ])
    .expect(1)
    .stdout();
    for line in [
        "changed    edit.bin",
        "missing    gone.bin",
        "extra      new.bin",
        "extra      d/empty-too",
    ] {
        assert!(text.contains(line), "missing '{line}' in:\n{text}");
    }
}

#[test]
fn empty_files_in_a_shards_manifest_are_flagged_as_unprotected() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write_tree(
        &model,
        &[("w.bin", &pseudo_random(2500, 1)), ("empty", b"")],
    );
    let manifest = dir.path().join("approved.json");
    vouch_run([
        "manifest".as_ref(),
        model.as_os_str(),
        "--shard-size".as_ref(),
        "1000".as_ref(),
        "-o".as_ref(),
        manifest.as_os_str(),
    ])
    .expect(0);
    let ran = vouch_run([
        "verify".as_ref(),
        model.as_os_str(),
        "--manifest".as_ref(),
        manifest.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    let report = ran.expect(0).json();
    assert_eq!(subjects(&report).len(), 3, "three shards of w.bin");
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("empty") && warnings.contains("not protected"),
        "{warnings}"
    );

    // The approved empty file gone and another appeared: neither can fail the check, and
    // both are said.
    std::fs::remove_file(model.join("empty")).unwrap();
    std::fs::write(model.join("new.txt"), b"").unwrap();
    let report = vouch_run([
        "verify".as_ref(),
        model.as_os_str(),
        "--manifest".as_ref(),
        manifest.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ])
    .expect(0)
    .json();
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("new.txt is empty") && warnings.contains("appeared since"),
        "{warnings}"
    );
    assert!(
        warnings.contains("an approved empty file that went missing cannot be detected"),
        "{warnings}"
    );
    std::fs::remove_file(model.join("new.txt")).unwrap();

    // A shard-mode file whose size changed is named with the sizes, not as shard noise.
    std::fs::write(model.join("w.bin"), pseudo_random(1500, 1)).unwrap();
    let ran = vouch_run([
        "verify".as_ref(),
        model.as_os_str(),
        "--manifest".as_ref(),
        manifest.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    let report = ran.expect(1).json();
    assert_eq!(
        failures(&report),
        [("w.bin".to_string(), "changed".to_string())]
    );
    assert!(
        report
            .to_string()
            .contains("approved 2500 bytes, found 1500 bytes"),
        "{report:#}"
    );
}

#[test]
fn a_sparse_file_over_4_gib_hashes_like_sha256sum() {
    let Some(sha256sum) = require_tool(
        "a_sparse_file_over_4_gib_hashes_like_sha256sum",
        "sha256sum",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sparse.bin");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(5 << 30).unwrap();
    use std::os::unix::fs::FileExt;
    // Marks past 4 GiB catch any 32-bit offset arithmetic.
    file.write_all_at(b"past four gibibytes", (4 << 30) + 12_345)
        .unwrap();
    file.write_all_at(b"near the end", (5 << 30) - 20).unwrap();
    drop(file);

    let ours = vouch_run(["hash".as_ref(), path.as_os_str()])
        .expect(0)
        .stdout();
    let theirs = run(Command::new(sha256sum).arg(&path)).expect(0).stdout();
    assert_eq!(ours, theirs);

    // Sharded: the shards past 4 GiB are named with their true offsets and verify.
    let manifest = dir.path().join("m.json");
    vouch_run([
        "manifest".as_ref(),
        path.as_os_str(),
        "--shard-size".as_ref(),
        "1000000000".as_ref(),
        "-o".as_ref(),
        manifest.as_os_str(),
    ])
    .expect(0);
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(text.contains("\".:5000000000:5368709120\""), "{text}");
    vouch_run([
        "verify".as_ref(),
        path.as_os_str(),
        "--manifest".as_ref(),
        manifest.as_os_str(),
    ])
    .expect(0);
}

#[test]
fn a_file_that_cannot_be_read_is_unreadable_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write_tree(
        &model,
        &[("open.bin", b"readable"), ("locked.bin", b"secret weights")],
    );
    let manifest = dir.path().join("approved.json");
    manifest_of(&model, &manifest);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        model.join("locked.bin"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    for p in [dir.path(), &model] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&manifest, std::fs::Permissions::from_mode(0o644)).unwrap();

    let Some(mut command) =
        vouch_without_privilege("a_file_that_cannot_be_read_is_unreadable_with_exit_3")
    else {
        return;
    };
    command.args([
        "verify".as_ref(),
        model.as_os_str(),
        "--manifest".as_ref(),
        manifest.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    let ran = run(&mut command).expect(3);
    let report = ran.json();
    assert_eq!(report["status"], "error");
    assert_eq!(
        failures(&report),
        [("locked.bin".to_string(), "unreadable".to_string())]
    );
    assert!(
        report.to_string().contains("Permission denied"),
        "{report:#}"
    );
}

#[test]
fn inputs_that_do_not_exist_or_do_not_parse_exit_2_with_the_position() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write_tree(&model, &[("a", b"a")]);
    let ran = vouch_run([
        "verify".as_ref(),
        dir.path().join("nope").as_os_str(),
        "--digest".as_ref(),
        format!("sha256:{}", "0".repeat(64)).as_ref(),
    ])
    .expect(2);
    assert!(
        ran.stderr.contains("nope") && ran.stderr.contains("no such file"),
        "{}",
        ran.stderr
    );

    let good = dir.path().join("good.json");
    manifest_of(&model, &good);
    let text = std::fs::read_to_string(&good).unwrap();
    let truncated = dir.path().join("truncated.json");
    std::fs::write(&truncated, &text[..text.len() / 2]).unwrap();
    let ran = vouch_run([
        "verify".as_ref(),
        model.as_os_str(),
        "--manifest".as_ref(),
        truncated.as_os_str(),
    ])
    .expect(2);
    assert!(
        ran.stderr.contains("truncated.json")
            && ran.stderr.contains("line")
            && ran.stderr.contains("column"),
        "{}",
        ran.stderr
    );

    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{\"_type\": 12}").unwrap();
    let ran = vouch_run([
        "verify".as_ref(),
        model.as_os_str(),
        "--manifest".as_ref(),
        garbage.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ])
    .expect(2);
    assert!(ran.stderr.contains("_type"), "{}", ran.stderr);
    assert_eq!(
        ran.json()["status"],
        "error",
        "machine-readable formats still get a report"
    );

    let list = dir.path().join("SUMS");
    std::fs::write(&list, "not a check list\n").unwrap();
    let ran = vouch_run([
        "verify".as_ref(),
        model.as_os_str(),
        "--check".as_ref(),
        list.as_os_str(),
    ])
    .expect(2);
    assert!(ran.stderr.contains("SUMS: line 1"), "{}", ran.stderr);
}

#[test]
fn outputs_are_replaced_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write_tree(&model, &[("a", b"a")]);
    let out = dir.path().join("report.json");
    std::fs::write(&out, "previous report").unwrap();

    // A run that fails before producing output leaves the previous file as it was.
    vouch_run([
        "manifest".as_ref(),
        dir.path().join("missing").as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
    ])
    .expect(2);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "previous report");

    // A manifest written inside the model is left out of it, and verifies.
    let inside = model.join("approved.json");
    manifest_of(&model, &inside);
    let text = std::fs::read_to_string(&inside).unwrap();
    assert!(
        text.contains("\"approved.json\""),
        "recorded as ignored: {text}"
    );
    vouch_run([
        "verify".as_ref(),
        model.as_os_str(),
        "--manifest".as_ref(),
        inside.as_os_str(),
        "--output".as_ref(),
        out.as_os_str(),
    ])
    .expect(0);
    assert!(std::fs::read_to_string(&out).unwrap().contains("verified"));

    // No temporary file is left behind anywhere.
    for d in [dir.path(), &model] {
        for entry in std::fs::read_dir(d).unwrap() {
            let name = entry.unwrap().file_name();
            assert!(
                !name.to_string_lossy().starts_with(".vouch-"),
                "left behind: {name:?}"
            );
        }
    }
}

/// The strace options that hold the first `openat2` of every thread for two seconds: the
/// open of a model's file beneath its root.
const HOLD_OPENAT2: &[&str] = &["-e", "inject=openat2:delay_enter=2000000:when=1"];

/// Runs vouch under strace with the open that `hold` chooses held (see [`HOLD_OPENAT2`]),
/// and calls `mutate` as soon as the trace shows vouch has looked at `seen` (the walk has
/// listed it), so the change lands between the walk and the open that follows it. Returns
/// the run and every path it opened.
fn race_after_listing(
    test: &str,
    hold: &[&str],
    args: &[&std::ffi::OsStr],
    seen: &str,
    mutate: impl FnOnce(),
) -> Option<(Ran, String)> {
    let strace = require_tool(test, "strace")?;
    let trace = tempfile::NamedTempFile::new().unwrap();
    let child = start(
        Command::new(strace)
            .args([
                "-f",
                "-qq",
                "-e",
                "trace=newfstatat,statx,open,openat,openat2",
            ])
            .args(hold)
            .arg("-o")
            .arg(trace.path())
            .arg(env!("CARGO_BIN_EXE_vouch"))
            .args(args),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(trace.path())
        .unwrap()
        .lines()
        .any(|line| line.contains("stat") && names(line, seen))
    {
        assert!(Instant::now() < deadline, "vouch never listed {seen}");
        std::thread::sleep(Duration::from_millis(2));
    }
    mutate();
    let ran = child.finish_within(Duration::from_secs(300));
    Some((ran, std::fs::read_to_string(trace.path()).unwrap()))
}

/// A file removed between the listing and its open has one verdict whichever check reads
/// it: `unstable`, with the same message, from `verify` and `scan` (the walk listed it) and
/// from `hash --check` (the check list named it and it was there).
#[test]
fn a_file_removed_after_it_was_listed_is_unstable_for_verify_hash_check_and_scan_alike() {
    let test = "removed_after_listing";
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    let weights = model.join("weights.bin");
    let manifest = dir.path().join("approved.json");
    write_tree(&model, &[("weights.bin", b"approved weights")]);
    manifest_of(&model, &manifest);
    let list = dir.path().join("weights.sha256");
    std::fs::write(
        &list,
        format!(
            "{}  {}\n",
            sha256_hex(b"approved weights"),
            weights.display()
        ),
    )
    .unwrap();
    let verify: [&std::ffi::OsStr; 8] = [
        "verify".as_ref(),
        model.as_os_str(),
        "--manifest".as_ref(),
        manifest.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
        "--jobs".as_ref(),
        "1".as_ref(),
    ];
    let check: [&std::ffi::OsStr; 5] = [
        "hash".as_ref(),
        "--check".as_ref(),
        list.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ];
    let scan: [&std::ffi::OsStr; 6] = [
        "scan".as_ref(),
        model.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
        "--jobs".as_ref(),
        "1".as_ref(),
    ];
    let weights_path = weights.to_str().unwrap();
    // The check list's file is opened by its path with openat: hold only that open.
    let hold_check = [
        "-P",
        weights_path,
        "-e",
        "inject=openat:delay_enter=2000000:when=1",
    ];
    for (how, hold, args) in [
        ("verify", HOLD_OPENAT2, &verify[..]),
        ("hash --check", &hold_check[..], &check[..]),
        ("scan", HOLD_OPENAT2, &scan[..]),
    ] {
        // A run whose timing missed the window (the file read before it was removed) is
        // tried again.
        let mut attempt = 0;
        let ran = loop {
            attempt += 1;
            write_tree(&model, &[("weights.bin", b"approved weights")]);
            let remove = || std::fs::remove_file(&weights).unwrap();
            let Some((ran, _)) = race_after_listing(test, hold, args, "weights.bin", remove) else {
                return;
            };
            if ran.code == Some(1) || attempt == 3 {
                break ran;
            }
        };
        assert_eq!(ran.code, Some(1), "{how}: {}\n{}", ran.stdout(), ran.stderr);
        let report = ran.json();
        // verify and hash --check list subjects with verdicts; scan lists files with problems.
        let (entries, verdict, message) = match how {
            "scan" => ("files", "/problem/kind", "/problem/message"),
            _ => ("subjects", "/verdict", "/message"),
        };
        let entries = report[entries].as_array().unwrap();
        assert_eq!(entries.len(), 1, "{how}: {report:#}");
        let entry = &entries[0];
        assert!(
            entry["name"].as_str().unwrap().ends_with("weights.bin"),
            "{how}: {report:#}"
        );
        assert_eq!(
            entry.pointer(verdict).unwrap(),
            "unstable",
            "{how}: {report:#}"
        );
        assert_eq!(
            entry.pointer(message).unwrap(),
            "was removed after it was listed",
            "{how}: {report:#}"
        );
    }
}

/// A file must be read as the walk listed it: one that grew after the walk, or that another
/// inode with the same bytes replaced, is `unstable` (exit 1), not hashed up to its listed
/// length or taken as the same file.
#[test]
fn a_file_that_grows_or_is_replaced_after_the_walk_is_unstable() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write_tree(&model, &[("weights.bin", b"approved weights")]);
    let manifest = dir.path().join("approved.json");
    manifest_of(&model, &manifest);
    let weights = model.join("weights.bin");
    let args = [
        "verify".as_ref(),
        model.as_os_str(),
        "--manifest".as_ref(),
        manifest.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
        "--jobs".as_ref(),
        "1".as_ref(),
    ];
    let append = || {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&weights)
            .unwrap();
        file.write_all(b" and a payload appended after the walk")
            .unwrap();
    };
    let replace = || {
        let copy = dir.path().join("copy");
        std::fs::write(&copy, b"approved weights").unwrap();
        std::fs::rename(&copy, &weights).unwrap();
    };
    for (how, mutate, says) in [
        ("grown", &append as &dyn Fn(), "size went from 16 to"),
        ("replaced", &replace, "replaced"),
    ] {
        // The change must land between the walk and the open; a run whose timing missed that
        // window verifies unchanged content and is tried again (a false accept would verify
        // every time).
        let mut attempt = 0;
        let ran = loop {
            attempt += 1;
            write_tree(&model, &[("weights.bin", b"approved weights")]);
            let Some((ran, _)) = race_after_listing(
                "grows_after_walk",
                HOLD_OPENAT2,
                &args,
                "weights.bin",
                mutate,
            ) else {
                return;
            };
            if ran.code == Some(1) || attempt == 3 {
                break ran;
            }
        };
        assert_eq!(ran.code, Some(1), "{how}: {}\n{}", ran.stdout(), ran.stderr);
        let report = ran.json();
        assert_eq!(
            failures(&report),
            [("weights.bin".to_string(), "unstable".to_string())],
            "{how}: {report:#}"
        );
        let message = report["subjects"][0]["message"].as_str().unwrap();
        assert!(message.contains(says), "{how}: {message}");
    }
}

/// A directory swapped for a link to a directory outside the model while vouch runs is
/// refused; nothing outside is opened, and the report names no outside file, size or digest.
#[test]
fn a_directory_swapped_for_a_link_during_the_run_is_refused_and_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write_tree(&model, &[("top.bin", b"top"), ("sub/a.bin", b"inside")]);
    write_tree(
        &dir.path().join("elsewhere"),
        &[("a.bin", b"OUTSIDE-BYTES"), ("planted.bin", b"planted")],
    );
    let manifest = dir.path().join("approved.json");
    manifest_of(&model, &manifest);
    let args = [
        "verify".as_ref(),
        model.as_os_str(),
        "--manifest".as_ref(),
        manifest.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ];
    let swap = || {
        std::fs::rename(model.join("sub"), dir.path().join("sub-aside")).unwrap();
        std::os::unix::fs::symlink("../elsewhere", model.join("sub")).unwrap();
    };
    let Some((ran, trace)) = race_after_listing("dir_swapped", HOLD_OPENAT2, &args, "sub", swap)
    else {
        return;
    };
    assert_eq!(ran.code, Some(1), "{}\n{}", ran.stdout(), ran.stderr);
    let report = ran.json();
    assert!(
        failures(&report).contains(&("sub".to_string(), "rejected".to_string())),
        "{report:#}"
    );
    let text = ran.stdout();
    let outside = sha256_hex(b"OUTSIDE-BYTES");
    assert!(
        !text.contains("planted") && !text.contains(&outside) && !text.contains("\"size\": 13"),
        "the report shows a file outside the model: {report:#}"
    );
    assert!(
        !trace.contains("elsewhere") && !trace.contains("planted"),
        "a file outside the model was opened:\n{trace}"
    );
}

/// Whether a traced system call names the file `name`, as a path or beneath a handle.
fn names(line: &str, name: &str) -> bool {
    line.contains(&format!("/{name}\"")) || line.contains(&format!("\"{name}\""))
}

/// Counts the opens of the file `name` in a trace.
fn opens_of(trace: &str, name: &str) -> usize {
    trace
        .lines()
        .filter(|line| line.contains("open") && names(line, name))
        .count()
}

/// The pickle gate and the SBOM facts read the bytes that were hashed: every file of the
/// model is opened exactly once, so no file can be swapped between its digest and its scan.
#[test]
fn content_checks_read_the_very_handle_that_was_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    let tiny = project_root().join("testdata/tiny-model");
    std::fs::create_dir(&model).unwrap();
    for name in ["config.json", "model.safetensors"] {
        std::fs::copy(tiny.join(name), model.join(name)).unwrap();
    }
    // A protocol 2 pickle of an empty dict: safe.
    std::fs::write(model.join("extra.pkl"), b"\x80\x02}q\x00.").unwrap();
    let manifest = dir.path().join("approved.json");
    manifest_of(&model, &manifest);
    let out = dir.path().join("out.cdx.json");
    let runs: [(&str, Vec<&std::ffi::OsStr>); 2] = [
        (
            "verify --deny-unsafe-pickle",
            vec![
                "verify".as_ref(),
                model.as_os_str(),
                "--manifest".as_ref(),
                manifest.as_os_str(),
                "--deny-unsafe-pickle".as_ref(),
            ],
        ),
        (
            "sbom",
            vec![
                "sbom".as_ref(),
                model.as_os_str(),
                "-o".as_ref(),
                out.as_os_str(),
            ],
        ),
    ];
    for (what, args) in runs {
        let Some((ran, trace)) = opened_paths(&args) else {
            return;
        };
        assert_eq!(ran.code, Some(0), "{what}: {}", ran.stderr);
        for name in ["config.json", "model.safetensors", "extra.pkl"] {
            assert_eq!(
                opens_of(&trace, name),
                1,
                "{what} opened {name} other than once:\n{trace}"
            );
        }
    }
    // And the gate does look at those bytes: a dangerous pickle is still rejected.
    std::fs::write(
        model.join("extra.pkl"),
        b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.",
    )
    .unwrap();
    let ran = vouch_run([
        "verify".as_ref(),
        model.as_os_str(),
        "--digest".as_ref(),
        "sha256:0000000000000000000000000000000000000000000000000000000000000000".as_ref(),
        "--deny-unsafe-pickle".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
    ])
    .expect(1);
    assert!(
        failures(&ran.json()).contains(&("extra.pkl".to_string(), "rejected".to_string())),
        "{:#}",
        ran.json()
    );
}

/// Writes `model.onnx` into `dir` with its one tensor stored at `location`, with the peer's
/// onnx package.
fn onnx_with_external_data(python: &Path, dir: &Path, location: &str) {
    let script = r#"
import sys, numpy as np, onnx
from onnx import TensorProto, helper, numpy_helper
w = numpy_helper.from_array(np.arange(16, dtype=np.float32).reshape(4, 4), name="w")
graph = helper.make_graph(
    [helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    initializer=[w])
onnx.save_model(helper.make_model(graph), sys.argv[1], save_as_external_data=True,
                all_tensors_to_one_file=True, location=sys.argv[2], size_threshold=0)
"#;
    let ran = run(Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(dir.join("model.onnx"))
        .arg(location));
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
}

/// An ONNX external-data location that is a symbolic link, or lies under a linked
/// directory, is refused: never hashed, its target never opened.
#[test]
fn onnx_external_data_through_a_symbolic_link_is_refused() {
    let Some(python) = peer_python("onnx_external_link") else {
        return;
    };
    for location in ["weights.data", "data/weights.data"] {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model");
        std::fs::create_dir_all(model.join("data")).unwrap();
        onnx_with_external_data(&python, &model, location);
        // The data moves out of the model; a link in the model leads to it.
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let (linked, target) = match location {
            "weights.data" => ("weights.data", "../outside/weights.data"),
            _ => ("data", "../outside"),
        };
        std::fs::rename(model.join(location), outside.join("weights.data")).unwrap();
        if linked == "data" {
            std::fs::remove_dir(model.join("data")).unwrap();
        }
        std::os::unix::fs::symlink(target, model.join(linked)).unwrap();
        let data_sha256 = sha256_hex(&std::fs::read(outside.join("weights.data")).unwrap());
        for target in [model.clone(), model.join("model.onnx")] {
            let args = [
                "scan".as_ref(),
                target.as_os_str(),
                "--format".as_ref(),
                "json".as_ref(),
            ];
            let ran = vouch_run(args).expect(2);
            let report = ran.json();
            let external = &report["files"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["format"] == "onnx")
                .unwrap()["external_data"][0];
            assert_eq!(external["location"], location);
            assert!(external["sha256"].is_null(), "{location}: {report:#}");
            assert!(
                external["problem"]
                    .as_str()
                    .is_some_and(|p| p.contains("symbolic link")),
                "{location}: {report:#}"
            );
            assert!(!ran.stdout().contains(&data_sha256), "{location}");
            if let Some((_, trace)) = opened_paths(&args) {
                assert!(
                    !trace.contains("outside"),
                    "{location}: the data outside was opened:\n{trace}"
                );
            }
        }
    }
}
