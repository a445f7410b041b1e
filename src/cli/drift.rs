use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use super::output::{self, Outputs};
use super::{jobs_or_default, write_output, Target};
use crate::approval::Approval;
use crate::drift::config::{Config, Deployed, Target as ConfigTarget};
use crate::drift::endpoint::{self, Watched};
use crate::drift::events::{Wake, Watcher};
use crate::drift::history::{History, HistoryView};
use crate::drift::outcome::{RunReport, Shard, TargetResult};
use crate::drift::publish::{
    check_writable, metrics_text, publish, publish_changes, with_standing, Published,
};
use crate::drift::render;
use crate::drift::run::{self as drift_run, RunOptions};
use crate::error::{Error, Result};
use crate::hash::Io;
use crate::report::{self, Format, Report};

#[derive(Debug, Args)]
pub struct DriftArgs {
    #[command(subcommand)]
    command: DriftCommand,
}

#[derive(Debug, Subcommand)]
enum DriftCommand {
    /// Check every target once: report, history, metrics, alerts
    Run(RunArgs),
    /// Run forever at an interval; SIGTERM or SIGINT stops it after the current target
    Watch(WatchArgs),
    /// Show, per target, when it last verified and what drifted since when
    History(HistoryArgs),
}

#[derive(Debug, Args)]
struct ConfigArg {
    /// The drift configuration (see docs/drift.md)
    #[arg(
        short = 'c',
        long = "config",
        value_name = "FILE",
        default_value = "vouch.toml"
    )]
    path: PathBuf,
}

#[derive(Debug, Args)]
struct RunFlags {
    /// Check only share I of N (1-based), a stable split by target name, so that N workers
    /// cover the fleet together
    #[arg(long, value_name = "I/N", value_parser = shard)]
    shard: Option<Shard>,
    /// Where to write the JSON report of each run [default: the config's report_dir, or
    /// vouch-reports in $STATE_DIRECTORY, or beside the history]
    #[arg(long, value_name = "DIR")]
    report_dir: Option<PathBuf>,
    /// Hashing threads, and targets checked at once [default: one per core]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
    /// How to read every target's files: direct (O_DIRECT, past the page cache, so the
    /// pages a server relies on stay) or buffered [default: the config's io, else buffered]
    #[arg(long, value_enum, value_name = "MODE")]
    io: Option<Io>,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    config: ConfigArg,
    #[command(flatten)]
    run: RunFlags,
    #[command(flatten)]
    output: Outputs,
}

#[derive(Debug, Args)]
struct WatchArgs {
    #[command(flatten)]
    config: ConfigArg,
    #[command(flatten)]
    run: RunFlags,
    /// Time between runs, e.g. 24h, 30m; at least 1m
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    every: Duration,
    /// Accept an --every under one minute (for tests)
    #[arg(long)]
    allow_short_interval: bool,
    /// A random extra wait of up to this much before each run, so a fleet does not run at once
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "0s")]
    jitter: Duration,
    /// Also check a target again as soon as its files change (inotify), between the runs
    #[arg(long)]
    on_change: bool,
    /// Keep the normal I/O and CPU priority (by default the watcher runs at idle I/O
    /// priority and nice 10)
    #[arg(long)]
    normal_priority: bool,
    /// Serve /metrics, /readyz and /healthz over HTTP at this IP address and port, e.g.
    /// 127.0.0.1:9464 (port 0: any free one; the log says which)
    #[arg(long, value_name = "ADDRESS:PORT")]
    listen: Option<std::net::SocketAddr>,
    /// Let --listen take an address other than loopback (anyone who reaches it learns which
    /// models drifted)
    #[arg(long, requires = "listen")]
    allow_non_loopback: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum HistoryFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
struct HistoryArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Only this target
    #[arg(long, value_name = "NAME")]
    target: Option<String>,
    #[arg(long, value_enum, default_value_t = HistoryFormat::Text)]
    format: HistoryFormat,
}

fn shard(text: &str) -> std::result::Result<Shard, String> {
    Shard::parse(text).map_err(|e| format!("--shard {e}"))
}

/// The shortest `--every` accepted without `--allow-short-interval`.
const SHORTEST_INTERVAL: Duration = Duration::from_secs(60);

