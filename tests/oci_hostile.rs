//! `vouch oci verify` against a registry written to misbehave (a small HTTP server on
//! 127.0.0.1, tests/oci_support/hostile.rs): endless documents are read only to their limit,
//! in little memory; a registry that dribbles is given up at a deadline.

mod common;
mod oci_support;

use std::time::Duration;

use common::*;
use oci_support::hostile::{run_measured, Hostile, Measured, Reply, Request};
use oci_support::{registry_peers, test_certificates, Registry};
use serde_json::json;

const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// The most memory vouch may take against an endless answer.
const PEAK_RSS_LIMIT: u64 = 64 << 20;

/// `vouch oci verify` of `reference` with `args`, anonymously, measured; no retries unless
/// `args` give them.
fn verify(reference: &str, args: &[&str]) -> Measured {
    let retries: &[&str] = match args.contains(&"--retries") {
        true => &[],
        false => &["--retries", "0"],
    };
    run_measured(
        vouch()
            .args(["oci", "verify", reference, "--format", "json"])
            .args(retries)
            .args(args)
            .env("DOCKER_CONFIG", "/nonexistent/vouch-test-docker-config"),
        Duration::from_secs(60),
    )
}

fn endless(content_type: &str) -> Reply {
    Reply::Endless {
        head: format!("HTTP/1.1 200 OK\r\nContent-Type: {content_type}"),
    }
}

/// A bearer challenge sending clients to `/token` on the server itself, over plain HTTP.
fn challenge(request: &Request) -> Reply {
    Reply::status(
        "401 Unauthorized",
        &format!(
            "\r\nWWW-Authenticate: Bearer realm=\"http://{}/token\",service=\"hostile\"",
            request.header("host").unwrap()
        ),
    )
}

fn assert_small(measured: &Measured) {
    assert!(
        measured.peak_rss_bytes < PEAK_RSS_LIMIT,
        "peak RSS {} bytes\n{}",
        measured.peak_rss_bytes,
        measured.ran.stderr
    );
}

#[test]
fn an_endless_manifest_is_read_to_its_limit_and_refused_in_little_memory() {
    let registry = Hostile::start(|request| match request.target.as_str() {
        "/v2/" => Reply::ok("application/json", b"{}"),
        _ => endless(MANIFEST_TYPE),
    });
    let measured = verify(&registry.reference("app:v1"), &[]);
    assert_small(&measured);
    let report = measured.ran.expect(1).json();
    let manifest = &report["subjects"][0];
    assert_eq!(manifest["verdict"], "rejected", "{report}");
    let message = manifest["message"].as_str().unwrap();
    assert!(
        message.contains("the manifest v1") && message.contains("4194304 bytes"),
        "{message}"
    );
}

#[test]
fn an_endless_token_is_read_to_its_limit_and_refused_in_little_memory() {
    let registry = Hostile::start(|request| match request.target.as_str() {
        "/v2/" => challenge(request),
        _ => endless("application/json"),
    });
    let measured = verify(&registry.reference("app:v1"), &[]);
    assert_small(&measured);
    let ran = measured.ran.expect(3);
    assert!(
        ran.stderr.contains("token response") && ran.stderr.contains("/token"),
        "{}",
        ran.stderr
    );
}

/// A model artifact whose one layer `layer` is served by `serve_layer`: the manifest and
/// configuration come whole.
fn artifact_registry(layer: &'static [u8], serve_layer: fn(&[u8]) -> Reply) -> (Hostile, String) {
    let layer_digest = format!("sha256:{}", sha256_hex(layer));
    let config_digest = format!("sha256:{}", sha256_hex(b"{}"));
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "artifactType": "application/vnd.vouch.model.v1",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config_digest, "size": 2},
        "layers": [{
            "mediaType": "application/octet-stream",
            "digest": layer_digest,
            "size": layer.len(),
            "annotations": {"org.opencontainers.image.title": "weights.bin"},
        }],
    })
    .to_string();
    let (config_path, layer_path) = (
        format!("/v2/app/blobs/{config_digest}"),
        format!("/v2/app/blobs/{layer_digest}"),
    );
    let registry = Hostile::start(move |request| match request.target.as_str() {
        "/v2/" => Reply::ok("application/json", b"{}"),
        "/v2/app/manifests/v1" => Reply::ok(MANIFEST_TYPE, manifest.as_bytes()),
        path if path == config_path => Reply::ok("application/octet-stream", b"{}"),
        path if path == layer_path => serve_layer(layer),
        _ => Reply::status("404 Not Found", ""),
    });
    (registry, layer_digest)
}

