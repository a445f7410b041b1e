//! `vouch approve/verify/promote --registry` against a real MLflow tracking server (SQLite
//! backend, artifacts served through its proxy), with models registered, read and altered
//! by MLflow's own Python client.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;

struct Server {
    uri: String,
    port: u16,
    python: PathBuf,
    _dir: tempfile::TempDir,
    /// The server's stdin: when it closes (the test binary exits, or [`Server::stop`]), the
    /// shell that started the server kills the server's whole process group (it and its job
    /// consumers).
    stdin: std::sync::Mutex<Option<std::process::ChildStdin>>,
    _child: std::sync::Mutex<Running>,
}

impl Server {
    /// Stops the server (its whole process group) and waits until its port is closed.
    fn stop(&self) {
        drop(self.stdin.lock().unwrap().take());
        let cap = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < cap, "the mlflow server did not stop");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The mlflow executable of the peer venv, or a skip (a failure in CI).
fn mlflow_python(test: &str) -> Option<PathBuf> {
    let python = peer_python(test)?;
    if !python.with_file_name("mlflow").is_file() {
        skip(test, "mlflow is not in the peer venv");
        return None;
    }
    Some(python)
}

/// One server per test binary: it takes seconds to start.
fn server(test: &str) -> Option<&'static Server> {
    static SERVER: OnceLock<Server> = OnceLock::new();
    let python = mlflow_python(test)?;
    Some(SERVER.get_or_init(|| start_server(python)))
}

/// Starts `mlflow server` on a free port of 127.0.0.1, with a SQLite store and artifacts
/// served through its proxy from a temporary folder, and waits until it answers.
fn start_server(python: PathBuf) -> Server {
    let mlflow = python.with_file_name("mlflow");
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = Command::new("sh");
    command.args(["-c", "\"$@\" & read _; kill -KILL 0", "sh"]);
    // SAFETY: setsid is async-signal-safe; the child gets its own process group.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = start(
        command
            .stdin(std::process::Stdio::piped())
            .arg(&mlflow)
            .current_dir(dir.path())
            .arg("server")
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--backend-store-uri")
            .arg(format!(
                "sqlite:///{}",
                dir.path().join("mlflow.db").display()
            ))
            .arg("--artifacts-destination")
            .arg(dir.path().join("artifacts"))
            .args(["--serve-artifacts", "--workers", "1"]),
    );
    let stdin = child.stdin();
    let uri = format!("http://127.0.0.1:{port}");
    // Readiness, with a cap so a broken server fails rather than hangs.
    let cap = Instant::now() + Duration::from_secs(120);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let ready = client(&python, &uri, "c.search_registered_models()");
            if ready.code == Some(0) {
                break;
            }
        }
        assert!(Instant::now() < cap, "mlflow server did not start");
        std::thread::sleep(Duration::from_millis(300));
    }
    Server {
        uri,
        port,
        python,
        _dir: dir,
        stdin: std::sync::Mutex::new(Some(stdin)),
        _child: std::sync::Mutex::new(child),
    }
}

/// Runs `body` in Python with `c`, an MlflowClient of the server.
fn client(python: &Path, uri: &str, body: &str) -> Ran {
    let script = format!(
        "import mlflow, json, sys\nfrom mlflow import MlflowClient\nmlflow.set_tracking_uri({uri:?})\nc = MlflowClient()\n{body}\n"
    );
    run(Command::new(python).arg("-c").arg(script))
}

fn py(server: &Server, body: &str) -> String {
    let ran = client(&server.python, &server.uri, body);
    assert_eq!(ran.code, Some(0), "python failed: {}", ran.stderr);
    String::from_utf8_lossy(&ran.stdout).trim().to_string()
}

fn register(server: &Server, name: &str, versions: u32) {
    py(
        server,
        &format!(
            "import tempfile, os\nc.create_registered_model({name:?})\nfor i in range({versions}):\n    d = tempfile.mkdtemp()\n    open(os.path.join(d, 'w.bin'), 'w').write(str(i))\n    with mlflow.start_run() as r:\n        mlflow.log_artifact(os.path.join(d, 'w.bin'), 'model')\n    c.create_model_version({name:?}, source=r.info.artifact_uri + '/model', run_id=r.info.run_id)"
        ),
    );
}

