//! One drift run: check this worker's share of the targets (several at once), apply the
//! waivers, record everything in the history, and describe the run.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::Serialize;

use super::config::{Config, Deployed, ImageTarget, Target};
use super::history::History;
use super::waiver;
use crate::approval::{Approval, Locator};
use crate::error::{Error, Result};
use crate::hash::{Engine, ReaderConfig};
use crate::oci::{self, Connection};
use crate::report::{self, Report, Status, Subject, Verdict};
use crate::verify::model::{check_model, VerifyOptions};

/// A stable share of the targets: `index` of `count` (1-based), for N workers that cover a
/// fleet together. A target's share depends only on its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Parses `I/N` with 1 ≤ I ≤ N.
    pub fn parse(text: &str) -> std::result::Result<Shard, String> {
        let (index, count) = text
            .split_once('/')
            .ok_or(format!("--shard {text}: expected I/N, e.g. 2/5"))?;
        let index: u32 = index
            .trim()
            .parse()
            .map_err(|_| format!("--shard {text}: I is not a number"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| format!("--shard {text}: N is not a number"))?;
        if count == 0 || index == 0 || index > count {
            return Err(format!("--shard {text}: I must be between 1 and N"));
        }
        Ok(Shard { index, count })
    }

    pub fn takes(&self, target: &str) -> bool {
        // FNV-1a: stable across runs, machines and versions.
        let hash = target.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        });
        hash % self.count as u64 == (self.index - 1) as u64
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// One target's outcome in a run.
#[derive(Debug)]
pub struct TargetResult {
    pub name: String,
    pub owner: String,
    pub location: String,
    pub report: Report,
    /// Subjects a waiver hid.
    pub hidden: Vec<String>,
}

/// A whole run.
#[derive(Debug)]
pub struct RunReport {
    pub run_id: i64,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub duration: Duration,
    pub shard: Option<Shard>,
    pub targets: Vec<TargetResult>,
    /// Set when a stop was asked for before every target was checked.
    pub stopped: bool,
    /// Where the JSON report was written.
    pub report_path: Option<PathBuf>,
}

pub struct RunOptions<'a> {
    pub shard: Option<Shard>,
    /// Targets checked at once.
    pub concurrency: usize,
    /// Hashing threads for the whole run, shared out among the targets under way.
    pub jobs: usize,
    /// Set to stop after the targets under way.
    pub stop: &'a AtomicBool,
    /// Told of each target as it finishes (one log line each).
    pub on_target: &'a (dyn Fn(i64, &TargetResult) + Sync),
}

impl RunReport {
    /// Failed if any target failed, else error if any could not be checked, else verified.
    pub fn status(&self) -> Status {
        let statuses: Vec<Status> = self.targets.iter().map(|t| t.report.status()).collect();
        if statuses.contains(&Status::Failed) {
            Status::Failed
        } else if statuses.contains(&Status::Error) {
            Status::Error
        } else {
            Status::Verified
        }
    }

    pub fn exit_status(&self) -> u8 {
        self.status().exit_status()
    }

