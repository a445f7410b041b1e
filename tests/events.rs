//! `vouch drift watch --on-change` as a real watcher process: a modify, an append, a rename
//! into place, a deletion and a chmod are each seen and checked again (only the target
//! touched), a flood of writes does not lose the failure, a real inotify queue overflow
//! (the watcher stopped while events pile up) falls back to a full run and says so, and
//! the watcher runs at idle I/O priority and nice 10 (read by `ionice` and `ps`).
//!
//! The bound is generous (the issue's 2-second median is measured by `cargo xtask bench`).

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// How long a change may take to show in the log.
const BOUND: Duration = Duration::from_secs(10);

/// A model directory and a single-file target, approved, with a config that publishes
/// metrics, reports and an alert command.
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
                ("tokenizer/vocab.txt", b"a b c"),
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

[alert]
command = ["sh", "-c", "echo $VOUCH_STATUS >> {}"]
"#,
            pin.trim(),
            root.join("alerts.log").display()
        );
        std::fs::write(root.join("vouch.toml"), config).unwrap();
        Fleet { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts `drift watch --on-change` (and `extra`), once its watches are placed and its
    /// first run is over.
    fn watch(&self, extra: &[&str]) -> Watcher {
        let mut child = vouch()
            .args(["drift", "watch", "--on-change", "--every", "1h"])
            .args(extra)
            .arg("-c")
            .arg(self.path("vouch.toml"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines() {
                let Ok(line) = line else { break };
                let _ = sender.send(line);
            }
        });
        let mut watcher = Watcher {
            child,
            lines,
            seen: Vec::new(),
        };
        let watching = watcher.next_where(|e| e["event"] == "watching");
        assert_eq!(watching["incomplete"], 0, "{watching}");
        assert!(watching["watches"].as_u64().unwrap() >= 3, "{watching}");
        let first = watcher.next_where(|e| e["event"] == "run");
        assert_eq!(first["status"], "verified", "{:?}", watcher.seen);
        assert_eq!(first["trigger"], "schedule");
        watcher
    }

    fn history(&self) -> Value {
        let mut command = vouch();
        command
            .args(["drift", "history", "--format", "json", "-c"])
            .arg(self.path("vouch.toml"));
        run(&mut command).expect(0).json()
    }
}

struct Watcher {
    child: Child,
    lines: Receiver<String>,
    /// Every log line read so far, for messages.
    seen: Vec<Value>,
}

impl Watcher {
    /// The next log line that `wanted` accepts, within [`BOUND`].
    fn next_where(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + BOUND;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "no such log line within {BOUND:?}; the watcher logged:\n{:#?}",
                    self.seen
                )
            });
            let event: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
            self.seen.push(event.clone());
            if wanted(&event) {
                return event;
            }
        }
    }

    /// The log lines of the next run: its target lines and the run line.
    fn next_run(&mut self) -> (Vec<Value>, Value) {
        let mut targets = Vec::new();
        loop {
            let event = self.next_where(|e| e["event"] == "target" || e["event"] == "run");
            if event["event"] == "run" {
                return (targets, event);
            }
            targets.push(event);
        }
    }

    fn signal(&self, signal: i32) {
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.signal(libc::SIGTERM);
        let _ = self.child.wait();
    }
}

/// Makes `change` to the fleet with a watcher running, and returns the target lines of the
/// run the change set off, having checked it was a change run of `target` alone.
fn change_run(fleet: &Fleet, target: &str, change: impl FnOnce(&Path)) -> Value {
    let mut watcher = fleet.watch(&[]);
    change(fleet.dir.path());
    let (targets, run) = watcher.next_run();
    assert_eq!(run["trigger"], "change", "{run}");
    let names: Vec<&str> = targets
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    assert_eq!(names, [target], "only the target touched is checked again");
    assert_eq!(targets[0]["trigger"], "change");
    targets[0].clone()
}

