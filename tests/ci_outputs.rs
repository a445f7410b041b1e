//! Reports as CI platforms take them: GitHub annotations with repository paths and the
//! summary first, the job summary page, several outputs in one run, and SARIF that
//! Microsoft's SARIF Multitool accepts under GitHub code scanning's ingestion rules.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// A repository holding `models/m` and its approval, then drifted: a.bin changed, b.bin
/// removed, e.bin added.
fn drifted_repository(root: &Path) -> (PathBuf, PathBuf) {
    let model = root.join("models/m");
    write_tree(
        &model,
        &[("a.bin", b"alpha"), ("b.bin", b"beta"), ("c.bin", b"gamma")],
    );
    let manifest = root.join("approved.json");
    write_manifest(&model, &manifest, &[]);
    std::fs::write(model.join("a.bin"), b"ALPHA").unwrap();
    std::fs::remove_file(model.join("b.bin")).unwrap();
    std::fs::write(model.join("e.bin"), b"epsilon").unwrap();
    (model, manifest)
}

fn verify(model: &Path, manifest: &Path, extra: &[&str]) -> std::process::Command {
    let mut command = vouch();
    command
        .arg("verify")
        .arg(model)
        .arg("--manifest")
        .arg(manifest)
        .args(extra)
        .env_remove("GITHUB_WORKSPACE")
        .env_remove("GITHUB_STEP_SUMMARY");
    command
}

#[test]
fn github_annotations_lead_with_the_summary_and_name_files_from_the_workspace() {
    let dir = tempfile::tempdir().unwrap();
    let (model, manifest) = drifted_repository(dir.path());
    let summary = dir.path().join("step-summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let out = run(verify(&model, &manifest, &["--format", "github"])
        .current_dir("/")
        .env("GITHUB_WORKSPACE", dir.path())
        .env("GITHUB_STEP_SUMMARY", &summary))
    .expect(1)
    .stdout();
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("::error title=vouch::")
            && lines[0].contains("failed verification (3 of 4 subjects)"),
        "the summary comes first, before GitHub's ten-annotation limit:\n{out}"
    );
    let files: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("::error file="))
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(
        files,
        ["models/m/a.bin", "models/m/b.bin", "models/m/e.bin"],
        "{out}"
    );
    let page = std::fs::read_to_string(&summary).unwrap();
    assert!(
        page.starts_with("earlier step\n"),
        "appended, not replaced: {page}"
    );
    assert!(page.contains("| changed | `a.bin` |"), "{page}");
    assert!(page.contains("| missing | `b.bin` |"), "{page}");
    assert!(page.contains("| extra | `e.bin` |"), "{page}");
}

#[test]
fn a_path_prefix_says_where_the_target_is_in_the_repository() {
    let dir = tempfile::tempdir().unwrap();
    let (model, manifest) = drifted_repository(dir.path());
    let out = run(&mut verify(
        &model,
        &manifest,
        &["--format", "github", "--path-prefix", "deploy/bert"],
    ))
    .expect(1)
    .stdout();
    assert!(out.contains("::error file=deploy/bert/a.bin,"), "{out}");
    // Without GitHub annotations nothing is written to the step summary.
    let summary = dir.path().join("summary.md");
    run(verify(&model, &manifest, &[]).env("GITHUB_STEP_SUMMARY", &summary)).expect(1);
    assert!(!summary.exists());
}

#[test]
fn several_outputs_are_written_in_one_run_and_the_text_summary_stays_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let (model, manifest) = drifted_repository(dir.path());
    let out = |name: &str| dir.path().join("out").join(name);
    std::fs::create_dir(dir.path().join("out")).unwrap();
    let arg = |format: &str, name: &str| format!("{format}={}", out(name).display());
    let ran = run(&mut verify(
        &model,
        &manifest,
        &[
            "--output",
            &arg("sarif", "v.sarif"),
            "--output",
            &arg("junit", "v.xml"),
            "--output",
            &arg("json", "v.json"),
        ],
    ))
    .expect(1);
    assert!(ran.stdout().contains("vouch: FAILED"), "{}", ran.stdout());
    let json: Value = serde_json::from_slice(&std::fs::read(out("v.json")).unwrap()).unwrap();
    assert_eq!(json["status"], "failed");
    let sarif: Value = serde_json::from_slice(&std::fs::read(out("v.sarif")).unwrap()).unwrap();
    assert_eq!(sarif["runs"][0]["results"].as_array().unwrap().len(), 3);
    let xml = std::fs::read_to_string(out("v.xml")).unwrap();
    roxmltree::Document::parse(&xml).unwrap();

    // Two outputs that both take stdout's place are refused before anything is checked.
    let twice = run(&mut verify(
        &model,
        &manifest,
        &["--output", "a.txt", "--output", "b.txt"],
    ))
    .expect(2);
    assert!(twice.stderr.contains("--output FILE"), "{}", twice.stderr);
}

