//! The command line as a pipeline sees it: approvals, report formats, exit statuses,
//! `--jobs` and `--progress`.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// A model with one changed, one missing and one extra file against its manifest.
fn drifted_model(dir: &Path) -> (PathBuf, PathBuf) {
    let model = dir.join("model");
    write_tree(
        &model,
        &[
            ("a.bin", b"alpha"),
            ("b.bin", b"beta"),
            ("c.bin", b"gamma"),
            ("sub/d.bin", b"delta"),
        ],
    );
    let manifest = dir.join("approved.json");
    write_manifest(&model, &manifest, &[]);
    std::fs::write(model.join("a.bin"), b"ALPHA").unwrap();
    std::fs::remove_file(model.join("b.bin")).unwrap();
    std::fs::write(model.join("e.bin"), b"epsilon").unwrap();
    (model, manifest)
}

fn verify_as(model: &Path, manifest: &Path, format: &str) -> Ran {
    vouch_run([
        "verify".as_ref(),
        model.as_os_str(),
        "--manifest".as_ref(),
        manifest.as_os_str(),
        "--format".as_ref(),
        format.as_ref(),
    ])
}

#[test]
fn json_report_has_the_documented_fields() {
    let dir = tempfile::tempdir().unwrap();
    let (model, manifest) = drifted_model(dir.path());
    let report = verify_as(&model, &manifest, "json").expect(1).json();
    assert_eq!(report["status"], "failed");
    assert!(report["root_digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert_eq!(report["bytes_hashed"], 5 + 5 + 5 + 7);
    assert!(report["duration_seconds"].as_f64().unwrap() >= 0.0);
    let subjects = report["subjects"].as_array().unwrap();
    let by_name = |n: &str| {
        subjects
            .iter()
            .find(|s| s["name"] == n)
            .unwrap_or_else(|| panic!("no subject {n}"))
    };
    assert_eq!(by_name("a.bin")["verdict"], "changed");
    assert_eq!(by_name("b.bin")["verdict"], "missing");
    assert_eq!(by_name("e.bin")["verdict"], "extra");
    assert_eq!(by_name("c.bin")["verdict"], "ok");
    for s in subjects {
        for key in ["name", "verdict", "expected", "actual", "message"] {
            assert!(s.get(key).is_some(), "subject lacks {key}: {s}");
        }
    }
}

#[test]
fn junit_has_one_testcase_per_subject_and_parses_as_xml() {
    let dir = tempfile::tempdir().unwrap();
    let (model, manifest) = drifted_model(dir.path());
    let ran = verify_as(&model, &manifest, "junit").expect(1);
    let xml = ran.stdout();
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("not XML ({e}):\n{xml}"));
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 5, "a, b, c, sub/d, e");
    let failed: Vec<&str> = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
        .map(|c| c.attribute("name").unwrap())
        .collect();
    assert_eq!(failed, ["a.bin", "b.bin", "e.bin"]);
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(suite.attribute("failures"), Some("3"));
}

#[test]
fn sarif_has_one_result_per_failure() {
    let dir = tempfile::tempdir().unwrap();
    let (model, manifest) = drifted_model(dir.path());
    let sarif = verify_as(&model, &manifest, "sarif").expect(1).json();
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    let rules: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for result in results {
        assert!(rules.contains(&result["ruleId"].as_str().unwrap()));
        assert_eq!(result["level"], "error");
        assert!(result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].is_string());
    }
}

#[test]
fn github_format_prints_an_error_annotation_per_failure() {
    let dir = tempfile::tempdir().unwrap();
    let (model, manifest) = drifted_model(dir.path());
    let out = verify_as(&model, &manifest, "github").expect(1).stdout();
    let errors: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("::error file="))
        .collect();
    assert_eq!(errors.len(), 3, "{out}");
    // The model lies outside the repository (the current directory): its absolute path.
    let file = format!("{}/a.bin", model.display()).replace(':', "%3A");
    assert!(
        errors[0].starts_with(&format!(
            "::error file={file},title=vouch%3A changed::a.bin differs"
        )),
        "{out}"
    );
    assert!(
        out.lines()
            .next()
            .unwrap()
            .starts_with("::error title=vouch::"),
        "the summary comes first: {out}"
    );
}

