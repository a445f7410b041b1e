//! The drift checker as a scheduler runs it: targets that drift and are repaired, waivers
//! that hold and expire, an unreadable target, metrics, history, alerts to a real HTTP
//! server and a command, `watch` stopped by SIGTERM, a run killed by SIGKILL, runs at once
//! on one history, and shards.

mod common;
mod oci_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use oci_support::Layout;
use serde_json::Value;

/// A deployment: a model directory, a single weights file pinned by digest, and a model
/// artifact in an OCI layout, each with its approval, in a world-writable directory (so a
/// run as another user can write the history).
struct Fleet {
    dir: tempfile::TempDir,
}

impl Fleet {
    fn new() -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_tree(
            &root.join("llama"),
            &[
                ("model.safetensors", &pseudo_random(300_000, 1)),
                ("config.json", b"{}"),
                ("README.md", b"# card"),
            ],
        );
        vouch_run([
            "manifest".as_ref(),
            root.join("llama").as_os_str(),
            "-o".as_ref(),
            root.join("llama.oms.json").as_os_str(),
        ])
        .expect(0);
        std::fs::write(root.join("adapter.bin"), pseudo_random(50_000, 2)).unwrap();
        let pin = vouch_run(["digest".as_ref(), root.join("adapter.bin").as_os_str()])
            .expect(0)
            .stdout();

        let files: [(&str, &[u8]); 2] = [
            ("weights.bin", &pseudo_random(40_000, 3)),
            ("tokenizer.json", b"{\"v\":1}"),
        ];
        write_tree(&root.join("artifact-files"), &files);
        vouch_run([
            "manifest".as_ref(),
            root.join("artifact-files").as_os_str(),
            "-o".as_ref(),
            root.join("artifact.oms.json").as_os_str(),
        ])
        .expect(0);
        Layout::empty(&root.join("layout")).put_artifact("v1", &files);

        let config = format!(
            r#"metrics_file = "vouch.prom"
report_dir = "reports"

[[target]]
name = "llama"
owner = "ml-platform@example.com"
path = "llama"
manifest = "llama.oms.json"

[[target]]
name = "adapter"
owner = "ops@example.com"
path = "adapter.bin"
digest = "{}"

[[target]]
name = "artifact"
owner = "registry@example.com"
image = "oci:{}:v1"
manifest = "artifact.oms.json"
"#,
            pin.trim(),
            root.join("layout").display()
        );
        std::fs::write(root.join("vouch.toml"), config).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o777)).unwrap();
        Fleet { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self) -> PathBuf {
        self.path("vouch.toml")
    }

    fn append(&self, text: &str) {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(self.config())
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    fn drift(&self, args: &[&str]) -> Ran {
        let mut command = vouch();
        command.arg("drift").args(args).arg("-c").arg(self.config());
        run(&mut command)
    }

    fn run_json(&self, code: i32) -> Value {
        self.drift(&["run", "--format", "json"]).expect(code).json()
    }

    fn metrics(&self) -> String {
        std::fs::read_to_string(self.path("vouch.prom")).unwrap()
    }

    fn history(&self) -> Value {
        self.drift(&["history", "--format", "json"])
            .expect(0)
            .json()
    }
}

/// The UTC date `days` from today, `YYYY-MM-DD`, as `date` prints it.
fn days_from_today(days: i64) -> String {
    let ran = run(std::process::Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d")
        .arg(format!("--date=@{}", unix_now() + days * 86_400)));
    ran.stdout().trim().to_string()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn target<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no {name}: {run:#}"))
}

fn drift_of<'a>(history: &'a Value, target: &str, subject: &str) -> &'a Value {
    history["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == target)
        .and_then(|t| {
            t["drift"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["subject"] == subject)
        })
        .unwrap_or_else(|| panic!("no drift of {subject} in {target}: {history:#}"))
}

