//! Helpers shared by the integration tests: running the real binary, finding peer tools,
//! and building model directories from real bytes.
//!
//! Where each kind of test goes (unit tests of one module's logic stay beside it in `src/`):
//! - `cli.rs`: the command line as a pipeline sees it: report formats, exit statuses,
//!   `--jobs`, `--progress`, usage errors; and this harness's own checks.
//! - `approvals.rs`: reading approval inputs (manifests, bundles, keys, certificates, check
//!   lists) and what they may claim.
//! - `pins.rs`: `--digest` and `--manifest-digest` pins of a whole model.
//! - `signatures.rs`: signature formats, their fixtures, forged and altered variants.
//! - `bundle_key.rs`: detached Sigstore bundles signed with a key, made and checked by
//!   sigstore-js (`peers/sigstore_js_peer.js`).
//! - `faults.rs`: files that change while read, special files, links, races between the walk
//!   and the open (strace), unreadable files, half-written outputs.
//! - `formats_hostile.rs`: header readers against random, truncated and hostile bytes.
//! - `interop_*.rs`: the same input through vouch and a peer tool or validator (`hash`,
//!   `formats`, `model_signing`, `sbom`, `sbom_oci`); peers come from `cargo xtask peers`.
//! - `oci.rs`: `vouch oci` against a real registry and OCI layouts (`oci_support/`).
//! - `oci_hostile.rs`: a registry written to misbehave (`oci_support/hostile.rs`).
//! - `oci_sign.rs`: `vouch oci sign` into a real registry and layouts, checked by vouch and
//!   by sigstore-rs (`peers/sigstore-rs-check`).
//! - `drift.rs`: `vouch drift` runs, history, waivers, metrics, alerts, `watch`.
//! - `continuous.rs`: the hash cache in drift runs, and `drift watch --listen` (/readyz,
//!   /metrics).
//! - `readme.rs`: the README's commands on a fresh clone.
//! - `architecture.rs`: the layer table of `src/lib.rs`, checked against every import.
//!
//! Children run through [`run`], [`run_within`] or [`start`]: their stdout and stderr are
//! read while they run, under a time cap.
#![allow(dead_code)] // each test binary uses its own part of this module

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;

/// The vouch binary under test.
pub fn vouch() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vouch"));
    // State goes beside the config unless a test gives systemd's state directory itself.
    command.stdin(Stdio::null()).env_remove("STATE_DIRECTORY");
    command
}

/// The vouch binary, run as nobody (through `setpriv`) when the tests run as root, so that a
/// file's permissions bite; `None` (the test skipped) when `setpriv` is missing.
pub fn vouch_without_privilege(test: &str) -> Option<Command> {
    if unsafe { libc::geteuid() } != 0 {
        return Some(vouch());
    }
    let mut command = Command::new(require_tool(test, "setpriv")?);
    command
        .stdin(Stdio::null())
        .env_remove("STATE_DIRECTORY")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_vouch"),
        ]);
    Some(command)
}

/// What a finished command did.
pub struct Ran {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Ran {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr: {}",
                self.stdout(),
                self.stderr
            )
        })
    }

    /// Asserts the exit status, showing both streams when it differs.
    pub fn expect(self, code: i32) -> Ran {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit {code}, got {:?} (signal {:?})\nstdout:\n{}\nstderr:\n{}",
            self.code,
            self.signal,
            self.stdout(),
            self.stderr
        );
        self
    }
}

/// A started child whose stdout and stderr are read (each by a thread) while it runs, so a
/// child writing more than a pipe holds never waits on the test.
pub struct Running {
    child: Child,
    stdout: Receiver<Vec<u8>>,
    stderr: Receiver<Vec<u8>>,
    shown: String,
}

/// Starts `command` with its stdout and stderr piped and read as it runs.
pub fn start(command: &mut Command) -> Running {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let stdout = read_all(child.stdout.take().expect("stdout is piped"));
    let stderr = read_all(child.stderr.take().expect("stderr is piped"));
    Running {
        child,
        stdout,
        stderr,
        shown: format!("{command:?}"),
    }
}