#[test]
fn a_clean_model_verifies_with_exit_0_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write_tree(
        &model,
        &[
            ("w.bin", &pseudo_random(3_000_000, 7)),
            ("config.json", b"{}"),
        ],
    );
    let manifest = dir.path().join("approved.json");
    write_manifest(&model, &manifest, &[]);
    for format in ["text", "json", "junit", "sarif", "github"] {
        let ran = verify_as(&model, &manifest, format).expect(0);
        assert!(!ran.stdout.is_empty(), "{format}");
    }
    assert!(verify_as(&model, &manifest, "text")
        .stdout()
        .contains("vouch: verified"));
}

#[test]
fn a_pinned_digest_verifies_and_a_changed_model_fails() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write_tree(
        &model,
        &[("w.bin", &pseudo_random(5000, 1)), ("t.json", b"{}")],
    );
    for flags in [
        &[][..],
        &["--shard-size", "1024"][..],
        &["--algo", "blake3"][..],
    ] {
        let digest = vouch_run(
            ["digest".as_ref(), model.as_os_str()]
                .into_iter()
                .chain(flags.iter().map(|f| f.as_ref())),
        )
        .expect(0)
        .stdout();
        let pin = digest.trim();
        let args = |m: &Path| -> Vec<std::ffi::OsString> {
            let mut a: Vec<std::ffi::OsString> =
                vec!["verify".into(), m.into(), "--digest".into(), pin.into()];
            a.extend(flags.iter().map(|f| f.into()));
            a
        };
        vouch_run(args(&model)).expect(0);
        flip_byte(&model.join("w.bin"), 4000);
        let ran = vouch_run(args(&model)).expect(1);
        assert!(
            ran.stdout().contains("changed") && ran.stdout().contains(pin),
            "{}",
            ran.stdout()
        );
        flip_byte(&model.join("w.bin"), 4000);
    }
    let ran = vouch_run([
        "verify".as_ref(),
        model.as_os_str(),
        "--digest".as_ref(),
        "sha256:xyz".as_ref(),
    ])
    .expect(2);
    assert!(ran.stderr.contains("--digest"), "{}", ran.stderr);
}

#[test]
fn a_check_list_verifies_a_model_and_names_extra_files() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write_tree(&model, &[("a", b"a"), ("sub/b", b"b")]);
    let list = dir.path().join("SUMS");
    std::fs::write(
        &list,
        format!("{}  a\n{}  ./sub/b\n", sha256_hex(b"a"), sha256_hex(b"b")),
    )
    .unwrap();
    vouch_run([
        "verify".as_ref(),
        model.as_os_str(),
        "--check".as_ref(),
        list.as_os_str(),
    ])
    .expect(0);
    std::fs::write(model.join("unlisted"), b"?").unwrap();
    let report = vouch_run([
        "verify".as_ref(),
        model.as_os_str(),
        "--check".as_ref(),
        list.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ])
    .expect(1)
    .json();
    let extra = with_verdict(&report, "extra");
    assert_eq!(extra.len(), 1);
    assert_eq!(extra[0]["name"], "unlisted");
    // A list inside the model is not itself an extra file.
    std::fs::remove_file(model.join("unlisted")).unwrap();
    std::fs::copy(&list, model.join("SHA256SUMS")).unwrap();
    vouch_run([
        "verify".as_ref(),
        model.as_os_str(),
        "--check".as_ref(),
        model.join("SHA256SUMS").as_os_str(),
    ])
    .expect(0);
    // Names that climb out of the model are refused.
    std::fs::write(&list, format!("{}  ../x\n", sha256_hex(b"a"))).unwrap();
    let ran = vouch_run([
        "verify".as_ref(),
        model.as_os_str(),
        "--check".as_ref(),
        list.as_os_str(),
    ])
    .expect(2);
    assert!(
        ran.stderr.contains("line 1") && ran.stderr.contains(".."),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_single_file_model_verifies_by_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("model.safetensors");
    std::fs::write(&weights, pseudo_random(2_000_000, 3)).unwrap();
    let manifest = dir.path().join("m.json");
    write_manifest(&weights, &manifest, &[]);
    let report = verify_as(&weights, &manifest, "json").expect(0).json();
    assert_eq!(report["subjects"][0]["name"], "model.safetensors");
    flip_byte(&weights, 10);
    verify_as(&weights, &manifest, "json").expect(1);
}

