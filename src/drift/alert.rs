//! Alerts for a run that did not verify: a command run with the report's path, and the JSON
//! report POSTed to a webhook. Each is bounded in time and retried where that helps; a
//! failed alert is reported, never fatal to the run.

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::config::Alert;
use crate::error::error_chain;
use crate::report::Status;

const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
const WEBHOOK_ATTEMPTS: u32 = 3;

/// What became of one alert.
#[derive(Debug)]
pub struct AlertOutcome {
    pub channel: String,
    pub result: Result<(), AlertError>,
}

/// Why an alert was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("cannot start {program}: {source}")]
    Start {
        program: String,
        source: std::io::Error,
    },
    /// Waiting for the command failed.
    #[error("{0}")]
    Wait(std::io::Error),
    #[error("{program} exited with {status}")]
    Exited { program: String, status: ExitStatus },
    #[error("{program} did not finish within {}s and was killed", COMMAND_TIMEOUT.as_secs())]
    TimedOut { program: String },
    #[error("cannot start an HTTP client: {0}")]
    Runtime(std::io::Error),
    #[error("cannot start an HTTP client: {0}")]
    Client(reqwest::Error),
    #[error("the webhook answered {0}")]
    Answered(reqwest::StatusCode),
    #[error("cannot reach the webhook: {}", error_chain(.0))]
    Unreachable(reqwest::Error),
    /// The last of the attempts a retried failure was given.
    #[error("{last} (after {WEBHOOK_ATTEMPTS} attempts)")]
    GaveUp { last: Box<AlertError> },
}

/// Raises every configured alert for a run with `status`, whose JSON report is `report` at
/// `report_path`.
pub fn raise(
    alert: &Alert,
    status: Status,
    report_path: &Path,
    report: &[u8],
) -> Vec<AlertOutcome> {
    let mut outcomes = Vec::new();
    if let Some(command) = &alert.command {
        outcomes.push(AlertOutcome {
            channel: format!("command {}", command[0]),
            result: run_command(command, status, report_path),
        });
    }
    if let Some(url) = &alert.webhook {
        outcomes.push(AlertOutcome {
            channel: format!("webhook {url}"),
            result: post(url, report),
        });
    }
    outcomes
}

/// Runs the alert command with `VOUCH_REPORT` (the report's path) and `VOUCH_STATUS` set.
fn run_command(command: &[String], status: Status, report_path: &Path) -> Result<(), AlertError> {
    let program = || command[0].clone();
    let mut child = Command::new(&command[0])
        .args(&command[1..])
        .env("VOUCH_REPORT", report_path)
        .env("VOUCH_STATUS", status.name())
        .stdin(Stdio::null())
        .spawn()
        .map_err(|source| AlertError::Start {
            program: program(),
            source,
        })?;
    let started = Instant::now();
    loop {
        match child.try_wait().map_err(AlertError::Wait)? {
            Some(exit) if exit.success() => return Ok(()),
            Some(exit) => {
                return Err(AlertError::Exited {
                    program: program(),
                    status: exit,
                })
            }
            None if started.elapsed() > COMMAND_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(AlertError::TimedOut { program: program() });
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// POSTs the report, retrying with backoff on a network error or a 5xx answer.
fn post(url: &str, body: &[u8]) -> Result<(), AlertError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(AlertError::Runtime)?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            .build()
            .map_err(AlertError::Client)?;
        let mut last = None;
        for attempt in 0..WEBHOOK_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
            }
            let sent = client
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_vec())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) if response.status().is_client_error() => {
                    return Err(AlertError::Answered(response.status()))
                }
                Ok(response) => last = Some(AlertError::Answered(response.status())),
                Err(e) => last = Some(AlertError::Unreachable(e)),
            }
        }
        let last = last.expect("there is at least one attempt");
        Err(AlertError::GaveUp {
            last: Box::new(last),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A webhook that answers `status` to each of `requests` requests, and counts them.
    fn webhook(status: &'static str, requests: usize) -> (String, std::thread::JoinHandle<usize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            for served in 0..requests {
                let Ok((mut stream, _)) = listener.accept() else {
                    return served;
                };
                let mut request = Vec::new();
                let mut buffer = [0; 4096];
                // The request is small: read its head and its body, then answer.
                while !request.ends_with(b"{}") {
                    let n = stream.read(&mut buffer).unwrap();
                    if n == 0 {
                        break;
                    }
                    request.extend_from_slice(&buffer[..n]);
                }
                let answer =
                    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                stream.write_all(answer.as_bytes()).unwrap();
            }
            requests
        });
        (url, server)
    }

    #[test]
    fn a_webhook_refusal_is_not_retried_and_a_server_error_is() {
        let (url, server) = webhook("404 Not Found", 1);
        let error = post(&url, b"{}").unwrap_err();
        assert_eq!(error.to_string(), "the webhook answered 404 Not Found");
        assert_eq!(server.join().unwrap(), 1);

        let (url, server) = webhook("503 Service Unavailable", 3);
        let error = post(&url, b"{}").unwrap_err();
        assert_eq!(
            error.to_string(),
            "the webhook answered 503 Service Unavailable (after 3 attempts)"
        );
        assert_eq!(server.join().unwrap(), 3);
    }

    #[test]
    fn a_command_that_cannot_start_or_fails_says_so() {
        let missing = ["/nonexistent/page-oncall".to_string()];
        let error = run_command(&missing, Status::Failed, Path::new("r.json")).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("cannot start /nonexistent/page-oncall: "),
            "{error}"
        );
        let failing = ["sh", "-c", "test \"$VOUCH_STATUS\" != error || exit 4"].map(String::from);
        let error = run_command(&failing, Status::Error, Path::new("r.json")).unwrap_err();
        assert_eq!(error.to_string(), "sh exited with exit status: 4");
        assert!(run_command(&failing, Status::Failed, Path::new("r.json")).is_ok());
    }
}
