//! What `cargo xtask dist` ships: the OCI image of vouch (built here by the same code from
//! the binary under test, stripped of its debug info to keep the test quick) and the
//! completion scripts.

mod common;

#[path = "../xtask/src/image.rs"]
mod image;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

#[test]
fn the_image_of_vouch_verifies_inspects_and_runs_its_entrypoint() {
    let test = "the_image_of_vouch_verifies_inspects_and_runs_its_entrypoint";
    let (Some(_), Some(skopeo), Some(strip), Some(_), Some(chroot)) = (
        require_tool(test, "umoci"),
        require_tool(test, "skopeo"),
        require_tool(test, "strip"),
        require_tool(test, "ldd"),
        require_tool(test, "chroot"),
    ) else {
        return;
    };
    if unsafe { libc::geteuid() } != 0 {
        skip(test, "chroot into the unpacked image needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("vouch");
    run(Command::new(strip)
        .arg("--strip-debug")
        .arg("-o")
        .arg(&binary)
        .arg(env!("CARGO_BIN_EXE_vouch")))
    .expect(0);
    let layout = dir.path().join("layout");
    image::build_image(&binary, &layout, "test", &dir.path().join("work")).unwrap();
    let reference = format!("oci:{}:test", layout.display());

    let verified = vouch_run([
        "oci",
        "verify",
        &reference,
        "--diff-ids",
        "--format",
        "json",
    ])
    .expect(0);
    let report = verified.json();
    assert_eq!(report["status"], "verified");
    let names: Vec<&str> = report["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.len(),
        4,
        "manifest, config, one layer and its diff_id: {names:?}"
    );
    assert!(names[3].starts_with("layer 1 diff_id"), "{names:?}");

    let inspected = run(Command::new(&skopeo).args(["inspect", &reference])).expect(0);
    let inspected = inspected.json();
    let digest = vouch_run(["oci", "digest", &reference]).expect(0).stdout();
    assert_eq!(inspected["Digest"], digest.trim());
    assert_eq!(inspected["Os"], "linux");
    assert_eq!(
        inspected["Layers"].as_array().unwrap().len(),
        1,
        "{inspected}"
    );

    // Unpacked as a runtime would, the image holds the binary, the files ldd names for it
    // and the CA bundle, nothing else; its entrypoint runs there alone.
    let bundle = dir.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image", &format!("{}:test", layout.display())])
        .arg(&bundle))
    .expect(0);
    let rootfs = bundle.join("rootfs");
    let mut expected: BTreeSet<PathBuf> = image::needed_libraries(&binary)
        .unwrap()
        .into_iter()
        .collect();
    expected.insert(PathBuf::from(image::ENTRYPOINT));
    let ca_bundle = Path::new("/etc/ssl/certs/ca-certificates.crt");
    if ca_bundle.is_file() {
        expected.insert(ca_bundle.to_path_buf());
    }
    assert_eq!(files_under(&rootfs, Path::new("/")), expected);

    let runtime: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    let entrypoint = runtime["process"]["args"][0].as_str().unwrap();
    assert_eq!(entrypoint, image::ENTRYPOINT);
    let inside = run(Command::new(chroot)
        .arg(&rootfs)
        .args([entrypoint, "--version"])
        .env_clear())
    .expect(0);
    let outside = vouch_run(["--version"]).expect(0);
    assert_eq!(inside.stdout(), outside.stdout());
    assert!(inside.stdout().starts_with("vouch "), "{}", inside.stdout());
}

/// Every file (not directory) under `dir`, as the absolute path it has in the image.
fn files_under(dir: &Path, image_path: &Path) -> BTreeSet<PathBuf> {
    let mut files = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = image_path.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            files.extend(files_under(&entry.path(), &path));
        } else {
            files.insert(path);
        }
    }
    files
}

#[test]
fn the_bash_completion_script_loads_and_completes_vouch() {
    let test = "the_bash_completion_script_loads_and_completes_vouch";
    let Some(bash) = require_tool(test, "bash") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("vouch.bash");
    std::fs::write(&script, vouch_run(["completions", "bash"]).expect(0).stdout).unwrap();
    run(Command::new(&bash).arg("-n").arg(&script)).expect(0);

    // Sourced, it registers a completion for vouch that offers the subcommands and the
    // flags of one.
    let probe = r#"source "$1"
complete -p vouch
COMP_WORDS=(vouch ve); COMP_CWORD=1; _vouch vouch ve vouch; echo "words: ${COMPREPLY[*]}"
COMP_WORDS=(vouch oci verify --dif); COMP_CWORD=3; _vouch vouch --dif verify; echo "flags: ${COMPREPLY[*]}""#;
    let ran = run(Command::new(&bash)
        .args(["-c", probe, "probe"])
        .arg(&script))
    .expect(0);
    let out = ran.stdout();
    assert!(out.contains("-F _vouch vouch"), "{out}");
    assert!(out.contains("words: verify"), "{out}");
    assert!(out.contains("flags: --diff-ids"), "{out}");
}