#[test]
fn ignore_paths_leave_files_out_of_manifests_and_checks() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write_tree(
        &model,
        &[
            ("w.bin", b"w"),
            ("README.md", b"card"),
            ("docs/x.md", b"x"),
            (".git/HEAD", b"ref"),
        ],
    );
    let manifest = dir.path().join("m.json");
    vouch_run([
        "manifest".as_ref(),
        model.as_os_str(),
        "--ignore-paths".as_ref(),
        "README.md".as_ref(),
        "-o".as_ref(),
        manifest.as_os_str(),
    ])
    .expect(0);
    let statement: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    let names: Vec<&str> = statement["predicate"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["docs/x.md", "w.bin"]);
    // The recorded ignore path is honoured when verifying, and more can be added.
    std::fs::write(model.join("README.md"), b"edited card").unwrap();
    verify_as(&model, &manifest, "text").expect(0);
    std::fs::write(model.join("docs/x.md"), b"edited").unwrap();
    verify_as(&model, &manifest, "text").expect(1);
    let ran = vouch_run([
        "verify".as_ref(),
        model.as_os_str(),
        "--manifest".as_ref(),
        manifest.as_os_str(),
        "--ignore-paths".as_ref(),
        "docs".as_ref(),
    ])
    .expect(0);
    let out = ran.stdout();
    assert!(
        out.contains("not checked because of --ignore-paths: docs/x.md"),
        "{out}"
    );
    // Ignore paths may not leave the model.
    let ran = vouch_run([
        "digest".as_ref(),
        model.as_os_str(),
        "--ignore-paths".as_ref(),
        "../x".as_ref(),
    ])
    .expect(2);
    assert!(ran.stderr.contains("'..'"), "{}", ran.stderr);
}

#[test]
fn usage_errors_exit_2_with_a_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m");
    write_tree(&model, &[("a", b"a")]);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["verify", "M"], "--manifest"),
        (
            vec!["verify", "M", "--manifest", "x", "--digest", "sha256:00"],
            "cannot be used with",
        ),
        // Not offered where a model manifest is made (`--help` does not list it either).
        (
            vec!["digest", "M", "--algo", "sha512"],
            "invalid value 'sha512'",
        ),
        (
            vec!["manifest", "M", "--algo", "sha512"],
            "invalid value 'sha512'",
        ),
        (
            vec!["digest", "M", "--algo", "blake3", "--shard-size", "1000"],
            "drop the shard size",
        ),
        (vec!["digest", "M", "--shard-size", "0"], "0"),
        (vec!["hash", "M", "--jobs", "0"], "0"),
        (vec!["hash", "--algo", "md5", "M"], "md5"),
    ];
    for (args, needle) in cases {
        let args: Vec<std::ffi::OsString> = args
            .iter()
            .map(|a| {
                if *a == "M" {
                    model.clone().into_os_string()
                } else {
                    a.into()
                }
            })
            .collect();
        let ran = vouch_run(&args).expect(2);
        assert!(ran.stderr.contains(needle), "{args:?}: {}", ran.stderr);
    }
}