    /// Every target's subjects in one report, named `target: subject`, for the renderers
    /// that take one list (JUnit, SARIF, GitHub annotations).
    pub fn flatten(&self) -> Report {
        let mut flat = Report {
            target: format!("drift run {}", self.run_id),
            duration: self.duration,
            ..Report::default()
        };
        for t in &self.targets {
            let owner = format!("owner {}", t.owner);
            for s in &t.report.subjects {
                let mut subject = s.clone();
                subject.name = format!("{}: {}", t.name, s.name);
                subject.message = Some(match &s.message {
                    Some(m) => format!("{m} ({owner})"),
                    None => owner.clone(),
                });
                flat.subjects.push(subject);
            }
            if let Some(error) = &t.report.error {
                flat.subjects.push(
                    Subject::new(t.name.clone(), Verdict::Unreadable)
                        .message(format!("{error} ({owner})")),
                );
            }
            flat.warnings
                .extend(t.report.warnings.iter().map(|w| format!("{}: {w}", t.name)));
            flat.bytes_hashed += t.report.bytes_hashed;
        }
        flat
    }

    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Run<'a> {
            status: &'static str,
            run_id: i64,
            started_at: String,
            finished_at: String,
            duration_seconds: f64,
            shard: Option<String>,
            stopped: bool,
            targets: Vec<TargetView<'a>>,
        }
        #[derive(Serialize)]
        struct TargetView<'a> {
            name: &'a str,
            owner: &'a str,
            location: &'a str,
            status: &'static str,
            waived: &'a [String],
            report: serde_json::Value,
        }
        let run = Run {
            status: self.status().name(),
            run_id: self.run_id,
            started_at: self.started_at.to_string(),
            finished_at: self.finished_at.to_string(),
            duration_seconds: self.duration.as_secs_f64(),
            shard: self.shard.map(|s| s.to_string()),
            stopped: self.stopped,
            targets: self
                .targets
                .iter()
                .map(|t| TargetView {
                    name: &t.name,
                    owner: &t.owner,
                    location: &t.location,
                    status: t.report.status().name(),
                    waived: &t.hidden,
                    report: report::json_value(&t.report),
                })
                .collect(),
        };
        let mut out = serde_json::to_string_pretty(&run).expect("a run always serializes");
        out.push('\n');
        out
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for t in &self.targets {
            out.push_str(&format!(
                "== {} (owner {}) {}\n",
                t.name, t.owner, t.location
            ));
            for line in report::render(&t.report, report::Format::Text).lines() {
                out.push_str(&format!("   {line}\n"));
            }
        }
        let failing: Vec<&str> = self
            .targets
            .iter()
            .filter(|t| t.report.status() != Status::Verified)
            .map(|t| t.name.as_str())
            .collect();
        let shard = self
            .shard
            .map(|s| format!(" (shard {s})"))
            .unwrap_or_default();
        let stopped = if self.stopped {
            "; stopped before every target was checked"
        } else {
            ""
        };
        out.push_str(&match self.status() {
            Status::Verified => format!(
                "vouch drift: run {}{shard}: all {} targets verified in {:.2} s{stopped}\n",
                self.run_id,
                self.targets.len(),
                self.duration.as_secs_f64()
            ),
            status => format!(
                "vouch drift: run {}{shard}: {} — {} of {} targets not verified: {}{stopped}\n",
                self.run_id,
                if status == Status::Failed {
                    "FAILED"
                } else {
                    "ERROR"
                },
                failing.len(),
                self.targets.len(),
                failing.join(", ")
            ),
        });
        out
    }
}

/// Checks one target against its approval; an error becomes a report that says so.
pub fn check_target(target: &Target, engine: &Engine) -> Report {
    let result = match &target.subject {
        Deployed::Model { path, approval } => {
            let options = VerifyOptions {
                extra_ignores: target.ignore_paths.clone(),
                extra_ignores_setting: "the target's ignore_paths",
                include_git_paths: target.include_git_paths,
                approval_files: Vec::new(),
                deny_unsafe_pickle: target.deny_unsafe_pickle.then_some(Default::default()),
            };
            check_model(path, approval, &options, engine)
        }
        Deployed::Image(image) => check_image(image, engine),
    };
    result.unwrap_or_else(|e| Report::failed_run(target.subject.location(), e.to_string()))
}

/// Verifies an image target as `vouch oci verify` would, with Docker's stored credentials.
fn check_image(image: &ImageTarget, engine: &Engine) -> Result<Report> {
    let approval = image
        .manifest
        .clone()
        .map(|m| Approval::Manifest(Locator::File(m)));
    let options = oci::Options {
        platforms: image.platforms.clone(),
        pinned: image.pinned.clone(),
        diff_ids: image.diff_ids,
    };
    let connection = Connection {
        credentials: None,
        insecure: image.insecure,
        timeout: IMAGE_TIMEOUT,
        retries: IMAGE_RETRIES,
        min_rate: image.min_rate,
    };
    crate::verify::image::check_image(
        &image.reference,
        &connection,
        &options,
        approval.as_ref(),
        engine,
    )
}

/// Registry requests of an image target: the defaults of `vouch oci verify`.
const IMAGE_TIMEOUT: Duration = Duration::from_secs(30);
const IMAGE_RETRIES: u32 = 3;