#[test]
fn every_shell_gets_a_completion_script_and_others_are_refused() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = vouch_run(["completions", shell]).expect(0).stdout();
        assert!(script.contains("vouch"), "{shell}: {script}");
        assert!(script.contains("--manifest-digest"), "{shell} lacks a flag");
    }
    let refused = vouch_run(["completions", "tcsh"]).expect(2);
    assert!(refused.stderr.contains("tcsh"), "{}", refused.stderr);
}

/// `check-jsonschema --builtin-schema SCHEMA FILES…`, which must exit `code`; its output.
fn schema_check(checker: &Path, schema: &str, files: &[&Path], code: i32) -> String {
    let ran = run(Command::new(checker)
        .args(["--builtin-schema", schema])
        .args(files));
    let output = format!("{}{}", ran.stdout(), ran.stderr);
    assert_eq!(ran.code, Some(code), "{schema} on {files:?}:\n{output}");
    output
}

/// The fenced block of README.md whose first line is `first_line`.
fn readme_block(first_line: &str) -> String {
    let readme = std::fs::read_to_string(project_root().join("README.md")).unwrap();
    let start = readme
        .find(&format!("```yaml\n{first_line}\n"))
        .unwrap_or_else(|| panic!("README.md has no yaml block starting with {first_line}"));
    let body = &readme[start + "```yaml\n".len()..];
    body[..body.find("```").unwrap()].to_string()
}

#[test]
fn the_action_and_the_gitlab_template_and_their_readme_examples_pass_the_platform_schemas() {
    let test =
        "the_action_and_the_gitlab_template_and_their_readme_examples_pass_the_platform_schemas";
    let Some(checker) = require_tool(test, "check-jsonschema") else {
        return;
    };
    let root = project_root();
    let dir = tempfile::tempdir().unwrap();
    let workflow = dir.path().join("model-gate.yml");
    std::fs::write(
        &workflow,
        readme_block("# .github/workflows/model-gate.yml"),
    )
    .unwrap();
    let pipeline = dir.path().join("gitlab-ci.yml");
    std::fs::write(&pipeline, readme_block("# .gitlab-ci.yml")).unwrap();
    let action = root.join("action.yml");
    let template = root.join("ci/vouch.gitlab-ci.yml");
    schema_check(&checker, "vendor.gitlab-ci", &[&template, &pipeline], 0);
    schema_check(&checker, "vendor.github-workflows", &[&workflow], 0);

    // The action passes beside a copy that runs on an unknown runtime, which the schema
    // refuses: the errors name the copy alone.
    let broken = dir.path().join("action.yml");
    let text = std::fs::read_to_string(&action).unwrap();
    std::fs::write(&broken, text.replace("using: composite", "using: compost")).unwrap();
    let output = schema_check(&checker, "vendor.github-actions", &[&action, &broken], 1);
    assert!(
        output.contains(&format!("{}::$.runs", broken.display())) && output.contains("compost"),
        "{output}"
    );
    assert!(
        !output.contains(&format!("{}::", action.display())),
        "{output}"
    );
}

/// `expression` (Python, over the document `d`) evaluated on the YAML file `file`, as read by
/// the YAML parser check-jsonschema uses.
fn yaml_query(python: &Path, file: &Path, expression: &str) -> String {
    let read = "import sys\nfrom ruamel.yaml import YAML\n\
                d = YAML(typ='safe').load(open(sys.argv[1]))\n\
                print(eval(sys.argv[2]), end='')";
    run(Command::new(python)
        .args(["-c", read])
        .arg(file)
        .arg(expression))
    .expect(0)
    .stdout()
}

/// The `run` script of the action's step `id`.
fn action_step(python: &Path, id: &str) -> String {
    let expression = format!("next(s['run'] for s in d['runs']['steps'] if s.get('id') == '{id}')");
    yaml_query(python, &project_root().join("action.yml"), &expression)
}

/// Runs an action step's script as the runner runs `shell: bash` (`bash --noprofile --norc
/// -eo pipefail FILE`), with `env` and a fresh `$GITHUB_OUTPUT`; the run and what the step
/// wrote to its outputs.
fn run_step(bash: &Path, script: &str, env: &[(&str, &OsStr)], dir: &Path) -> (Ran, String) {
    let file = dir.join("step.sh");
    std::fs::write(&file, script).unwrap();
    let outputs = dir.join("github-output");
    std::fs::write(&outputs, "").unwrap();
    let ran = run(Command::new(bash)
        .args(["--noprofile", "--norc", "-eo", "pipefail"])
        .arg(&file)
        .envs(env.iter().copied())
        .env("GITHUB_OUTPUT", &outputs));
    (ran, std::fs::read_to_string(&outputs).unwrap())
}