#[test]
fn jobs_bounds_the_hashing_threads() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    for i in 0..8 {
        write_tree(
            &model,
            &[(&format!("f{i}.bin"), &pseudo_random(48 << 20, i))],
        );
    }
    for jobs in [1usize, 3] {
        let mut child = vouch()
            .args([
                "hash".as_ref(),
                "--jobs".as_ref(),
                jobs.to_string().as_ref(),
                "--algo".as_ref(),
                "sha512".as_ref(),
                model.as_os_str(),
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut most = 0;
        while child.try_wait().unwrap().is_none() {
            let tasks = std::fs::read_dir(format!("/proc/{}/task", child.id())).map(|d| {
                d.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                    .filter(|name| name.starts_with("vouch-hash"))
                    .count()
            });
            most = most.max(tasks.unwrap_or(0));
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert!(child.wait().unwrap().success());
        assert_eq!(most, jobs, "--jobs {jobs}: saw {most} hashing threads");
    }
}

#[test]
fn progress_goes_to_stderr_only_when_asked_or_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.bin");
    std::fs::write(&file, pseudo_random(64 << 20, 5)).unwrap();
    let quiet = vouch_run(["hash".as_ref(), file.as_os_str()]).expect(0);
    assert!(
        quiet.stderr.is_empty(),
        "auto is silent on a pipe: {}",
        quiet.stderr
    );
    let never = vouch_run([
        "hash".as_ref(),
        "--progress".as_ref(),
        "never".as_ref(),
        file.as_os_str(),
    ])
    .expect(0);
    assert!(never.stderr.is_empty());
    let always = vouch_run([
        "hash".as_ref(),
        "--progress".as_ref(),
        "always".as_ref(),
        "--algo".as_ref(),
        "sha512".as_ref(),
        file.as_os_str(),
    ])
    .expect(0);
    assert!(always.stderr.contains("hashing"), "{}", always.stderr);
    // Into a log: plain lines, none blank, none before the total is known, and the units of
    // the summary line (decimal).
    assert!(
        always.stderr.lines().all(|line| !line.trim().is_empty())
            && !always.stderr.contains("0 B/0 B")
            && !always.stderr.contains("MiB")
            && always.stderr.contains(" MB"),
        "{}",
        always.stderr
    );
    let plain = vouch_run([
        "hash".as_ref(),
        "--algo".as_ref(),
        "sha512".as_ref(),
        file.as_os_str(),
    ])
    .expect(0);
    assert_eq!(always.stdout, plain.stdout, "progress never touches stdout");
}

/// An approved manifest that Python's json (model-signing) or Go's encoding/json reads
/// otherwise than serde — a key given twice, or a key in another case — is an input error
/// naming the file, never a verdict on what one reader saw.
#[test]
fn an_approval_with_a_duplicate_or_case_variant_key_is_refused() {
    let root = project_root().join("testdata");
    let model = root.join("tiny-model");
    let text = std::fs::read_to_string(root.join("tiny-model.oms.json")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let verify = |name: &str, text: &str| {
        let manifest = dir.path().join(name);
        std::fs::write(&manifest, text).unwrap();
        let ran = vouch_run([
            "verify".as_ref(),
            model.as_os_str(),
            "--manifest".as_ref(),
            manifest.as_os_str(),
        ]);
        (manifest, ran)
    };
    let (_, ran) = verify("as-approved.json", &text);
    ran.expect(0);

    // The last `digest` is the approved one: serde and Python keep it, other readers the first.
    let digest = text.find(r#""digest": "77ab"#).expect("README.md's digest");
    let mut twice = text.clone();
    twice.insert_str(digest, &format!(r#""digest": "{}", "#, "0".repeat(64)));
    let subject = text.replacen(
        "{",
        &format!(
            r#"{{"Subject": [{{"name": "other", "digest": {{"sha256": "{}"}}}}],"#,
            "0".repeat(64)
        ),
        1,
    );
    for (name, text, says) in [
        (
            "twice.json",
            twice,
            r#"predicate.resources[0]: duplicate key "digest""#,
        ),
        (
            "subject.json",
            subject,
            r#"key "Subject" differs from field "subject" only by case"#,
        ),
    ] {
        let (manifest, ran) = verify(name, &text);
        let ran = ran.expect(2);
        assert!(
            ran.stderr.contains(manifest.to_str().unwrap()) && ran.stderr.contains(says),
            "{name}: {}",
            ran.stderr
        );
    }
}

/// The library says what is wrong; the command line adds how to get past it, in flags.
#[test]
fn input_errors_end_with_a_hint_in_flag_words() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    write_tree(&model, &[("w.bin", b"weights")]);

    let bundle = dir.path().join("model.sig");
    std::fs::write(
        &bundle,
        br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","dsseEnvelope":{}}"#,
    )
    .unwrap();
    let ran = vouch_run([
        "verify".as_ref(),
        model.as_os_str(),
        "--manifest".as_ref(),
        bundle.as_os_str(),
    ])
    .expect(2);
    assert!(
        ran.stderr
            .contains("is a Sigstore signature bundle, not a manifest")
            && ran.stderr.contains("\nhint: pass it with --signature"),
        "{}",
        ran.stderr
    );

    let list = dir.path().join("SHA512SUMS");
    std::fs::write(&list, format!("{}  w.bin\n", "ab".repeat(64))).unwrap();
    let ran = vouch_run(["hash".as_ref(), "--check".as_ref(), list.as_os_str()]).expect(2);
    assert!(
        ran.stderr
            .contains("line 1: a sha256 digest has 64 hex digits, found 128")
            && ran.stderr.contains("\nhint: pass --algo sha512"),
        "{}",
        ran.stderr
    );
}

/// The harness reads a child's stdout and stderr while it waits: a child writing far more
/// than a pipe holds (64 KiB) to both finishes at once instead of blocking until the cap.
#[test]
fn the_harness_reads_a_chatty_child_while_it_runs() {
    const BYTES: usize = 8 << 20;
    let started = std::time::Instant::now();
    let ran = run_within(
        std::process::Command::new("sh").args([
            "-c",
            &format!("head -c {BYTES} /dev/zero >&2; head -c {BYTES} /dev/zero; echo done >&2"),
        ]),
        std::time::Duration::from_secs(60),
    )
    .expect(0);
    assert_eq!(ran.stdout.len(), BYTES);
    assert!(ran.stdout.iter().all(|&b| b == 0));
    assert_eq!(ran.stderr.len(), BYTES + "done\n".len());
    assert!(ran.stderr.ends_with("done\n"));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_single_file_is_checked_against_its_own_line_of_a_release_list() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(
        dir.path(),
        &[
            ("dist/vouch.tar.gz", b"release"),
            ("dist/vouch.zip", b"other"),
            ("dist/notes.txt", b"notes"),
        ],
    );
    let line = |data: &[u8], name: &str| format!("{}  {name}\n", sha256_hex(data));
    let in_dir = |args: &[&str]| {
        run(vouch()
            .current_dir(dir.path())
            .args(args)
            .args(["--format", "json"]))
    };
    // A release SHA256SUMS names files by base name; the other lines are not "missing".
    let release = line(b"release", "vouch.tar.gz") + &line(b"other", "vouch.zip");
    std::fs::write(dir.path().join("SHA256SUMS"), &release).unwrap();
    let report = in_dir(&["verify", "dist/vouch.tar.gz", "--check", "SHA256SUMS"])
        .expect(0)
        .json();
    assert_eq!(
        report["subjects"].as_array().unwrap().len(),
        1,
        "{report:#}"
    );
    assert_eq!(report["subjects"][0]["verdict"], "ok", "{report:#}");
    // Or by the path as listed (`sha256sum dist/*`), `./` aside.
    let by_path = line(b"other", "./dist/vouch.zip") + &line(b"release", "dist/vouch.tar.gz");
    std::fs::write(dir.path().join("PATHS"), &by_path).unwrap();
    in_dir(&["verify", "./dist/vouch.tar.gz", "--check", "PATHS"]).expect(0);
    // The line still binds the content.
    std::fs::write(dir.path().join("dist/vouch.zip"), b"tampered").unwrap();
    let report = in_dir(&["verify", "dist/vouch.zip", "--check", "SHA256SUMS"])
        .expect(1)
        .json();
    assert_eq!(report["subjects"][0]["verdict"], "changed", "{report:#}");
    // A file the list does not name, and a file named twice, are refused clearly.
    let ran = in_dir(&["verify", "dist/notes.txt", "--check", "SHA256SUMS"]).expect(2);
    assert!(
        ran.stderr.contains("SHA256SUMS") && ran.stderr.contains("no line names dist/notes.txt"),
        "{}",
        ran.stderr
    );
    let twice = line(b"release", "vouch.tar.gz") + &line(b"release", "dist/vouch.tar.gz");
    std::fs::write(dir.path().join("TWICE"), &twice).unwrap();
    let ran = in_dir(&["verify", "dist/vouch.tar.gz", "--check", "TWICE"]).expect(2);
    assert!(
        ran.stderr.contains("lines 1, 2") && ran.stderr.contains("ambiguous"),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_directory_listing_from_hash_round_trips_through_verify() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(
        dir.path(),
        &[
            ("models/m/a.bin", b"alpha"),
            ("models/m/sub/b.bin", b"beta"),
        ],
    );
    let listing = run(vouch().current_dir(dir.path()).args(["hash", "models/m/"])).expect(0);
    assert!(
        listing.stdout().contains("  models/m/sub/b.bin\n"),
        "{}",
        listing.stdout()
    );
    std::fs::write(dir.path().join("SUMS"), &listing.stdout).unwrap();
    let verify = |model: &str| {
        run(vouch()
            .current_dir(dir.path())
            .args(["verify", model, "--check", "SUMS", "--format", "json"]))
    };
    let report = verify("models/m").expect(0).json();
    assert_eq!(
        report["subjects"].as_array().unwrap().len(),
        2,
        "{report:#}"
    );
    assert!(
        report["approval"]
            .as_str()
            .unwrap()
            .contains("names start with models/m/"),
        "{report:#}"
    );
    verify("./models/m").expect(0);
    std::fs::write(dir.path().join("models/m/sub/b.bin"), b"BETA").unwrap();
    let report = verify("models/m").expect(1).json();
    let changed: Vec<_> = with_verdict(&report, "changed")
        .into_iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["sub/b.bin"], "{report:#}");
    // A model that also holds its own path inside makes the reading ambiguous.
    write_tree(
        &dir.path().join("models/m"),
        &[("models/m/a.bin", b"alpha")],
    );
    let ran = verify("models/m").expect(2);
    assert!(ran.stderr.contains("ambiguous"), "{}", ran.stderr);
}

#[test]
fn report_options_go_with_hash_check_only() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &[("a", b"alpha")]);
    for options in [&["--format", "json"][..], &["--output", "out.txt"]] {
        let ran = run(vouch()
            .current_dir(dir.path())
            .args(["hash", "a"])
            .args(options))
        .expect(2);
        assert!(ran.stderr.contains("go with --check"), "{}", ran.stderr);
        assert!(ran.stdout.is_empty());
    }
    assert!(!dir.path().join("out.txt").exists());
    let ran = run(vouch()
        .current_dir(dir.path())
        .args(["hash", "a", "--quiet"]))
    .expect(2);
    assert!(ran.stderr.contains("--check"), "{}", ran.stderr);
}

/// `verify --cache` with a manifest of a fresh two-file model, in `dir`.
fn cached_verify(model: &Path, manifest: &Path, cache: &Path) -> Ran {
    vouch_run([
        "verify".as_ref(),
        model.as_os_str(),
        "--manifest".as_ref(),
        manifest.as_os_str(),
        "--cache".as_ref(),
        cache.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ])
}

fn cached_model(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let model = dir.join("model");
    std::fs::create_dir(&model).unwrap();
    std::fs::write(model.join("a.bin"), vec![7u8; 200_000]).unwrap();
    std::fs::write(model.join("b.bin"), vec![9u8; 200_000]).unwrap();
    let manifest = dir.join("approved.json");
    write_manifest(&model, &manifest, &[]);
    (model, manifest, dir.join("cache.json"))
}

fn from_cache(ran: &Ran) -> u64 {
    let json: serde_json::Value = serde_json::from_slice(&ran.stdout).unwrap();
    json["bytes_from_cache"].as_u64().unwrap()
}

#[test]
fn hash_cache_change_with_mtime_set_back_is_caught_by_ctime() {
    let dir = tempfile::tempdir().unwrap();
    let (model, manifest, cache) = cached_model(dir.path());
    cached_verify(&model, &manifest, &cache).expect(0);
    // The first run was a full one; the second takes one file from the cache.
    let second = cached_verify(&model, &manifest, &cache).expect(0);
    assert_eq!(from_cache(&second), 200_000);
    let reference = dir.path().join("reference");
    std::fs::copy(model.join("a.bin"), &reference).unwrap();
    let times = std::fs::metadata(model.join("a.bin"))
        .unwrap()
        .modified()
        .unwrap();
    std::fs::File::open(&reference)
        .unwrap()
        .set_modified(times)
        .unwrap();
    let mut edited = vec![7u8; 200_000];
    edited[10] = 0;
    std::fs::write(model.join("a.bin"), edited).unwrap();
    std::fs::write(model.join("b.bin"), {
        let mut b = vec![9u8; 200_000];
        b[5] = 0;
        b
    })
    .unwrap();
    for name in ["a.bin", "b.bin"] {
        std::fs::File::options()
            .write(true)
            .open(model.join(name))
            .unwrap()
            .set_modified(times)
            .unwrap();
    }
    let ran = cached_verify(&model, &manifest, &cache).expect(1);
    assert_eq!(from_cache(&ran), 0);
}

#[test]
fn hash_cache_entry_edited_by_hand_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (model, manifest, cache) = cached_model(dir.path());
    cached_verify(&model, &manifest, &cache).expect(0);
    let text = std::fs::read_to_string(&cache).unwrap();
    let mut stored: serde_json::Value = serde_json::from_str(&text).unwrap();
    for entry in stored["entries"].as_object_mut().unwrap().values_mut() {
        entry["value"] = serde_json::json!(format!("sha256:{}", "00".repeat(32)));
    }
    std::fs::write(&cache, stored.to_string()).unwrap();
    let ran = cached_verify(&model, &manifest, &cache).expect(0);
    assert_eq!(from_cache(&ran), 0, "a forged entry vouched for a file");
    assert!(String::from_utf8_lossy(&ran.stdout).contains("HMAC"));
}

#[test]
fn hash_cache_inside_the_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (model, manifest, _) = cached_model(dir.path());
    let ran = cached_verify(&model, &manifest, &model.join("cache.json")).expect(2);
    assert!(ran.stderr.contains("inside the model"), "{}", ran.stderr);
}

