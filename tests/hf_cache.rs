//! Hugging Face caches: snapshots built in the layouts huggingface_hub uses (the classic one,
//! and huggingface_hub 2.x's shared Xet store), each confirmed by huggingface_hub's own
//! `scan_cache_dir()` and `try_to_load_from_cache()` before vouch checks it.

mod common;

use std::ffi::OsStr;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;
use sha1::Digest as _;

const REPO_ID: &str = "acme/tiny";
const REPO: &str = "models--acme--tiny";
const COMMIT: &str = "4e20de362430cd3b72f300e6b0f18e50e7166e08";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    Classic,
    SharedXet,
}

const LAYOUTS: [Layout; 2] = [Layout::Classic, Layout::SharedXet];

/// A minimal safetensors file: one F32 tensor of two values.
fn safetensors() -> Vec<u8> {
    let header = br#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0, 0, 128, 63, 0, 0, 0, 64]);
    bytes
}

/// The repository's files: name, content, and whether git LFS stores it (named by SHA-256).
fn repo_files() -> Vec<(&'static str, Vec<u8>, bool)> {
    vec![
        ("model.safetensors", safetensors(), true),
        (
            "config.json",
            br#"{"architectures":["LlamaForCausalLM"],"model_type":"llama"}"#.to_vec(),
            false,
        ),
        (
            ".gitattributes",
            b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n".to_vec(),
            false,
        ),
        ("tokenizer/vocab.txt", b"a\nb\n".to_vec(), false),
        ("weights/extra.bin", pseudo_random(3000, 7), true),
    ]
}

fn git_blob_sha1(content: &[u8]) -> String {
    let mut hasher = sha1::Sha1::new();
    hasher.update(format!("blob {}\0", content.len()).as_bytes());
    hasher.update(content);
    hex::encode(hasher.finalize())
}

/// A hub cache holding one snapshot of `acme/tiny`, with `refs/main` naming it.
struct Cache {
    dir: tempfile::TempDir,
}

impl Cache {
    fn new(layout: Layout) -> Cache {
        let cache = Cache {
            dir: tempfile::tempdir().unwrap(),
        };
        let repo = cache.repo();
        for sub in ["blobs", "refs", "snapshots"] {
            std::fs::create_dir_all(repo.join(sub)).unwrap();
        }
        std::fs::write(repo.join("refs/main"), COMMIT).unwrap();
        if layout == Layout::SharedXet {
            std::fs::create_dir_all(cache.hub().join("blobs")).unwrap();
            std::fs::write(cache.hub().join("blobs/.huggingface-shared-blobs"), "1\n").unwrap();
        }
        for (name, content, lfs) in repo_files() {
            let blob = cache.blob_name(name);
            let blob_path = repo.join("blobs").join(&blob);
            if lfs && layout == Layout::SharedXet {
                // Xet's own hash is not the etag; any 64 hex digits stand for it here.
                let xet = sha256_hex(&[b"xet:".as_slice(), &content].concat());
                let store = cache.hub().join("blobs").join(&xet[..2]);
                std::fs::create_dir_all(&store).unwrap();
                std::fs::write(store.join(&xet), &content).unwrap();
                symlink(format!("../../blobs/{}/{xet}", &xet[..2]), &blob_path).unwrap();
            } else {
                std::fs::write(&blob_path, &content).unwrap();
            }
            let link = cache.snapshot().join(name);
            std::fs::create_dir_all(link.parent().unwrap()).unwrap();
            let up = "../".repeat(name.matches('/').count() + 2);
            symlink(format!("{up}blobs/{blob}"), link).unwrap();
        }
        cache
    }

    fn hub(&self) -> PathBuf {
        self.dir.path().join("hub")
    }

    fn repo(&self) -> PathBuf {
        self.hub().join(REPO)
    }

    fn snapshot(&self) -> PathBuf {
        self.repo().join("snapshots").join(COMMIT)
    }

    /// The name of the repository blob of the file `name`.
    fn blob_name(&self, name: &str) -> String {
        let (_, content, lfs) = repo_files().into_iter().find(|f| f.0 == name).unwrap();
        if lfs {
            sha256_hex(&content)
        } else {
            git_blob_sha1(&content)
        }
    }

    /// The regular file the snapshot file `name` is read from.
    fn landing(&self, name: &str) -> PathBuf {
        self.snapshot().join(name).canonicalize().unwrap()
    }