#[test]
fn the_actions_steps_run_vouch_with_the_arguments_and_keep_its_exit_status_and_sarif() {
    let test = "the_actions_steps_run_vouch_with_the_arguments_and_keep_its_exit_status_and_sarif";
    let (Some(python), Some(bash)) = (peer_python(test), require_tool(test, "bash")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let vouch = OsStr::new(env!("CARGO_BIN_EXE_vouch"));

    // With `path`, the install step installs nothing and hands the binary on.
    let install = action_step(&python, "install");
    let (ran, outputs) = run_step(
        &bash,
        &install,
        &[("VOUCH_PATH", vouch), ("VOUCH_VERSION", "".as_ref())],
        dir.path(),
    );
    let ran = ran.expect(0);
    assert!(ran.stdout().starts_with("vouch "), "{}", ran.stdout());
    assert_eq!(outputs, format!("binary={}\n", vouch.to_str().unwrap()));

    let step = action_step(&python, "run");
    let root = project_root();
    let model = dir.path().join("model");
    run(Command::new("cp")
        .arg("-r")
        .arg(root.join("testdata/tiny-model"))
        .arg(&model))
    .expect(0);
    let manifest = root.join("testdata/tiny-model.oms.json");
    // One argument per line; a path with a space stays one argument.
    let spaced = dir.path().join("approved manifest.json");
    std::fs::copy(&manifest, &spaced).unwrap();
    let args = format!("{}\n--manifest\n{}\n", model.display(), spaced.display());
    let sarif = dir.path().join("vouch.sarif");
    let env = |command: &'static str| {
        [
            ("VOUCH", vouch),
            ("VOUCH_COMMAND", OsStr::new(command)),
            ("VOUCH_ARGS", OsStr::new(&args)),
            ("VOUCH_SARIF", sarif.as_os_str()),
        ]
    };

    let verify = env("verify");
    let (ran, outputs) = run_step(&bash, &step, &verify, dir.path());
    ran.expect(0);
    assert_eq!(outputs, "exit-code=0\n");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sarif).unwrap()).unwrap();
    assert_eq!(report["version"], "2.1.0");
    assert_eq!(report["runs"][0]["results"].as_array().unwrap().len(), 0);

    flip_byte(&model.join("model.safetensors"), 100);
    let (ran, outputs) = run_step(&bash, &step, &verify, dir.path());
    ran.expect(1);
    assert_eq!(outputs, "exit-code=1\n");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sarif).unwrap()).unwrap();
    let results = report["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{report}");
    assert!(
        results[0].to_string().contains("model.safetensors"),
        "{report}"
    );

    let hash = env("hash");
    let (ran, outputs) = run_step(&bash, &step, &hash, dir.path());
    let ran = ran.expect(2);
    assert!(
        ran.stderr
            .contains("command must be verify, oci verify or drift run"),
        "{}",
        ran.stderr
    );
    assert_eq!(outputs, "");
}

#[test]
fn the_gitlab_templates_script_runs_vouch_and_writes_the_junit_report() {
    let test = "the_gitlab_templates_script_runs_vouch_and_writes_the_junit_report";
    let (Some(python), Some(sh)) = (peer_python(test), require_tool(test, "sh")) else {
        return;
    };
    // The runner runs the script's lines in one shell that stops at the first failing one.
    let template = project_root().join("ci/vouch.gitlab-ci.yml");
    let script = yaml_query(&python, &template, "'\\n'.join(d['.vouch']['script'])");
    let dir = tempfile::tempdir().unwrap();
    let root = project_root();
    let report = dir.path().join("vouch-junit.xml");
    let job = |args: String| {
        run(Command::new(&sh)
            .args(["-e", "-c", &script])
            .env("VOUCH_BINARY", env!("CARGO_BIN_EXE_vouch"))
            .env("VOUCH_COMMAND", "verify")
            .env("VOUCH_ARGS", args)
            .env("VOUCH_REPORT", &report))
    };
    let approved = root.join("testdata/tiny-model.oms.json");
    job(format!(
        "{} --manifest {}",
        root.join("testdata/tiny-model").display(),
        approved.display()
    ))
    .expect(0);
    let xml = std::fs::read_to_string(&report).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let cases = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .count();
    assert_eq!(cases, 4, "one test case per file: {xml}");

    // A model that is not the approved one fails the job, and the report says which file.
    let other = dir.path().join("other");
    write_tree(&other, &[("config.json", b"{}")]);
    job(format!(
        "{} --manifest {}",
        other.display(),
        approved.display()
    ))
    .expect(1);
    let xml = std::fs::read_to_string(&report).unwrap();
    assert!(
        xml.contains("<failure") && xml.contains("model.safetensors"),
        "{xml}"
    );
}