/// `--help` offers an algorithm only where the command takes it: sha512 makes no OMS
/// manifest, so `digest`, `manifest` and `sign` do not list it; `hash` and `verify --check`
/// take it.
#[test]
fn help_offers_only_the_algorithms_a_command_takes() {
    for (command, offered) in [
        ("digest", false),
        ("manifest", false),
        ("sign", false),
        ("verify", true),
        ("hash", true),
    ] {
        let help =
            String::from_utf8(run(vouch().args([command, "--help"])).expect(0).stdout).unwrap();
        let algo = help
            .split("--algo <ALGORITHM>")
            .nth(1)
            .unwrap_or_else(|| panic!("{command} --help has no --algo:\n{help}"));
        let values = algo
            .split("[possible values: ")
            .nth(1)
            .and_then(|rest| rest.split(']').next())
            .unwrap_or_else(|| panic!("{command} --help lists no values:\n{help}"));
        assert_eq!(values.contains("sha512"), offered, "{command}: {values}");
    }
}

/// A file's plain SHA-256 (what sha256sum and release pages print) given as `--digest` is
/// no OMS root digest: the check fails (exit 1), and says which file's SHA-256 it is.
#[test]
fn a_plain_sha256_given_as_a_root_digest_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m");
    write_tree(
        &model,
        &[("weights.bin", b"weights"), ("config.json", b"{}")],
    );
    let plain = vouch::hash::Algorithm::Sha256.digest(b"weights").prefixed();
    for target in [model.clone(), model.join("weights.bin")] {
        let ran = run(vouch()
            .arg("verify")
            .arg(&target)
            .args(["--digest", &plain]))
        .expect(1);
        let text = String::from_utf8(ran.stdout).unwrap();
        assert!(
            text.contains("the pinned digest is the plain SHA-256 of weights.bin"),
            "{text}"
        );
    }
}