#[test]
fn drift_is_caught_remembered_repaired_waived_and_gated() {
    let fleet = Fleet::new();

    // Clean: every target verified, and the metrics say so.
    let run = fleet.run_json(0);
    assert_eq!(run["status"], "verified");
    let metrics = fleet.metrics();
    for line in [
        r#"vouch_target_verified{target="llama",owner="ml-platform@example.com"} 1"#,
        r#"vouch_target_verified{target="artifact",owner="registry@example.com"} 1"#,
        r#"vouch_target_failed_subjects{target="adapter",owner="ops@example.com"} 0"#,
    ] {
        assert!(metrics.contains(line), "missing {line} in:\n{metrics}");
    }
    assert!(metrics.contains("vouch_bytes_hashed_total "), "{metrics}");
    assert!(
        std::fs::read_dir(fleet.path("reports")).unwrap().count() >= 1,
        "a report file per run"
    );

    // A flipped byte: exit 1, the report names the file and the owner, metrics say 0,
    // history shows when it was first seen.
    flip_byte(&fleet.path("llama/model.safetensors"), 1234);
    let run = fleet.run_json(1);
    let llama = target(&run, "llama");
    assert_eq!(llama["status"], "failed");
    assert_eq!(llama["owner"], "ml-platform@example.com");
    let changed: Vec<&Value> = llama["report"]["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["verdict"] != "ok")
        .collect();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0]["name"], "model.safetensors");
    assert_eq!(target(&run, "adapter")["status"], "verified");
    let text = fleet.drift(&["run"]).expect(1).stdout();
    assert!(
        text.contains("llama (owner ml-platform@example.com)")
            && text.contains("model.safetensors"),
        "{text}"
    );
    assert!(fleet
        .metrics()
        .contains(r#"vouch_target_verified{target="llama",owner="ml-platform@example.com"} 0"#));
    let history = fleet.history();
    let entry = drift_of(&history, "llama", "model.safetensors");
    assert!(
        entry["first_seen_at"].is_string() && entry["resolved_at"].is_null(),
        "{entry}"
    );
    let first_seen = entry["first_seen_at"].clone();

    // Repaired: history shows it resolved, first-seen time unchanged.
    flip_byte(&fleet.path("llama/model.safetensors"), 1234);
    fleet.run_json(0);
    let history = fleet.history();
    let entry = drift_of(&history, "llama", "model.safetensors");
    assert_eq!(entry["first_seen_at"], first_seen);
    assert!(entry["resolved_at"].is_string(), "{entry}");
    let text = fleet
        .drift(&["history", "--target", "llama"])
        .expect(0)
        .stdout();
    assert!(text.contains("repaired"), "{text}");

    // An active waiver hides the model card's edit, and is listed.
    std::fs::write(fleet.path("llama/README.md"), "# card, edited").unwrap();
    fleet.run_json(1);
    let expires = days_from_today(30);
    let waiver = format!("\n[[waiver]]\ntarget = \"llama\"\npaths = [\"README.md\"]\nreason = \"card edited after release\"\nowner = \"alice@example.com\"\nexpires = \"{expires}\"\n");
    fleet.append(&waiver);
    let run = fleet.run_json(0);
    let warnings = target(&run, "llama")["report"]["warnings"].to_string();
    assert!(
        warnings.contains(&format!("active waiver until {expires}"))
            && warnings.contains("alice@example.com"),
        "{warnings}"
    );

    // The same waiver expired: a failure that says so.
    let config = std::fs::read_to_string(fleet.config())
        .unwrap()
        .replace(&expires, "2020-01-31");
    std::fs::write(fleet.config(), config).unwrap();
    let run = fleet.run_json(1);
    let report = target(&run, "llama")["report"].to_string();
    assert!(
        report.contains("waiver expired on 2020-01-31, owner alice@example.com"),
        "{report}"
    );
}

#[test]
fn an_unreadable_target_is_exit_3_while_the_others_are_checked() {
    let fleet = Fleet::new();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        fleet.path("adapter.bin"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    let Some(mut command) =
        vouch_without_privilege("an_unreadable_target_is_exit_3_while_the_others_are_checked")
    else {
        return;
    };
    command
        .args(["drift", "run", "--format", "json", "-c"])
        .arg(fleet.config());
    let run = run(&mut command).expect(3).json();
    assert_eq!(run["status"], "error");
    assert_eq!(target(&run, "adapter")["status"], "error");
    assert!(target(&run, "adapter")["report"]
        .to_string()
        .contains("Permission denied"));
    assert_eq!(target(&run, "llama")["status"], "verified");
    assert_eq!(target(&run, "artifact")["status"], "verified");
}

/// A target's error that the library gives a hint for says the hint in `vouch.toml` keys,
/// not in flags: here a "manifest" that is a signed envelope, to be given as a signature.
#[test]
fn a_hinted_error_names_the_config_keys_that_get_past_it() {
    let fleet = Fleet::new();
    std::fs::write(
        fleet.path("llama.oms.json"),
        r#"{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}"#,
    )
    .unwrap();
    let run = fleet.run_json(3);
    let llama = target(&run, "llama");
    assert_eq!(llama["status"], "error", "{llama:#}");
    let error = llama["report"]["error"].as_str().unwrap();
    assert!(
        error.contains("is a DSSE envelope, not a manifest")
            && error.ends_with(
                "; hint: give it as signature (with key, certificate_chain or identity/issuer)"
            )
            && !error.contains("--"),
        "{error}"
    );
    assert_eq!(target(&run, "adapter")["status"], "verified");
    let text = fleet.drift(&["run"]).expect(3).stdout();
    assert!(
        text.contains("hint: give it as signature (with key"),
        "{text}"
    );
}

/// A one-shot HTTP server on 127.0.0.1 that records the first request's body.
fn webhook_server() -> (String, std::thread::JoinHandle<(String, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/vouch", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        // Polled, so that a run that never posts fails the test instead of hanging it.
        listener.set_nonblocking(true).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let stream = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "no webhook request within 30 s"
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("webhook server: {e}"),
            }
        };
        stream.set_nonblocking(false).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request_line = String::new();
        reader.read_line(&mut request_line).unwrap();
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            if header.trim().is_empty() {
                break;
            }
            if let Some(value) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let mut stream = stream;
        stream
            .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
        (request_line, body)
    });
    (url, handle)
}