/// systemd's `$STATE_DIRECTORY` (the first, when `StateDirectory=` names several).
fn state_directory() -> Option<PathBuf> {
    let value = std::env::var_os("STATE_DIRECTORY")?;
    std::env::split_paths(&value).find(|dir| !dir.as_os_str().is_empty())
}

fn load(config: &ConfigArg, flags: &RunFlags) -> Result<Config> {
    let mut loaded = Config::load(&config.path, state_directory().as_deref())?;
    if let Some(io) = flags.io {
        for target in &mut loaded.targets {
            target.io = io;
        }
    }
    Ok(loaded)
}

fn duration(text: &str) -> std::result::Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("'{text}' is not a duration (e.g. 24h, 10m, 30s): {e}"))
}

pub fn run(args: DriftArgs) -> Result<u8> {
    match args.command {
        DriftCommand::Run(args) => run_once(&args),
        DriftCommand::Watch(args) => watch(&args),
        DriftCommand::History(args) => history(&args),
    }
}

fn run_once(args: &RunArgs) -> Result<u8> {
    args.output.check()?;
    let config = load(&args.config, &args.run)?;
    let stop = AtomicBool::new(false);
    let (run, published) = run_checks(&config, &args.run, None, &stop, &|_, _| {})?;
    for alert in published.alerts {
        if let Err(e) = alert.result {
            eprintln!("vouch: alert by {} failed: {e}", alert.channel);
        }
    }
    let flat = render::flatten(&run);
    let located: Vec<(&Report, Target)> = run
        .targets
        .iter()
        .map(|t| (&t.report, located_as(&config, t)))
        .collect();
    let locations = output::locate_parts(&located, &config.source);
    args.output.write(&flat, |format| match format {
        Format::Text => render::to_text(&run),
        Format::Json => render::to_json(&run),
        Format::Junit => render::to_junit(&run),
        format => report::render_located(&flat, format, &locations),
    })?;
    Ok(run.exit_status())
}

/// What a target's subject names are relative to: a model's path; for an image, its
/// approval file, or the configuration that pins it.
fn located_as<'a>(config: &'a Config, result: &'a TargetResult) -> Target<'a> {
    match config.targets.iter().find(|t| t.name == result.name) {
        Some(ConfigTarget {
            subject: Deployed::Model { path, .. },
            ..
        }) => Target::Model(path),
        Some(ConfigTarget {
            subject: Deployed::Image(image),
            ..
        }) => Target::Image {
            reference: &result.location,
            approval: Some(
                image
                    .approval
                    .files
                    .as_ref()
                    .and_then(approval_file)
                    .unwrap_or(&config.source),
            ),
        },
        None => Target::Model(&config.source),
    }
}

/// The file an approval is read from; a pin and a registry approval have none.
fn approval_file(approval: &Approval) -> Option<&Path> {
    match approval {
        Approval::Manifest(file)
        | Approval::Signature { bundle: file, .. }
        | Approval::CheckList { list: file, .. } => file.file(),
        Approval::Pinned { .. } => None,
    }
}

/// Runs the checks (of the `only` targets, when a change event named them) and publishes
/// them; `standing` is what the other targets' last checks found, for the metrics.
fn run_checks(
    config: &Config,
    flags: &RunFlags,
    only: Option<(&[String], &[TargetResult])>,
    stop: &AtomicBool,
    on_target: &(dyn Fn(i64, &TargetResult) + Sync),
) -> Result<(RunReport, Published)> {
    let jobs = jobs_or_default(flags.jobs);
    let options = RunOptions {
        shard: flags.shard,
        only: only.map(|(names, _)| names),
        concurrency: jobs,
        jobs,
        stop,
        on_target,
    };
    let report_dir = flags.report_dir.as_ref().unwrap_or(&config.report_dir);
    check_writable(config, report_dir)?;
    let run = drift_run::run(config, &options)?;
    let published = match only {
        Some((_, standing)) => publish_changes(config, &run, standing, report_dir)?,
        None => publish(config, &run, report_dir)?,
    };
    Ok((run, published))
}