/// Everything `stream` gives until it closes, sent when it does.
fn read_all(mut stream: impl Read + Send + 'static) -> Receiver<Vec<u8>> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        let _ = sender.send(bytes);
    });
    receiver
}

impl Running {
    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child's stdin, when the command piped it.
    pub fn stdin(&mut self) -> ChildStdin {
        self.child.stdin.take().expect("the command pipes stdin")
    }

    /// Waits for the child and its output, failing the test (the child killed) if that takes
    /// longer than `limit` from now.
    pub fn finish_within(mut self, limit: Duration) -> Ran {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let stderr = self
                    .stderr
                    .recv_timeout(Duration::from_secs(1))
                    .unwrap_or_default();
                panic!(
                    "{} did not finish within {limit:?}; stderr:\n{}",
                    self.shown,
                    String::from_utf8_lossy(&stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        // A descendant that kept the pipes open holds them past the child's exit.
        let collect = |stream: &Receiver<Vec<u8>>, name: &str| {
            stream
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| {
                    panic!("the {name} of {} stayed open after it exited", self.shown)
                })
        };
        let stdout = collect(&self.stdout, "stdout");
        let stderr = collect(&self.stderr, "stderr");
        Ran {
            code: status.code(),
            signal: status.signal(),
            stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }
}

/// Runs `command`, failing the test if it takes longer than `limit` (then it is killed).
pub fn run_within(command: &mut Command, limit: Duration) -> Ran {
    start(command).finish_within(limit)
}

pub fn run(command: &mut Command) -> Ran {
    run_within(command, Duration::from_secs(300))
}

/// Runs vouch with `args`.
pub fn vouch_run<I, S>(args: I) -> Ran
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    run(vouch().args(args))
}

/// Whether a missing peer fails the test (CI, or `cargo xtask test`) instead of skipping it.
pub fn peers_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("VOUCH_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

/// Reports a skipped test on the real stderr (not captured by the test harness), or fails
/// the test when peers are required.
pub fn skip(test: &str, why: &str) {
    if peers_required() {
        panic!("{test}: {why}; peers are required here (CI=true or cargo xtask test)");
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {why} (run `cargo xtask test` to set up peers)"
    );
}

/// A program on PATH.
pub fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A peer tool on PATH, or a skip (a failure when peers are required).
pub fn require_tool(test: &str, name: &str) -> Option<PathBuf> {
    let found = tool(name);
    if found.is_none() {
        skip(test, &format!("peer tool '{name}' not found on PATH"));
    }
    found
}

/// The project root.
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python of the peer venv that `cargo xtask test` sets up (model-signing 1.1.1).
pub fn peer_python(test: &str) -> Option<PathBuf> {
    let python = std::env::var_os("VOUCH_PEER_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target/peers/venv/bin/python"));
    if python.is_file() {
        Some(python)
    } else {
        skip(
            test,
            &format!(
                "the model-signing venv ({}) is not set up",
                python.display()
            ),
        );
        None
    }
}

/// The sigstore-rs peer (`tests/peers/sigstore-rs-check`, built by `cargo xtask test` into
/// target/peers/sigstore-rs-check), from `VOUCH_PEER_SIGSTORE_RS` or its build directory;
/// a skip when it is not built (a failure when peers are required).
pub fn peer_sigstore_rs(test: &str) -> Option<PathBuf> {
    let binary = std::env::var_os("VOUCH_PEER_SIGSTORE_RS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            project_root().join("target/peers/sigstore-rs-check/debug/sigstore-rs-check")
        });
    if binary.is_file() {
        Some(binary)
    } else {
        skip(
            test,
            &format!("the sigstore-rs peer ({}) is not built", binary.display()),
        );
        None
    }
}

/// Runs the model-signing helper script with the peer Python.
pub fn model_signing(python: &Path, args: &[&std::ffi::OsStr]) -> Ran {
    let script = project_root().join("tests/peers/model_signing_peer.py");
    let ran = run(Command::new(python).arg(script).args(args));
    assert_eq!(
        ran.code,
        Some(0),
        "model-signing helper {args:?} failed:\n{}",
        ran.stderr
    );
    ran
}