/// Registers a version of `name` whose files are those of `model`, logged as run artifacts
/// under `model/` (its source, as MLflow records it).
fn register_files(server: &Server, name: &str, model: &Path) {
    py(
        server,
        &format!(
            "try:\n    c.create_registered_model({name:?})\nexcept Exception:\n    pass\nwith mlflow.start_run() as r:\n    mlflow.log_artifacts({:?}, 'model')\nv = c.create_model_version({name:?}, source=r.info.artifact_uri + '/model', run_id=r.info.run_id)\nassert v.source.startswith('mlflow-artifacts:'), v.source",
            path(model)
        ),
    );
}

/// Replaces (or adds) the file `name` of version `version` of `model` in the artifact
/// store, with MLflow's artifact client, by `local`.
fn replace_artifact(server: &Server, model: &str, version: &str, name: &str, local: &Path) {
    py(
        server,
        &format!(
            "from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository\nimport shutil, os, tempfile\nsrc = c.get_model_version({model:?}, {version:?}).source\nd = tempfile.mkdtemp()\nshutil.copy({:?}, os.path.join(d, {name:?}))\nget_artifact_repository(src).log_artifact(os.path.join(d, {name:?}))",
            path(local)
        ),
    );
}

fn model(dir: &Path) -> PathBuf {
    let model = dir.join("model");
    write_tree(
        &model,
        &[
            ("weights.bin", &pseudo_random(300_000, 7)),
            ("config.json", b"{\"layers\": 2}"),
        ],
    );
    model
}

