//! The recipes of docs/drift.md, as written there (the blocks marked `<!-- recipe: NAME -->`):
//! the systemd units pass `systemd-analyze verify`, the Kubernetes objects pass
//! `kubernetes-validate` and keep their state where the config cannot be written, and the
//! recipes' commands run as an unprivileged user with a read-only config directory, their
//! state in `$STATE_DIRECTORY` — and stop with exit 3, recording nothing, when it is not
//! writable.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

/// The text of the block marked `<!-- recipe: NAME -->` in docs/drift.md.
fn recipe(name: &str) -> String {
    let doc = std::fs::read_to_string(project_root().join("docs/drift.md")).unwrap();
    let marker = format!("<!-- recipe: {name} -->\n```");
    let at = doc
        .find(&marker)
        .unwrap_or_else(|| panic!("docs/drift.md has no block marked recipe: {name}"));
    let body = &doc[at + marker.len()..];
    let body = &body[body.find('\n').expect("a fenced block") + 1..];
    body[..body.find("```").expect("the block is closed")].to_string()
}

/// The words after `ExecStart=/usr/local/bin/vouch` in the service unit.
fn exec_start_args(unit: &str) -> Vec<String> {
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart=/usr/local/bin/vouch "))
        .expect("the unit starts /usr/local/bin/vouch");
    line.split_whitespace().map(String::from).collect()
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn the_systemd_units_pass_systemd_analyze_verify() {
    let test = "the_systemd_units_pass_systemd_analyze_verify";
    let Some(analyze) = require_tool(test, "systemd-analyze") else {
        return;
    };
    let service = recipe("vouch-drift.service");
    for line in ["DynamicUser=yes", "StateDirectory=vouch", "Type=oneshot"] {
        assert!(service.lines().any(|l| l == line), "the unit lacks {line}");
    }
    assert_eq!(
        exec_start_args(&service),
        ["drift", "run", "-c", "/etc/vouch/vouch.toml"]
    );
    // verify wants the program of ExecStart= to exist: the binary under test stands in.
    let dir = tempfile::tempdir().unwrap();
    let unit = service.replace(
        "ExecStart=/usr/local/bin/vouch ",
        &format!("ExecStart={} ", env!("CARGO_BIN_EXE_vouch")),
    );
    std::fs::write(dir.path().join("vouch-drift.service"), unit).unwrap();
    std::fs::write(
        dir.path().join("vouch-drift.timer"),
        recipe("vouch-drift.timer"),
    )
    .unwrap();
    let ran = run(Command::new(analyze)
        .arg("verify")
        .arg(dir.path().join("vouch-drift.service"))
        .arg(dir.path().join("vouch-drift.timer")));
    // An unknown key is only a warning on stderr: any message is a failure here.
    assert!(
        ran.code == Some(0) && ran.stderr.trim().is_empty(),
        "systemd-analyze verify: exit {:?}\n{}{}",
        ran.code,
        ran.stdout(),
        ran.stderr
    );
}

/// The documents of a YAML file, as JSON, read by PyYAML in the peer venv.
fn yaml_documents(python: &Path, path: &Path) -> Vec<Value> {
    let ran = run(Command::new(python)
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(path))
    .expect(0);
    ran.json().as_array().unwrap().clone()
}

/// A pod spec keeps the config read-only and the state on a volume of its own, named by
/// `STATE_DIRECTORY`, on a disk no other host writes.
fn assert_state_kept_apart(pod: &Value, claims: &[&Value], what: &str) {
    let container = &pod["containers"][0];
    let mounts = container["volumeMounts"].as_array().unwrap();
    let mount = |name: &str| {
        mounts
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("{what} mounts no {name} volume"))
    };
    assert_eq!(mount("config")["readOnly"], true, "{what}: config");
    assert_eq!(mount("config")["mountPath"], "/config", "{what}");
    let state = mount("state");
    assert_ne!(state["readOnly"], true, "{what}: the state is written");
    let state_directory = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "STATE_DIRECTORY")
        .unwrap_or_else(|| panic!("{what} sets no STATE_DIRECTORY"));
    assert_eq!(state_directory["value"], state["mountPath"], "{what}");
    let volumes = pod["volumes"].as_array().unwrap();
    let config = volumes.iter().find(|v| v["name"] == "config").unwrap();
    assert!(config["configMap"].is_object(), "{what}: {config}");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{what}");
    for claim in claims {
        assert_eq!(
            claim["spec"]["accessModes"],
            serde_json::json!(["ReadWriteOnce"]),
            "{what}: a history is never shared between hosts"
        );
    }
}

