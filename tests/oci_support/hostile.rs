//! A registry written to misbehave: an HTTP server (plain, or over TLS) on 127.0.0.1 whose
//! every answer a test chooses (an endless body, a body dribbled a byte at a time), recording what it was
//! sent. It stops when dropped, and by itself after [`LIFETIME`].

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest the server runs, whatever the test does.
pub const LIFETIME: Duration = Duration::from_secs(120);

/// One request as received.
#[derive(Clone, Debug)]
pub struct Request {
    /// The method (`GET`, `PUT`…).
    pub method: String,
    /// The path and query.
    pub target: String,
    /// `(lower-case name, value)`.
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How to answer a request.
pub enum Reply {
    /// A complete answer: status line and headers (without the blank line), and a body.
    Whole { head: String, body: Vec<u8> },
    /// These headers, then bytes without end (until the client goes away).
    Endless { head: String },
    /// These headers (with the body's Content-Length), then the body a byte at a time with
    /// `pause` between bytes.
    Dribble {
        head: String,
        body: Vec<u8>,
        pause: Duration,
    },
}

impl Reply {
    /// `200 OK` with `body` of `content_type`.
    pub fn ok(content_type: &str, body: &[u8]) -> Reply {
        Reply::Whole {
            head: format!("HTTP/1.1 200 OK\r\nContent-Type: {content_type}"),
            body: body.to_vec(),
        }
    }

    pub fn status(line: &str, headers: &str) -> Reply {
        Reply::Whole {
            head: format!("HTTP/1.1 {line}{headers}"),
            body: Vec::new(),
        }
    }
}

type Answer = dyn Fn(&Request) -> Reply + Send + Sync;

pub struct Hostile {
    pub port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Hostile {
    /// A server speaking plain HTTP.
    pub fn start(answer: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Hostile {
        Hostile::start_with(None, answer)
    }

    /// A server speaking HTTPS only, with this certificate and key (PEM files).
    pub fn start_tls(
        certificate: &std::path::Path,
        key: &std::path::Path,
        answer: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> Hostile {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_file_iter(certificate)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(key).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        Hostile::start_with(Some(Arc::new(config)), answer)
    }

    fn start_with(
        tls: Option<Arc<rustls::ServerConfig>>,
        answer: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let answer: Arc<Answer> = Arc::new(answer);
        let thread = {
            let (requests, stop) = (requests.clone(), stop.clone());
            std::thread::spawn(move || {
                let started = Instant::now();
                while !stop.load(Ordering::Relaxed) && started.elapsed() < LIFETIME {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (requests, stop, answer, tls) =
                                (requests.clone(), stop.clone(), answer.clone(), tls.clone());
                            std::thread::spawn(move || {
                                let _ = stream.set_nonblocking(false);
                                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                                let server = Server {
                                    requests: &requests,
                                    stop: &stop,
                                    started,
                                    answer: &*answer,
                                };
                                match tls {
                                    Some(config) => {
                                        let Ok(connection) = rustls::ServerConnection::new(config)
                                        else {
                                            return;
                                        };
                                        server.serve(rustls::StreamOwned::new(connection, stream))
                                    }
                                    // A TLS client hello: this server speaks plain HTTP only.
                                    None if first_byte(&stream) == Some(0x16) => {}
                                    None => server.serve(stream),
                                }
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        Hostile {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// `docker://127.0.0.1:PORT/NAME`.
    pub fn reference(&self, name: &str) -> String {
        format!("docker://127.0.0.1:{}/{name}", self.port)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The first byte a client sent, without taking it.
fn first_byte(stream: &TcpStream) -> Option<u8> {
    let mut byte = [0u8; 1];
    (stream.peek(&mut byte).ok()? == 1).then_some(byte[0])
}

struct Server<'a> {
    requests: &'a Mutex<Vec<Request>>,
    stop: &'a AtomicBool,
    started: Instant,
    answer: &'a Answer,
}

impl Server<'_> {
    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed) && self.started.elapsed() < LIFETIME
    }

    /// Answers the requests of one connection until the client or the server stops.
    fn serve(&self, stream: impl Read + Write) {
        let mut reader = BufReader::new(stream);
        while self.running() {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let method = line.split_whitespace().next().unwrap_or("").to_string();
            let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let mut headers = Vec::new();
            let mut length = 0u64;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 {
                    return;
                }
                let header = header.trim_end();
                if header.is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':') {
                    let name = name.trim().to_ascii_lowercase();
                    if name == "content-length" {
                        length = value.trim().parse().unwrap_or(0);
                    }
                    headers.push((name, value.trim().to_string()));
                }
            }
            let _ = (&mut reader).take(length).read_to_end(&mut Vec::new());
            let request = Request {
                method,
                target,
                headers,
            };
            self.requests.lock().unwrap().push(request.clone());
            let writer = reader.get_mut();
            let written = match (self.answer)(&request) {
                Reply::Whole { head, body } => writer
                    .write_all(
                        format!("{head}\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes(),
                    )
                    .and_then(|()| writer.write_all(&body))
                    .and_then(|()| writer.flush()),
                Reply::Endless { head } => {
                    let _ =
                        writer.write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes());
                    let filler = vec![b' '; 64 << 10];
                    while self.running() && writer.write_all(&filler).is_ok() {}
                    return;
                }
                Reply::Dribble { head, body, pause } => {
                    let _ = writer.write_all(
                        format!("{head}\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes(),
                    );
                    for byte in body {
                        if !self.running()
                            || writer
                                .write_all(&[byte])
                                .and_then(|()| writer.flush())
                                .is_err()
                        {
                            return;
                        }
                        std::thread::sleep(pause);
                    }
                    Ok(())
                }
            };
            if written.is_err() || request.header("connection") == Some("close") {
                return;
            }
        }
    }
}

/// The peak resident memory of a child, from the kernel's accounting when it is reaped.
pub struct Measured {
    pub ran: crate::common::Ran,
    pub peak_rss_bytes: u64,
    pub took: Duration,
}

/// Runs `command` (its output to files), killing it after `limit`, and reports its peak RSS
/// as `wait4` gives it.
pub fn run_measured(command: &mut std::process::Command, limit: Duration) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    // Reaped by wait4 below, which gives the rusage `Child::wait` does not.
    #[allow(clippy::zombie_processes)]
    let child = command
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("start vouch");
    let pid = child.id() as libc::pid_t;
    let started = Instant::now();
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(reaped >= 0, "wait4 failed");
        if reaped == pid {
            break;
        }
        if started.elapsed() > limit {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
            panic!(
                "{command:?} did not finish within {limit:?}; peak RSS {} KiB",
                usage.ru_maxrss
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let signal = libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status));
    Measured {
        ran: crate::common::Ran {
            code,
            signal,
            stdout: std::fs::read(&out).unwrap(),
            stderr: String::from_utf8_lossy(&std::fs::read(&err).unwrap()).into_owned(),
        },
        peak_rss_bytes: usage.ru_maxrss as u64 * 1024,
        took: started.elapsed(),
    }
}