fn vouch_at(server: &Server, args: &[&str]) -> Ran {
    run(vouch()
        .env_remove("MLFLOW_TRACKING_TOKEN")
        .env("MLFLOW_TRACKING_URI", &server.uri)
        .args(args))
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn approve_is_read_back_by_mlflow_and_verify_names_a_flipped_file() {
    let Some(server) = server("approve_is_read_back_by_mlflow_and_verify_names_a_flipped_file")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    register(server, "fraud", 1);
    let ran = vouch_at(
        server,
        &["approve", path(&model), "--registry", "models:/fraud/1"],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);

    // MLflow's client reads the tags and the stored approval; the tag pins its bytes.
    let read = py(
        server,
        "v = c.get_model_version('fraud', '1')\nimport hashlib\np = mlflow.artifacts.download_artifacts(artifact_uri=v.tags['vouch.approval_uri'])\nb = open(p, 'rb').read()\nprint(json.dumps({'tags': v.tags, 'sha': 'sha256:' + hashlib.sha256(b).hexdigest(), 'type': json.loads(b)['_type']}))",
    );
    let read: serde_json::Value = serde_json::from_str(&read).unwrap();
    assert_eq!(read["tags"]["vouch.approval_sha256"], read["sha"]);
    assert_eq!(read["tags"]["vouch.approval_kind"], "manifest");
    assert_eq!(read["type"], "https://in-toto.io/Statement/v1");
    let digest = run(vouch().args(["digest", path(&model)]));
    assert_eq!(
        read["tags"]["vouch.root_digest"].as_str().unwrap(),
        String::from_utf8_lossy(&digest.stdout).trim()
    );
    let pin = run(vouch().args(["digest", "--manifest-digest", path(&model)]));
    assert_eq!(
        read["tags"]["vouch.manifest_digest"].as_str().unwrap(),
        String::from_utf8_lossy(&pin.stdout).trim()
    );

    let ran = vouch_at(
        server,
        &["verify", path(&model), "--registry", "models:/fraud/1"],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(ran.stderr.contains("models:/fraud/1"), "{}", ran.stderr);

    flip_byte(&model.join("weights.bin"), 1000);
    let ran = vouch_at(
        server,
        &["verify", path(&model), "--registry", "models:/fraud/1"],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert!(
        String::from_utf8_lossy(&ran.stdout).contains("weights.bin"),
        "{}",
        String::from_utf8_lossy(&ran.stdout)
    );
}

#[test]
fn promote_moves_the_alias_only_when_verified() {
    let Some(server) = server("promote_moves_the_alias_only_when_verified") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    // Both versions hold the model's files: promote checks the registry's copy too.
    register_files(server, "ranker", &model);
    register_files(server, "ranker", &model);
    for v in ["1", "2"] {
        let uri = format!("models:/ranker/{v}");
        let ran = vouch_at(server, &["approve", path(&model), "--registry", &uri]);
        assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    }
    let alias = |server: &Server| {
        py(
            server,
            "try:\n    print(c.get_model_version_by_alias('ranker', 'production').version)\nexcept Exception:\n    print('none')",
        )
    };
    let ran = vouch_at(
        server,
        &[
            "promote",
            path(&model),
            "--registry",
            "models:/ranker/1",
            "--alias",
            "production",
        ],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(alias(server), "1");
    let tags = py(
        server,
        "print(json.dumps(c.get_model_version('ranker', '1').tags))",
    );
    let tags: serde_json::Value = serde_json::from_str(&tags).unwrap();
    assert_eq!(tags["vouch.result"], "verified");
    assert!(tags["vouch.verified_at"].is_string());
    assert_eq!(tags["vouch.version"], env!("CARGO_PKG_VERSION"));

    // A changed copy: version 2 is not promoted, the alias stays on 1, the tag says why.
    flip_byte(&model.join("config.json"), 3);
    let ran = vouch_at(
        server,
        &[
            "promote",
            path(&model),
            "--registry",
            "models:/ranker/2",
            "--alias",
            "production",
        ],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert_eq!(alias(server), "1");
    let result = py(
        server,
        "print(c.get_model_version('ranker', '2').tags['vouch.result'])",
    );
    assert!(result.starts_with("failed:"), "{result}");

    // verify through the alias says which version it checked.
    flip_byte(&model.join("config.json"), 3);
    let ran = vouch_at(
        server,
        &[
            "verify",
            path(&model),
            "--registry",
            "models:/ranker@production",
        ],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(ran.stderr.contains("models:/ranker/1"), "{}", ran.stderr);
}

/// The version's tags, as MLflow's client reads them.
fn version_tags(server: &Server, name: &str, version: &str) -> serde_json::Value {
    let tags = py(
        server,
        &format!("print(json.dumps(c.get_model_version({name:?}, {version:?}).tags))"),
    );
    serde_json::from_str(&tags).unwrap()
}

/// The model's aliases, as MLflow's REST API gives them (`alias` -> version).
fn aliases(server: &Server, name: &str) -> serde_json::Value {
    let answer = py(
        server,
        &format!(
            "import urllib.request, urllib.parse\nq = urllib.parse.urlencode({{'name': {name:?}}})\nprint(urllib.request.urlopen({:?} + '/api/2.0/mlflow/registered-models/get?' + q).read().decode())",
            server.uri
        ),
    );
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    answer["registered_model"]["aliases"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|a| {
                    (
                        a["alias"].as_str().unwrap().to_string(),
                        a["version"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_else(|| serde_json::json!({}))
}

#[test]
fn promote_refuses_a_version_whose_stored_files_changed_after_approval() {
    let Some(server) =
        server("promote_refuses_a_version_whose_stored_files_changed_after_approval")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    register_files(server, "drifted", &model);
    register_files(server, "drifted", &model);
    for v in ["1", "2"] {
        let uri = format!("models:/drifted/{v}");
        let ran = vouch_at(server, &["approve", path(&model), "--registry", &uri]);
        assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    }
    let promote = |version: &str| {
        let uri = format!("models:/drifted/{version}");
        vouch_at(
            server,
            &[
                "promote",
                path(&model),
                "--registry",
                &uri,
                "--alias",
                "production",
                "--format",
                "json",
            ],
        )
    };
    let ran = promote("1");
    assert_eq!(ran.code, Some(0), "{}\n{}", ran.stdout(), ran.stderr);
    // One report of both copies: the local one's files, and the registry's by their
    // models:/ names.
    let names: Vec<String> = ran.json()["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "config.json",
            "weights.bin",
            "models:/drifted/1/config.json",
            "models:/drifted/1/weights.bin"
        ]
    );
    assert_eq!(
        aliases(server, "drifted"),
        serde_json::json!({"production": "1"})
    );

    // Version 2's stored weights replaced after its approval; the local copy is still the
    // approved one.
    let other = dir.path().join("weights.bin");
    std::fs::write(&other, pseudo_random(300_000, 9)).unwrap();
    replace_artifact(server, "drifted", "2", "weights.bin", &other);
    let ran = promote("2");
    assert_eq!(ran.code, Some(1), "{}\n{}", ran.stdout(), ran.stderr);
    assert!(ran.stderr.contains("not promoted"), "{}", ran.stderr);
    let report = ran.json();
    let verdict = |name: &str| {
        report["subjects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["verdict"].as_str().unwrap().to_string())
    };
    assert_eq!(verdict("weights.bin").as_deref(), Some("ok"), "{report}");
    assert_eq!(
        verdict("models:/drifted/2/weights.bin").as_deref(),
        Some("changed"),
        "{report}"
    );
    assert_eq!(
        aliases(server, "drifted"),
        serde_json::json!({"production": "1"})
    );
    let result = version_tags(server, "drifted", "2")["vouch.result"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        result.starts_with("failed: the registry's copy: weights.bin"),
        "{result}"
    );
    assert_eq!(
        version_tags(server, "drifted", "1")["vouch.result"],
        "verified"
    );

    // What production serves still verifies.
    let ran = vouch_at(
        server,
        &["verify", "--registry", "models:/drifted@production"],
    );
    assert_eq!(ran.code, Some(0), "{}\n{}", ran.stdout(), ran.stderr);
}

#[test]
fn an_approval_is_bound_to_its_version_and_copied_tags_are_refused() {
    let Some(server) = server("an_approval_is_bound_to_its_version_and_copied_tags_are_refused")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let other = dir.path().join("other");
    write_tree(&other, &[("weights.bin", b"never approved")]);
    register_files(server, "bound", &model);
    register_files(server, "bound", &other);
    let ran = vouch_at(
        server,
        &["approve", path(&model), "--registry", "models:/bound/1"],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    // Version 1's vouch.* tags set on version 2 with MLflow's client.
    py(
        server,
        "for k, v in c.get_model_version('bound', '1').tags.items():\n    if k.startswith('vouch.'):\n        c.set_model_version_tag('bound', '2', k, v)",
    );
    let copied = version_tags(server, "bound", "2");
    assert_eq!(
        copied["vouch.approval_uri"],
        version_tags(server, "bound", "1")["vouch.approval_uri"]
    );

    let refused = |ran: &Ran, what: &str| {
        assert_eq!(
            ran.code,
            Some(1),
            "{what}: {}\n{}",
            ran.stdout(),
            ran.stderr
        );
        assert!(
            ran.stdout()
                .contains("vouch.approval_uri of models:/bound/2")
                && ran.stdout().contains("bound to the version"),
            "{what}: {}",
            ran.stdout()
        );
    };
    // The registry's copy of version 2, and a local copy of what version 1 approved (its
    // content would match the approval the tags name).
    refused(
        &vouch_at(server, &["verify", "--registry", "models:/bound/2"]),
        "verify the registry's copy",
    );
    refused(
        &vouch_at(
            server,
            &["verify", path(&model), "--registry", "models:/bound/2"],
        ),
        "verify MODEL",
    );
    let ran = vouch_at(
        server,
        &[
            "promote",
            path(&model),
            "--registry",
            "models:/bound/2",
            "--alias",
            "production",
        ],
    );
    refused(&ran, "promote");
    assert_eq!(aliases(server, "bound"), serde_json::json!({}));
    let result = version_tags(server, "bound", "2")["vouch.result"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        result.starts_with("failed:") && result.contains("vouch.approval_uri"),
        "{result}"
    );
    // Both copies refused for the one reason: it is said once.
    assert_eq!(
        result.matches("vouch.approval_uri of").count(),
        1,
        "{result}"
    );

    // A drift target following an alias onto version 2 is refused the same way.
    py(
        server,
        "c.set_registered_model_alias('bound', 'staging', '2')",
    );
    let config = dir.path().join("vouch.toml");
    std::fs::write(
        &config,
        format!(
            "[[target]]\nname = \"bound\"\nowner = \"ml@example.com\"\npath = {:?}\nregistry = \"models:/bound@staging\"\ntracking_uri = {:?}\n",
            path(&model),
            server.uri
        ),
    )
    .unwrap();
    let drift = run(vouch()
        .env_remove("MLFLOW_TRACKING_URI")
        .env_remove("MLFLOW_TRACKING_TOKEN")
        .args(["drift", "run", "--format", "json", "-c"])
        .arg(&config));
    let report = drift.expect(1).json()["targets"][0]["report"].clone();
    assert_eq!(report["subjects"][0]["verdict"], "rejected", "{report}");
    assert!(
        report["subjects"][0]["message"]
            .as_str()
            .unwrap()
            .contains("vouch.approval_uri of models:/bound/2"),
        "{report}"
    );
}

#[test]
fn an_approval_or_tag_altered_with_mlflows_client_is_rejected() {
    let Some(server) = server("an_approval_or_tag_altered_with_mlflows_client_is_rejected") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    register(server, "tamper", 2);
    for v in ["1", "2"] {
        let uri = format!("models:/tamper/{v}");
        let ran = vouch_at(server, &["approve", path(&model), "--registry", &uri]);
        assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    }
    // The digest tag altered.
    py(
        server,
        "c.set_model_version_tag('tamper', '1', 'vouch.approval_sha256', 'sha256:' + '0' * 64)",
    );
    let ran = vouch_at(
        server,
        &["verify", path(&model), "--registry", "models:/tamper/1"],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert!(
        ran.stdout().contains("tampered approval"),
        "{}",
        ran.stdout()
    );

    // The stored approval swapped for other bytes (an approval of another model), uploaded
    // with MLflow's artifact client to where the tag points.
    let other = dir.path().join("other");
    write_tree(&other, &[("weights.bin", b"something else")]);
    let manifest = dir.path().join("other.json");
    write_manifest(&other, &manifest, &[]);
    py(
        server,
        &format!(
            "from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository\nimport posixpath, shutil, os, tempfile\nu = c.get_model_version('tamper', '2').tags['vouch.approval_uri']\nd = tempfile.mkdtemp()\nshutil.copy({:?}, os.path.join(d, posixpath.basename(u)))\nget_artifact_repository(posixpath.dirname(u)).log_artifact(os.path.join(d, posixpath.basename(u)))",
            manifest.display().to_string()
        ),
    );
    let ran = vouch_at(
        server,
        &["verify", path(&model), "--registry", "models:/tamper/2"],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert!(
        ran.stdout().contains("tampered approval"),
        "{}",
        ran.stdout()
    );
    let ran = vouch_at(
        server,
        &[
            "promote",
            path(&model),
            "--registry",
            "models:/tamper/2",
            "--alias",
            "prod",
        ],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert_eq!(
        py(server, "print(c.get_registered_model('tamper').aliases)"),
        "{}"
    );
}

#[test]
fn unknown_names_are_exit_2_and_an_unreachable_server_exit_3() {
    let Some(server) = server("unknown_names_are_exit_2_and_an_unreachable_server_exit_3") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    register(server, "known", 1);
    for (uri, named) in [
        ("models:/nosuch/1", "models:/nosuch/1"),
        ("models:/known/9", "models:/known/9"),
        ("models:/known@nosuch", "models:/known@nosuch"),
    ] {
        let ran = vouch_at(server, &["verify", path(&model), "--registry", uri]);
        assert_eq!(ran.code, Some(2), "{uri}: {}", ran.stderr);
        assert!(ran.stderr.contains(named), "{}", ran.stderr);
    }
    // Not a models:/ URI, and flags of a MODEL without one: exit 2, saying so.
    let ran = vouch_at(server, &["verify", path(&model), "--registry", "fraud/3"]);
    assert_eq!(ran.code, Some(2), "{}", ran.stderr);
    assert!(ran.stderr.contains("--registry: fraud/3"), "{}", ran.stderr);
    let cache = dir.path().join("cache");
    let ran = vouch_at(
        server,
        &[
            "verify",
            "--registry",
            "models:/known/1",
            "--cache",
            path(&cache),
        ],
    );
    assert_eq!(ran.code, Some(2), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("--cache goes with MODEL"),
        "{}",
        ran.stderr
    );

    // No server on this port (a stopped one).
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ran = run(vouch()
        .env_remove("MLFLOW_TRACKING_URI")
        .args(["verify", path(&model), "--registry", "models:/known/1"])
        .args(["--tracking-uri", &format!("http://127.0.0.1:{port}")]));
    assert_eq!(ran.code, Some(3), "{}", ran.stderr);
    assert!(ran.stderr.contains("cannot reach"), "{}", ran.stderr);
}

#[test]
fn verify_without_model_streams_the_registry_copy_and_names_a_replaced_file() {
    let Some(server) =
        server("verify_without_model_streams_the_registry_copy_and_names_a_replaced_file")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    register_files(server, "copy", &model);
    let ran = vouch_at(
        server,
        &["approve", path(&model), "--registry", "models:/copy/1"],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);

    // The registry's own copy, streamed: every approved file, and no more.
    let ran = vouch_at(
        server,
        &["verify", "--registry", "models:/copy/1", "--format", "json"],
    );
    assert_eq!(ran.code, Some(0), "{}\n{}", ran.stdout(), ran.stderr);
    let report = ran.json();
    assert_eq!(report["approval_version"], "models:/copy/1");
    let names: Vec<&str> = report["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["config.json", "weights.bin"], "{report}");
    let digest = run(vouch().args(["digest", path(&model)]));
    assert_eq!(
        report["root_digest"].as_str().unwrap(),
        String::from_utf8_lossy(&digest.stdout).trim()
    );

    // Approved in shards: each shard of the stream is compared.
    register_files(server, "copy", &model);
    let ran = vouch_at(
        server,
        &[
            "approve",
            path(&model),
            "--registry",
            "models:/copy/2",
            "--shard-size",
            "100000",
        ],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let ran = vouch_at(
        server,
        &["verify", "--registry", "models:/copy/2", "--format", "json"],
    );
    assert_eq!(ran.code, Some(0), "{}\n{}", ran.stdout(), ran.stderr);
    let shards: Vec<String> = ran.json()["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .filter(|name| name.starts_with("weights.bin:"))
        .collect();
    assert_eq!(
        shards,
        [
            "weights.bin:0:100000",
            "weights.bin:100000:200000",
            "weights.bin:200000:300000"
        ]
    );

    // weights.bin replaced in the artifact store with MLflow's client.
    let other = dir.path().join("weights.bin");
    std::fs::write(&other, pseudo_random(300_000, 8)).unwrap();
    replace_artifact(server, "copy", "1", "weights.bin", &other);
    let ran = vouch_at(server, &["verify", "--registry", "models:/copy/1"]);
    assert_eq!(ran.code, Some(1), "{}\n{}", ran.stdout(), ran.stderr);
    assert!(ran.stdout().contains("weights.bin"), "{}", ran.stdout());

    // A file added to the copy is extra.
    replace_artifact(server, "copy", "1", "notes.txt", &other);
    let ran = vouch_at(
        server,
        &["verify", "--registry", "models:/copy/1", "--format", "json"],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    let report = ran.json();
    let verdict = |name: &str| {
        report["subjects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["verdict"].as_str().unwrap().to_string())
    };
    assert_eq!(
        verdict("weights.bin").as_deref(),
        Some("changed"),
        "{report}"
    );
    assert_eq!(verdict("notes.txt").as_deref(), Some("extra"), "{report}");
    assert_eq!(verdict("config.json").as_deref(), Some("ok"), "{report}");
}

/// A TCP proxy to `upstream` on a free port of 127.0.0.1 that forwards bytes both ways, and
/// calls `on_request` with the client's connection before forwarding a client's bytes that
/// hold `trigger`; when it answers `true` it has answered the client itself, and nothing is
/// forwarded.
fn proxy(
    upstream: u16,
    trigger: &'static [u8],
    on_request: impl Fn(&mut std::net::TcpStream) -> bool + Send + Sync + 'static,
) -> u16 {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let on_request = std::sync::Arc::new(on_request);
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { continue };
            let on_request = on_request.clone();
            std::thread::spawn(move || {
                let Ok(mut server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                    return;
                };
                let (mut back_from, mut back_to) =
                    (server.try_clone().unwrap(), client.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut back_from, &mut back_to);
                    let _ = back_to.shutdown(std::net::Shutdown::Both);
                });
                let mut buffer = vec![0u8; 64 << 10];
                loop {
                    let n = match client.read(&mut buffer) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if buffer[..n].windows(trigger.len()).any(|w| w == trigger)
                        && on_request(&mut client)
                    {
                        break;
                    }
                    if server.write_all(&buffer[..n]).is_err() {
                        break;
                    }
                }
                let _ = server.shutdown(std::net::Shutdown::Both);
                let _ = client.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    port
}

#[test]
fn a_server_stopped_mid_run_is_exit_3_with_the_reason() {
    let test = "a_server_stopped_mid_run_is_exit_3_with_the_reason";
    let Some(python) = mlflow_python(test) else {
        return;
    };
    // A server of its own, since this test stops it.
    let server = std::sync::Arc::new(start_server(python));
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    register_files(&server, "stopped", &model);
    let ran = vouch_at(
        &server,
        &["approve", path(&model), "--registry", "models:/stopped/1"],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);

    // vouch reaches the server through a proxy that stops the server when vouch asks for
    // weights.bin: the version was resolved, its approval fetched and the copy listed.
    let stopping = server.clone();
    let port = proxy(server.port, b"/weights.bin HTTP/1.1", move |_| {
        stopping.stop();
        false
    });
    let ran = run(vouch()
        .env_remove("MLFLOW_TRACKING_URI")
        .env_remove("MLFLOW_TRACKING_TOKEN")
        .args(["verify", "--registry", "models:/stopped/1"])
        .args(["--tracking-uri", &format!("http://127.0.0.1:{port}")]));
    assert_eq!(ran.code, Some(3), "{}\n{}", ran.stdout(), ran.stderr);
    assert!(ran.stderr.contains("weights.bin"), "{}", ran.stderr);
    assert!(ran.stderr.contains("tracking server"), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("models:/stopped/1") || ran.stderr.contains("127.0.0.1"),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_store_sending_more_than_it_lists_or_listing_without_end_is_exit_3() {
    let Some(server) =
        server("a_store_sending_more_than_it_lists_or_listing_without_end_is_exit_3")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    register_files(server, "impostor", &model);
    let ran = vouch_at(
        server,
        &["approve", path(&model), "--registry", "models:/impostor/1"],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let verify_through = |port: u16| {
        run(vouch()
            .env_remove("MLFLOW_TRACKING_URI")
            .env_remove("MLFLOW_TRACKING_TOKEN")
            .args(["verify", "--registry", "models:/impostor/1"])
            .args(["--tracking-uri", &format!("http://127.0.0.1:{port}")]))
    };

    // weights.bin answered with a body that does not end: vouch stops past the listed size.
    let endless = proxy(server.port, b"/weights.bin HTTP/1.1", |client| {
        use std::io::Write;
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
        let chunk = [b"10000\r\n".as_slice(), &[0u8; 0x10000], b"\r\n"].concat();
        if client.write_all(head.as_bytes()).is_ok() {
            // 4 GiB at most, so that a client that never stops still lets the test end.
            for _ in 0..(1u32 << 16) {
                if client.write_all(&chunk).is_err() {
                    break;
                }
            }
        }
        true
    });
    let ran = verify_through(endless);
    assert_eq!(ran.code, Some(3), "{}\n{}", ran.stdout(), ran.stderr);
    assert!(ran.stderr.contains("weights.bin"), "{}", ran.stderr);
    assert!(ran.stderr.contains("more than the"), "{}", ran.stderr);

    // Every directory listed as holding another one: vouch stops at its depth limit.
    let bottomless = proxy(
        server.port,
        b"GET /api/2.0/mlflow-artifacts/artifacts?",
        |client| {
            use std::io::Write;
            let body = r#"{"files":[{"path":"deeper","is_dir":true}]}"#;
            let _ = write!(
            client,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
            true
        },
    );
    let ran = verify_through(bottomless);
    assert_eq!(ran.code, Some(3), "{}\n{}", ran.stdout(), ran.stderr);
    assert!(ran.stderr.contains("64 deep"), "{}", ran.stderr);
}

#[test]
fn drift_follows_an_alias_moved_between_runs_and_records_each_version() {
    let Some(server) = server("drift_follows_an_alias_moved_between_runs_and_records_each_version")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    register(server, "served", 3);
    for v in ["1", "2"] {
        let uri = format!("models:/served/{v}");
        let ran = vouch_at(server, &["approve", path(&model), "--registry", &uri]);
        assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    }
    let config = dir.path().join("vouch.toml");
    std::fs::write(
        &config,
        format!(
            "[[target]]\nname = \"served\"\nowner = \"ml@example.com\"\npath = {:?}\nregistry = \"models:/served@production\"\ntracking_uri = {:?}\n",
            path(&model),
            server.uri
        ),
    )
    .unwrap();
    let drift = |args: &[&str]| {
        run(vouch()
            .env_remove("MLFLOW_TRACKING_URI")
            .env_remove("MLFLOW_TRACKING_TOKEN")
            .arg("drift")
            .args(args)
            .arg("-c")
            .arg(&config))
    };
    let checked = |code: i32| {
        let run = drift(&["run", "--format", "json"]).expect(code).json();
        run["targets"][0]["report"].clone()
    };
    let point = |version: &str| {
        py(
            server,
            &format!("c.set_registered_model_alias('served', 'production', {version:?})"),
        );
    };
    point("1");
    assert_eq!(checked(0)["approval_version"], "models:/served/1");
    point("2");
    let report = checked(0);
    assert_eq!(report["approval_version"], "models:/served/2");
    assert!(
        report["approval"]
            .as_str()
            .unwrap()
            .contains("models:/served/2"),
        "{report}"
    );
    // Version 3 was never approved: the run fails, naming it.
    point("3");
    let report = checked(1);
    assert_eq!(report["approval_version"], "models:/served/3");
    assert_eq!(
        report["subjects"][0]["name"], "models:/served/3",
        "{report}"
    );
    assert_eq!(report["subjects"][0]["verdict"], "rejected", "{report}");
    assert!(
        report["subjects"][0]["message"]
            .as_str()
            .unwrap()
            .contains("no vouch approval"),
        "{report}"
    );

    let history = drift(&["history", "--format", "json"]).expect(0).json();
    assert_eq!(
        history["targets"][0]["approval_versions"],
        serde_json::json!(["models:/served/1", "models:/served/2", "models:/served/3"]),
        "{history}"
    );
}

/// An EC P-256 key pair made by openssl in `dir`: `(NAME.pem, NAME.pub.pem)`.
fn key_pair(test: &str, dir: &Path, name: &str) -> Option<(PathBuf, PathBuf)> {
    let openssl = require_tool(test, "openssl")?;
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    let ok = |command: &mut Command| assert_eq!(run(command).code, Some(0), "{command:?}");
    ok(Command::new(&openssl)
        .args([
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
        ])
        .arg(&private));
    ok(Command::new(&openssl)
        .args(["ec", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public));
    Some((private, public))
}

#[test]
fn a_kept_signature_is_checked_under_the_trust_given_and_never_stood_in_for() {
    let test = "a_kept_signature_is_checked_under_the_trust_given_and_never_stood_in_for";
    let Some(server) = server(test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (Some((private, public)), Some((_, other))) = (
        key_pair(test, dir.path(), "signer"),
        key_pair(test, dir.path(), "other"),
    ) else {
        return;
    };
    let model = model(dir.path());
    register_files(server, "signed", &model);
    register_files(server, "signed", &model);
    let ran = vouch_at(
        server,
        &[
            "approve",
            path(&model),
            "--registry",
            "models:/signed/1",
            "--key",
            path(&private),
        ],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let ran = vouch_at(
        server,
        &["approve", path(&model), "--registry", "models:/signed/2"],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let verify = |version: &str, key: Option<&Path>| {
        let uri = format!("models:/signed/{version}");
        let mut args = vec!["verify", path(&model), "--registry", &uri];
        if let Some(key) = key {
            args.extend(["--key", path(key)]);
        }
        vouch_at(server, &args)
    };
    let ran = verify("1", Some(&public));
    assert_eq!(ran.code, Some(0), "{}\n{}", ran.stdout(), ran.stderr);
    assert!(
        ran.stdout()
            .contains("signature kept with models:/signed/1"),
        "{}",
        ran.stdout()
    );
    // A signature needs who signed it.
    let ran = verify("1", None);
    assert_eq!(ran.code, Some(2), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("keeps an OMS signature"),
        "{}",
        ran.stderr
    );
    // Signed by another key: rejected.
    let ran = verify("1", Some(&other));
    assert_eq!(ran.code, Some(1), "{}\n{}", ran.stdout(), ran.stderr);
    // promote checks the registry's copy under the same trust: the signer's key promotes,
    // another key does not.
    let promote = |key: &Path| {
        vouch_at(
            server,
            &[
                "promote",
                path(&model),
                "--registry",
                "models:/signed/1",
                "--alias",
                "production",
                "--key",
                path(key),
            ],
        )
    };
    let ran = promote(&other);
    assert_eq!(ran.code, Some(1), "{}\n{}", ran.stdout(), ran.stderr);
    assert_eq!(aliases(server, "signed"), serde_json::json!({}));
    let ran = promote(&public);
    assert_eq!(ran.code, Some(0), "{}\n{}", ran.stdout(), ran.stderr);
    assert_eq!(
        aliases(server, "signed"),
        serde_json::json!({"production": "1"})
    );
    // With trust given, an unsigned manifest does not stand in for the signature.
    let ran = verify("2", Some(&public));
    assert_eq!(ran.code, Some(1), "{}\n{}", ran.stdout(), ran.stderr);
    assert!(
        ran.stdout().contains("unsigned manifest"),
        "{}",
        ran.stdout()
    );
}
