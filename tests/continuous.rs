//! Continuous verification: the hash cache of `vouch drift` (what it vouches for, a poisoned
//! entry the sample catches, the full run when due, never inside a model) and the readiness
//! endpoint of `drift watch --listen` (/readyz flipping on drift and repair, /metrics read
//! by prometheus_client's own parser).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use common::*;
use serde_json::Value;

const BIG: usize = 200_000;
const SMALL: usize = 100_000;

/// A model of two weights files approved by a manifest, and a vouch.toml over it.
struct Deployment {
    dir: tempfile::TempDir,
}

impl Deployment {
    /// `settings` go at the top of vouch.toml (the cache keys).
    fn new(settings: &str) -> Deployment {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_tree(
            &root.join("model"),
            &[
                ("big.safetensors", &pseudo_random(BIG, 11)),
                ("small.safetensors", &pseudo_random(SMALL, 12)),
            ],
        );
        write_manifest(&root.join("model"), &root.join("model.oms.json"), &[]);
        let deployment = Deployment { dir };
        deployment.configure(settings);
        deployment
    }

    fn configure(&self, settings: &str) {
        let config = format!(
            "{settings}\nmetrics_file = \"state/vouch.prom\"\nhistory = \"state/history.sqlite\"\n\n\
             [[target]]\nname = \"m\"\nowner = \"ml@example.com\"\npath = \"model\"\nmanifest = \"model.oms.json\"\n"
        );
        std::fs::write(self.config(), config).unwrap();
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self) -> PathBuf {
        self.path("vouch.toml")
    }

    fn drift(&self, args: &[&str]) -> Ran {
        run(vouch().arg("drift").args(args).arg("-c").arg(self.config()))
    }

    /// `drift run`, which must exit `code`; the one target's report.
    fn run(&self, code: i32) -> Value {
        let run = self.drift(&["run", "--format", "json"]).expect(code).json();
        run["targets"][0]["report"].clone()
    }

    fn history(&self) -> Value {
        self.drift(&["history", "--format", "json"])
            .expect(0)
            .json()
    }
}

fn from_cache(report: &Value) -> u64 {
    report["bytes_from_cache"].as_u64().unwrap()
}

fn hashed(report: &Value) -> u64 {
    report["bytes_hashed"].as_u64().unwrap()
}

fn warnings(report: &Value) -> String {
    report["warnings"].to_string()
}

/// The cache file as JSON, and a signer with its key (read from the key file, as an
/// attacker who has the key could).
struct CacheFile {
    path: PathBuf,
    key: hmac::Key,
}

impl CacheFile {
    fn open(path: PathBuf) -> CacheFile {
        let mut key_path = path.clone().into_os_string();
        key_path.push(".key");
        let key = hex::decode(std::fs::read_to_string(&key_path).unwrap().trim()).unwrap();
        CacheFile {
            path,
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
        }
    }

    /// Writes `value` under `key` in the cache's `section` ("entries" or "full"), signed as
    /// vouch signs it.
    fn sign_in(&self, section: &str, what: &str, key: &str, value: &str) {
        let mut stored: Value =
            serde_json::from_slice(&std::fs::read(&self.path).unwrap()).unwrap();
        let message = format!("vouch-cache-v1\0{what}\0{key}\0{value}");
        let mac = hex::encode(hmac::sign(&self.key, message.as_bytes()).as_ref());
        stored[section][key] = serde_json::json!({"value": value, "mac": mac});
        std::fs::write(&self.path, stored.to_string()).unwrap();
    }
}

/// The cache's key of a file as it is now: algorithm, device, inode, size, mtime and ctime
/// in nanoseconds.
fn cache_key_of(path: &Path) -> String {
    let meta = std::fs::metadata(path).unwrap();
    let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
    format!(
        "sha256:{}:{}:{}:{}:{}",
        meta.dev(),
        meta.ino(),
        meta.len(),
        ns(meta.mtime(), meta.mtime_nsec()),
        ns(meta.ctime(), meta.ctime_nsec())
    )
}