#[test]
fn a_failing_run_alerts_the_webhook_and_the_command() {
    let fleet = Fleet::new();
    let (url, server) = webhook_server();
    let copy = fleet.path("alert-copy.json");
    let status = fleet.path("alert-status");
    fleet.append(&format!(
        "\n[alert]\ncommand = [\"sh\", \"-c\", \"cp \\\"$VOUCH_REPORT\\\" {} && echo $VOUCH_STATUS > {}\"]\nwebhook = \"{url}\"\n",
        copy.display(),
        status.display()
    ));
    flip_byte(&fleet.path("adapter.bin"), 7);
    let run = fleet.run_json(1);
    let (request_line, body) = server.join().unwrap();
    assert!(
        request_line.starts_with("POST /hooks/vouch "),
        "{request_line}"
    );
    let posted: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(posted["status"], "failed");
    assert_eq!(posted["run_id"], run["run_id"]);
    assert_eq!(target(&posted, "adapter")["status"], "failed");
    // The command ran with the report's path and the status.
    let copied: Value = serde_json::from_slice(&std::fs::read(&copy).unwrap()).unwrap();
    assert_eq!(copied["run_id"], run["run_id"]);
    assert_eq!(std::fs::read_to_string(&status).unwrap().trim(), "failed");
}

#[test]
fn watch_runs_every_interval_and_stops_cleanly_on_sigterm() {
    let fleet = Fleet::new();
    let mut child = vouch()
        .args([
            "drift".as_ref(),
            "watch".as_ref(),
            "--every".as_ref(),
            "1s".as_ref(),
            "--allow-short-interval".as_ref(),
            "-c".as_ref(),
            fleet.config().as_os_str(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines() {
            let _ = lines_tx.send(line.unwrap());
        }
    });
    let mut runs = 0;
    let mut target_lines = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while runs < 3 {
        let line = lines_rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("watch logs each run");
        let event: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        match event["event"].as_str() {
            Some("run") => runs += 1,
            Some("target") => {
                target_lines += 1;
                assert!(
                    event["target"].is_string()
                        && event["owner"].is_string()
                        && event["time"].is_string()
                );
            }
            _ => {}
        }
    }
    assert_eq!(target_lines, 9, "one line per target per run");
    let signalled = Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0), "watch exits 0 on SIGTERM");
            break;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(1),
            "watch did not stop within a second of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn watch_refuses_an_interval_under_a_minute_unless_allowed() {
    let fleet = Fleet::new();
    let ran = fleet.drift(&["watch", "--every", "59s"]).expect(2);
    assert!(
        ran.stderr.contains("--every 59s is under one minute")
            && ran.stderr.contains("--allow-short-interval"),
        "{}",
        ran.stderr
    );
    assert!(
        !fleet.path("vouch-history.sqlite").exists(),
        "a refused watch ran nothing"
    );
}

