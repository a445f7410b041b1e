//! The readiness endpoint of `drift watch --listen`: `/metrics` (the Prometheus families of
//! the last run), `/readyz` (200 while every target, or the one `?target=` names, verified
//! at its last check; 503 with the reason otherwise, and before any check) and `/healthz`.
//!
//! The watcher tells a [`Watched`] what it checks and finds; the server only reads it.
//! HTTP/1 by hyper, on a thread of its own.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use jiff::Timestamp;

use super::outcome::TargetResult;
use crate::error::{Error, Result};
use crate::report::Status;

/// What the watcher last found, as the endpoint serves it.
#[derive(Default)]
pub struct Watched {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The targets of the run under way or last run, in the config's order, each with its
    /// definition (what the config says it is and must match).
    targets: Vec<(String, String)>,
    /// What each target's last check found, and the definition it checked.
    last: HashMap<String, Checked>,
    /// Why the last run did not run at all (a config that no longer parses).
    run_failure: Option<String>,
    metrics: Option<String>,
}

struct Checked {
    definition: String,
    at: Timestamp,
    /// Why the target is not ready; `None` when it verified.
    problem: Option<String>,
}

impl Watched {
    /// A run is starting over these targets (name, definition); what was found of a target
    /// no longer among them, or defined otherwise now (another path, another approval), is
    /// forgotten: such a target is not checked yet.
    pub fn run_started(&self, targets: Vec<(String, String)>) {
        let mut state = self.state.lock().expect("endpoint state lock");
        state.last.retain(|name, checked| {
            targets
                .iter()
                .any(|(n, definition)| n == name && *definition == checked.definition)
        });
        state.targets = targets;
        state.run_failure = None;
    }

    pub fn target_checked(&self, result: &TargetResult) {
        let problem = match result.report.status() {
            Status::Verified => None,
            Status::Failed => {
                let failures: Vec<String> = result
                    .report
                    .failures()
                    .take(3)
                    .map(|s| format!("{} {}", s.name, s.verdict.name()))
                    .collect();
                Some(format!(
                    "drifted from its approval ({} failed: {})",
                    result.report.failures().count(),
                    failures.join(", ")
                ))
            }
            Status::Error => Some(format!(
                "could not be checked: {}",
                result
                    .report
                    .error
                    .clone()
                    .unwrap_or_else(|| "some files could not be read".to_string())
            )),
        };
        let mut state = self.state.lock().expect("endpoint state lock");
        // The check is of the definition the run under way started with.
        let Some(definition) = state
            .targets
            .iter()
            .find(|(name, _)| *name == result.name)
            .map(|(_, definition)| definition.clone())
        else {
            return;
        };
        state.last.insert(
            result.name.clone(),
            Checked {
                definition,
                at: Timestamp::now(),
                problem,
            },
        );
    }

    /// The run is over; `metrics` is its exposition.
    pub fn run_finished(&self, metrics: String) {
        self.state.lock().expect("endpoint state lock").metrics = Some(metrics);
    }

    /// The run could not start or finish (`message` says why): not ready until one does.
    pub fn run_failed(&self, message: String) {
        self.state.lock().expect("endpoint state lock").run_failure = Some(message);
    }

    /// The status and body of `/readyz`, of every target or of `only`.
    fn readiness(&self, only: Option<&str>) -> (StatusCode, String) {
        let state = self.state.lock().expect("endpoint state lock");
        if let Some(failure) = &state.run_failure {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: the last run failed: {failure}\n"),
            );
        }
        let names: Vec<&String> = match only {
            Some(name) => match state.targets.iter().find(|(t, _)| t == name) {
                Some((found, _)) => vec![found],
                None => {
                    return (
                        StatusCode::NOT_FOUND,
                        format!("no target named \"{name}\" is watched here\n"),
                    )
                }
            },
            None => state.targets.iter().map(|(name, _)| name).collect(),
        };
        if names.is_empty() {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: no check has completed yet\n".to_string(),
            );
        }
        let mut body = String::new();
        let mut ready = true;
        for name in names {
            let line = match state.last.get(name) {
                None => {
                    ready = false;
                    format!("{name}: not ready: not checked yet")
                }
                Some(Checked {
                    at,
                    problem: Some(problem),
                    ..
                }) => {
                    ready = false;
                    format!("{name}: not ready: {problem} (checked {at})")
                }
                Some(Checked {
                    at, problem: None, ..
                }) => format!("{name}: verified (checked {at})"),
            };
            body.push_str(&line);
            body.push('\n');
        }
        let status = if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        (status, body)
    }

    fn respond(&self, request: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n".into());
        }
        match request.uri().path() {
            "/healthz" => text(StatusCode::OK, "ok\n".into()),
            "/readyz" => {
                let target = request.uri().query().and_then(|query| {
                    form_urlencoded::parse(query.as_bytes())
                        .find(|(key, _)| key == "target")
                        .map(|(_, value)| value.into_owned())
                });
                let (status, body) = self.readiness(target.as_deref());
                text(status, body)
            }
            "/metrics" => {
                let metrics = self
                    .state
                    .lock()
                    .expect("endpoint state lock")
                    .metrics
                    .clone();
                match metrics {
                    Some(metrics) => {
                        let mut response = text(StatusCode::OK, metrics);
                        response.headers_mut().insert(
                            hyper::header::CONTENT_TYPE,
                            hyper::header::HeaderValue::from_static(
                                "text/plain; version=0.0.4; charset=utf-8",
                            ),
                        );
                        response
                    }
                    None => text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "no run has finished yet\n".into(),
                    ),
                }
            }
            _ => text(
                StatusCode::NOT_FOUND,
                "not found: /metrics, /readyz, /healthz\n".into(),
            ),
        }
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Binds `address`. An address in use, or one this host does not have, is an operational
/// error that says so.
pub fn bind(address: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(address).map_err(|e| Error::Io {
        path: address.to_string().into(),
        source: std::io::Error::new(e.kind(), format!("cannot listen there: {e}")),
    })
}

