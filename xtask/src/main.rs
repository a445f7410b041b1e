//! Project tasks: `cargo xtask test` sets up the peer tools and runs every check with peers
//! required; `cargo xtask bench` times whole commands against the peers and writes
//! BENCHMARKS.md; `cargo xtask peers` only sets the peers up; `cargo xtask dist` builds what
//! a release ships into target/dist/.

mod bench;
mod bench_quiet;
mod bench_registry;
mod bench_wire;
mod image;

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

use clap::CommandFactory;

/// Python packages the interop tests drive. model-signing 1.1.1 imports pyOpenSSL without
/// declaring it, hence the second entry. The rest check SBOMs (the official CycloneDX and
/// SPDX validators), write the weights formats `vouch scan` reads (safetensors with numpy,
/// gguf, onnx), give the pickle verdicts vouch must match (picklescan; fickling), check
/// action.yml and the GitLab CI template against the platforms' schemas (check-jsonschema),
/// validate the Kubernetes recipes of docs/drift.md (kubernetes-validate), serve the model
/// registry (mlflow), push CNCF ModelPack artifacts (modelpack-client) and oras artifacts
/// (oras, which modelpack-client also depends on), build KServe ModelCar images (olot),
/// and parse what `drift watch --listen` serves on /metrics (prometheus-client's text
/// parser);
/// huggingface_hub (2.x, with the shared Xet blob store) reads the hub caches the tests build.
const PYTHON_PEERS: &[&str] = &[
    "model-signing==1.1.1",
    "pyopenssl",
    "cyclonedx-python-lib[json-validation]==11.12.0",
    "spdx-tools==0.8.5",
    "safetensors==0.8.0",
    "numpy",
    "gguf==0.19.0",
    "onnx==1.23.2",
    "picklescan==1.0.5",
    "fickling==0.1.12",
    "check-jsonschema==0.39.0",
    "kubernetes-validate==1.37.0",
    "mlflow==3.17.2",
    "modelpack-client==0.1.0",
    "oras==0.2.43",
    "olot==1.2.1",
    "huggingface_hub==2.4.0",
    "prometheus-client==0.26.0",
];
/// Debian packages that provide peer commands, with a command each provides. The OCI tests
/// run docker-registry (the CNCF distribution registry) with images built by umoci and
/// moved by skopeo, compress layers with zstd and make a test certificate with openssl;
/// systemd-analyze verifies the systemd recipe of docs/drift.md.
const DEBIAN_PEERS: &[(&str, &str)] = &[
    ("b3sum", "b3sum"),
    ("strace", "strace"),
    ("docker-registry", "docker-registry"),
    ("skopeo", "skopeo"),
    ("umoci", "umoci"),
    ("zstd", "zstd"),
    ("openssl", "openssl"),
    ("systemd", "systemd-analyze"),
    ("util-linux", "fincore"),
    ("util-linux", "ionice"),
    ("procps", "ps"),
];

/// npm packages that provide peer commands: the package, the directory (under the install
/// prefix) that holds its command, and the command. Microsoft's SARIF Multitool validates
/// SARIF against the schema and GitHub code scanning's ingestion rules. npm no longer runs
/// install scripts by default, so the command is made executable here.
const NPM_PEERS: &[(&str, &str, &str)] = &[(
    "@microsoft/sarif-multitool-linux@5.7.0",
    "node_modules/@microsoft/sarif-multitool-linux",
    "Sarif.Multitool",
)];

/// npm libraries the peer scripts under tests/peers/ require (found through NODE_PATH at the
/// prefix's node_modules): sigstore-js signs and verifies key-signed Sigstore bundles.
const NPM_LIBRARIES: &[&str] = &[
    "@sigstore/sign@4.1.1",
    "@sigstore/verify@3.1.1",
    "@sigstore/bundle@4.0.0",
    "@sigstore/core@3.2.1",
];

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("peers") => peers().and_then(|_| rust_peers()).map(|_| ()),
        Some("bench") => peers().and_then(|venv| bench::run(&args[1..], &root(), &venv)),
        Some("dist") => dist(),
        _ => {
            eprintln!("usage: cargo xtask test [-- CARGO TEST ARGS] | cargo xtask bench [--runs N] [--only quiet|cache|registry] | cargo xtask peers | cargo xtask dist");
            exit(2);
        }
    };
    if let Err(message) = result {
        eprintln!("xtask: {message}");
        exit(1);
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_path_buf()
}

