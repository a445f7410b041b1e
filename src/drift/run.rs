//! One drift run: check this worker's share of the targets (several at once), apply the
//! waivers, record everything in the history, and return what the run found. Publishing
//! it (the report file, metrics, alerts) is `publish`'s part.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;

use super::config::{Config, Deployed, ImageTarget, Target};
use super::history::History;
use super::outcome::{RunReport, Shard, TargetResult};
use super::waiver;
use crate::approval::setting::Spelling;
use crate::error::{Error, Result};
use crate::hash::cache::Cache;
use crate::hash::queue::{self, Queue};
use crate::hash::{Engine, ReaderConfig, Throttle};
use crate::oci::{self, Connection};
use crate::report::Report;
use crate::verify::model::{check_model, VerifyOptions};

pub struct RunOptions<'a> {
    pub shard: Option<Shard>,
    /// Only these targets (those a change event named); all of them when `None`.
    pub only: Option<&'a [String]>,
    /// Targets checked at once.
    pub concurrency: usize,
    /// Hashing threads for the whole run, shared out among the targets under way.
    pub jobs: usize,
    /// Set to stop after the targets under way.
    pub stop: &'a AtomicBool,
    /// Told of each target as it finishes (one log line each).
    pub on_target: &'a (dyn Fn(i64, &TargetResult) + Sync),
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
            crate::model::hf::resolve_target(path, None)
                .and_then(|path| check_model(&path, approval, &options, engine))
        }
        Deployed::Image(image) => check_image(image, engine),
    };
    result.unwrap_or_else(|e| Report::failed_run(target.subject.location(), describe_error(&e)))
}

/// Checks `target` taking unchanged files' digests from its hash cache, when it has one;
/// the report says how many bytes the cache vouched for, and why it vouched for none.
fn check_cached(target: &Target, engine: Engine) -> Report {
    let (Some(settings), Deployed::Model { path, .. }) = (&target.cache, &target.subject) else {
        let mut report = check_target(target, &engine);
        report.warnings.extend(engine.direct_refused());
        return report;
    };
    let opened = settings
        .refuse_inside(path)
        .and_then(|()| Cache::open(settings, &cache_scope(target)));
    let engine = match opened {
        Ok(cache) => engine.with_cache(cache),
        Err(e) => return Report::failed_run(target.subject.location(), describe_error(&e)),
    };
    let mut report = check_target(target, &engine);
    report.warnings.extend(engine.direct_refused());
    if let Some(cache) = engine.cache() {
        let used = cache.used();
        report.bytes_from_cache = used.bytes_from_cache;
        if let Some(note) = used.note {
            report.warnings.push(format!(
                "hash cache not used: {note}; every file was hashed"
            ));
        }
        if let Err(e) = cache.save() {
            report
                .warnings
                .push(format!("hash cache not saved: {}", describe_error(&e)));
        }
    }
    report
}

/// What a drift target's entries of the cache are recorded under (its full runs).
pub fn cache_scope(target: &Target) -> String {
    format!("drift target {}", target.name)
}

/// An error as a drift report says it: the library's message, then the hint in the words of
/// `vouch.toml`, on one line.
fn describe_error(error: &Error) -> String {
    match error.hint() {
        Some(hint) => format!("{error}; hint: {}", Spelling::Key.hint(hint)),
        None => error.to_string(),
    }
}

/// Verifies an image target as `vouch oci verify` would, with Docker's stored credentials.
fn check_image(image: &ImageTarget, engine: &Engine) -> Result<Report> {
    let options = oci::Options {
        platforms: image.platforms.clone(),
        pinned: image.approval.pinned.clone(),
        diff_ids: image.diff_ids,
        reading: oci::Reading::Every,
        model_root: None,
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
        image.approval.files.as_ref(),
        image.approval.signers.as_ref(),
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
pub fn check_within(
    target: &Target,
    jobs: usize,
    timeout: Duration,
    throttle: Option<Arc<Throttle>>,
) -> Report {
    let (sender, receiver) = std::sync::mpsc::channel();
    let owned = target.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("vouch-target-{}", target.name))
        .spawn(move || {
            let reader = ReaderConfig::for_jobs(jobs).with_io(owned.io);
            let report = match Engine::new(jobs, reader) {
                Ok(engine) => {
                    let engine = match throttle {
                        Some(throttle) => engine.with_throttle(throttle),
                        None => engine,
                    };
                    check_cached(&owned, engine)
                }
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
        .filter(|t| options.only.is_none_or(|only| only.contains(&t.name)))
        .collect();
    let throttle = config.max_rate.map(|rate| Arc::new(Throttle::new(rate)));
    let recording_error: Mutex<Option<Error>> = Mutex::new(None);
    let workers = options.concurrency.clamp(1, mine.len().max(1));
    // Twice the run's threads in all, so a target whose files are few still keeps the cores
    // busy while another waits on its disk; one target alone has them all.
    let jobs_per_target = (2 * options.jobs)
        .div_ceil(workers)
        .clamp(1, options.jobs.max(1));
    let results = queue::run_until(Queue::in_order(mine.len()), workers, options.stop, |i| {
        let target = mine[i];
        let mut report = check_within(
            target,
            jobs_per_target,
            config.target_timeout,
            throttle.clone(),
        );
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
        result
    });
    if let Some(e) = recording_error.into_inner().expect("error lock") {
        return Err(e);
    }
    let targets: Vec<TargetResult> = results.into_iter().flatten().collect();
    let stopped = targets.len() < mine.len();
    let finished_at = Timestamp::now();
    let run = RunReport {
        run_id,
        started_at,
        finished_at,
        duration: started.elapsed(),
        shard: options.shard,
        targets,
        stopped,
    };
    history.into_inner().expect("history lock").finish_run(
        run_id,
        (!stopped).then(|| run.status()),
        finished_at,
    )?;
    Ok(run)
}