/// How long a client may take to send its request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `watched` on `listener` from a thread of its own, for as long as the process
/// lives.
pub fn serve(listener: TcpListener, watched: Arc<Watched>) -> Result<()> {
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let failed = |e: std::io::Error| Error::Io {
        path: address.clone().into(),
        source: e,
    };
    listener.set_nonblocking(true).map_err(failed)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(failed)?;
    let listener = {
        let _entered = runtime.enter();
        tokio::net::TcpListener::from_std(listener).map_err(failed)?
    };
    std::thread::Builder::new()
        .name("vouch-endpoint".into())
        .spawn(move || runtime.block_on(accept(listener, watched)))
        .map_err(failed)?;
    Ok(())
}

async fn accept(listener: tokio::net::TcpListener, watched: Arc<Watched>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors, say: wait rather than spin.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let watched = Arc::clone(&watched);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let response = watched.respond(&request);
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Report, Subject, Verdict};

    fn defined(name: &str, definition: &str) -> (String, String) {
        (name.to_string(), definition.to_string())
    }

    fn checked(name: &str, verdict: Verdict) -> TargetResult {
        TargetResult {
            name: name.into(),
            owner: "o".into(),
            location: "/srv/m".into(),
            report: Report {
                subjects: vec![Subject::new("w.bin", verdict)],
                ..Report::default()
            },
            hidden: Vec::new(),
        }
    }

    #[test]
    fn ready_only_while_every_target_verified_at_its_last_check() {
        let watched = Watched::default();
        let (status, body) = watched.readiness(None);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("no check has completed yet"), "{body}");

        watched.run_started(vec![defined("a", "1"), defined("b", "1")]);
        watched.target_checked(&checked("a", Verdict::Ok));
        let (status, body) = watched.readiness(None);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "b is unchecked");
        assert!(body.contains("b: not ready: not checked yet"), "{body}");
        assert_eq!(watched.readiness(Some("a")).0, StatusCode::OK);

        watched.target_checked(&checked("b", Verdict::Changed));
        let (status, body) = watched.readiness(Some("b"));
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            body.contains("drifted from its approval (1 failed: w.bin changed)"),
            "{body}"
        );

        // A target dropped from the config is forgotten; one that cannot be checked is not
        // ready; a run that fails as a whole makes nothing ready until the next one starts.
        watched.run_started(vec![defined("a", "1")]);
        assert_eq!(watched.readiness(None).0, StatusCode::OK);
        assert_eq!(watched.readiness(Some("b")).0, StatusCode::NOT_FOUND);
        let mut unreadable = checked("a", Verdict::Ok);
        unreadable.report.error = Some("no such file".into());
        watched.target_checked(&unreadable);
        let (status, body) = watched.readiness(None);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            body.contains("could not be checked: no such file"),
            "{body}"
        );
        watched.target_checked(&checked("a", Verdict::Ok));
        watched.run_failed("vouch.toml: line 3: unknown key".into());
        let (status, body) = watched.readiness(Some("a"));
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("the last run failed: vouch.toml"), "{body}");
        watched.run_started(vec![defined("a", "1")]);
        assert_eq!(watched.readiness(None).0, StatusCode::OK);

        // Redefined (another path, say), the target is not checked yet, though its name is
        // the same; its next check is of the new definition.
        watched.run_started(vec![defined("a", "2")]);
        let (status, body) = watched.readiness(None);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("a: not ready: not checked yet"), "{body}");
        watched.target_checked(&checked("a", Verdict::Ok));
        assert_eq!(watched.readiness(None).0, StatusCode::OK);
        watched.run_started(vec![defined("a", "1")]);
        assert_eq!(watched.readiness(None).0, StatusCode::SERVICE_UNAVAILABLE);
    }
}
