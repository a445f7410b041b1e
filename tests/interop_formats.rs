//! `vouch scan` against the formats' own packages: files written by safetensors, gguf and
//! onnx read back the same facts in vouch, and pickle verdicts equal picklescan's on a
//! generated corpus. `verify --deny-unsafe-pickle` turns a dangerous import into exit 1.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use serde_json::{json, Value};

/// `vouch scan DIR --format json` (with `extra` arguments), its files by name.
fn scan_with(dir: &Path, extra: &[&str], expected_exit: i32) -> BTreeMap<String, Value> {
    let mut args = vec![dir.as_os_str(), "--format".as_ref(), "json".as_ref()];
    args.insert(0, "scan".as_ref());
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    let report = vouch_run(args).expect(expected_exit).json();
    report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap().to_string(), f.clone()))
        .collect()
}

fn scan(dir: &Path, expected_exit: i32) -> BTreeMap<String, Value> {
    scan_with(dir, &[], expected_exit)
}

/// Writes a corpus with the peer package; returns what the package read back.
fn corpus(test: &str, command: &str) -> Option<(tempfile::TempDir, Value)> {
    let python = peer_python(test)?;
    let dir = tempfile::tempdir().unwrap();
    let facts = formats_peer(&python, command, dir.path());
    Some((dir, facts))
}

/// Scans the corpus a peer package wrote and checks that vouch read the same facts from
/// every file; returns the corpus, the package's facts and vouch's scan.
fn facts_match(
    test: &str,
    format: &str,
) -> Option<(tempfile::TempDir, Value, BTreeMap<String, Value>)> {
    let (dir, expected) = corpus(test, format)?;
    let files = scan(dir.path(), 0);
    let expected_files = expected.as_object().unwrap();
    assert!(expected_files.len() >= 2, "{expected}");
    for (name, facts) in expected_files {
        let found = &files[name];
        assert_eq!(found["format"], format, "{name}");
        assert_eq!(&found["facts"], facts, "{name}");
    }
    Some((dir, expected, files))
}

#[test]
fn safetensors_facts_equal_what_the_safetensors_package_reads() {
    facts_match("safetensors_facts", "safetensors");
}

#[test]
fn gguf_facts_equal_what_the_gguf_reader_reports() {
    facts_match("gguf_facts", "gguf");
}

#[test]
fn onnx_facts_and_external_data_equal_what_the_onnx_package_reads() {
    let Some((dir, expected, files)) = facts_match("onnx_facts", "onnx") else {
        return;
    };
    for (name, facts) in expected.as_object().unwrap() {
        let found = &files[name];
        // Each external-data file is listed with the SHA-256 of its bytes.
        for location in facts["external_data"].as_array().unwrap() {
            let location = location.as_str().unwrap();
            let listed = found["external_data"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["location"] == location)
                .unwrap_or_else(|| panic!("{name}: {location} not listed"));
            let bytes = std::fs::read(dir.path().join(location)).unwrap();
            assert_eq!(listed["sha256"], sha256_hex(&bytes));
            assert_eq!(listed["size"], bytes.len());
        }
    }
}

#[test]
fn pickle_verdicts_equal_picklescans() {
    let Some((dir, expected)) = corpus("pickle_verdicts", "pickles") else {
        return;
    };
    let files = scan_with(dir.path(), &["--pickle-policy", "picklescan"], 1);
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        expected.as_object().unwrap().keys().collect::<Vec<_>>()
    );
    let mut dangerous_files = 0;
    for (name, verdicts) in expected.as_object().unwrap() {
        // A pickle that stops before its STOP is refused whole as unscannable (picklescan
        // lists what it read up to the stop; vouch names no import of a half-read stream).
        let problem = files[name]["problem"]["message"].as_str().unwrap_or("");
        if problem.contains("before its STOP") {
            assert_eq!(files[name]["problem"]["kind"], "malformed", "{name}");
            continue;
        }
        let facts = &files[name]["facts"];
        let mut found: Vec<Value> = match facts["streams"].as_array() {
            Some(streams) => streams
                .iter()
                .flat_map(|s| s["globals"].as_array().unwrap())
                .map(|g| json!([g["module"], g["name"], g["safety"]]))
                .collect(),
            None => Vec::new(),
        };
        found.sort_by_key(|v| v.to_string());
        found.dedup();
        assert_eq!(&Value::Array(found), verdicts, "{name}");
        let dangerous = verdicts
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v[2] == "dangerous");
        assert_eq!(
            !files[name]["dangerous"].as_array().unwrap().is_empty(),
            dangerous,
            "{name}"
        );
        dangerous_files += usize::from(dangerous);
    }
    // The corpus really holds both kinds.
    assert!(dangerous_files >= 10, "{dangerous_files}");
    assert!(expected["benign.pt"][0][2] == "innocuous");
}