#[test]
fn the_kubernetes_objects_pass_kubernetes_validate_and_keep_state_writable() {
    let test = "the_kubernetes_objects_pass_kubernetes_validate_and_keep_state_writable";
    let (Some(python), Some(validate)) =
        (peer_python(test), require_tool(test, "kubernetes-validate"))
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for name in ["kubernetes-cronjob.yaml", "kubernetes-fleet.yaml"] {
        let path = dir.path().join(name);
        std::fs::write(&path, recipe(name)).unwrap();
        files.push(path);
    }
    let ran = run(Command::new(validate)
        .args(["--strict", "--quiet"])
        .args(&files));
    assert!(
        ran.code == Some(0) && !ran.stdout().contains("ERROR") && !ran.stderr.contains("ERROR"),
        "kubernetes-validate: exit {:?}\n{}{}",
        ran.code,
        ran.stdout(),
        ran.stderr
    );

    let cron = yaml_documents(&python, &files[0]);
    let kind = |docs: &[Value], kind: &str| {
        docs.iter()
            .find(|d| d["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind}"))
            .clone()
    };
    let cronjob = kind(&cron, "CronJob");
    let job = &cronjob["spec"]["jobTemplate"]["spec"];
    assert_eq!(job["backoffLimit"], 0, "a drifted model alerts once");
    let claim = kind(&cron, "PersistentVolumeClaim");
    let pod = &job["template"]["spec"];
    assert_state_kept_apart(pod, &[&claim], "the CronJob");
    let state_volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "state")
        .unwrap();
    assert_eq!(
        state_volume["persistentVolumeClaim"]["claimName"],
        claim["metadata"]["name"]
    );
    assert_eq!(
        pod["containers"][0]["args"],
        serde_json::json!([
            "drift",
            "run",
            "-c",
            "/config/vouch.toml",
            "--format",
            "json"
        ])
    );

    let fleet = kind(&yaml_documents(&python, &files[1]), "StatefulSet");
    let claims: Vec<&Value> = fleet["spec"]["volumeClaimTemplates"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(claims[0]["metadata"]["name"], "state", "one state per pod");
    assert_state_kept_apart(&fleet["spec"]["template"]["spec"], &claims, "the fleet");
}