/// Runs until SIGTERM or SIGINT, logging one JSON line per target per run on stderr. A
/// failed run (or a config that no longer parses) is logged and the loop goes on. With
/// `--on-change`, a change to a target's files checks that target again at once.
fn watch(args: &WatchArgs) -> Result<u8> {
    if args.every < SHORTEST_INTERVAL && !args.allow_short_interval {
        return Err(Error::Usage(format!(
            "--every {} is under one minute: each run hashes every target again, so check at most \
             once a minute (--allow-short-interval lifts this, for tests)",
            humantime::format_duration(args.every)
        )));
    }
    if !args.normal_priority {
        // Before any thread starts: the threads inherit it.
        if let Err(e) = crate::drift::quiet::lower_priority() {
            log(json!({"event": "priority_kept", "message": e.to_string()}));
        }
    }
    let watched = args
        .listen
        .map(|address| listen(address, args.allow_non_loopback))
        .transpose()?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| Error::Usage(format!("cannot watch for signals: {e}")))?;
    }
    let mut watcher = match args.on_change {
        true => Some(
            Watcher::new()
                .map_err(|e| Error::Usage(format!("--on-change: cannot start inotify: {e}")))?,
        ),
        false => None,
    };
    // What each target's last check found, for the metrics of a run of a few targets.
    let mut standing: Vec<TargetResult> = Vec::new();
    // The targets (name, definition) of the config the watches were last placed from.
    let mut armed: Option<Vec<(String, String)>> = None;
    let mut wake = Wake::Due;
    let mut next_due = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let (trigger, only) = match &wake {
            Wake::Changed(names) => ("change", Some(names.as_slice())),
            Wake::FullRun(_) => ("events_lost", None),
            _ => ("schedule", None),
        };
        if let Wake::FullRun(reason) = &wake {
            log(json!({"event": "events_lost", "message": reason, "fallback": "full run"}));
        }
        let loaded = load(&args.config, &args.run);
        let defined = loaded
            .as_ref()
            .ok()
            .map(|config| definitions(config, args.run.shard));
        // A change run checks a few targets as the last full run defined them; a config that
        // defines them otherwise now (another path, approval or target) is a full run, which
        // checks every target as now defined and places its watches anew.
        let (trigger, only) = match (only, &defined) {
            (Some(_), Some(defined)) if armed.as_ref() != Some(defined) => {
                log(json!({
                    "event": "config_changed",
                    "message": format!(
                        "{} defines its targets otherwise than at the last full run",
                        args.config.path.display()
                    ),
                    "fallback": "full run",
                }));
                ("config_changed", None)
            }
            _ => (trigger, only),
        };
        let log_target = |run: i64, t: &TargetResult| {
            let mut line = target_line(run, t);
            line["trigger"] = json!(trigger);
            log(line);
            if let Some(watched) = &watched {
                watched.target_checked(t);
            }
        };
        let outcome = loaded.and_then(|config| {
            let defined = defined.unwrap_or_default();
            if let (Some(watcher), None) = (watcher.as_mut(), only) {
                // Watches first: a change made during the run is an event after it.
                watch_all(watcher, &config);
                armed = Some(defined.clone());
            }
            if let Some(watched) = &watched {
                watched.run_started(defined);
            }
            let (run, published) = run_checks(
                &config,
                &args.run,
                only.map(|names| (names, standing.as_slice())),
                &stop,
                &log_target,
            )?;
            if let Some(watched) = &watched {
                let everything = with_standing(&config, &run, &standing);
                watched.run_finished(metrics_text(&config, &everything)?);
            }
            Ok((run, published))
        });
        if let (Err(e), Some(watched)) = (&outcome, &watched) {
            watched.run_failed(e.to_string());
        }
        match outcome {
            Ok((run, published)) => {
                for alert in published.alerts {
                    if let Err(e) = alert.result {
                        log(
                            json!({"event": "alert_failed", "run": run.run_id, "channel": alert.channel, "message": e.to_string()}),
                        );
                    }
                }
                log(json!({
                    "event": "run",
                    "run": run.run_id,
                    "trigger": trigger,
                    "status": run.status().name(),
                    "targets": run.targets.len(),
                    "stopped": run.stopped,
                    "duration_seconds": run.duration.as_secs_f64(),
                    "report": published.report.display().to_string(),
                }));
                standing.retain(|s| !run.targets.iter().any(|t| t.name == s.name));
                standing.extend(run.targets);
            }
            Err(e) => {
                log(json!({"event": "run_failed", "trigger": trigger, "message": e.to_string()}))
            }
        }
        if only.is_none() {
            next_due = Instant::now() + args.every + random_up_to(args.jitter);
        }
        wake = match watcher.as_mut() {
            Some(watcher) => watcher.wait(next_due, &stop).unwrap_or_else(|e| {
                Wake::FullRun(format!("reading the inotify events failed: {e}"))
            }),
            None => {
                sleep_unless_stopped(next_due.saturating_duration_since(Instant::now()), &stop);
                Wake::Due
            }
        };
    }
    log(json!({"event": "stopped"}));
    Ok(0)
}