#[test]
fn deny_unsafe_pickle_fails_verification_naming_the_file_and_the_global() {
    let Some((dir, _)) = corpus("deny_unsafe_pickle", "pickles") else {
        return;
    };
    let model = dir.path().join("model");
    std::fs::create_dir(&model).unwrap();
    for name in ["benign.pt", "evil.pt"] {
        std::fs::rename(dir.path().join(name), model.join(name)).unwrap();
    }
    let digest = vouch_run(["digest".as_ref(), model.as_os_str()])
        .expect(0)
        .stdout();
    let verify = |extra: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "verify".as_ref(),
            model.as_os_str(),
            "--digest".as_ref(),
            digest.trim().as_ref(),
            "--format".as_ref(),
            "json".as_ref(),
        ];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        vouch_run(args)
    };
    // Without the flag the digests match: verified.
    verify(&[]).expect(0);
    let report = verify(&["--deny-unsafe-pickle"]).expect(1).json();
    let rejected = with_verdict(&report, "rejected");
    assert_eq!(rejected.len(), 1, "{report:#}");
    assert_eq!(rejected[0]["name"], "evil.pt");
    let message = rejected[0]["message"].as_str().unwrap();
    assert!(message.contains("posix.system"), "{message}");
    assert!(message.contains("archive/data.pkl"), "{message}");

    // The same against a manifest, and on a single file.
    std::fs::remove_file(model.join("evil.pt")).unwrap();
    let manifest = dir.path().join("approved.json");
    vouch_run([
        "manifest".as_ref(),
        model.as_os_str(),
        "-o".as_ref(),
        manifest.as_os_str(),
    ])
    .expect(0);
    vouch_run([
        "verify".as_ref(),
        model.as_os_str(),
        "--manifest".as_ref(),
        manifest.as_os_str(),
        "--deny-unsafe-pickle".as_ref(),
    ])
    .expect(0);
    let single = dir.path().join("exec.pkl");
    let digest = vouch_run(["digest".as_ref(), single.as_os_str()])
        .expect(0)
        .stdout();
    let ran = vouch_run([
        "verify".as_ref(),
        single.as_os_str(),
        "--digest".as_ref(),
        digest.trim().as_ref(),
        "--deny-unsafe-pickle".as_ref(),
    ])
    .expect(1);
    assert!(ran.stdout().contains("builtins.exec"), "{}", ran.stdout());
}

/// What vouch's scan lists a file importing, over all its streams, as `module.name`.
fn scanned_imports(file: &Value) -> std::collections::BTreeSet<String> {
    file["facts"]["streams"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["globals"].as_array().unwrap())
        .map(|g| {
            format!(
                "{}.{}",
                g["module"].as_str().unwrap(),
                g["name"].as_str().unwrap()
            )
        })
        .collect()
}

fn dotted(pairs: &Value) -> std::collections::BTreeSet<String> {
    pairs
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{}.{}", p[0].as_str().unwrap(), p[1].as_str().unwrap()))
        .collect()
}

/// `verify MODEL --digest (its own) --format json ARGS`, with the exit status expected.
fn verify_pinned(model: &Path, extra: &[&str], expected_exit: i32) -> Value {
    let digest = vouch_run(["digest".as_ref(), model.as_os_str()])
        .expect(0)
        .stdout();
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "verify".as_ref(),
        model.as_os_str(),
        "--digest".as_ref(),
        digest.trim().as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
    ];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    vouch_run(args).expect(expected_exit).json()
}