#[test]
fn a_modified_file_is_caught_published_alerted_and_recorded() {
    let fleet = Fleet::new();
    let line = change_run(&fleet, "llama", |root| {
        flip_byte(&root.join("llama/model.safetensors"), 1000)
    });
    assert_eq!(line["status"], "failed", "{line}");
    assert_eq!(line["failed_subjects"], 1);
    let history = fleet.history();
    let llama = history["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == "llama")
        .unwrap_or_else(|| panic!("{history}"));
    assert_eq!(llama["last_status"], "failed", "{llama}");
    let metrics = std::fs::read_to_string(fleet.path("vouch.prom")).unwrap();
    assert!(
        metrics.contains(
            "vouch_target_verified{target=\"llama\",owner=\"ml-platform@example.com\"} 0"
        ),
        "{metrics}"
    );
    // The target not checked again keeps its standing in the metrics.
    assert!(
        metrics.contains("vouch_target_verified{target=\"adapter\",owner=\"ops@example.com\"} 1"),
        "{metrics}"
    );
    let alerts = std::fs::read_to_string(fleet.path("alerts.log")).unwrap();
    assert_eq!(alerts.trim(), "failed");
    let reports = std::fs::read_dir(fleet.path("reports")).unwrap().count();
    assert_eq!(reports, 2, "the first run's report and the change run's");
}

#[test]
fn an_append_is_caught() {
    let fleet = Fleet::new();
    let line = change_run(&fleet, "llama", |root| {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(root.join("llama/tokenizer/vocab.txt"))
            .unwrap();
        file.write_all(b" d").unwrap();
    });
    assert_eq!(line["status"], "failed", "{line}");
}

#[test]
fn a_file_renamed_into_place_is_caught() {
    let fleet = Fleet::new();
    let line = change_run(&fleet, "llama", |root| {
        let staged = root.join("staged.safetensors");
        std::fs::write(&staged, pseudo_random(300_000, 9)).unwrap();
        std::fs::rename(&staged, root.join("llama/model.safetensors")).unwrap();
    });
    assert_eq!(line["status"], "failed", "{line}");
}

#[test]
fn a_deletion_is_caught() {
    let fleet = Fleet::new();
    let line = change_run(&fleet, "llama", |root| {
        std::fs::remove_file(root.join("llama/README.md")).unwrap()
    });
    assert_eq!(line["status"], "failed", "{line}");
}

#[test]
fn a_single_file_target_is_checked_alone_when_it_changes() {
    let fleet = Fleet::new();
    let line = change_run(&fleet, "adapter", |root| {
        flip_byte(&root.join("adapter.bin"), 5)
    });
    assert_eq!(line["status"], "failed", "{line}");
}

/// A mode is not part of what an approval binds, so the target checked again verifies; the
/// point is that an attribute change alone sets off the check.
#[test]
fn a_chmod_sets_off_a_check_of_the_target() {
    let fleet = Fleet::new();
    let line = change_run(&fleet, "llama", |root| {
        std::fs::set_permissions(
            root.join("llama/config.json"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap()
    });
    assert_eq!(line["status"], "verified", "{line}");
}

#[test]
fn a_flood_of_writes_does_not_lose_the_failure() {
    let fleet = Fleet::new();
    let mut watcher = fleet.watch(&[]);
    let writes = 3000;
    // Writes of the bytes already there: each is an event, none a change of content.
    let config = std::fs::OpenOptions::new()
        .write(true)
        .open(fleet.path("llama/config.json"))
        .unwrap();
    for _ in 0..writes {
        use std::os::unix::fs::FileExt;
        config.write_all_at(b"{}", 0).unwrap();
    }
    flip_byte(&fleet.path("llama/model.safetensors"), 77);
    // Runs go on while the writes settle; the last one must have seen the tampering.
    let mut change_runs = 0;
    loop {
        let (targets, run) = watcher.next_run();
        assert_eq!(run["trigger"], "change", "{run}");
        change_runs += 1;
        if targets[0]["status"] == "failed" {
            break;
        }
    }
    assert!(
        change_runs < writes / 10,
        "{change_runs} runs for {writes} writes: the events were not coalesced"
    );
    let history = fleet.history();
    let drifted: Vec<&str> = history["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["target"] == "llama")
        .flat_map(|t| t["drift"].as_array().unwrap())
        .map(|d| d["subject"].as_str().unwrap())
        .collect();
    assert_eq!(drifted, ["model.safetensors"], "{history}");
}

/// A real overflow: the watcher is stopped (SIGSTOP) while more events than the kernel
/// queues for one inotify instance pile up, and the tampering is among the lost ones.
#[test]
fn an_overflowed_event_queue_falls_back_to_a_full_run() {
    let limit: usize = std::fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        limit <= 1 << 20,
        "fs.inotify.max_queued_events is {limit}: too many events to provoke an overflow"
    );
    let fleet = Fleet::new();
    let mut watcher = fleet.watch(&[]);
    watcher.signal(libc::SIGSTOP);
    flip_byte(&fleet.path("llama/model.safetensors"), 4242);
    // Alternating files: the kernel merges an event only into an identical one before it.
    let files = [
        fleet.path("llama/config.json"),
        fleet.path("llama/README.md"),
    ];
    for i in 0..limit + 1000 {
        let mode = if (i / 2) % 2 == 0 { 0o640 } else { 0o644 };
        std::fs::set_permissions(&files[i % 2], std::fs::Permissions::from_mode(mode)).unwrap();
    }
    watcher.signal(libc::SIGCONT);
    let lost = watcher.next_where(|e| e["event"] == "events_lost");
    assert!(
        lost["message"].as_str().unwrap().contains("overflowed"),
        "{lost}"
    );
    assert_eq!(lost["fallback"], "full run");
    let (targets, run) = watcher.next_run();
    assert_eq!(run["trigger"], "events_lost", "{run}");
    assert_eq!(targets.len(), 2, "every target is checked: {targets:?}");
    let llama = targets.iter().find(|t| t["target"] == "llama").unwrap();
    assert_eq!(llama["status"], "failed", "{llama}");
}

/// `ionice -p` and `ps -o ni=` read the watcher's priorities.
fn priorities(test: &str, pid: u32) -> Option<(String, i32)> {
    let ionice = require_tool(test, "ionice")?;
    let ps = require_tool(test, "ps")?;
    let io = run(std::process::Command::new(ionice)
        .arg("-p")
        .arg(pid.to_string()))
    .expect(0)
    .stdout();
    let nice = run(std::process::Command::new(ps)
        .args(["-o", "ni=", "-p"])
        .arg(pid.to_string()))
    .expect(0)
    .stdout();
    Some((io.trim().to_string(), nice.trim().parse().unwrap()))
}

#[test]
fn the_watcher_runs_at_idle_io_priority_and_nice_10_unless_told() {
    let test = "the_watcher_runs_at_idle_io_priority_and_nice_10_unless_told";
    let fleet = Fleet::new();
    let quiet = fleet.watch(&[]);
    let Some((io, nice)) = priorities(test, quiet.child.id()) else {
        return;
    };
    assert_eq!(io, "idle");
    assert_eq!(nice, 10);
    drop(quiet);
    let normal = fleet.watch(&["--normal-priority"]);
    let (io, nice) = priorities(test, normal.child.id()).unwrap();
    let (_, own) = priorities(test, std::process::id()).unwrap();
    assert_ne!(io, "idle");
    assert_eq!(nice, own);
}