#[test]
fn the_sidecar_recipe_passes_kubernetes_validate_and_probes_readyz() {
    let test = "the_sidecar_recipe_passes_kubernetes_validate_and_probes_readyz";
    let (Some(python), Some(validate)) =
        (peer_python(test), require_tool(test, "kubernetes-validate"))
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubernetes-sidecar.yaml");
    std::fs::write(&path, recipe("kubernetes-sidecar.yaml")).unwrap();
    let ran = run(Command::new(validate)
        .args(["--strict", "--quiet"])
        .arg(&path));
    assert!(
        ran.code == Some(0) && !ran.stdout().contains("ERROR") && !ran.stderr.contains("ERROR"),
        "kubernetes-validate: exit {:?}\n{}{}",
        ran.code,
        ran.stdout(),
        ran.stderr
    );
    let docs = yaml_documents(&python, &path);
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let containers = pod["containers"].as_array().unwrap();
    let vouch = containers
        .iter()
        .find(|c| c["name"] == "vouch")
        .expect("a vouch sidecar");
    let args: Vec<&str> = vouch["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(&args[..2], ["drift", "watch"]);
    let listen = args[args.iter().position(|a| *a == "--listen").unwrap() + 1];
    assert_eq!(listen, "$(POD_IP):9464", "the kubelet probes the pod's IP");
    assert!(args.contains(&"--allow-non-loopback"));
    let probe = &vouch["readinessProbe"]["httpGet"];
    assert_eq!(probe["path"], "/readyz");
    assert_eq!(probe["port"], 9464);
    assert_eq!(vouch["livenessProbe"]["httpGet"]["path"], "/healthz");
    let pod_ip = vouch["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "POD_IP")
        .unwrap();
    assert_eq!(pod_ip["valueFrom"]["fieldRef"]["fieldPath"], "status.podIP");
    // Both containers see the same model, read-only.
    for container in containers {
        let models = container["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "models")
            .unwrap_or_else(|| panic!("{} mounts no models", container["name"]));
        assert_eq!(models["readOnly"], true);
        assert_eq!(models["mountPath"], "/srv/models");
    }
    let mut sidecar_first = pod.clone();
    sidecar_first["containers"] = serde_json::json!([vouch]);
    assert_state_kept_apart(&sidecar_first, &[], "the sidecar");
}

/// A model, its approval beside the recipe's config in a read-only directory, and a state
/// directory of nobody's, all reachable by an unprivileged user.
struct Host {
    root: tempfile::TempDir,
}

impl Host {
    fn new() -> Host {
        let root = tempfile::tempdir().unwrap();
        set_mode(root.path(), 0o755);
        let models = root.path().join("models");
        write_tree(
            &models.join("llama"),
            &[
                ("model.safetensors", &pseudo_random(200_000, 7)),
                ("config.json", b"{}"),
            ],
        );
        let config = root.path().join("etc-vouch");
        std::fs::create_dir(&config).unwrap();
        write_manifest(&models.join("llama"), &config.join("llama.oms.json"), &[]);
        let text = recipe("vouch.toml");
        assert!(!text.contains("history") && !text.contains("report_dir"));
        std::fs::write(
            config.join("vouch.toml"),
            text.replace("/srv/models", &models.display().to_string()),
        )
        .unwrap();
        for file in ["vouch.toml", "llama.oms.json"] {
            set_mode(&config.join(file), 0o644);
        }
        set_mode(&config, 0o555);
        Host { root }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// A state directory the unprivileged user owns, as systemd or fsGroup hands it over.
    fn state(&self, name: &str) -> PathBuf {
        let dir = self.path(name);
        std::fs::create_dir(&dir).unwrap();
        if unsafe { libc::geteuid() } == 0 {
            std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        }
        dir
    }

    /// The config folder's entries, to show that a run wrote nothing there.
    fn config_entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path("etc-vouch"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Runs vouch unprivileged with `args` (the recipe's config folder put for `recipe_dir`)
    /// and `STATE_DIRECTORY` when given.
    fn vouch(
        &self,
        test: &str,
        args: &[String],
        recipe_dir: &str,
        state: Option<&str>,
    ) -> Option<Ran> {
        let config = self.path("etc-vouch").display().to_string();
        let mut command = vouch_without_privilege(test)?;
        command.args(args.iter().map(|a| a.replace(recipe_dir, &config)));
        if let Some(state) = state {
            command.env("STATE_DIRECTORY", state);
        }
        Some(run(&mut command))
    }
}

fn reports_in(dir: &Path) -> Vec<Value> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap())
        .collect()
}

#[test]
fn the_recipes_run_unprivileged_with_a_read_only_config_and_their_state_in_state_directory() {
    let test =
        "the_recipes_run_unprivileged_with_a_read_only_config_and_their_state_in_state_directory";
    let host = Host::new();
    let before = host.config_entries();
    let state = host.state("var-lib-vouch");
    let unused = host.state("second-state-directory");

    // systemd's unit: StateDirectory= may name several directories; the first is used.
    let systemd = exec_start_args(&recipe("vouch-drift.service"));
    let both = format!("{}:{}", state.display(), unused.display());
    let Some(ran) = host.vouch(test, &systemd, "/etc/vouch", Some(&both)) else {
        return;
    };
    ran.expect(0);
    assert!(state.join("vouch-history.sqlite").is_file());
    let reports = reports_in(&state.join("vouch-reports"));
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["status"], "verified");
    assert_eq!(std::fs::read_dir(&unused).unwrap().count(), 0);

    // The CronJob's container arguments, the ConfigMap mounted at /config.
    let cron = r#"["drift", "run", "-c", "/config/vouch.toml", "--format", "json"]"#;
    assert!(recipe("kubernetes-cronjob.yaml").contains(cron));
    let args: Vec<String> = serde_json::from_str(cron).unwrap();
    let state_text = state.display().to_string();
    let ran = host
        .vouch(test, &args, "/config", Some(&state_text))
        .unwrap();
    let run = ran.expect(0).json();
    assert_eq!(run["status"], "verified");
    assert_eq!(reports_in(&state.join("vouch-reports")).len(), 2);

    // The history is where both runs put it, found again through STATE_DIRECTORY.
    let history = [
        "drift",
        "history",
        "--format",
        "json",
        "-c",
        "/config/vouch.toml",
    ]
    .map(String::from);
    let ran = host
        .vouch(test, &history, "/config", Some(&state_text))
        .unwrap();
    let history = ran.expect(0).json();
    assert_eq!(history["targets"][0]["target"], "llama-prod");
    assert_eq!(history["targets"][0]["last_status"], "verified");
    assert_eq!(
        host.config_entries(),
        before,
        "nothing is written beside the config"
    );
}

#[test]
fn a_run_that_cannot_write_its_state_stops_with_exit_3_before_it_checks_anything() {
    let test = "a_run_that_cannot_write_its_state_stops_with_exit_3_before_it_checks_anything";
    let host = Host::new();
    let before = host.config_entries();
    let systemd = exec_start_args(&recipe("vouch-drift.service"));

    // No STATE_DIRECTORY, and the config folder read-only: nowhere to write.
    let Some(ran) = host.vouch(test, &systemd, "/etc/vouch", None) else {
        return;
    };
    let ran = ran.expect(3);
    let reports = host.path("etc-vouch/vouch-reports").display().to_string();
    assert!(
        ran.stderr.contains(&reports) && ran.stderr.contains("cannot write the run's state"),
        "{}",
        ran.stderr
    );
    assert_eq!(host.config_entries(), before);

    // The history could be written, the report folder not: the run records nothing, so the
    // history never says verified for a run that exits 3.
    let state = host.state("var-lib-vouch");
    let blocked = state.join("vouch-reports");
    std::fs::create_dir(&blocked).unwrap();
    set_mode(&blocked, 0o555);
    let ran = host
        .vouch(
            test,
            &systemd,
            "/etc/vouch",
            Some(&state.display().to_string()),
        )
        .unwrap()
        .expect(3);
    assert!(
        ran.stderr.contains(&blocked.display().to_string()),
        "{}",
        ran.stderr
    );
    assert!(
        !state.join("vouch-history.sqlite").exists(),
        "no run recorded"
    );
    assert_eq!(std::fs::read_dir(&blocked).unwrap().count(), 0);
    // The stdout carries no report of a run that did not happen.
    assert!(ran.stdout.is_empty(), "{}", ran.stdout());
}