/// `verify --output` into the model leaves its own report out, run after run (the second
/// run finds the first one's report there); a file that is no output of this run is extra.
#[test]
fn a_report_written_into_the_model_is_not_one_of_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m");
    write_tree(&model, &[("a.bin", b"a"), ("b.bin", b"b")]);
    let manifest = dir.path().join("approved.json");
    run(vouch().arg("manifest").arg(&model).arg("-o").arg(&manifest)).expect(0);
    let verify = |outputs: &[String]| {
        let mut command = vouch();
        command
            .arg("verify")
            .arg(&model)
            .arg("--manifest")
            .arg(&manifest);
        for output in outputs {
            command.args(["--output", output]);
        }
        run(&mut command)
    };
    let text = format!("{}", model.join("report.txt").display());
    let json = format!("json={}", model.join("report.json").display());
    for _ in 0..2 {
        verify(&[text.clone(), json.clone()]).expect(0);
    }
    let ran = verify(&[json]).expect(1);
    let stdout = String::from_utf8(ran.stdout).unwrap();
    assert!(stdout.contains("extra      report.txt"), "{stdout}");
}

/// A hash cache's key is read only from a regular file of the user running vouch, mode 0600,
/// reached without a link: whoever else could read or make it could forge cache entries.
#[test]
fn a_cache_key_of_another_user_or_behind_a_link_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (model, manifest) = drifted_model(dir.path());
    let cache = dir.path().join("cache.json");
    let key = dir.path().join("cache.json.key");
    let verify = || {
        vouch_run([
            "verify".as_ref(),
            model.as_os_str(),
            "--manifest".as_ref(),
            manifest.as_os_str(),
            "--cache".as_ref(),
            cache.as_os_str(),
        ])
    };
    let elsewhere = dir.path().join("elsewhere.key");
    std::fs::write(&elsewhere, format!("{}\n", "ab".repeat(32))).unwrap();
    std::fs::set_permissions(
        &elsewhere,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    std::os::unix::fs::symlink(&elsewhere, &key).unwrap();
    let ran = verify().expect(2);
    assert!(ran.stderr.contains("symbolic link"), "{}", ran.stderr);
    std::fs::remove_file(&key).unwrap();
    if unsafe { libc::geteuid() } == 0 {
        std::fs::rename(&elsewhere, &key).unwrap();
        std::os::unix::fs::chown(&key, Some(65534), Some(65534)).unwrap();
        let ran = verify().expect(2);
        assert!(
            ran.stderr.contains("belongs to another user"),
            "{}",
            ran.stderr
        );
    }
}

