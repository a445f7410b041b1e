//! The OCI test harness: Debian's docker-registry (the CNCF distribution registry) on
//! 127.0.0.1, images built by umoci, pushed and pulled by skopeo, and OCI layouts read and
//! rewritten as JSON and blobs.
#![allow(dead_code)] // each test binary uses its own part of this module

pub mod hostile;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vouch::hash::Algorithm;

use crate::common::*;

/// The peer tools every registry test needs, or a skip (a failure when peers are required).
pub fn registry_peers(test: &str) -> bool {
    ["docker-registry", "skopeo", "umoci"]
        .iter()
        .all(|tool| require_tool(test, tool).is_some())
}

/// A docker-registry serving from a temporary directory on a free loopback port; killed
/// when dropped.
pub struct Registry {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Registry {
        Registry::start_with(Auth::None, None)
    }

    /// A registry that requires HTTP basic authentication for the one user of `htpasswd`.
    pub fn start_with_htpasswd(htpasswd: &str) -> Registry {
        Registry::start_with(Auth::Htpasswd(htpasswd), None)
    }

    /// A registry that speaks only TLS, with this certificate and key (PEM files).
    pub fn start_with_tls(certificate: &Path, key: &Path) -> Registry {
        Registry::start_with(Auth::None, Some((certificate, key)))
    }

    /// A registry that speaks only TLS and sends clients for tokens to `realm` (tokens it
    /// checks against the certificates in `bundle`).
    pub fn start_with_tls_and_token_realm(
        certificate: &Path,
        key: &Path,
        realm: &str,
        bundle: &Path,
    ) -> Registry {
        Registry::start_with(Auth::Token { realm, bundle }, Some((certificate, key)))
    }

    /// A registry on plain HTTP that sends clients for tokens to `realm` (tokens it checks
    /// against the certificates in `bundle`).
    pub fn start_with_token_realm(realm: &str, bundle: &Path) -> Registry {
        Registry::start_with(Auth::Token { realm, bundle }, None)
    }