#[test]
fn a_killed_run_leaves_a_history_the_next_run_reads() {
    let fleet = Fleet::new();
    // A big target keeps the run busy long enough to be killed mid-way.
    std::fs::write(fleet.path("big.bin"), pseudo_random(768 << 20, 9)).unwrap();
    let pin = vouch_run(["digest".as_ref(), fleet.path("big.bin").as_os_str()])
        .expect(0)
        .stdout();
    fleet.append(&format!(
        "\n[[target]]\nname = \"big\"\nowner = \"ops@example.com\"\npath = \"big.bin\"\ndigest = \"{}\"\n",
        pin.trim()
    ));
    let mut child = vouch()
        .args([
            "drift".as_ref(),
            "run".as_ref(),
            "--jobs".as_ref(),
            "1".as_ref(),
            "-c".as_ref(),
            fleet.config().as_os_str(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the run has recorded its start, then kill it while it hashes.
    let history = fleet.path("vouch-history.sqlite");
    let started = Instant::now();
    while !history.exists() && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(150));
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let status = child.wait().unwrap();
    assert!(
        status.code().is_none(),
        "the run was killed before it finished"
    );

    let text = fleet.drift(&["history"]).expect(0).stdout();
    assert!(
        text.contains("never finished"),
        "the killed run is marked incomplete:\n{text}"
    );
    let run = fleet.run_json(0);
    assert_eq!(run["status"], "verified");
    assert_eq!(integrity_check(&history), "ok");
}

fn integrity_check(path: &Path) -> String {
    let connection = rusqlite::Connection::open(path).unwrap();
    connection
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn two_runs_at_once_share_one_history_safely() {
    let fleet = Fleet::new();
    let spawn = || {
        start(vouch().args([
            "drift".as_ref(),
            "run".as_ref(),
            "-c".as_ref(),
            fleet.config().as_os_str(),
        ]))
    };
    let children: Vec<_> = (0..4).map(|_| spawn()).collect();
    for child in children {
        child.finish_within(Duration::from_secs(300)).expect(0);
    }
    let history = fleet.path("vouch-history.sqlite");
    assert_eq!(integrity_check(&history), "ok");
    let connection = rusqlite::Connection::open(&history).unwrap();
    let runs: i64 = connection
        .query_row(
            "SELECT COUNT(*) FROM runs WHERE finished_at IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let checks: i64 = connection
        .query_row("SELECT COUNT(*) FROM checks", [], |r| r.get(0))
        .unwrap();
    assert_eq!((runs, checks), (4, 12));
}

#[test]
fn shards_cover_every_target_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = String::new();
    let mut names = Vec::new();
    for i in 0..25 {
        let file = dir.path().join(format!("w{i}.bin"));
        std::fs::write(&file, pseudo_random(1000, i)).unwrap();
        let pin = vouch_run(["digest".as_ref(), file.as_os_str()])
            .expect(0)
            .stdout();
        names.push(format!("model-{i}"));
        config.push_str(&format!(
            "[[target]]\nname = \"model-{i}\"\nowner = \"o@example.com\"\npath = \"w{i}.bin\"\ndigest = \"{}\"\n\n",
            pin.trim()
        ));
    }
    let path = dir.path().join("vouch.toml");
    std::fs::write(&path, config).unwrap();
    for count in [1, 2, 3, 5] {
        let mut seen = Vec::new();
        for index in 1..=count {
            let shard = format!("{index}/{count}");
            let run = vouch_run([
                "drift".as_ref(),
                "run".as_ref(),
                "--shard".as_ref(),
                shard.as_ref(),
                "--format".as_ref(),
                "json".as_ref(),
                "-c".as_ref(),
                path.as_os_str(),
            ])
            .expect(0)
            .json();
            seen.extend(
                run["targets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t["name"].as_str().unwrap().to_string()),
            );
        }
        seen.sort();
        let mut expected = names.clone();
        expected.sort();
        assert_eq!(seen, expected, "--shard over 1..{count}");
    }
    vouch_run([
        "drift".as_ref(),
        "run".as_ref(),
        "--shard".as_ref(),
        "4/3".as_ref(),
        "-c".as_ref(),
        path.as_os_str(),
    ])
    .expect(2);
}

#[test]
fn config_mistakes_are_exit_2_with_the_line() {
    let fleet = Fleet::new();
    let good = std::fs::read_to_string(fleet.config()).unwrap();
    for (from, to, needle) in [
        ("report_dir", "report_folder", "line 2"),
        ("manifest = \"llama.oms.json\"\n", "", "no approval source"),
        (
            "path = \"adapter.bin\"",
            "path = \"adapter.bin\"\nexpire = 3",
            "line 14",
        ),
        // A trusted root means nothing without a signature checked against an identity.
        (
            "manifest = \"llama.oms.json\"\n",
            "signature = \"llama.sig\"\nkey = \"k.pem\"\ntrusted_root = \"root.json\"\n",
            "signature needs exactly one of",
        ),
        // A trusted root alone names no image signer (beside a key it gives the Rekor
        // keys; beside an identity, the Fulcio CAs).
        (
            "manifest = \"artifact.oms.json\"",
            "manifest = \"artifact.oms.json\"\ntrusted_root = \"root.json\"",
            "signatures are checked with one of",
        ),
        (
            "manifest = \"artifact.oms.json\"",
            "manifest = \"artifact.oms.json\"\nshard_size = 4096",
            "an image is approved by digest",
        ),
    ] {
        std::fs::write(fleet.config(), good.replacen(from, to, 1)).unwrap();
        let ran = fleet.drift(&["run"]).expect(2);
        assert!(
            ran.stderr.contains(needle) && ran.stderr.contains("vouch.toml"),
            "{from}: {}",
            ran.stderr
        );
    }
    std::fs::write(fleet.config(), format!("{good}\n[[waiver]]\ntarget = \"llama\"\npaths = [\"a\"]\nreason = \"r\"\nowner = \"o\"\nexpires = \"tomorrow\"\n")).unwrap();
    let ran = fleet.drift(&["run"]).expect(2);
    assert!(
        ran.stderr.contains("not a date") && ran.stderr.contains("line 27"),
        "{}",
        ran.stderr
    );

    // Waivers: an owner and a reason, an expiry within max_waiver_days, files of a model
    // approved file by file; a root digest or an image's pin is never waived.
    let soon = days_from_today(10);
    let waiver = |target: &str, owner: &str, reason: &str, expires: &str| {
        format!("\n[[waiver]]\ntarget = \"{target}\"\npaths = [\"adapter.bin\"]\nreason = \"{reason}\"\nowner = \"{owner}\"\nexpires = \"{expires}\"\n")
    };
    for (waiver, needle) in [
        (
            waiver("llama", "", "r", &soon),
            "line 22: a waiver needs a non-empty owner",
        ),
        (
            waiver("llama", "o", " ", &soon),
            "line 22: a waiver needs a non-empty reason",
        ),
        (
            waiver("llama", "o", "r", &days_from_today(91)),
            "max_waiver_days (90)",
        ),
        (
            waiver("adapter", "o", "r", &soon),
            "approved by a pinned digest",
        ),
        (waiver("artifact", "o", "r", &soon), "is an image"),
        (
            format!("max_waiver_days = 5\n{}", waiver("llama", "o", "r", &soon)),
            "max_waiver_days (5)",
        ),
    ] {
        let text = match waiver.strip_prefix("max_waiver_days = 5\n") {
            Some(rest) => format!("max_waiver_days = 5\n{good}{rest}"),
            None => format!("{good}{waiver}"),
        };
        std::fs::write(fleet.config(), text).unwrap();
        let ran = fleet.drift(&["run"]).expect(2);
        assert!(ran.stderr.contains(needle), "{waiver}: {}", ran.stderr);
    }
}

#[test]
fn a_target_past_its_deadline_is_an_error_and_the_others_finish() {
    let fleet = Fleet::new();
    // A registry that accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    fleet.append(&format!(
        "\n[[target]]\nname = \"stalled\"\nowner = \"o@example.com\"\nimage = \"docker://{address}/repo:tag\"\ndigest = \"sha256:{}\"\ninsecure = true\n",
        "ab".repeat(32)
    ));
    let config = std::fs::read_to_string(fleet.config()).unwrap();
    std::fs::write(fleet.config(), format!("target_timeout = 2\n{config}")).unwrap();
    let started = Instant::now();
    let mut command = vouch();
    command
        .args(["drift", "run", "--format", "json", "--jobs", "2", "-c"])
        .arg(fleet.config());
    let run = run_within(&mut command, Duration::from_secs(30))
        .expect(3)
        .json();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let stalled = target(&run, "stalled");
    assert_eq!(stalled["status"], "error", "{run:#}");
    assert!(
        stalled["report"]
            .to_string()
            .contains("did not finish within 2 s (target_timeout)"),
        "{stalled:#}"
    );
    for name in ["llama", "adapter", "artifact"] {
        assert_eq!(target(&run, name)["status"], "verified", "{name}: {run:#}");
    }
}

#[test]
fn a_relative_image_layout_is_found_beside_the_config_from_any_directory() {
    let fleet = Fleet::new();
    let config = std::fs::read_to_string(fleet.config()).unwrap();
    let absolute = format!("oci:{}:v1", fleet.path("layout").display());
    assert!(config.contains(&absolute));
    std::fs::write(fleet.config(), config.replace(&absolute, "oci:layout:v1")).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let mut command = vouch();
    command
        .current_dir(elsewhere.path())
        .args(["drift", "run", "--format", "json", "-c"])
        .arg(fleet.config());
    let run = run(&mut command).expect(0).json();
    let artifact = target(&run, "artifact");
    assert_eq!(artifact["status"], "verified", "{artifact:#}");
    assert_eq!(artifact["location"], absolute);
}

#[test]
fn the_run_renders_as_junit_and_sarif() {
    let fleet = Fleet::new();
    flip_byte(&fleet.path("llama/config.json"), 0);
    let junit = fleet
        .drift(&["run", "--format", "junit"])
        .expect(1)
        .stdout();
    let doc = roxmltree::Document::parse(&junit).unwrap();
    let failed: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase") && n.children().any(|c| c.has_tag_name("failure")))
        .map(|n| n.attribute("name").unwrap())
        .collect();
    assert_eq!(failed, ["llama: config.json"]);
    // One testsuite per target, each with the time its check took.
    let suites: Vec<(&str, f64)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testsuite"))
        .map(|n| {
            let time = n
                .attribute("time")
                .expect("a suite's time")
                .parse()
                .unwrap();
            (n.attribute("name").unwrap(), time)
        })
        .collect();
    let names: Vec<&str> = suites.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, ["llama", "adapter", "artifact"], "{junit}");
    assert!(suites.iter().all(|(_, time)| *time >= 0.0), "{junit}");
    let run_time: f64 = doc
        .root_element()
        .attribute("time")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        run_time >= suites.iter().map(|(_, t)| *t).fold(0.0, f64::max),
        "{junit}"
    );
    let sarif = fleet.drift(&["run", "--format", "sarif"]).expect(1).json();
    assert_eq!(sarif["runs"][0]["results"].as_array().unwrap().len(), 1);
}