#[test]
fn sarif_passes_the_sarif_multitool_under_githubs_ingestion_rules() {
    let test = "sarif_passes_the_sarif_multitool_under_githubs_ingestion_rules";
    let Some(multitool) = require_tool(test, "Sarif.Multitool") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (model, manifest) = drifted_repository(dir.path());
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();

    // A drifted directory, a single file against a pin it no longer matches, and a run
    // that stopped with an error: every result has a location.
    let drifted = logs.join("drifted.sarif");
    run(
        verify(&model, &manifest, &["--format", "sarif", "--output"])
            .arg(&drifted)
            .current_dir(dir.path()),
    )
    .expect(1);
    let single = dir.path().join("w.bin");
    std::fs::write(&single, b"weights").unwrap();
    let pinned = logs.join("pinned.sarif");
    run(vouch()
        .current_dir(dir.path())
        .arg("verify")
        .arg(&single)
        .args(["--digest", &format!("sha256:{}", "0".repeat(64))])
        .args(["--format", "sarif", "--output"])
        .arg(&pinned))
    .expect(1);
    let stopped = logs.join("stopped.sarif");
    run(verify(
        &model,
        &dir.path().join("no-such.json"),
        &["--format", "sarif", "--output"],
    )
    .arg(&stopped)
    .current_dir(dir.path()))
    .expect(2);

    // A drift run: a drifted directory, a file off its pin, an image that cannot be read.
    let fleet = tempfile::tempdir().unwrap();
    let config = drifted_fleet(fleet.path());
    let drift = logs.join("drift.sarif");
    run(drift_run(&config, &["--format", "sarif", "--output"])
        .arg(&drift)
        .current_dir(fleet.path()))
    .expect(1);

    for log in [&drifted, &pinned, &stopped, &drift] {
        let sarif: Value = serde_json::from_slice(&std::fs::read(log).unwrap()).unwrap();
        let results = sarif["runs"][0]["results"].as_array().unwrap();
        assert!(!results.is_empty(), "{}", log.display());
        for result in results {
            let uri = &result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"];
            assert!(uri.is_string(), "{}: {result}", log.display());
        }
        let errors = multitool_errors(&multitool, log, dir.path());
        assert!(errors.is_empty(), "{}: {errors:#?}", log.display());
    }
    let drifted: Value = serde_json::from_slice(&std::fs::read(&drifted).unwrap()).unwrap();
    assert_eq!(
        result_uris(&drifted),
        ["models/m/a.bin", "models/m/b.bin", "models/m/e.bin"]
    );

    // The validator is no rubber stamp: a result without a location fails GitHub's rules.
    let mut broken = drifted.clone();
    broken["runs"][0]["results"][0]
        .as_object_mut()
        .unwrap()
        .remove("locations");
    let broken_log = logs.join("broken.sarif");
    std::fs::write(&broken_log, serde_json::to_vec(&broken).unwrap()).unwrap();
    let errors = multitool_errors(&multitool, &broken_log, dir.path());
    assert!(
        errors.iter().any(|e| e.contains("locations")),
        "the Multitool let a result without a location through: {errors:#?}"
    );
}

/// A repository whose `vouch.toml` names a drifted model directory, a single file that no
/// longer matches its pin, and an image whose layout is gone.
fn drifted_fleet(root: &Path) -> PathBuf {
    drifted_repository(root);
    std::fs::write(root.join("w.bin"), b"weights").unwrap();
    let config = root.join("vouch.toml");
    let pin = format!("sha256:{}", "0".repeat(64));
    std::fs::write(
        &config,
        format!(
            r#"report_dir = "reports"

[[target]]
name = "m"
owner = "ml@example.com"
path = "models/m"
manifest = "approved.json"

[[target]]
name = "w"
owner = "ml@example.com"
path = "w.bin"
digest = "{pin}"

[[target]]
name = "app"
owner = "ops@example.com"
image = "oci:gone-layout:v1"
digest = "{pin}"
"#
        ),
    )
    .unwrap();
    config
}

fn drift_run(config: &Path, extra: &[&str]) -> std::process::Command {
    let mut command = vouch();
    command
        .args(["drift", "run", "-c"])
        .arg(config)
        .args(extra)
        .env_remove("GITHUB_WORKSPACE")
        .env_remove("GITHUB_STEP_SUMMARY");
    command
}

/// The URIs of a SARIF log's results, in order.
fn result_uris(sarif: &Value) -> Vec<&str> {
    sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .unwrap_or_else(|| panic!("a result without a location: {r}"))
        })
        .collect()
}

#[test]
fn a_drift_run_locates_its_subjects_as_repository_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = drifted_fleet(dir.path());
    let summary = dir.path().join("step-summary.md");
    let sarif = dir.path().join("drift.sarif");
    let ran = run(drift_run(
        &config,
        &[
            "--format",
            "github",
            "--output",
            &format!("sarif={}", sarif.display()),
        ],
    )
    .current_dir("/")
    .env("GITHUB_WORKSPACE", dir.path())
    .env("GITHUB_STEP_SUMMARY", &summary))
    .expect(1);
    let out = ran.stdout();
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("::error title=vouch::drift run"),
        "the summary comes first:\n{out}"
    );
    let files: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("::error file="))
        .map(|l| l.split(',').next().unwrap())
        .collect();
    let expected = [
        "models/m/a.bin",
        "models/m/b.bin",
        "models/m/e.bin",
        "w.bin",
        "vouch.toml",
    ];
    assert_eq!(files, expected, "{out}");
    let sarif: Value = serde_json::from_slice(&std::fs::read(&sarif).unwrap()).unwrap();
    assert_eq!(result_uris(&sarif), expected);
    let page = std::fs::read_to_string(&summary).unwrap();
    assert!(page.contains("`m: a.bin`"), "{page}");
}

/// The error-level findings of `Sarif.Multitool validate` with the SARIF and GitHub rules.
fn multitool_errors(multitool: &Path, log: &Path, work: &Path) -> Vec<String> {
    let out = work.join(format!(
        "{}.validation.sarif",
        log.file_name().unwrap().to_string_lossy()
    ));
    let _ = std::fs::remove_file(&out);
    let ran = run(std::process::Command::new(multitool)
        .args(["validate", "--rule-kind", "Sarif;Gh", "--output"])
        .arg(&out)
        .arg(log)
        .env("DOTNET_CLI_TELEMETRY_OPTOUT", "1"));
    assert_eq!(ran.code, Some(0), "{}\n{}", ran.stdout(), ran.stderr);
    let findings: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    findings["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["level"] == "error")
        .map(|r| r.to_string())
        .collect()
}