#[test]
fn drift_cache_vouches_for_unchanged_files_and_history_and_metrics_say_how_much() {
    let deployment = Deployment::new("cache = \"state/cache.json\"");
    let first = deployment.run(0);
    assert_eq!(from_cache(&first), 0, "nothing is cached yet");
    assert_eq!(hashed(&first), (BIG + SMALL) as u64);
    assert!(
        warnings(&first).contains("no full run of it is on record yet"),
        "{first:#}"
    );
    let key = deployment.path("state/cache.json.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // The second run re-hashes a sample (one file: 1% of the bytes is less than either) and
    // takes the other from the cache.
    let second = deployment.run(0);
    let cached = from_cache(&second);
    assert!(
        cached == BIG as u64 || cached == SMALL as u64,
        "one of the two files comes from the cache: {second:#}"
    );
    assert_eq!(hashed(&second) + cached, (BIG + SMALL) as u64);
    assert_eq!(second["status"], "verified");

    let history = deployment.history();
    assert_eq!(history["targets"][0]["last_bytes_from_cache"], cached);
    assert_eq!(
        history["targets"][0]["last_bytes_hashed"],
        (BIG + SMALL) as u64 - cached
    );
    let metrics = std::fs::read_to_string(deployment.path("state/vouch.prom")).unwrap();
    assert!(
        metrics.contains(&format!(
            "vouch_target_bytes_from_cache{{target=\"m\",owner=\"ml@example.com\"}} {cached}"
        )) && metrics.contains(&format!("vouch_bytes_from_cache_total {cached}")),
        "{metrics}"
    );

    // The text report says it too.
    let text = deployment.drift(&["run"]).expect(0).stdout();
    assert!(text.contains("more from the hash cache"), "{text}");

    // A changed file misses the cache and is caught.
    flip_byte(&deployment.path("model/big.safetensors"), 1000);
    let changed = deployment.run(1);
    assert!(
        changed["subjects"].to_string().contains("big.safetensors"),
        "{changed:#}"
    );

    // With cache = false nothing is cached, nor written.
    let off = Deployment::new("cache = false");
    off.run(0);
    assert_eq!(from_cache(&off.run(0)), 0);
    assert!(!off.path("state/vouch-hash-cache.json").exists());
}

#[test]
fn drift_cache_sample_catches_a_poisoned_entry_and_rehashes_the_whole_target() {
    let deployment = Deployment::new("cache = \"state/cache.json\"");
    deployment.run(0);
    let cache = CacheFile::open(deployment.path("state/cache.json"));

    // Tamper with the small file, then poison the cache with a valid HMAC (the attacker has
    // the key): its new stamp is said to carry the approved digest.
    let small = deployment.path("model/small.safetensors");
    let approved = format!("sha256:{}", sha256_hex(&std::fs::read(&small).unwrap()));
    flip_byte(&small, 50);
    cache.sign_in("entries", "entry", &cache_key_of(&small), &approved);

    // Each run samples one of the two cached files at random; until the sample takes the
    // poisoned one, the entry vouches for it (the exposure the sample bounds).
    let mut caught = None;
    for attempt in 1..=40 {
        let ran = deployment.drift(&["run", "--format", "json"]);
        let report = ran.json()["targets"][0]["report"].clone();
        match ran.code {
            Some(0) => assert_eq!(from_cache(&report), SMALL as u64, "{report:#}"),
            Some(1) => {
                caught = Some((attempt, report));
                break;
            }
            other => panic!("exit {other:?}: {}", ran.stderr),
        }
    }
    let (attempt, report) = caught.expect("the sample took the poisoned entry within 40 runs");
    // Once the sample found a mismatch, the cache vouched for nothing: both files were read.
    assert_eq!(from_cache(&report), 0, "run {attempt}: {report:#}");
    assert_eq!(hashed(&report), (BIG + SMALL) as u64);
    assert!(
        warnings(&report).contains("the sample found a cached digest that does not match")
            && warnings(&report).contains("small.safetensors"),
        "{report:#}"
    );
    let small_subject = report["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "small.safetensors")
        .unwrap();
    assert_eq!(small_subject["verdict"], "changed");

    // The entry is replaced by the digest read: every later run still finds the change.
    for _ in 0..3 {
        deployment.run(1);
    }
}

#[test]
fn drift_cache_full_run_happens_when_due() {
    let deployment = Deployment::new("cache = \"state/cache.json\"\nfull_every = \"2days\"");
    deployment.run(0);
    assert!(from_cache(&deployment.run(0)) > 0);

    // The record of the last full run, set three days back under a valid HMAC: due.
    let cache = CacheFile::open(deployment.path("state/cache.json"));
    let three_days_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 3 * 86_400;
    cache.sign_in(
        "full",
        "full",
        "drift target m",
        &three_days_ago.to_string(),
    );
    let due = deployment.run(0);
    assert_eq!(from_cache(&due), 0, "{due:#}");
    assert_eq!(hashed(&due), (BIG + SMALL) as u64);
    assert!(
        warnings(&due).contains("a full run is due (full_every = 172800 s)"),
        "{due:#}"
    );
    // The full run is recorded: the next run uses the cache again.
    assert!(from_cache(&deployment.run(0)) > 0);

    // A record of the last full run edited without the key is refused: a full run.
    let mut stored: Value =
        serde_json::from_slice(&std::fs::read(deployment.path("state/cache.json")).unwrap())
            .unwrap();
    stored["full"]["drift target m"]["value"] =
        Value::from((three_days_ago + 3 * 86_400 + 60).to_string());
    std::fs::write(deployment.path("state/cache.json"), stored.to_string()).unwrap();
    let forged = deployment.run(0);
    assert_eq!(from_cache(&forged), 0);
    assert!(warnings(&forged).contains("fails its HMAC"), "{forged:#}");
}

#[test]
fn drift_cache_never_lives_inside_a_model_and_its_keys_are_checked() {
    let deployment = Deployment::new("");
    for (settings, line, expected) in [
        (
            "cache = \"model/cache.json\"",
            "line 5",
            "the hash cache lies inside the model",
        ),
        (
            "cache_key = \"model/cache.key\"",
            "line 5",
            "the hash cache_key lies inside the model",
        ),
        (
            "rehash_budget = \"fast\"",
            "line 1",
            "rehash_budget = \"fast\" is not a budget",
        ),
        (
            "rehash_budget = -1",
            "line 1",
            "rehash_budget = -1 is not a budget",
        ),
        (
            "full_every = \"soon\"",
            "line 1",
            "full_every = \"soon\" is not a duration",
        ),
        (
            "cache = false\nfull_every = \"1d\"",
            "line 1",
            "full_every is set, yet cache = false",
        ),
    ] {
        deployment.configure(settings);
        let ran = deployment.drift(&["run"]).expect(2);
        assert!(
            ran.stderr.contains("vouch.toml")
                && ran.stderr.contains(line)
                && ran.stderr.contains(expected),
            "{settings}: {}",
            ran.stderr
        );
        assert!(
            !deployment.path("model/cache.json").exists()
                && !deployment.path("model/cache.key").exists(),
            "{settings}: the refused cache was written into the model"
        );
    }

    // The default place is beside the history: a config whose history lies in the model
    // would put the cache there too, which is refused the same way.
    deployment.configure("");
    let text = std::fs::read_to_string(deployment.config())
        .unwrap()
        .replace("state/history.sqlite", "model/history.sqlite");
    std::fs::write(deployment.config(), text).unwrap();
    let ran = deployment.drift(&["run"]).expect(2);
    assert!(
        ran.stderr.contains("vouch-hash-cache.json")
            && ran.stderr.contains("lies inside the model"),
        "{}",
        ran.stderr
    );
}

/// A `drift watch --listen 127.0.0.1:0` child, its stderr lines, and where it listens.
struct Watcher {
    child: Child,
    lines: Receiver<String>,
    address: SocketAddr,
}

impl Watcher {
    fn start(deployment: &Deployment) -> Watcher {
        let mut child = vouch()
            .args(["drift", "watch", "--every", "1s", "--allow-short-interval"])
            .args(["--listen", "127.0.0.1:0", "-c"])
            .arg(deployment.config())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines() {
                let _ = sender.send(line.unwrap());
            }
        });
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the watcher logs where it listens");
        let event: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(event["event"], "listening", "{line}");
        let address = event["address"].as_str().unwrap().parse().unwrap();
        Watcher {
            child,
            lines,
            address,
        }
    }

    /// GET `path`: the status and the body.
    fn get(&self, path: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(self.address).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.address
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP response: {response}"));
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    /// Waits (at most a minute) until GET `path` answers `status`; the body.
    fn wait_for(&self, path: &str, status: u16) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (now, body) = self.get(path);
            if now == status {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "{path} still answers {now} after a minute, not {status}: {body}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        assert_eq!(status.code(), Some(0));
        let stopped = std::iter::from_fn(|| self.lines.recv_timeout(Duration::from_secs(10)).ok())
            .any(|line| line.contains("\"event\":\"stopped\""));
        assert!(stopped, "the watcher logs that it stopped");
    }
}

#[test]
fn readyz_flips_to_503_on_drift_and_back_to_200_after_repair() {
    let test = "readyz_flips_to_503_on_drift_and_back_to_200_after_repair";
    let Some(python) = peer_python(test) else {
        return;
    };
    let deployment = Deployment::new("");
    // A first run makes the history; holding its write lock keeps the watcher's first run
    // from starting, so the endpoint is seen before any check completes.
    deployment.run(0);
    let history = rusqlite::Connection::open(deployment.path("state/history.sqlite")).unwrap();
    history.execute_batch("BEGIN IMMEDIATE").unwrap();
    let watcher = Watcher::start(&deployment);
    let (status, body) = watcher.get("/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("no check has completed yet") || body.contains("not checked yet"),
        "{body}"
    );
    assert_eq!(watcher.get("/healthz").0, 200);
    assert_eq!(watcher.get("/metrics").0, 503, "no run has finished");
    assert_eq!(watcher.get("/nothing").0, 404);
    history.execute_batch("COMMIT").unwrap();
    drop(history);

    let body = watcher.wait_for("/readyz", 200);
    assert!(body.contains("m: verified"), "{body}");
    assert_eq!(watcher.get("/readyz?target=m").0, 200);
    let (status, body) = watcher.get("/readyz?target=nope");
    assert_eq!(status, 404, "{body}");

    // Drift: a bit of the big file flips.
    let big = deployment.path("model/big.safetensors");
    flip_byte(&big, 4096);
    let body = watcher.wait_for("/readyz", 503);
    assert!(
        body.contains("m: not ready: drifted") && body.contains("big.safetensors changed"),
        "{body}"
    );
    assert_eq!(watcher.get("/readyz?target=m").0, 503);

    // /metrics, through prometheus_client's parser: the target drifted, and was checked.
    // (The run's metrics are served once its last target is done.)
    let metrics = metrics_once(&python, watcher.address, "vouch_target_drifted", 1.0);
    let sample = |name: &str| {
        metrics
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name && s["labels"]["target"] == "m")
            .unwrap_or_else(|| panic!("no {name} of m: {metrics:#}"))
            .clone()
    };
    assert_eq!(sample("vouch_target_drifted")["value"], 1.0);
    assert_eq!(sample("vouch_target_check_failed")["value"], 0.0);
    assert_eq!(sample("vouch_target_verified")["value"], 0.0);
    for family in [
        "vouch_target_verified",
        "vouch_target_drifted",
        "vouch_target_check_failed",
        "vouch_target_failed_subjects",
        "vouch_target_bytes_hashed",
        "vouch_target_bytes_from_cache",
    ] {
        assert_eq!(sample(family)["labels"]["owner"], "ml@example.com");
    }

    // Repaired: the bit flips back, and the target is ready again.
    flip_byte(&big, 4096);
    let body = watcher.wait_for("/readyz", 200);
    assert!(body.contains("m: verified"), "{body}");

    // A target that cannot be checked is not ready either, and says why.
    std::fs::rename(deployment.path("model"), deployment.path("model.gone")).unwrap();
    let body = watcher.wait_for("/readyz", 503);
    assert!(
        body.contains("m: not ready: could not be checked") && body.contains("model"),
        "{body}"
    );
    metrics_once(&python, watcher.address, "vouch_target_check_failed", 1.0);
    watcher.stop();
}