/// A subject an active waiver accepts is a skipped testcase that says until when and by
/// whom; the text summary stays on stdout while the other formats go to their files.
#[test]
fn a_waived_subject_is_a_skipped_testcase() {
    let fleet = Fleet::new();
    std::fs::write(fleet.path("llama/README.md"), "# card, edited").unwrap();
    let expires = days_from_today(30);
    fleet.append(&format!("\n[[waiver]]\ntarget = \"llama\"\npaths = [\"README.md\"]\nreason = \"card edited after release\"\nowner = \"alice@example.com\"\nexpires = \"{expires}\"\n"));
    let junit = fleet.path("out/run.xml");
    let json = fleet.path("out/run.json");
    std::fs::create_dir(fleet.path("out")).unwrap();
    let ran = fleet
        .drift(&[
            "run",
            "--output",
            &format!("junit={}", junit.display()),
            "--output",
            &format!("json={}", json.display()),
        ])
        .expect(0);
    assert!(
        ran.stdout().contains("all 3 targets verified"),
        "{}",
        ran.stdout()
    );
    let run: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(
        target(&run, "llama")["waived"],
        serde_json::json!(["README.md"])
    );

    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let skipped: Vec<(&str, &str)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("skipped"))
        .map(|n| {
            (
                n.parent().unwrap().attribute("name").unwrap(),
                n.attribute("message").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        skipped,
        [(
            "llama: README.md",
            format!("waived until {expires} by alice@example.com").as_str()
        )],
        "{xml}"
    );
    let llama = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite") && n.attribute("name") == Some("llama"))
        .unwrap();
    assert_eq!(
        (llama.attribute("skipped"), llama.attribute("failures")),
        (Some("1"), Some("0")),
        "{xml}"
    );
    assert_eq!(doc.root_element().attribute("skipped"), Some("1"), "{xml}");
}

/// A single-file target's one file is the whole model: a waiver naming it would waive the
/// target, so it is itself a failure and hides nothing.
#[test]
fn a_waiver_never_covers_a_single_file_target() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.bin");
    std::fs::write(&model, b"approved").unwrap();
    vouch_run([
        "manifest".as_ref(),
        model.as_os_str(),
        "-o".as_ref(),
        dir.path().join("model.oms.json").as_os_str(),
    ])
    .expect(0);
    std::fs::write(&model, b"tampered").unwrap();
    let config = dir.path().join("vouch.toml");
    std::fs::write(
        &config,
        format!(
            "history = \"h.sqlite\"\n\n[[target]]\nname = \"t\"\nowner = \"o@example.com\"\npath = \"model.bin\"\n\
             manifest = \"model.oms.json\"\n\n[[waiver]]\ntarget = \"t\"\npaths = [\"model.bin\"]\nreason = \"r\"\n\
             owner = \"a@example.com\"\nexpires = \"{}\"\n",
            days_from_today(10)
        ),
    )
    .unwrap();
    let ran = run(vouch()
        .args(["drift", "run", "--format", "json", "-c"])
        .arg(&config))
    .expect(1);
    let text = ran.stdout();
    assert!(text.contains("is a single file"), "{text}");
    assert!(!text.contains("waived until"), "{text}");
}