    fn start_with(auth: Auth, tls: Option<(&Path, &Path)>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let auth = match auth {
            Auth::Token { realm, bundle } => format!(
                "auth:\n  token:\n    realm: {realm}\n    service: vouch-test\n    issuer: vouch-test\n    rootcertbundle: {}\n",
                bundle.display()
            ),
            Auth::Htpasswd(line) => {
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, format!("{line}\n")).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: vouch-test\n    path: {}\n",
                    path.display()
                )
            }
            Auth::None => String::new(),
        };
        let tls = match tls {
            Some((certificate, key)) => format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                certificate.display(),
                key.display()
            ),
            None => String::new(),
        };
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{tls}{auth}",
                dir.path().join("storage").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let mut command = Command::new("docker-registry");
        command
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // The registry goes when the test process goes, even if it is killed.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command.spawn().expect("start docker-registry");
        let mut registry = Registry {
            child: Some(child),
            port,
            dir,
        };
        registry.wait_until_serving();
        registry
    }

    fn wait_until_serving(&mut self) {
        let started = Instant::now();
        loop {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                // Any answer will do: an HTTP status, or a TLS server's complaint.
                let mut answer = [0u8; 12];
                if stream.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n").is_ok()
                    && stream.read_exact(&mut answer).is_ok()
                {
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("docker-registry exited ({status}):\n{}", self.log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "docker-registry did not answer within 20 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the registry has logged, its access log among it (one line per request).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `docker://127.0.0.1:PORT/NAME`, NAME being `repo:tag` or `repo@digest`.
    pub fn reference(&self, name: &str) -> String {
        format!("docker://127.0.0.1:{}/{name}", self.port)
    }

    /// Where the registry keeps the bytes of a blob (`sha256:HEX`).
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How a test registry authenticates clients.
enum Auth<'a> {
    None,
    /// HTTP basic authentication of the one user of this htpasswd line.
    Htpasswd(&'a str),
    /// Bearer tokens from `realm`, signed by a certificate of `bundle`.
    Token {
        realm: &'a str,
        bundle: &'a Path,
    },
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs a peer command that must succeed.
pub fn peer(command: &mut Command) -> Ran {
    let ran = run_within(command, Duration::from_secs(120));
    assert_eq!(
        ran.code,
        Some(0),
        "{command:?} failed:\n{}\n{}",
        ran.stdout(),
        ran.stderr
    );
    ran
}

/// `skopeo copy` without TLS (the registry is on loopback) and without a signature policy.
pub fn skopeo_copy(from: &str, to: &str, all: bool) {
    let mut command = Command::new("skopeo");
    command.args([
        "--insecure-policy",
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
    ]);
    if all {
        command.arg("--all");
    }
    peer(command.args([from, to]));
}

/// The test token service (`peers/token_service.py`): it grants what is asked for to
/// `vouch:s3cret` and to the refresh token `refresh-for-vouch`, logging each request to
/// `log`. Killed when dropped.
pub struct TokenService {
    child: Child,
    pub port: String,
    /// The certificate its tokens are signed with, which the registry trusts.
    pub certificate: PathBuf,
    pub log: PathBuf,
}

impl TokenService {
    /// Starts the service with `python`, its files in `dir`, and waits until it listens.
    pub fn start(python: &Path, dir: &Path) -> TokenService {
        let (certificate, port_file, log) = (
            dir.join("token.pem"),
            dir.join("token.port"),
            dir.join("token.log"),
        );
        let mut command = Command::new(python);
        command
            .arg(project_root().join("tests/peers/token_service.py"))
            .args([&certificate, &port_file, &log])
            .args(["vouch:s3cret", "refresh-for-vouch"]);
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut service = TokenService {
            child: command.spawn().expect("start the token service"),
            port: String::new(),
            certificate,
            log,
        };
        let started = Instant::now();
        service.port = loop {
            if let Ok(port) = std::fs::read_to_string(&port_file) {
                break port;
            }
            if let Some(status) = service.child.try_wait().unwrap() {
                panic!("the token service exited ({status})");
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no token service"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        service
    }

    /// A docker-registry that takes this service's tokens.
    pub fn registry(&self) -> Registry {
        Registry::start_with_token_realm(
            &format!("http://127.0.0.1:{}/token", self.port),
            &self.certificate,
        )
    }
}

impl Drop for TokenService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An OCI image layout directory.
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub fn at(dir: &Path) -> Layout {
        Layout {
            dir: dir.to_path_buf(),
        }
    }

    /// `oci:DIR:TAG`.
    pub fn reference(&self, tag: &str) -> String {
        format!("oci:{}:{tag}", self.dir.display())
    }

    /// Builds image `tag` with umoci: one layer per entry of `layers` (each a set of files),
    /// for linux/`architecture`.
    pub fn umoci_image(
        dir: &Path,
        tag: &str,
        architecture: &str,
        layers: &[&[(&str, &[u8])]],
    ) -> Layout {
        let layout = Layout::at(dir);
        if !dir.join("oci-layout").exists() {
            peer(Command::new("umoci").arg("init").arg("--layout").arg(dir));
        }
        let image = format!("{}:{tag}", dir.display());
        peer(Command::new("umoci").args(["new", "--image", &image]));
        let sources = tempfile::tempdir().unwrap();
        for (i, files) in layers.iter().enumerate() {
            let source = sources.path().join(format!("layer{i}"));
            write_tree(&source, files);
            peer(
                Command::new("umoci")
                    .args(["insert", "--rootless", "--image", &image])
                    .arg(&source)
                    .arg(format!("/data/layer{i}")),
            );
        }
        peer(Command::new("umoci").args([
            "config",
            "--image",
            &image,
            "--os",
            "linux",
            "--architecture",
            architecture,
        ]));
        peer(Command::new("umoci").arg("gc").arg("--layout").arg(dir));
        layout
    }

    /// An empty layout, for artifacts written by hand.
    pub fn empty(dir: &Path) -> Layout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        std::fs::write(
            dir.join("index.json"),
            r#"{"schemaVersion":2,"manifests":[]}"#,
        )
        .unwrap();
        Layout::at(dir)
    }

    pub fn index(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.dir.join("index.json")).unwrap()).unwrap()
    }

    /// The descriptor `index.json` holds for `tag`.
    pub fn descriptor(&self, tag: &str) -> Value {
        self.index()["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .unwrap_or_else(|| panic!("no tag {tag} in {}", self.dir.display()))
            .clone()
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let (algorithm, hex) = digest.split_once(':').expect("ALGORITHM:HEX");
        self.dir.join("blobs").join(algorithm).join(hex)
    }

    pub fn read_json(&self, digest: &str) -> Value {
        serde_json::from_slice(&std::fs::read(self.blob_path(digest)).unwrap()).unwrap()
    }

    /// The manifest tagged `tag`.
    pub fn manifest(&self, tag: &str) -> Value {
        self.read_json(self.descriptor(tag)["digest"].as_str().unwrap())
    }

    /// Stores `bytes` as a blob and returns a descriptor of `media_type` for it.
    pub fn write_blob(&self, media_type: &str, bytes: &[u8]) -> Value {
        self.write_blob_as(Algorithm::Sha256, media_type, bytes)
    }

    /// Like [`Layout::write_blob`], addressed by another digest algorithm.
    pub fn write_blob_as(&self, algorithm: Algorithm, media_type: &str, bytes: &[u8]) -> Value {
        let digest = algorithm.digest(bytes).prefixed();
        let path = self.blob_path(&digest);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
        json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
    }

    /// Points `tag` at `descriptor` in `index.json` (replacing an earlier entry).
    pub fn tag(&self, tag: &str, descriptor: &Value) {
        let mut index = self.index();
        let manifests = index["manifests"].as_array_mut().unwrap();
        manifests.retain(|m| m["annotations"]["org.opencontainers.image.ref.name"] != tag);
        let mut entry = descriptor.clone();
        entry["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        manifests.push(entry);
        std::fs::write(self.dir.join("index.json"), index.to_string()).unwrap();
    }

    /// Writes `manifest` (an image manifest) and tags it.
    pub fn put_manifest(&self, tag: &str, manifest: &Value) -> Value {
        let descriptor = self.write_blob(
            "application/vnd.oci.image.manifest.v1+json",
            manifest.to_string().as_bytes(),
        );
        self.tag(tag, &descriptor);
        descriptor
    }

    /// Writes an image index over the images tagged `entries` (tag, architecture) and tags it.
    pub fn put_index(&self, tag: &str, entries: &[(&str, &str)]) -> Value {
        let manifests: Vec<Value> = entries
            .iter()
            .map(|(image, architecture)| {
                let d = self.descriptor(image);
                json!({
                    "mediaType": d["mediaType"],
                    "digest": d["digest"],
                    "size": d["size"],
                    "platform": {"os": "linux", "architecture": architecture},
                })
            })
            .collect();
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        });
        let descriptor = self.write_blob(
            "application/vnd.oci.image.index.v1+json",
            index.to_string().as_bytes(),
        );
        self.tag(tag, &descriptor);
        descriptor
    }

    /// Writes a model artifact: an empty configuration and one layer per file, named by
    /// the title annotation, as oras pushes a model.
    pub fn put_artifact(&self, tag: &str, files: &[(&str, &[u8])]) -> Value {
        let config = self.write_blob("application/vnd.oci.empty.v1+json", b"{}");
        let layers: Vec<Value> = files
            .iter()
            .map(|(name, bytes)| {
                let mut layer = self.write_blob("application/octet-stream", bytes);
                layer["annotations"] = json!({"org.opencontainers.image.title": name});
                layer
            })
            .collect();
        self.put_manifest(
            tag,
            &json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactType": "application/vnd.vouch.model.v1",
                "config": config,
                "layers": layers,
            }),
        )
    }
}

/// The subjects of a JSON report whose name contains `part`.
pub fn subjects_named<'a>(report: &'a Value, part: &str) -> Vec<&'a Value> {
    report["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"].as_str().unwrap().contains(part))
        .collect()
}