/// `../shared/testdata` beside the checkout, or a skip where it is absent (a failure in CI).
pub fn shared_testdata(test: &str) -> Option<PathBuf> {
    let dir = project_root().join("../shared/testdata");
    if dir.is_dir() {
        Some(dir)
    } else {
        skip(test, "../shared/testdata is absent beside the checkout");
        None
    }
}

/// `vouch manifest MODEL -o OUTPUT ARGS…`, which must succeed.
pub fn write_manifest(model: &Path, output: &Path, args: &[&str]) {
    run(vouch()
        .arg("manifest")
        .arg(model)
        .arg("-o")
        .arg(output)
        .args(args))
    .expect(0);
}

/// The subjects of a JSON report with the verdict `verdict`, in report order.
pub fn with_verdict<'a>(
    report: &'a serde_json::Value,
    verdict: &str,
) -> Vec<&'a serde_json::Value> {
    report["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["verdict"] == verdict)
        .collect()
}

/// Writes files (creating directories) under `root`.
pub fn write_tree(root: &Path, files: &[(&str, &[u8])]) {
    for (name, bytes) in files {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
    }
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Flips one bit of the byte at `offset`.
pub fn flip_byte(path: &Path, offset: u64) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, offset).unwrap();
    byte[0] ^= 0x01;
    file.write_all_at(&byte, offset).unwrap();
}

/// sha256 of bytes, hex, computed by the library (for expectations built in tests).
pub fn sha256_hex(bytes: &[u8]) -> String {
    vouch::hash::Algorithm::Sha256.digest(bytes).hex()
}

/// Runs the formats helper (`tests/peers/formats_peer.py COMMAND ARG`) with the peer Python
/// and returns the JSON it prints.
pub fn formats_peer(python: &Path, command: &str, arg: &Path) -> serde_json::Value {
    let script = project_root().join("tests/peers/formats_peer.py");
    let ran = run(Command::new(python).arg(script).arg(command).arg(arg));
    assert_eq!(
        ran.code,
        Some(0),
        "formats helper {command} failed:\n{}",
        ran.stderr
    );
    ran.json()
}

/// Rewrites the bundle at `from` into `to` after `edit` changes its JSON.
pub fn edited_bundle(from: &Path, to: &Path, edit: impl Fn(&mut Value)) {
    let mut bundle: Value = serde_json::from_slice(&std::fs::read(from).unwrap()).unwrap();
    edit(&mut bundle);
    std::fs::write(to, serde_json::to_vec(&bundle).unwrap()).unwrap();
}

/// Changes one hex digit of the first sha256 digest inside the base64 payload.
pub fn alter_payload(bundle: &mut Value) {
    let payload = STANDARD
        .decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    let mut text = String::from_utf8(payload).unwrap();
    let at = text.find("\"sha256\"").expect("a sha256 digest") + "\"sha256\"".len();
    let at = at + text[at..].find(|c: char| c.is_ascii_hexdigit()).unwrap();
    let digit = if &text[at..=at] == "0" { "1" } else { "0" };
    text.replace_range(at..=at, digit);
    bundle["dsseEnvelope"]["payload"] = STANDARD.encode(text).into();
}

/// The strict CycloneDX 1.6 JSON validator of cyclonedx-python-lib must accept `path`.
pub fn validate_cyclonedx(python: &Path, path: &Path) {
    let result = formats_peer(python, "cyclonedx", path);
    assert_eq!(result["errors"], Value::Null, "{}", result["errors"]);
}

/// `pyspdxtools -i` must accept `path`.
pub fn validate_spdx(path: &Path) {
    let tool = tool("pyspdxtools").expect("pyspdxtools is in the peer venv");
    let ran = run(Command::new(tool).arg("-i").arg(path));
    assert_eq!(
        ran.code,
        Some(0),
        "pyspdxtools rejected {}:\n{}{}",
        path.display(),
        ran.stdout(),
        ran.stderr
    );
}

/// In a JSON array of objects, the `field` of the first whose `key` is `value`.
pub fn lookup(array: &Value, key: &str, value: &str, field: &str) -> Option<String> {
    array
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item[key] == value)
        .map(|item| item[field].as_str().unwrap().to_string())
}

/// Every file under `dir`, at any depth (directories themselves left out).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}