fn run(command: &mut Command) -> Result<(), String> {
    eprintln!("xtask: running {command:?}");
    let status = command
        .status()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed with {status}"))
    }
}

/// Sets up the peers, then runs formatting, lint and the whole test suite with peers required.
fn test(extra: &[String]) -> Result<(), String> {
    let venv = peers()?;
    let sigstore_rs = rust_peers()?;
    let root = root();
    run(Command::new("cargo")
        .current_dir(&root)
        .args(["fmt", "--all", "--", "--check"]))?;
    run(Command::new("cargo").current_dir(&root).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    let mut path = vec![venv.join("bin")];
    path.extend(npm_peers()?);
    path.extend(env::split_paths(&env::var_os("PATH").unwrap_or_default()));
    let path = env::join_paths(path).map_err(|e| format!("cannot build PATH: {e}"))?;
    run(Command::new("cargo")
        .current_dir(&root)
        .args(["test", "--workspace"])
        .args(extra)
        .env("VOUCH_REQUIRE_PEERS", "1")
        .env("VOUCH_PEER_PYTHON", venv.join("bin/python"))
        .env("VOUCH_PEER_SIGSTORE_RS", sigstore_rs)
        .env("PATH", path))
}

/// The Rust peer tests/peers/sigstore-rs-check (sigstore-rs from crates.io, verifying cosign
/// signatures in a registry), built on its own, outside the workspace, into
/// target/peers/sigstore-rs-check; returns the path of its binary.
fn rust_peers() -> Result<PathBuf, String> {
    let root = root();
    let target = root.join("target/peers/sigstore-rs-check");
    run(Command::new("cargo")
        .current_dir(&root)
        .args([
            "build",
            "--locked",
            "--manifest-path",
            "tests/peers/sigstore-rs-check/Cargo.toml",
            "--target-dir",
        ])
        .arg(&target))?;
    let binary = target.join("debug/sigstore-rs-check");
    if !binary.is_file() {
        return Err(format!("{} was not built", binary.display()));
    }
    Ok(binary)
}

/// The completion script of each shell `vouch completions` knows, under the name the shell
/// looks for.
const COMPLETIONS: &[(&str, &str)] = &[
    ("bash", "vouch.bash"),
    ("zsh", "_vouch"),
    ("fish", "vouch.fish"),
    ("elvish", "vouch.elv"),
    ("powershell", "_vouch.ps1"),
];

/// Builds the release binary, then writes into target/dist/ the binary, its completion
/// scripts (completions/), man pages for it and each subcommand (man/), and an OCI image
/// layout holding vouch (oci/, tagged with the version).
fn dist() -> Result<(), String> {
    let root = root();
    run(Command::new("cargo").current_dir(&root).args([
        "build",
        "--release",
        "--locked",
        "--package",
        "vouch-cli",
        "--bin",
        "vouch",
    ]))?;
    let dist = root.join("target/dist");
    if dist.exists() {
        fs::remove_dir_all(&dist).map_err(|e| format!("cannot remove {}: {e}", dist.display()))?;
    }
    let completions = dist.join("completions");
    let man = dist.join("man");
    for dir in [&completions, &man] {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let binary = dist.join("vouch");
    fs::copy(root.join("target/release/vouch"), &binary)
        .map_err(|e| format!("cannot copy the release binary: {e}"))?;

    for (shell, file) in COMPLETIONS {
        let output = Command::new(&binary)
            .args(["completions", shell])
            .output()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        if !output.status.success() {
            return Err(format!(
                "vouch completions {shell} failed with {}",
                output.status
            ));
        }
        let path = completions.join(file);
        fs::write(&path, output.stdout)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }

    let command = vouch::cli::Cli::command();
    let version = command
        .get_version()
        .expect("the command line declares its version")
        .to_string();
    clap_mangen::generate_to(command, &man)
        .map_err(|e| format!("cannot write the man pages into {}: {e}", man.display()))?;

    let layout = dist.join("oci");
    let work = dist.join("image-work");
    image::build_image(&binary, &layout, &version, &work)?;
    fs::remove_dir_all(&work).map_err(|e| format!("cannot remove {}: {e}", work.display()))?;
    eprintln!(
        "xtask: wrote {} (vouch {version}, completions/, man/, oci/ as oci:{}:{version})",
        dist.display(),
        layout.display()
    );
    Ok(())
}

/// Installs what the interop tests compare against and returns the Python venv.
fn peers() -> Result<PathBuf, String> {
    install_debian_peers()?;
    npm_peers()?;
    python_peers()
}

fn install_debian_peers() -> Result<(), String> {
    let missing: Vec<&str> = DEBIAN_PEERS
        .iter()
        .filter(|(_, command)| !on_path(command))
        .map(|(package, _)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let sudo: &[&str] = if is_root() { &[] } else { &["sudo"] };
    let apt = |args: &[&str]| {
        let mut all: Vec<&str> = sudo.to_vec();
        all.push("apt-get");
        all.extend_from_slice(args);
        let mut command = Command::new(all[0]);
        command
            .args(&all[1..])
            .env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut command)
    };
    apt(&["update"])?;
    let mut install = vec!["install", "-y", "--no-install-recommends"];
    install.extend(missing);
    apt(&install)
}

fn python_peers() -> Result<PathBuf, String> {
    let venv = root().join("target/peers/venv");
    let stamp = venv.join("vouch-peers.txt");
    let wanted = PYTHON_PEERS.join("\n");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok(venv);
    }
    let python = env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    run(Command::new(&python)
        .args(["-m", "venv", "--clear"])
        .arg(&venv))?;
    let pip = venv.join("bin/pip");
    run(Command::new(&pip).args(["install", "--quiet", "--upgrade", "pip"]))?;
    run(Command::new(&pip)
        .args(["install", "--quiet"])
        .args(PYTHON_PEERS))?;
    std::fs::write(&stamp, wanted).map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    Ok(venv)
}

/// Installs the npm peers under target/peers/npm and returns the directories of their
/// commands.
fn npm_peers() -> Result<Vec<PathBuf>, String> {
    let prefix = root().join("target/peers/npm");
    let stamp = prefix.join("vouch-peers.txt");
    let wanted: Vec<&str> = NPM_PEERS
        .iter()
        .map(|(package, _, _)| *package)
        .chain(NPM_LIBRARIES.iter().copied())
        .collect();
    let wanted_text = wanted.join("\n");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted_text.as_str()) {
        std::fs::create_dir_all(&prefix)
            .map_err(|e| format!("cannot create {}: {e}", prefix.display()))?;
        run(Command::new("npm")
            .args([
                "install",
                "--no-save",
                "--no-audit",
                "--no-fund",
                "--prefix",
            ])
            .arg(&prefix)
            .args(&wanted))?;
        for (_, dir, command) in NPM_PEERS {
            let command = prefix.join(dir).join(command);
            std::fs::set_permissions(
                &command,
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .map_err(|e| format!("cannot make {} executable: {e}", command.display()))?;
        }
        std::fs::write(&stamp, wanted_text)
            .map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    }
    Ok(NPM_PEERS
        .iter()
        .map(|(_, dir, _)| prefix.join(dir))
        .collect())
}

fn on_path(command: &str) -> bool {
    env::var_os("PATH")
        .map(|path| env::split_paths(&path).any(|dir| dir.join(command).is_file()))
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