fn dribble(head: &str, body: &[u8]) -> Reply {
    Reply::Dribble {
        head: head.to_string(),
        body: body.to_vec(),
        pause: Duration::from_millis(500),
    }
}

#[test]
fn a_dribbled_blob_is_given_up_at_its_deadline_naming_it() {
    const LAYER: &[u8] = &[7; 200];
    let (whole, _) = artifact_registry(LAYER, |layer| Reply::ok("application/octet-stream", layer));
    verify(&whole.reference("app:v1"), &["--timeout", "1"])
        .ran
        .expect(0);

    // One byte every half second: each read is well within the timeout, the blob never ends.
    let (dribbling, digest) = artifact_registry(LAYER, |layer| {
        dribble(
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream",
            layer,
        )
    });
    let measured = verify(
        &dribbling.reference("app:v1"),
        &["--timeout", "1", "--retries", "2"],
    );
    assert!(
        measured.took < Duration::from_secs(20),
        "{:?}",
        measured.took
    );
    let report = measured.ran.expect(3).json();
    let blob = report["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str().unwrap().contains(&digest))
        .unwrap();
    assert_eq!(blob["verdict"], "unreadable", "{report}");
    let message = blob["message"].as_str().unwrap();
    assert!(
        message.contains(&digest) && message.contains("deadline"),
        "{message}"
    );
    // A blob past its deadline is not asked for again.
    let asked = dribbling
        .requests()
        .iter()
        .filter(|r| r.target.ends_with(&digest))
        .count();
    assert_eq!(asked, 1);
}

#[test]
fn a_dribbled_manifest_is_given_up_at_its_deadline() {
    let registry = Hostile::start(|request| match request.target.as_str() {
        "/v2/" => Reply::ok("application/json", b"{}"),
        _ => dribble(
            &format!("HTTP/1.1 200 OK\r\nContent-Type: {MANIFEST_TYPE}"),
            &[b' '; 1000],
        ),
    });
    // The deadline: the 1 s timeout plus 4 MiB at 1 MiB/s.
    let measured = verify(&registry.reference("app:v1"), &["--timeout", "1"]);
    assert!(
        measured.took < Duration::from_secs(20),
        "{:?}",
        measured.took
    );
    let ran = measured.ran.expect(3);
    assert!(
        ran.stderr.contains("the manifest v1") && ran.stderr.contains("deadline"),
        "{}",
        ran.stderr
    );
}

#[test]
fn min_rate_must_be_positive() {
    let ran = run_within(
        vouch().args([
            "oci",
            "verify",
            "docker://127.0.0.1:1/app:v1",
            "--min-rate",
            "0",
        ]),
        Duration::from_secs(30),
    )
    .expect(2);
    assert!(
        ran.stderr.contains("invalid value '0' for '--min-rate"),
        "{}",
        ran.stderr
    );
}

#[test]
fn credentials_never_go_to_a_plain_http_token_realm_of_a_tls_registry() {
    const TEST: &str = "credentials_never_go_to_a_plain_http_token_realm_of_a_tls_registry";
    if !registry_peers(TEST) || require_tool(TEST, "openssl").is_none() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (authority, certificate, key) = test_certificates(work.path());
    // The token service a compromised registry names: it would take the credentials.
    let thief = Hostile::start(|_| Reply::ok("application/json", br#"{"token":"t"}"#));
    let realm = format!("http://127.0.0.1:{}/token", thief.port);
    let registry =
        Registry::start_with_tls_and_token_realm(&certificate, &key, &realm, &certificate);
    let docker = work.path().join("docker");
    std::fs::create_dir(&docker).unwrap();
    // base64("vouch:s3cret")
    std::fs::write(
        docker.join("config.json"),
        format!(
            r#"{{"auths":{{"127.0.0.1:{}":{{"auth":"dm91Y2g6czNjcmV0"}}}}}}"#,
            registry.port
        ),
    )
    .unwrap();
    let ran = run_within(
        vouch()
            .args([
                "oci",
                "verify",
                &registry.reference("app:v1"),
                "--retries",
                "0",
            ])
            .env("DOCKER_CONFIG", &docker)
            .env_remove("SSL_CERT_DIR")
            .env("SSL_CERT_FILE", &authority),
        Duration::from_secs(60),
    )
    .expect(3);
    assert!(
        ran.stderr.contains(&realm) && ran.stderr.contains("is not HTTPS"),
        "{}",
        ran.stderr
    );
    let sent: Vec<Request> = thief.requests();
    assert!(
        sent.iter().all(|r| r.header("authorization").is_none()),
        "credentials went to {realm}: {sent:?}"
    );
}

#[test]
fn a_token_realm_on_another_host_gets_the_credentials_over_tls_and_is_named() {
    const TEST: &str = "a_token_realm_on_another_host_gets_the_credentials_over_tls_and_is_named";
    if require_tool(TEST, "openssl").is_none() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (authority, certificate, key) = test_certificates(work.path());
    const LAYER: &[u8] = b"weights";
    let (plain, _) = artifact_registry(LAYER, |layer| Reply::ok("application/octet-stream", layer));
    // The same registry over TLS, behind a bearer challenge whose realm is this server under
    // another name (localhost, not 127.0.0.1); its blobs redirected to the plain server.
    let plain_port = plain.port;
    let registry = Hostile::start_tls(&certificate, &key, move |request| {
        let bearer = request.header("authorization") == Some("Bearer t");
        match request.target.as_str() {
            token if token.starts_with("/token?") => match request.header("authorization") {
                Some(basic) if basic.starts_with("Basic ") => {
                    Reply::ok("application/json", br#"{"token":"t"}"#)
                }
                _ => Reply::status("401 Unauthorized", ""),
            },
            _ if !bearer => Reply::status(
                "401 Unauthorized",
                &format!(
                    "\r\nWWW-Authenticate: Bearer realm=\"https://localhost:{}/token\",service=\"hostile\"",
                    request.header("host").unwrap().rsplit(':').next().unwrap()
                ),
            ),
            path if path.starts_with("/v2/app/blobs/") => Reply::status(
                "307 Temporary Redirect",
                &format!("\r\nLocation: http://127.0.0.1:{plain_port}{path}"),
            ),
            path => proxy(plain_port, path),
        }
    });
    let docker = work.path().join("docker");
    std::fs::create_dir(&docker).unwrap();
    // base64("vouch:s3cret")
    std::fs::write(
        docker.join("config.json"),
        format!(
            r#"{{"auths":{{"127.0.0.1:{}":{{"auth":"dm91Y2g6czNjcmV0"}}}}}}"#,
            registry.port
        ),
    )
    .unwrap();
    let ran = run_within(
        vouch()
            .args([
                "oci",
                "verify",
                &registry.reference("app:v1"),
                "--format",
                "json",
            ])
            .env("DOCKER_CONFIG", &docker)
            .env_remove("SSL_CERT_DIR")
            .env("SSL_CERT_FILE", &authority),
        Duration::from_secs(60),
    )
    .expect(0);
    let warnings = ran.json()["warnings"].to_string();
    assert!(warnings.contains("were sent to localhost"), "{warnings}");
    let token_requests: Vec<Request> = registry
        .requests()
        .into_iter()
        .filter(|r| r.target.starts_with("/token?"))
        .collect();
    assert_eq!(token_requests.len(), 1, "{token_requests:?}");
    assert!(token_requests[0]
        .target
        .contains("scope=repository%3Aapp%3Apull"));
    // The redirected blob downloads came without credentials.
    let redirected = plain.requests();
    assert!(
        redirected
            .iter()
            .any(|r| r.target.starts_with("/v2/app/blobs/")),
        "{redirected:?}"
    );
    assert!(
        redirected
            .iter()
            .all(|r| r.header("authorization").is_none()),
        "{redirected:?}"
    );
}

/// What the plain server on `port` answers to GET `path`, as a whole reply.
fn proxy(port: u16, path: &str) -> Reply {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let head = head
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("content-length"))
        .collect::<Vec<_>>()
        .join("\r\n");
    Reply::Whole {
        head,
        body: answer[split + 4..].to_vec(),
    }
}

#[test]
fn an_expired_bearer_token_is_fetched_again() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    const LAYER: &[u8] = b"weights";
    let (plain, _) = artifact_registry(LAYER, |layer| Reply::ok("application/octet-stream", layer));
    let plain_port = plain.port;
    let issued = AtomicUsize::new(0);
    // Token N is "tN"; blobs take any but the first token, as if it had expired.
    let registry = Hostile::start(move |request| {
        let authorization = request.header("authorization").unwrap_or_default();
        let path = request.target.as_str();
        if path.starts_with("/token?") {
            let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
            return Reply::ok(
                "application/json",
                format!(r#"{{"token":"t{n}"}}"#).as_bytes(),
            );
        }
        let taken = if path.starts_with("/v2/app/blobs/") {
            authorization.starts_with("Bearer t") && authorization != "Bearer t1"
        } else {
            authorization.starts_with("Bearer t")
        };
        match taken {
            true => proxy(plain_port, path),
            false => challenge(request),
        }
    });
    verify(&registry.reference("app:v1"), &[]).ran.expect(0);
    let tokens = registry
        .requests()
        .iter()
        .filter(|r| r.target.starts_with("/token?"))
        .count();
    // One at the start, and one again for each blob read at once with the first.
    assert!((2..=3).contains(&tokens), "{tokens} tokens");
}

#[test]
fn credentials_are_not_sent_over_plain_http_to_another_machine() {
    let mut child = start(
        vouch()
            .args([
                "oci",
                "verify",
                "docker://registry.invalid/app:v1",
                "--insecure",
                "--username",
                "u",
                "--password-stdin",
            ])
            .env("DOCKER_CONFIG", "/nonexistent/vouch-test-docker-config")
            .stdin(std::process::Stdio::piped()),
    );
    {
        use std::io::Write;
        writeln!(child.stdin(), "pw").unwrap();
    }
    let ran = child.finish_within(Duration::from_secs(300)).expect(3);
    assert!(
        ran.stderr.contains("go only over TLS")
            && ran
                .stderr
                .contains("credentials from the given username and password")
            && ran
                .stderr
                .contains("\nhint: drop --insecure or the credentials"),
        "{}",
        ran.stderr
    );
}

/// A registry that answers 429 with `Retry-After: 1` is asked again no sooner than it said
/// (well past the first doubling pause of 250 ms and its jitter), and the check then passes.
#[test]
fn a_retry_waits_as_long_as_retry_after_asks() {
    const LAYER: &[u8] = &[9; 100];
    let layer_digest = format!("sha256:{}", sha256_hex(LAYER));
    let config_digest = format!("sha256:{}", sha256_hex(b"{}"));
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "artifactType": "application/vnd.vouch.model.v1",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config_digest, "size": 2},
        "layers": [{
            "mediaType": "application/octet-stream",
            "digest": layer_digest,
            "size": LAYER.len(),
            "annotations": {"org.opencontainers.image.title": "weights.bin"},
        }],
    })
    .to_string();
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<std::time::Instant>::new()));
    let seen = asked.clone();
    let registry = Hostile::start(move |request| match request.target.as_str() {
        "/v2/" => Reply::ok("application/json", b"{}"),
        "/v2/app/manifests/v1" => {
            let mut times = seen.lock().unwrap();
            times.push(std::time::Instant::now());
            match times.len() {
                1 => Reply::status("429 Too Many Requests", "\r\nRetry-After: 1"),
                _ => Reply::ok(MANIFEST_TYPE, manifest.as_bytes()),
            }
        }
        path if path.ends_with(&config_digest) => Reply::ok("application/octet-stream", b"{}"),
        path if path.ends_with(&layer_digest) => Reply::ok("application/octet-stream", LAYER),
        _ => Reply::status("404 Not Found", ""),
    });
    let report = verify(&registry.reference("app:v1"), &["--retries", "1"])
        .ran
        .expect(0)
        .json();
    assert_eq!(report["status"], "verified", "{report}");
    let times = asked.lock().unwrap();
    assert_eq!(times.len(), 2, "{times:?}");
    let waited = times[1] - times[0];
    assert!(waited >= Duration::from_millis(950), "{waited:?}");
}