    /// A plain copy of the snapshot's files in a directory of the same name.
    fn plain_copy(&self) -> PathBuf {
        let copy = self.dir.path().join("copy").join(COMMIT);
        for (name, content, _) in repo_files() {
            write_tree(&copy, &[(name, &content)]);
        }
        copy
    }

    /// A `--local-dir` download of the snapshot's files: plain files, and huggingface_hub's
    /// metadata (and lock) of each beside them, written after the files.
    fn local_dir(&self) -> PathBuf {
        let local = self.dir.path().join("local");
        for (name, content, _) in repo_files() {
            write_tree(&local, &[(name, &content)]);
        }
        let later = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
            + 5.0;
        for (name, _, _) in repo_files() {
            let metadata = format!("{COMMIT}\n{}\n{later}\n", self.blob_name(name));
            write_tree(
                &local.join(".cache/huggingface/download"),
                &[
                    (&format!("{name}.metadata"), metadata.as_bytes()),
                    (&format!("{name}.lock"), b"".as_slice()),
                ],
            );
        }
        std::fs::write(local.join(".cache/huggingface/.gitignore"), "*").unwrap();
        local
    }

    /// Asserts that huggingface_hub reads this cache as a healthy cache of the snapshot.
    fn confirm(&self, python: &Path) {
        let names: Vec<&str> = repo_files().iter().map(|f| f.0).collect();
        let found = hf_peer(python, "scan", &self.hub(), &[REPO_ID, "main"], &names);
        assert_eq!(found["warnings"], Value::Array(vec![]), "{found:#}");
        let revisions = found["revisions"].as_array().unwrap();
        assert_eq!(revisions.len(), 1, "{found:#}");
        assert_eq!(revisions[0]["commit"], COMMIT);
        assert_eq!(revisions[0]["refs"], serde_json::json!(["main"]));
        for (name, content, _) in repo_files() {
            assert!(
                revisions[0]["files"].get(name).is_some(),
                "{name}: {found:#}"
            );
            let loaded = &found["loaded"][name];
            assert_eq!(loaded["sha256"], sha256_hex(&content), "{name}: {found:#}");
            assert_eq!(
                Path::new(loaded["path"].as_str().unwrap()),
                self.snapshot().join(name)
            );
        }
    }
}

/// Runs `tests/peers/hf_cache_peer.py COMMAND DIR ARGS… FILES…` with the peer Python.
fn hf_peer(python: &Path, command: &str, dir: &Path, args: &[&str], files: &[&str]) -> Value {
    let script = project_root().join("tests/peers/hf_cache_peer.py");
    let ran = run(Command::new(python)
        .arg(script)
        .arg(command)
        .arg(dir)
        .args(args)
        .args(files));
    assert_eq!(ran.code, Some(0), "hf_cache_peer {command}: {}", ran.stderr);
    ran.json()
}