/// The samples of `/metrics` once the sample `name` of target m is `value` (within a minute).
fn metrics_once(python: &Path, address: SocketAddr, name: &str, value: f64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let metrics = metrics_by_prometheus_client(python, address);
        let now = metrics
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name && s["labels"]["target"] == "m")
            .and_then(|s| s["value"].as_f64());
        if now == Some(value) {
            return metrics;
        }
        assert!(
            Instant::now() < deadline,
            "{name} of m is still {now:?}, not {value}: {metrics:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every sample of `/metrics` at `address`, as prometheus_client's text parser reads it.
fn metrics_by_prometheus_client(python: &Path, address: SocketAddr) -> Value {
    // Before the first run has finished, /metrics answers 503: no samples yet.
    let script = "import json, sys, urllib.error, urllib.request\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        try:\n    text = urllib.request.urlopen(sys.argv[1]).read().decode()\n\
        except urllib.error.HTTPError as e:\n    assert e.code == 503, e\n    text = ''\n\
        print(json.dumps([{'name': s.name, 'labels': s.labels, 'value': s.value}\n\
            for f in text_string_to_metric_families(text) for s in f.samples]))\n";
    let ran = run(Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(format!("http://{address}/metrics")));
    assert_eq!(ran.code, Some(0), "prometheus_client: {}", ran.stderr);
    ran.json()
}

#[test]
fn listen_refuses_a_bad_address_a_non_loopback_one_and_a_port_in_use() {
    let deployment = Deployment::new("");
    let watch = |listen: &[&str]| {
        let mut args = vec!["watch", "--every", "1s", "--allow-short-interval"];
        args.extend(listen);
        deployment.drift(&args)
    };
    let ran = watch(&["--listen", "localhost:none"]).expect(2);
    assert!(ran.stderr.contains("--listen"), "{}", ran.stderr);
    let ran = watch(&["--listen", "0.0.0.0:0"]).expect(2);
    assert!(
        ran.stderr.contains("not a loopback address")
            && ran.stderr.contains("--allow-non-loopback"),
        "{}",
        ran.stderr
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let ran = watch(&["--listen", &address]).expect(3);
    assert!(
        ran.stderr.contains(&address)
            && ran.stderr.contains("cannot listen there")
            && ran.stderr.to_lowercase().contains("in use"),
        "{}",
        ran.stderr
    );
    assert!(
        !deployment.path("state/history.sqlite").exists(),
        "a watcher that cannot listen checked nothing"
    );
}