fn rejected_message(report: &Value, name: &str) -> String {
    report["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name && s["verdict"] == "rejected")
        .unwrap_or_else(|| panic!("{name} is not rejected: {report:#}"))["message"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn hostile_containers_are_scanned_as_python_loads_them_or_refused() {
    let Some((dir, python)) = corpus("hostile_containers", "hostile") else {
        return;
    };
    let files = scan(dir.path(), 1);
    // What Python's zipfile opens but vouch cannot read as it does: refused, naming why.
    let refused = [
        ("lzma.pt", "LZMA, which vouch cannot inflate"),
        ("bzip2.bin", "bzip2, which vouch cannot inflate"),
        ("dir_bytes.pt", "directory entry \"archive/data.pk/\" holds"),
        ("encrypted.zip", "is encrypted"),
        ("prepended.pt", "can be found in two ways"),
        ("garbage.pt", "not a readable zip archive"),
        ("model.ckpt", "is a tar archive"),
    ];
    for (name, expected) in refused {
        let problem = &files[name]["problem"];
        assert_eq!(problem["kind"], "malformed", "{name}: {problem}");
        let message = problem["message"].as_str().unwrap();
        assert!(message.contains(expected), "{name}: {message}");
    }
    // Python's zipfile really loads the dangerous member of each (but the encrypted one).
    for name in ["lzma.pt", "bzip2.bin", "dir_bytes.pt", "prepended.pt"] {
        let members = python[name]["zipfile"].as_object().unwrap();
        assert!(
            members.values().any(|m| dotted(m).contains("posix.system")),
            "{name}: {members:?}"
        );
    }
    // Everything else: vouch lists exactly what Python's unpickler imports, from the file
    // and from every member Python's zipfile reads (whatever the names say).
    let mut compared = 0;
    for (name, view) in python.as_object().unwrap() {
        if refused.iter().any(|(r, _)| r == name) {
            continue;
        }
        let mut expected = dotted(&view["imports"]);
        if let Some(members) = view["zipfile"].as_object() {
            for imports in members.values() {
                expected.extend(dotted(imports));
            }
        }
        assert!(!expected.is_empty(), "{name}: Python imports nothing");
        assert_eq!(scanned_imports(&files[name]), expected, "{name}");
        compared += 1;
    }
    assert!(compared >= 11, "{compared}");
    // The gate refuses every one of them.
    let model = dir.path();
    let report = verify_pinned(model, &["--deny-unsafe-pickle"], 1);
    for name in python.as_object().unwrap().keys() {
        let message = rejected_message(&report, name);
        if refused.iter().any(|(r, _)| r == name) {
            assert!(message.contains("cannot be scanned"), "{name}: {message}");
        }
    }
    assert!(rejected_message(&report, "weights").contains("posix.system (in archive/data.pkl)"));
    assert!(rejected_message(&report, "memoize_twice.pkl").contains("builtins.eval"));
}

#[test]
fn strict_policy_passes_pytorch_checkpoints_and_refuses_other_globals() {
    let Some((dir, python)) = corpus("strict_pickle_policy", "checkpoints") else {
        return;
    };
    let files = scan(dir.path(), 1);
    let checkpoints: Vec<&String> = python
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "fix_imports")
        .collect();
    for name in &checkpoints {
        assert_eq!(
            scanned_imports(&files[*name]),
            dotted(&python[*name]["imports"]),
            "{name}"
        );
    }
    let verify = |name: &str, extra: &[&str], exit: i32| {
        let mut args = vec!["--deny-unsafe-pickle"];
        args.extend(extra);
        verify_pinned(&dir.path().join(name), &args, exit)
    };
    // What torch.save writes, zip and legacy, passes the strict default.
    for name in ["good.pt", "good_legacy.pth"] {
        verify(name, &[], 0);
        verify(name, &["--pickle-policy", "strict"], 0);
    }
    for (name, global) in [
        ("eval.pt", "__builtin__.eval (in eval/data.pkl)"),
        (
            "numpy.pt",
            "numpy._core.multiarray._reconstruct (in numpy/data.pkl)",
        ),
        ("system_legacy.pth", "posix.system"),
    ] {
        let message = rejected_message(&verify(name, &[], 1), name);
        assert!(message.contains(global), "{name}: {message}");
        assert!(message.contains("strict pickle policy"), "{message}");
    }
    // picklescan rates NumPy's reconstruction innocuous; its policy lets that one through.
    verify("numpy.pt", &["--pickle-policy", "picklescan"], 0);
    verify("eval.pt", &["--pickle-policy", "picklescan"], 1);
    // Whatever fickling calls overtly malicious, strict refuses.
    let mut malicious = 0;
    for name in &checkpoints {
        if python[*name]["fickling"]
            .as_str()
            .unwrap()
            .contains("OVERTLY_MALICIOUS")
        {
            verify(name, &[], 1);
            malicious += 1;
        }
    }
    assert!(malicious >= 2, "{python}");
    // Python renames no allowed module or name at protocols 0-2 (but __builtin__, which
    // becomes builtins): the name allowed is the name imported.
    let renamed = &python["fix_imports"];
    for entry in vouch::formats::pickle::policy::allow_list() {
        let (module, _) = entry.rsplit_once('.').unwrap();
        assert!(
            !renamed["names"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n == &entry),
            "{entry}"
        );
        let module_renamed = renamed["modules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == module);
        assert_eq!(module_renamed, module == "__builtin__", "{entry}");
    }
}

/// `verify` follows what onnx loads besides the graph: external data outside the model, beside
/// a graph approved alone, or under an ignored path is rejected; inside an approved directory
/// it is a file like the others.
#[test]
fn verify_rejects_onnx_external_data_its_approval_does_not_cover() {
    let Some(python) = peer_python("verify_rejects_onnx_external_data_its_approval_does_not_cover")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
import sys, onnx, numpy as np
from onnx import helper, numpy_helper, TensorProto
def graph(path, location):
    w = numpy_helper.from_array(np.arange(1024, dtype=np.float32).reshape(32, 32), 'W')
    x = helper.make_tensor_value_info('X', TensorProto.FLOAT, [1, 32])
    y = helper.make_tensor_value_info('Y', TensorProto.FLOAT, [1, 32])
    m = helper.make_model(helper.make_graph([helper.make_node('MatMul', ['X', 'W'], ['Y'])], 'g', [x], [y], [w]))
    onnx.save_model(m, path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location='weights.bin', size_threshold=0)
    if location != 'weights.bin':
        m = onnx.load(path, load_external_data=False)
        for t in m.graph.initializer:
            for e in t.external_data:
                if e.key == 'location':
                    e.value = location
        onnx.save_model(m, path)  # onnx 1.16+ refuses '..' on load; older loaders follow it
    else:
        onnx.load(path)  # the graph and its external data load
root = sys.argv[1]
graph(root + '/inside/model.onnx', 'weights.bin')
graph(root + '/outside/model.onnx', 'weights.bin')
graph(root + '/escape/model.onnx', '../outside/weights.bin')
"#;
    for sub in ["inside", "outside", "escape"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
    }
    run(std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(dir.path()))
    .expect(0);
    let manifest = |target: &Path, name: &str| {
        let out = dir.path().join(name);
        write_manifest(target, &out, &[]);
        out
    };
    let verify = |target: &Path, approval: &Path, extra: &[&str]| {
        run(vouch()
            .arg("verify")
            .arg(target)
            .arg("--manifest")
            .arg(approval)
            .args(["--format", "json"])
            .args(extra))
    };
    let rejected = |ran: &Ran| -> String {
        ran.json()["subjects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["verdict"] == "rejected")
            .map(|s| s["message"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };

    let inside = dir.path().join("inside");
    let approved = manifest(&inside, "inside.json");
    verify(&inside, &approved, &[]).expect(0);
    let ran = verify(&inside, &approved, &["--ignore-paths", "weights.bin"]).expect(1);
    assert!(
        rejected(&ran).contains("which this check ignores"),
        "{}",
        ran.stdout()
    );

    let graph = dir.path().join("outside/model.onnx");
    let approved = manifest(&graph, "graph.json");
    let ran = verify(&graph, &approved, &[]).expect(1);
    assert!(
        rejected(&ran).contains("weights.bin: beside the graph"),
        "{}",
        ran.stdout()
    );

    let escape = dir.path().join("escape");
    let approved = manifest(&escape, "escape.json");
    let ran = verify(&escape, &approved, &[]).expect(1);
    assert!(
        rejected(&ran).contains("../outside/weights.bin: outside the model"),
        "{}",
        ran.stdout()
    );
}

#[test]
fn compressed_pickles_are_inflated_and_scanned_or_refused_as_unscannable() {
    let Some((dir, python)) = corpus("compressed_pickles", "compressed") else {
        return;
    };
    let files = scan(dir.path(), 1);
    // What vouch inflates (gzip, zlib as joblib writes it): scanned as any file, a zip in it too.
    for name in ["model.pkl.gz", "model.joblib", "checkpoint.pt.gz"] {
        let expected = dotted(&python[name]["imports"]);
        assert!(expected.contains("posix.system"), "{name}: {expected:?}");
        assert_eq!(scanned_imports(&files[name]), expected, "{name}");
        assert!(!files[name]["dangerous"].as_array().unwrap().is_empty());
    }
    // What it cannot inflate: refused, naming the compression Python's loaders inflate.
    for (name, compression) in [
        ("model.pkl.bz2", "bzip2"),
        ("model.pkl.xz", "xz"),
        ("model.pkl.lzma", "lzma"),
    ] {
        assert!(dotted(&python[name]["imports"]).contains("posix.system"));
        let problem = &files[name]["problem"];
        assert_eq!(problem["kind"], "malformed", "{name}: {problem}");
        let message = problem["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("vouch cannot inflate {compression}")),
            "{name}: {message}"
        );
    }
    // Compressed text holds no pickle: no finding.
    assert!(files["notes.txt.gz"]["problem"].is_null());
    assert!(files["notes.txt.gz"]["dangerous"]
        .as_array()
        .unwrap()
        .is_empty());
    let report = verify_pinned(dir.path(), &["--deny-unsafe-pickle"], 1);
    for name in python.as_object().unwrap().keys() {
        if name == "notes.txt.gz" {
            continue;
        }
        rejected_message(&report, name);
    }
    let text = &report["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == "notes.txt.gz")
        .map(|s| s["verdict"].clone())
        .collect::<Vec<_>>();
    assert!(!text.contains(&json!("rejected")), "{report:#}");
    assert!(rejected_message(&report, "checkpoint.pt.gz").contains("posix.system"));
}