/// A cache confirmed by huggingface_hub, or `None` when the peer is missing (skipped).
fn confirmed(test: &str, layout: Layout) -> Option<(Cache, PathBuf)> {
    let python = peer_python(test)?;
    let cache = Cache::new(layout);
    cache.confirm(&python);
    Some((cache, python))
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// The JSON report of `vouch ARGS… --format json`, which must fail (exit 1).
fn failed_report(cache: &Cache, args: &[&OsStr]) -> Value {
    let mut args = args.to_vec();
    args.extend_from_slice(&[os("--format"), os("json")]);
    vouch_in(cache, &args).expect(1).json()
}

/// `vouch ARGS…` with `HF_HUB_CACHE` set to the cache.
fn vouch_in(cache: &Cache, args: &[&OsStr]) -> Ran {
    run(vouch()
        .env("HF_HUB_CACHE", cache.hub())
        .env_remove("HF_HOME")
        .args(args))
}

fn subject<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no subject {name}: {report:#}"))
}

fn manifest_of(model: &Path, out: &Path) -> PathBuf {
    write_manifest(model, out, &[]);
    out.to_path_buf()
}

#[test]
fn a_clean_snapshot_verifies_by_path_hf_uri_revision_and_its_own_names() {
    for layout in LAYOUTS {
        let test = "a_clean_snapshot_verifies_by_path_hf_uri_revision_and_its_own_names";
        let Some((cache, _)) = confirmed(test, layout) else {
            return;
        };
        let manifest = manifest_of(&cache.plain_copy(), &cache.dir.path().join("m.json"));
        let snapshot = cache.snapshot();
        let repo = cache.repo();
        let m = manifest.as_os_str();
        let uri = format!("hf://{REPO_ID}");
        let pinned = format!("hf://{REPO_ID}@{COMMIT}");
        for args in [
            vec![os("verify"), snapshot.as_os_str(), os("--manifest"), m],
            vec![os("verify"), os(&uri), os("--manifest"), m],
            vec![os("verify"), os(&pinned), os("--manifest"), m],
            vec![
                os("verify"),
                os(&uri),
                os("--revision"),
                os("main"),
                os("--manifest"),
                m,
            ],
            vec![
                os("verify"),
                repo.as_os_str(),
                os("--revision"),
                os("main"),
                os("--manifest"),
                m,
            ],
            vec![
                os("verify"),
                repo.as_os_str(),
                os("--revision"),
                os(COMMIT),
                os("--manifest"),
                m,
            ],
            vec![os("verify"), snapshot.as_os_str(), os("--hf-blobs")],
            vec![
                os("verify"),
                snapshot.as_os_str(),
                os("--hf-blobs"),
                os("--manifest"),
                m,
            ],
        ] {
            let ran = vouch_in(&cache, &args).expect(0);
            assert!(
                ran.stdout().contains("verified"),
                "{layout:?} {args:?}: {}",
                ran.stdout()
            );
        }
        let blobs = vouch_in(
            &cache,
            &[
                os("verify"),
                snapshot.as_os_str(),
                os("--hf-blobs"),
                os("--format"),
                os("json"),
            ],
        )
        .expect(0)
        .json();
        assert_eq!(subject(&blobs, "refs/main")["verdict"], "ok");
        assert_eq!(
            subject(&blobs, "config.json")["expected"],
            format!("gitsha1:{}", cache.blob_name("config.json"))
        );
        assert_eq!(
            subject(&blobs, "model.safetensors")["expected"],
            format!("sha256:{}", cache.blob_name("model.safetensors"))
        );
        let warnings = blobs["warnings"].to_string();
        assert!(
            warnings.contains("cannot catch a malicious upstream"),
            "{warnings}"
        );
        // HF_HOME/hub is where huggingface_hub looks without HF_HUB_CACHE.
        run(vouch()
            .env_remove("HF_HUB_CACHE")
            .env("HF_HOME", cache.dir.path())
            .args([os("verify"), os(&uri), os("--manifest"), m]))
        .expect(0);
    }
}

#[test]
fn a_flipped_blob_byte_names_the_snapshot_file_and_hf_blobs_names_the_blob() {
    for layout in LAYOUTS {
        let test = "a_flipped_blob_byte_names_the_snapshot_file_and_hf_blobs_names_the_blob";
        let Some((cache, _)) = confirmed(test, layout) else {
            return;
        };
        let manifest = manifest_of(&cache.plain_copy(), &cache.dir.path().join("m.json"));
        flip_byte(&cache.landing("weights/extra.bin"), 100);
        flip_byte(&cache.landing("config.json"), 3);
        let snapshot = cache.snapshot();
        let report = vouch_in(
            &cache,
            &[
                os("verify"),
                snapshot.as_os_str(),
                os("--manifest"),
                manifest.as_os_str(),
                os("--format"),
                os("json"),
            ],
        )
        .expect(1)
        .json();
        assert_eq!(
            subject(&report, "weights/extra.bin")["verdict"],
            "changed",
            "{layout:?}"
        );
        assert_eq!(subject(&report, "config.json")["verdict"], "changed");
        assert_eq!(subject(&report, "model.safetensors")["verdict"], "ok");

        let report = vouch_in(
            &cache,
            &[
                os("verify"),
                snapshot.as_os_str(),
                os("--hf-blobs"),
                os("--format"),
                os("json"),
            ],
        )
        .expect(1)
        .json();
        for name in ["weights/extra.bin", "config.json"] {
            let flipped = subject(&report, name);
            assert_eq!(flipped["verdict"], "changed", "{layout:?} {name}");
            let blob = format!("{REPO}/blobs/{}", cache.blob_name(name));
            let message = flipped["message"].as_str().unwrap();
            assert!(message.contains(&blob), "{message}");
        }
        assert_eq!(subject(&report, "model.safetensors")["verdict"], "ok");
        let text = vouch_in(
            &cache,
            &[os("verify"), snapshot.as_os_str(), os("--hf-blobs")],
        )
        .expect(1)
        .stdout();
        assert!(text.contains("weights/extra.bin"), "{text}");
    }
}

#[test]
fn snapshot_links_that_leave_the_repository_blobs_are_rejected_and_named() {
    let test = "snapshot_links_that_leave_the_repository_blobs_are_rejected_and_named";
    let Some(python) = peer_python(test) else {
        return;
    };
    let clean = Cache::new(Layout::Classic);
    clean.confirm(&python);
    let manifest = manifest_of(&clean.plain_copy(), &clean.dir.path().join("m.json"));
    const CONFIG: &[u8] = br#"{"architectures":["LlamaForCausalLM"],"model_type":"llama"}"#;
    type Repoint = fn(&Cache) -> String;
    let cases: [(&str, Repoint, &str); 7] = [
        (
            "out of blobs/",
            |_| "../../refs/main".into(),
            "does not land directly",
        ),
        (
            "out of the cache",
            |c| {
                std::fs::write(c.dir.path().join("outside.json"), CONFIG).unwrap();
                "../../../../outside.json".into()
            },
            "leads out of the hub cache",
        ),
        (
            "into another repository",
            |c| {
                let other = c.hub().join("models--evil--x/blobs");
                std::fs::create_dir_all(&other).unwrap();
                std::fs::write(other.join(git_blob_sha1(CONFIG)), CONFIG).unwrap();
                format!("../../../models--evil--x/blobs/{}", git_blob_sha1(CONFIG))
            },
            "another repository",
        ),
        (
            "absolute",
            |c| c.landing("config.json").display().to_string(),
            "is absolute",
        ),
        (
            "dangling",
            |_| format!("../../blobs/{}", "0".repeat(40)),
            "does not exist",
        ),
        (
            "a longer chain",
            |c| {
                let hop = c.repo().join("blobs").join("1".repeat(40));
                symlink(c.blob_name("config.json"), &hop).unwrap();
                format!("../../blobs/{}", "1".repeat(40))
            },
            "chain",
        ),
        (
            "a directory",
            |c| {
                std::fs::create_dir(c.repo().join("blobs").join("2".repeat(40))).unwrap();
                format!("../../blobs/{}", "2".repeat(40))
            },
            "directory",
        ),
    ];
    for (case, repoint, why) in cases {
        let cache = Cache::new(Layout::Classic);
        let link = cache.snapshot().join("config.json");
        let target = repoint(&cache);
        std::fs::remove_file(&link).unwrap();
        symlink(&target, &link).unwrap();
        let snapshot = cache.snapshot();
        let report = vouch_in(
            &cache,
            &[
                os("verify"),
                snapshot.as_os_str(),
                os("--manifest"),
                manifest.as_os_str(),
                os("--format"),
                os("json"),
            ],
        )
        .expect(1)
        .json();
        let refused = subject(&report, "config.json");
        assert_eq!(refused["verdict"], "rejected", "{case}: {report:#}");
        let message = refused["message"].as_str().unwrap();
        assert!(
            message.contains(why) && message.contains(&target),
            "{case}: {message}"
        );
        let blobs = vouch_in(
            &cache,
            &[
                os("verify"),
                snapshot.as_os_str(),
                os("--hf-blobs"),
                os("--format"),
                os("json"),
            ],
        )
        .expect(1)
        .json();
        assert_eq!(
            subject(&blobs, "config.json")["verdict"],
            "rejected",
            "{case}"
        );
        let ran = vouch_in(&cache, &[os("manifest"), snapshot.as_os_str()]).expect(2);
        assert!(ran.stderr.contains("config.json"), "{case}: {}", ran.stderr);
    }
}

#[test]
fn manifest_digest_and_signatures_equal_model_signing_on_a_plain_copy() {
    for layout in LAYOUTS {
        let test = "manifest_digest_and_signatures_equal_model_signing_on_a_plain_copy";
        let Some((cache, python)) = confirmed(test, layout) else {
            return;
        };
        let keys = cache.dir.path().join("keys");
        std::fs::create_dir(&keys).unwrap();
        model_signing(&python, &[os("keygen"), keys.as_os_str()]);
        let copy = cache.plain_copy();
        let sig = keys.join("copy.sig");
        let key = keys.join("key.pem");
        let public = keys.join("pub.pem");
        model_signing(
            &python,
            &[
                os("sign"),
                copy.as_os_str(),
                sig.as_os_str(),
                key.as_os_str(),
            ],
        );
        let subject = model_signing(&python, &[os("subject"), sig.as_os_str()]).stdout();
        let snapshot = cache.snapshot();

        let digest = vouch_in(&cache, &[os("digest"), snapshot.as_os_str()])
            .expect(0)
            .stdout();
        assert_eq!(
            digest.trim(),
            format!("sha256:{}", subject.trim()),
            "{layout:?}"
        );

        let payload = keys.join("payload.json");
        model_signing(
            &python,
            &[os("payload"), sig.as_os_str(), payload.as_os_str()],
        );
        let theirs: Value = serde_json::from_slice(&std::fs::read(&payload).unwrap()).unwrap();
        let ours = vouch_in(&cache, &[os("manifest"), snapshot.as_os_str()])
            .expect(0)
            .json();
        let resources = |statement: &Value| {
            let mut list: Vec<String> = statement["predicate"]["resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| format!("{} {}", r["name"], r["digest"]))
                .collect();
            list.sort();
            list
        };
        assert_eq!(resources(&ours), resources(&theirs), "{layout:?}");
        assert_eq!(ours["subject"], theirs["subject"]);

        vouch_in(
            &cache,
            &[
                os("verify"),
                snapshot.as_os_str(),
                os("--signature"),
                sig.as_os_str(),
                os("--key"),
                public.as_os_str(),
            ],
        )
        .expect(0);
        let ours_sig = keys.join("snapshot.sig");
        vouch_in(
            &cache,
            &[
                os("sign"),
                snapshot.as_os_str(),
                os("--key"),
                key.as_os_str(),
                os("-o"),
                ours_sig.as_os_str(),
            ],
        )
        .expect(0);
        model_signing(
            &python,
            &[
                os("verify"),
                copy.as_os_str(),
                ours_sig.as_os_str(),
                public.as_os_str(),
            ],
        );
    }
}

#[test]
fn sbom_and_scan_read_the_snapshot_files() {
    let test = "sbom_and_scan_read_the_snapshot_files";
    let Some((cache, python)) = confirmed(test, Layout::SharedXet) else {
        return;
    };
    let snapshot = cache.snapshot();
    let sbom = cache.dir.path().join("sbom.json");
    vouch_in(
        &cache,
        &[
            os("sbom"),
            os(&format!("hf://{REPO_ID}")),
            os("-o"),
            sbom.as_os_str(),
        ],
    )
    .expect(0);
    validate_cyclonedx(&python, &sbom);
    let document: Value = serde_json::from_slice(&std::fs::read(&sbom).unwrap()).unwrap();
    let text = document.to_string();
    for (name, content, _) in repo_files() {
        if name == ".gitattributes" {
            continue;
        }
        assert!(text.contains(name), "{name} not in the SBOM");
        assert!(
            text.contains(&sha256_hex(&content)),
            "{name}'s SHA-256 not in the SBOM"
        );
    }
    assert!(text.contains("pkg:huggingface/acme/tiny@"), "{text}");

    let scan = vouch_in(
        &cache,
        &[os("scan"), snapshot.as_os_str(), os("--format"), os("json")],
    )
    .expect(0)
    .json();
    let files = scan["files"].as_array().unwrap();
    let weights = files
        .iter()
        .find(|f| f["name"] == "model.safetensors")
        .unwrap_or_else(|| panic!("{scan:#}"));
    assert_eq!(weights["format"], "safetensors", "{scan:#}");
    assert_eq!(weights["size"], safetensors().len());
    assert!(files.iter().any(|f| f["name"] == "weights/extra.bin"));
    assert_eq!(scan["warnings"], Value::Array(vec![]), "{scan:#}");
}

#[test]
fn a_drift_target_of_kind_hf_is_checked_in_the_hub_cache() {
    let test = "a_drift_target_of_kind_hf_is_checked_in_the_hub_cache";
    let Some((cache, _)) = confirmed(test, Layout::Classic) else {
        return;
    };
    let dir = cache.dir.path();
    manifest_of(&cache.plain_copy(), &dir.join("tiny.oms.json"));
    let config = dir.join("vouch.toml");
    std::fs::write(
        &config,
        format!(
            "[[target]]\nname = \"tiny\"\nowner = \"ml@example.com\"\npath = \"hf://{REPO_ID}\"\nmanifest = \"tiny.oms.json\"\n\n\
             [[target]]\nname = \"tiny-pinned\"\nowner = \"ml@example.com\"\npath = \"hf://{REPO_ID}@{COMMIT}\"\nmanifest = \"tiny.oms.json\"\n"
        ),
    )
    .unwrap();
    let drift = || {
        vouch_in(
            &cache,
            &[
                os("drift"),
                os("run"),
                os("--format"),
                os("json"),
                os("-c"),
                config.as_os_str(),
            ],
        )
    };
    let run = drift().expect(0).json();
    assert_eq!(run["targets"].as_array().unwrap().len(), 2, "{run:#}");
    flip_byte(&cache.landing("model.safetensors"), 20);
    let run = drift().expect(1).json();
    let text = run.to_string();
    assert!(text.contains("model.safetensors"), "{run:#}");
}

#[test]
fn hf_blobs_checks_refs_and_a_local_dir_download_and_its_metadata() {
    let test = "hf_blobs_checks_refs_and_a_local_dir_download_and_its_metadata";
    let Some((cache, python)) = confirmed(test, Layout::Classic) else {
        return;
    };
    let missing = "0123456789abcdef0123456789abcdef01234567";
    std::fs::create_dir_all(cache.repo().join("refs/pr")).unwrap();
    std::fs::write(cache.repo().join("refs/pr/1"), missing).unwrap();
    let snapshot = cache.snapshot();
    let report = failed_report(
        &cache,
        &[os("verify"), snapshot.as_os_str(), os("--hf-blobs")],
    );
    let pr = subject(&report, "refs/pr/1");
    assert_eq!(pr["verdict"], "missing");
    assert!(pr["message"].as_str().unwrap().contains(missing));

    let local = cache.local_dir();
    let names: Vec<&str> = repo_files().iter().map(|f| f.0).collect();
    let read = hf_peer(&python, "local", &local, &[], &names);
    for name in &names {
        assert_eq!(read[name]["etag"], cache.blob_name(name), "{read:#}");
    }
    let local_arg = local.as_os_str();
    vouch_in(&cache, &[os("verify"), local_arg, os("--hf-blobs")]).expect(0);
    // Its metadata is not part of the model: the manifest is a plain copy's.
    let ours = vouch_in(&cache, &[os("digest"), local_arg])
        .expect(0)
        .stdout();
    let copy = vouch_in(&cache, &[os("digest"), cache.plain_copy().as_os_str()])
        .expect(0)
        .stdout();
    assert_eq!(ours, copy);
    let manifest = manifest_of(&cache.plain_copy(), &cache.dir.path().join("m.json"));
    vouch_in(
        &cache,
        &[
            os("verify"),
            local_arg,
            os("--manifest"),
            manifest.as_os_str(),
        ],
    )
    .expect(0);

    std::fs::write(local.join("tokenizer/vocab.txt"), b"a\nc\n").unwrap();
    std::fs::remove_file(local.join("weights/extra.bin")).unwrap();
    write_tree(&local, &[("unlisted.txt", b"no metadata")]);
    let report = vouch_in(
        &cache,
        &[
            os("verify"),
            local_arg,
            os("--hf-blobs"),
            os("--format"),
            os("json"),
        ],
    )
    .expect(1)
    .json();
    assert_eq!(
        subject(&report, "tokenizer/vocab.txt")["verdict"],
        "changed"
    );
    assert_eq!(subject(&report, "weights/extra.bin")["verdict"], "missing");
    assert_eq!(subject(&report, "unlisted.txt")["verdict"], "rejected");
    assert_eq!(subject(&report, "config.json")["verdict"], "ok");
}

#[test]
fn bad_hugging_face_targets_are_input_errors_that_say_why() {
    let cache = Cache::new(Layout::Classic);
    let plain = cache.plain_copy();
    let manifest = manifest_of(&plain, &cache.dir.path().join("m.json"));
    let m = manifest.as_os_str();
    for (args, says) in [
        (
            vec![os("verify"), os("hf://a/b/c"), os("--manifest"), m],
            "hf://ORG/NAME",
        ),
        (
            vec![os("verify"), os("hf://acme/absent"), os("--manifest"), m],
            "not in the hub cache",
        ),
        (
            vec![os("verify"), os("hf://acme/tiny@nope"), os("--manifest"), m],
            "no snapshot or ref named nope",
        ),
        (
            vec![
                os("verify"),
                os("hf://acme/tiny@main"),
                os("--revision"),
                os(COMMIT),
                os("--manifest"),
                m,
            ],
            "give one",
        ),
        (
            vec![
                os("verify"),
                plain.as_os_str(),
                os("--revision"),
                os("main"),
                os("--manifest"),
                m,
            ],
            "--revision goes with",
        ),
        (
            vec![os("verify"), plain.as_os_str(), os("--hf-blobs")],
            "neither a Hugging Face cache snapshot",
        ),
        (vec![os("verify"), plain.as_os_str()], "give an approval"),
        (
            vec![
                os("sbom"),
                os("oci:/nonexistent"),
                os("--revision"),
                os("main"),
            ],
            "not an image",
        ),
        (
            vec![os("digest"), os("hf://acme/tiny@../../x")],
            "not a commit or a ref name",
        ),
    ] {
        let ran = vouch_in(&cache, &args).expect(2);
        assert!(ran.stderr.contains(says), "{args:?}: {}", ran.stderr);
    }
    let config = cache.dir.path().join("vouch.toml");
    std::fs::write(
        &config,
        "[[target]]\nname = \"bad\"\nowner = \"ml@example.com\"\npath = \"hf://a/b/c\"\nmanifest = \"m.json\"\n",
    )
    .unwrap();
    let ran = vouch_in(
        &cache,
        &[os("drift"), os("run"), os("-c"), config.as_os_str()],
    )
    .expect(2);
    assert!(
        ran.stderr.contains("target \"bad\": path hf://a/b/c"),
        "{}",
        ran.stderr
    );
    std::fs::write(cache.repo().join("refs/main"), "not a commit").unwrap();
    let ran = vouch_in(&cache, &[os("digest"), os("hf://acme/tiny")]).expect(2);
    assert!(ran.stderr.contains("refs/main"), "{}", ran.stderr);
}

#[test]
fn a_shared_store_without_its_layout_marker_is_not_followed() {
    let cache = Cache::new(Layout::SharedXet);
    let manifest = manifest_of(&cache.plain_copy(), &cache.dir.path().join("m.json"));
    let snapshot = cache.snapshot();
    vouch_in(
        &cache,
        &[
            os("verify"),
            snapshot.as_os_str(),
            os("--manifest"),
            manifest.as_os_str(),
        ],
    )
    .expect(0);
    std::fs::remove_file(cache.hub().join("blobs/.huggingface-shared-blobs")).unwrap();
    let report = vouch_in(
        &cache,
        &[
            os("verify"),
            snapshot.as_os_str(),
            os("--manifest"),
            manifest.as_os_str(),
            os("--format"),
            os("json"),
        ],
    )
    .expect(1)
    .json();
    for name in ["model.safetensors", "weights/extra.bin"] {
        let refused = subject(&report, name);
        assert_eq!(refused["verdict"], "rejected", "{report:#}");
        assert!(refused["message"]
            .as_str()
            .unwrap()
            .contains("layout-1 marker"));
    }
    assert_eq!(subject(&report, "config.json")["verdict"], "ok");
}

/// vouch accepts exactly the repository ids huggingface_hub's `validate_repo_id` accepts, so
/// no two ids it takes share a cache directory (`a-/b` and `a/-b` would both be
/// `models--a---b`).
#[test]
fn hf_uris_accept_the_repo_ids_huggingface_hub_accepts() {
    let Some(python) = peer_python("hf_uris_accept_the_repo_ids_huggingface_hub_accepts") else {
        return;
    };
    let long = "x".repeat(97);
    let ids = [
        "acme/tiny",
        "gpt2",
        "Org_1/model.v2-x",
        "_a/b_",
        "a-/b",
        "a/-b",
        "a/b.",
        ".a/b",
        "a/b.git",
        "a..b/c",
        "a--b/c",
        "a/b/c",
        "a//b",
        "a/",
        "/b",
        "café/x",
        "a b/c",
        &long,
    ];
    let script = "import json, sys\n\
        from huggingface_hub.utils import validate_repo_id, HFValidationError\n\
        def ok(i):\n    try:\n        validate_repo_id(i)\n        return True\n    \
        except HFValidationError:\n        return False\n\
        print(json.dumps([ok(i) for i in json.loads(sys.argv[1])]))\n";
    let peer = run(Command::new(&python)
        .args(["-c", script])
        .arg(serde_json::to_string(&ids).unwrap()));
    assert_eq!(peer.code, Some(0), "huggingface_hub: {}", peer.stderr);
    let accepted: Vec<bool> = serde_json::from_str(peer.stdout().trim()).unwrap();
    assert!(
        accepted[0] && !accepted[4],
        "the peer's verdicts: {accepted:?}"
    );
    let empty = tempfile::tempdir().unwrap();
    for (id, peer_accepts) in ids.iter().zip(accepted) {
        let ran = run(vouch()
            .env("HF_HUB_CACHE", empty.path())
            .env_remove("HF_HOME")
            .args(["manifest", &format!("hf://{id}")]));
        assert_eq!(ran.code, Some(2), "{id}: {}", ran.stderr);
        let malformed = ran
            .stderr
            .contains("a Hugging Face model is hf://ORG/NAME or hf://NAME");
        assert_eq!(malformed, !peer_accepts, "hf://{id}: {}", ran.stderr);
    }
}

/// huggingface_hub reads a ref verbatim: `COMMIT\n` names the snapshot directory of that very
/// text, which an attacker can fill. vouch refuses the ref rather than trim it.
#[test]
fn a_ref_with_a_newline_names_another_snapshot_and_is_refused() {
    let test = "a_ref_with_a_newline_names_another_snapshot_and_is_refused";
    let Some((cache, python)) = confirmed(test, Layout::Classic) else {
        return;
    };
    let spoofed = format!("{COMMIT}\n");
    let other = cache.repo().join("snapshots").join(&spoofed);
    write_tree(&other, &[("config.json", b"EVIL config".as_slice())]);
    std::fs::write(cache.repo().join("refs/main"), &spoofed).unwrap();
    let found = hf_peer(
        &python,
        "scan",
        &cache.hub(),
        &[REPO_ID, "main"],
        &["config.json"],
    );
    assert_eq!(
        Path::new(found["loaded"]["config.json"]["path"].as_str().unwrap()),
        other.join("config.json"),
        "{found:#}"
    );
    let ran = vouch_in(&cache, &[os("digest"), os(&format!("hf://{REPO_ID}"))]).expect(2);
    assert!(
        ran.stderr.contains("refs/main") && ran.stderr.contains("another snapshot"),
        "{}",
        ran.stderr
    );
    let snapshot = cache.snapshot();
    let report = failed_report(
        &cache,
        &[os("verify"), snapshot.as_os_str(), os("--hf-blobs")],
    );
    assert_eq!(subject(&report, "refs/main")["verdict"], "rejected");
}

/// Only what huggingface_hub writes under `.cache/huggingface/` of a `--local-dir` download
/// is left out; anything else there is a file of the model, and what an approval lists
/// there is checked.
#[test]
fn a_local_dir_hides_nothing_but_huggingface_hubs_own_metadata() {
    let cache = Cache::new(Layout::Classic);
    let local = cache.local_dir();
    let manifest = manifest_of(&cache.plain_copy(), &cache.dir.path().join("m.json"));
    let verify = |extra: &[&OsStr]| {
        let mut args = vec![os("verify"), local.as_os_str(), os("--manifest")];
        args.push(manifest.as_os_str());
        args.extend_from_slice(&[os("--format"), os("json")]);
        args.extend_from_slice(extra);
        vouch_in(&cache, &args)
    };
    verify(&[]).expect(0);
    write_tree(
        &local.join(".cache/huggingface"),
        &[
            ("hook.py", b"import os".as_slice()),
            ("download/model.safetensors", b"other weights".as_slice()),
            ("download/config.json.metadata.bak", b"x".as_slice()),
        ],
    );
    let report = verify(&[]).expect(1).json();
    for name in [
        ".cache/huggingface/hook.py",
        ".cache/huggingface/download/model.safetensors",
        ".cache/huggingface/download/config.json.metadata.bak",
    ] {
        assert_eq!(subject(&report, name)["verdict"], "extra", "{report:#}");
    }
    for file in [
        "hook.py",
        "download/model.safetensors",
        "download/config.json.metadata.bak",
    ] {
        std::fs::remove_file(local.join(".cache/huggingface").join(file)).unwrap();
    }
    // A metadata file that is not huggingface_hub's is no metadata either.
    std::fs::write(
        local.join(".cache/huggingface/download/config.json.metadata"),
        "import os\n",
    )
    .unwrap();
    let report = verify(&[]).expect(1).json();
    assert_eq!(
        subject(&report, ".cache/huggingface/download/config.json.metadata")["verdict"],
        "extra"
    );

    // An approval of a directory that holds `.cache/huggingface/` files (made before it
    // looked like a download) has them checked.
    let signed = cache.dir.path().join("signed");
    write_tree(
        &signed,
        &[
            ("config.json", b"{}".as_slice()),
            (".cache/huggingface/hook.py", b"print(1)".as_slice()),
        ],
    );
    let approval = manifest_of(&signed, &cache.dir.path().join("signed.json"));
    std::fs::create_dir_all(signed.join(".cache/huggingface/download")).unwrap();
    std::fs::write(signed.join(".cache/huggingface/hook.py"), "import os").unwrap();
    let report = vouch_in(
        &cache,
        &[
            os("verify"),
            signed.as_os_str(),
            os("--manifest"),
            approval.as_os_str(),
            os("--format"),
            os("json"),
        ],
    )
    .expect(1)
    .json();
    assert_eq!(
        subject(&report, ".cache/huggingface/hook.py")["verdict"],
        "changed"
    );
}