/// The targets of this watcher's share, each with its definition.
fn definitions(config: &Config, shard: Option<Shard>) -> Vec<(String, String)> {
    config
        .targets
        .iter()
        .filter(|t| shard.is_none_or(|s| s.takes(&t.name)))
        .map(|t| (t.name.clone(), config.definition(t)))
        .collect()
}

/// Places the watches of every model target, and says how many, or which targets only the
/// full runs cover.
fn watch_all(watcher: &mut Watcher, config: &Config) {
    match watcher.watch_all(&config.targets) {
        Ok(unwatched) => {
            for u in &unwatched {
                log(
                    json!({"event": "watch_incomplete", "target": u.target, "message": u.reason, "fallback": "full runs"}),
                );
            }
            log(
                json!({"event": "watching", "watches": watcher.watches(), "incomplete": unwatched.len()}),
            );
        }
        Err(e) => log(
            json!({"event": "watch_incomplete", "message": format!("cannot start inotify: {e}"), "fallback": "full runs"}),
        ),
    }
}

/// Starts the endpoint on `address` (loopback unless allowed otherwise) and logs where it
/// listens.
fn listen(address: std::net::SocketAddr, allow_non_loopback: bool) -> Result<Arc<Watched>> {
    if !address.ip().is_loopback() && !allow_non_loopback {
        return Err(Error::Usage(format!(
            "--listen {address} is not a loopback address: the endpoint tells whoever reaches it \
             which models drifted; add --allow-non-loopback to listen there"
        )));
    }
    let listener = endpoint::bind(address)?;
    let bound = listener.local_addr().map_err(|e| Error::Io {
        path: address.to_string().into(),
        source: e,
    })?;
    let watched = Arc::new(Watched::default());
    endpoint::serve(listener, Arc::clone(&watched))?;
    log(json!({"event": "listening", "address": bound.to_string()}));
    Ok(watched)
}

fn target_line(run: i64, t: &TargetResult) -> serde_json::Value {
    json!({
        "event": "target",
        "run": run,
        "target": t.name,
        "owner": t.owner,
        "location": t.location,
        "status": t.report.status().name(),
        "failed_subjects": t.report.failures().count(),
        "waived": t.hidden.len(),
        "bytes_hashed": t.report.bytes_hashed,
        "bytes_from_cache": t.report.bytes_from_cache,
        "duration_seconds": t.report.duration.as_secs_f64(),
        "error": t.report.error,
    })
}

fn log(mut line: serde_json::Value) {
    line["time"] = json!(jiff::Timestamp::now().to_string());
    eprintln!("{line}");
}

fn sleep_unless_stopped(wait: Duration, stop: &AtomicBool) {
    let until = Instant::now() + wait;
    while !stop.load(Ordering::SeqCst) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// A uniformly random duration in `[0, max]` (std's randomly keyed hasher as the source).
fn random_up_to(max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    Duration::from_nanos(random % (max.as_nanos() as u64).saturating_add(1))
}

fn history(args: &HistoryArgs) -> Result<u8> {
    let config = Config::load(&args.config.path, state_directory().as_deref())?;
    if !config.history.exists() {
        return Err(Error::input(
            &config.history,
            "no history yet: `vouch drift run` creates it on its first run",
        ));
    }
    let history = History::open(&config.history)?;
    let targets = history.targets(args.target.as_deref())?;
    if let Some(name) = &args.target {
        if targets.is_empty() {
            return Err(Error::input(
                Path::new(&config.history),
                format!("no check of target \"{name}\" is recorded"),
            ));
        }
    }
    let view = HistoryView {
        targets,
        incomplete_runs: history.incomplete_runs()?,
    };
    let rendered = match args.format {
        HistoryFormat::Text => view.to_text(),
        HistoryFormat::Json => view.to_json(),
    };
    write_output(None, rendered.as_bytes())?;
    Ok(0)
}