/// The names of the subjects that are not `ok`, with their verdicts, sorted.
pub fn failures(report: &Value) -> Vec<(String, String)> {
    let mut failed: Vec<(String, String)> = report["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["verdict"] != "ok")
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    failed.sort();
    failed
}

/// `vouch oci verify REF ARGS… --format json`, bounded in time, with no Docker
/// configuration (so no credentials but those given).
pub fn oci_verify(reference: &str, args: &[&str]) -> Ran {
    run_within(
        vouch()
            .args(["oci", "verify", reference, "--format", "json"])
            .args(args)
            .env("DOCKER_CONFIG", "/nonexistent/vouch-test-docker-config"),
        Duration::from_secs(60),
    )
}

/// `vouch oci digest REF`, which must succeed.
pub fn oci_digest(reference: &str) -> String {
    let ran = run_within(
        vouch().args(["oci", "digest", reference]),
        Duration::from_secs(60),
    )
    .expect(0);
    ran.stdout().trim().to_string()
}

/// A certificate authority and a server certificate it signed for 127.0.0.1 and localhost,
/// made with the openssl command: `(ca.pem, cert.pem, key.pem)` in `dir`.
pub fn test_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let path = |name: &str| dir.join(name);
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    peer(
        Command::new("openssl")
            .args(["req", "-x509"])
            .args(ec)
            .args(["-days", "2", "-subj", "/CN=vouch test CA", "-keyout"])
            .arg(path("ca.key"))
            .arg("-out")
            .arg(path("ca.pem")),
    );
    peer(
        Command::new("openssl")
            .arg("req")
            .args(ec)
            .args(["-subj", "/CN=localhost", "-keyout"])
            .arg(path("key.pem"))
            .arg("-out")
            .arg(path("server.csr")),
    );
    std::fs::write(
        path("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    peer(
        Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-in"])
            .arg(path("server.csr"))
            .arg("-CA")
            .arg(path("ca.pem"))
            .arg("-CAkey")
            .arg(path("ca.key"))
            .arg("-CAcreateserial")
            .arg("-extfile")
            .arg(path("server.ext"))
            .arg("-out")
            .arg(path("cert.pem")),
    );
    (path("ca.pem"), path("cert.pem"), path("key.pem"))
}

/// A two-layer image built by umoci in `dir`, tagged `tag`; `seed` makes its content unique
/// (blobs are shared by digest in a registry, so each test corrupts only its own).
pub fn two_layer_image(dir: &Path, tag: &str, architecture: &str, seed: u64) -> Layout {
    let weights = pseudo_random(200_000, seed);
    let settings = format!("threads = {seed}\n");
    Layout::umoci_image(
        dir,
        tag,
        architecture,
        &[
            &[("weights.bin", &weights)],
            &[("etc/app.conf", settings.as_bytes())],
        ],
    )
}

/// A model directory, its approved manifest (written by `vouch manifest`), and its files.
pub fn approved_model(dir: &Path) -> (std::path::PathBuf, Vec<(&'static str, Vec<u8>)>) {
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("config.json", br#"{"hidden_size": 64}"#.to_vec()),
        ("model.safetensors", pseudo_random(300_000, 20)),
        ("tokenizer/vocab.txt", b"hello\nworld\n".to_vec()),
    ];
    let model = dir.join("model");
    let borrowed: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    write_tree(&model, &borrowed);
    let manifest = dir.join("approved.json");
    write_manifest(&model, &manifest, &[]);
    (manifest, files)
}

/// Pushes `files` as a model artifact (one layer per file) to `registry` at `name`.
pub fn push_artifact(
    registry: &Registry,
    work: &Path,
    name: &str,
    files: &[(&str, Vec<u8>)],
) -> (Layout, String) {
    let layout = Layout::empty(&work.join(name.replace([':', '/'], "-")));
    let borrowed: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    layout.put_artifact("v1", &borrowed);
    let reference = registry.reference(name);
    skopeo_copy(&layout.reference("v1"), &reference, false);
    (layout, reference)
}

/// A tar layer written by Python's tarfile with the entries `entries` (a Python list of
/// `(name, kind, target)` tuples: `file` with content `target`, `symlink` or `hardlink` to
/// `target`), gzip-compressed when `media_type` ends in `+gzip`; returns its bytes.
pub fn python_tar(python: &Path, out: &Path, entries: &str, media_type: &str) -> Vec<u8> {
    let mode = if media_type.ends_with("+gzip") {
        "w:gz"
    } else {
        "w"
    };
    let script = format!(
        r#"
import io, tarfile, sys
with tarfile.open(sys.argv[1], "{mode}") as tar:
    for name, kind, target in {entries}:
        info = tarfile.TarInfo(name)
        if kind == "file":
            data = target.encode()
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        else:
            info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
            info.linkname = target
            tar.addfile(info)
"#
    );
    peer(Command::new(python).arg("-c").arg(script).arg(out));
    std::fs::read(out).unwrap()
}