/// An EC P-256 key pair made by openssl in `dir`: `(NAME.pem, NAME.pub.pem)`.
fn key_pair(test: &str, dir: &Path, name: &str) -> Option<(PathBuf, PathBuf)> {
    let openssl = require_tool(test, "openssl")?;
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    run(std::process::Command::new(&openssl)
        .args([
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
        ])
        .arg(&private))
    .expect(0);
    run(std::process::Command::new(&openssl)
        .args(["ec", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public))
    .expect(0);
    Some((private, public))
}

/// Signs the model at `model` with `private` into `signature`, as `vouch sign` does.
fn sign(model: &Path, private: &Path, signature: &Path) {
    vouch_run([
        "sign".as_ref(),
        model.as_os_str(),
        "--key".as_ref(),
        private.as_os_str(),
        "-o".as_ref(),
        signature.as_os_str(),
    ])
    .expect(0);
}

#[test]
fn serialization_keys_beside_a_signature_or_manifest_are_refused_naming_key_and_target() {
    let test =
        "serialization_keys_beside_a_signature_or_manifest_are_refused_naming_key_and_target";
    let fleet = Fleet::new();
    let Some((private, _)) = key_pair(test, fleet.dir.path(), "signer") else {
        return;
    };
    sign(&fleet.path("llama"), &private, &fleet.path("llama.sig"));
    let good = std::fs::read_to_string(fleet.config()).unwrap();
    let signed = good.replacen(
        "manifest = \"llama.oms.json\"\n",
        "signature = \"llama.sig\"\nkey = \"signer.pub.pem\"\n",
        1,
    );
    // The signed target verifies as configured: only the added key is refused below.
    std::fs::write(fleet.config(), &signed).unwrap();
    assert_eq!(target(&fleet.run_json(0), "llama")["status"], "verified");
    for (base, key, named) in [
        (&signed, "algo = \"sha256\"\n", "(given: algo)"),
        (&signed, "shard_size = 1000000\n", "(given: shard_size)"),
        (
            &signed,
            "allow_symlinks = true\n",
            "(given: allow_symlinks)",
        ),
        (&good, "allow_symlinks = true\n", "(given: allow_symlinks)"),
        (&good, "algo = \"blake3\"\n", "(given: algo)"),
    ] {
        let config = base.replacen("path = \"llama\"\n", &format!("path = \"llama\"\n{key}"), 1);
        assert_ne!(&config, base);
        std::fs::write(fleet.config(), config).unwrap();
        let ran = fleet.drift(&["run"]).expect(2);
        assert!(
            ran.stderr.contains("vouch.toml")
                && ran.stderr.contains("target \"llama\"")
                && ran.stderr.contains("records its own serialization")
                && ran.stderr.contains(named),
            "{key}: {}",
            ran.stderr
        );
    }
}

#[test]
fn an_image_target_verifies_against_a_signature_and_its_trust_keys() {
    let test = "an_image_target_verifies_against_a_signature_and_its_trust_keys";
    let fleet = Fleet::new();
    let dir = fleet.dir.path();
    let (Some((signer, signer_public)), Some((_, other_public))) =
        (key_pair(test, dir, "signer"), key_pair(test, dir, "other"))
    else {
        return;
    };
    sign(
        &fleet.path("artifact-files"),
        &signer,
        &fleet.path("artifact.sig"),
    );
    let good = std::fs::read_to_string(fleet.config()).unwrap();
    let signed_with = |key: &Path| {
        let config = good.replacen(
            "manifest = \"artifact.oms.json\"",
            &format!("signature = \"artifact.sig\"\nkey = \"{}\"", key.display()),
            1,
        );
        assert_ne!(config, good);
        std::fs::write(fleet.config(), config).unwrap();
    };

    // The signature is checked first and named first; then every file against its payload.
    signed_with(&signer_public);
    let run = fleet.run_json(0);
    let artifact = target(&run, "artifact");
    assert_eq!(artifact["status"], "verified", "{artifact:#}");
    let subjects = artifact["report"]["subjects"].as_array().unwrap();
    assert_eq!(
        subjects[0]["name"],
        fleet.path("artifact.sig").to_str().unwrap(),
        "{artifact:#}"
    );
    assert!(
        subjects[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("signed by key "),
        "{artifact:#}"
    );
    for file in ["weights.bin", "tokenizer.json"] {
        assert!(
            subjects
                .iter()
                .any(|s| s["name"] == file && s["verdict"] == "ok"),
            "{file}: {artifact:#}"
        );
    }

    // Another key: the signature is rejected, and the run fails (exit 1).
    signed_with(&other_public);
    let run = fleet.run_json(1);
    let artifact = target(&run, "artifact");
    assert_eq!(artifact["status"], "failed", "{artifact:#}");
    let report = &artifact["report"];
    assert_eq!(report["subjects"][0]["verdict"], "rejected", "{report:#}");
    assert!(
        report["subjects"][0]["message"]
            .as_str()
            .unwrap()
            .contains("wrong key"),
        "{report:#}"
    );
    assert_eq!(target(&run, "llama")["status"], "verified");

    // A manifest and a signature at once are refused, as `oci verify` refuses them.
    let both = good.replacen(
        "manifest = \"artifact.oms.json\"",
        &format!(
            "manifest = \"artifact.oms.json\"\nsignature = \"artifact.sig\"\nkey = \"{}\"",
            signer_public.display()
        ),
        1,
    );
    std::fs::write(fleet.config(), both).unwrap();
    let ran = fleet.drift(&["run"]).expect(2);
    assert!(
        ran.stderr.contains("target \"artifact\"")
            && ran
                .stderr
                .contains("manifest and signature each approve on their own"),
        "{}",
        ran.stderr
    );
}