/// Checks `target` on a thread of its own, with its own hashing threads, and waits for it at
/// most `timeout`: a target that takes longer (a hung file system, a registry that trickles)
/// is an error report, and its check is abandoned — it holds up neither the other targets
/// nor their hashing threads, and it ends with the process.
pub fn check_within(target: &Target, jobs: usize, timeout: Duration) -> Report {
    let (sender, receiver) = std::sync::mpsc::channel();
    let owned = target.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("vouch-target-{}", target.name))
        .spawn(move || {
            let report = match Engine::new(jobs, ReaderConfig::for_jobs(jobs)) {
                Ok(engine) => check_target(&owned, &engine),
                Err(e) => Report::failed_run(
                    owned.subject.location(),
                    format!("cannot start {jobs} hashing threads: {e}"),
                ),
            };
            let _ = sender.send(report);
        });
    if let Err(e) = spawned {
        return Report::failed_run(
            target.subject.location(),
            format!("cannot start a thread for the target: {e}"),
        );
    }
    receiver.recv_timeout(timeout).unwrap_or_else(|_| {
        let mut report = Report::failed_run(
            target.subject.location(),
            format!(
                "the check did not finish within {} s (target_timeout); it was abandoned",
                timeout.as_secs()
            ),
        );
        report.duration = timeout;
        report
    })
}

/// Runs this worker's share of `config`'s targets and records them in the history.
pub fn run(config: &Config, options: &RunOptions) -> Result<RunReport> {
    let started = Instant::now();
    let started_at = Timestamp::now();
    let today = started_at.to_zoned(jiff::tz::TimeZone::UTC).date();
    if let Some(parent) = config
        .history
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let mut history = History::open(&config.history)?;
    let shard = options.shard.map(|s| s.to_string());
    let run_id = history.begin_run(shard.as_deref(), started_at)?;
    let history = Mutex::new(history);

    let mine: Vec<&Target> = config
        .targets
        .iter()
        .filter(|t| options.shard.is_none_or(|s| s.takes(&t.name)))
        .collect();
    let results: Mutex<Vec<(usize, TargetResult)>> = Mutex::new(Vec::new());
    let recording_error: Mutex<Option<Error>> = Mutex::new(None);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = options.concurrency.clamp(1, mine.len().max(1));
    // Twice the run's threads in all, so a target whose files are few still keeps the cores
    // busy while another waits on its disk; one target alone has them all.
    let jobs_per_target = (2 * options.jobs)
        .div_ceil(workers)
        .clamp(1, options.jobs.max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                if options.stop.load(Ordering::SeqCst) {
                    break;
                }
                let index = next.fetch_add(1, Ordering::SeqCst);
                let Some(target) = mine.get(index) else { break };
                let mut report = check_within(target, jobs_per_target, config.target_timeout);
                let hidden = waiver::apply(&mut report, target, &config.waivers, today);
                let recorded = history.lock().expect("history lock").record_check(
                    run_id,
                    &target.name,
                    &target.owner,
                    &report,
                    &hidden,
                    Timestamp::now(),
                );
                if let Err(e) = recorded {
                    recording_error.lock().expect("error lock").get_or_insert(e);
                }
                let result = TargetResult {
                    name: target.name.clone(),
                    owner: target.owner.clone(),
                    location: target.subject.location(),
                    report,
                    hidden,
                };
                (options.on_target)(run_id, &result);
                results.lock().expect("results lock").push((index, result));
            });
        }
    });
    if let Some(e) = recording_error.into_inner().expect("error lock") {
        return Err(e);
    }
    let mut results = results.into_inner().expect("results lock");
    results.sort_by_key(|(index, _)| *index);
    let stopped = results.len() < mine.len();
    let finished_at = Timestamp::now();
    let run = RunReport {
        run_id,
        started_at,
        finished_at,
        duration: started.elapsed(),
        shard: options.shard,
        targets: results.into_iter().map(|(_, r)| r).collect(),
        stopped,
        report_path: None,
    };
    let mut history = history.into_inner().expect("history lock");
    history.finish_run(run_id, (!stopped).then(|| run.status()), finished_at)?;
    if let Some(path) = &config.metrics_file {
        super::metrics::write(path, &run, history.bytes_hashed_total(shard.as_deref())?)?;
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_targets() {
        let names: Vec<String> = (0..200).map(|i| format!("target-{i}")).collect();
        for count in 1..=7 {
            let mut seen = vec![0; names.len()];
            for index in 1..=count {
                let shard = Shard::parse(&format!("{index}/{count}")).unwrap();
                for (i, name) in names.iter().enumerate() {
                    seen[i] += usize::from(shard.takes(name));
                }
            }
            assert!(seen.iter().all(|&n| n == 1), "N={count}");
        }
        for bad in ["0/3", "4/3", "1/0", "x/2", "3"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }
}