/// A write through a shared mapping moves a file's times only at the first write to a clean
/// page. vouch flushes a file's written pages before it stamps it for the cache, so bytes
/// changed later through a page that was already dirty still miss the cache.
#[test]
fn bytes_changed_through_a_dirty_mapped_page_miss_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    let names: Vec<String> = (0..50).map(|i| format!("f{i:02}.bin")).collect();
    for (i, name) in names.iter().enumerate() {
        write_tree(&model, &[(name.as_str(), &pseudo_random(8192, i as u64))]);
    }
    let manifest = dir.path().join("approved.json");
    write_manifest(&model, &manifest, &[]);
    let cache = dir.path().join("cache.json");
    let verify = || {
        vouch_run([
            "verify".as_ref(),
            model.as_os_str(),
            "--manifest".as_ref(),
            manifest.as_os_str(),
            "--cache".as_ref(),
            cache.as_os_str(),
            "--format".as_ref(),
            "json".as_ref(),
        ])
    };
    let target = model.join("f07.bin");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&target)
        .unwrap();
    let mut map = unsafe { memmap2::MmapMut::map_mut(&file) }.unwrap();
    // The first write dirties the page (and moves the times) but keeps the approved bytes.
    let first = map[0];
    unsafe { std::ptr::write_volatile(map.as_mut_ptr(), first) };
    verify().expect(0);
    let before = std::fs::metadata(&target).unwrap();
    map[..16].copy_from_slice(b"sixteen new byte");
    map.flush().unwrap();
    drop(map);
    let after = std::fs::metadata(&target).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_ne!(
        (before.mtime_nsec(), before.ctime_nsec()),
        (after.mtime_nsec(), after.ctime_nsec()),
        "the flushed page took the write without moving the file's times"
    );
    let report = verify().expect(1).json();
    let changed: Vec<&str> = with_verdict(&report, "changed")
        .into_iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["f07.bin"], "{report:#}");
}
