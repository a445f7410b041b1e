//! `vouch.toml`: what is deployed, what was approved, who owns it, and what to do when they
//! differ. Documented field by field in docs/drift.md.
//!
//! Parsing is strict: an unknown key, a target with no approval source (or two), a waiver
//! for a target that does not exist or a date that does not parse is an input error that
//! names the file and the line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::civil::Date;
use serde::Deserialize;
use serde_spanned::Spanned;

use crate::approval::rules::{ApprovalParts, ImageApprovalParts};
use crate::approval::setting::RuleError;
use crate::approval::{Approval, ImageApproval, TrustParts};
use crate::error::{Error, Result};
use crate::hash::cache::{Budget, CacheSettings};
use crate::hash::{Algorithm, DigestError, Io};
use crate::model::paths::{normalize_relative_name, NameError};
use crate::oci::document::{NotAPlatform, Platform};
use crate::oci::reference::ReferenceError;
use crate::oci::{ImageRef, Platforms};

pub const DEFAULT_HISTORY: &str = "vouch-history.sqlite";
/// The folder of run reports unless `report_dir` (or the command line) says otherwise.
pub const DEFAULT_REPORT_DIR: &str = "vouch-reports";
/// How far ahead a waiver's `expires` may lie unless `max_waiver_days` says otherwise.
pub const DEFAULT_MAX_WAIVER_DAYS: i64 = 90;
/// How long one target may take unless `target_timeout` (seconds) says otherwise.
pub const DEFAULT_TARGET_TIMEOUT: Duration = Duration::from_secs(3600);
/// The hash cache's file unless `cache` says otherwise (placed as the report folder is).
pub const DEFAULT_CACHE: &str = "vouch-hash-cache.json";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    history: Option<String>,
    metrics_file: Option<String>,
    report_dir: Option<String>,
    max_waiver_days: Option<Spanned<i64>>,
    target_timeout: Option<Spanned<i64>>,
    io: Option<Io>,
    max_rate: Option<Spanned<i64>>,
    cache: Option<Spanned<RawCache>>,
    cache_key: Option<String>,
    rehash_budget: Option<Spanned<RawBudget>>,
    full_every: Option<Spanned<String>>,
    #[serde(default, rename = "target")]
    targets: Vec<Spanned<RawTarget>>,
    #[serde(default, rename = "waiver")]
    waivers: Vec<Spanned<RawWaiver>>,
    alert: Option<RawAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    name: String,
    owner: String,
    path: Option<String>,
    image: Option<String>,
    manifest: Option<String>,
    signature: Option<String>,
    digest: Option<String>,
    manifest_digest: Option<String>,
    check: Option<String>,
    registry: Option<String>,
    tracking_uri: Option<String>,
    key: Option<String>,
    #[serde(default)]
    certificate_chain: Vec<String>,
    #[serde(default)]
    allow_partial_chain: bool,
    identity: Option<String>,
    identity_regexp: Option<String>,
    issuer: Option<String>,
    issuer_regexp: Option<String>,
    trusted_root: Option<String>,
    signed_repository: Option<String>,
    trust_policy: Option<String>,
    trust_store: Option<String>,
    attestation_type: Option<String>,
    algo: Option<String>,
    shard_size: Option<u64>,
    #[serde(default)]
    allow_symlinks: bool,
    #[serde(default)]
    ignore_paths: Vec<String>,
    ignore_git_paths: Option<bool>,
    #[serde(default)]
    deny_unsafe_pickle: bool,
    platform: Option<String>,
    #[serde(default)]
    all_platforms: bool,
    #[serde(default)]
    diff_ids: bool,
    #[serde(default)]
    insecure: bool,
    min_rate: Option<u64>,
    io: Option<Io>,
    rehash_budget: Option<RawBudget>,
    full_every: Option<String>,
}

/// `cache = "PATH"`, or `cache = false` for none.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawCache {
    Path(String),
    On(bool),
}

/// `rehash_budget`: bytes, `"N%"` of the target's bytes, or `"off"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum RawBudget {
    Bytes(i64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWaiver {
    target: String,
    paths: Vec<String>,
    reason: String,
    owner: String,
    expires: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlert {
    command: Option<Vec<String>>,
    webhook: Option<String>,
}

/// A parsed, checked configuration; relative paths are resolved against its directory.
#[derive(Clone, Debug)]
pub struct Config {
    pub source: PathBuf,
    pub history: PathBuf,
    pub metrics_file: Option<PathBuf>,
    /// Where each run's JSON report goes (the command line may say otherwise).
    pub report_dir: PathBuf,
    /// The longest one target's check may take; past it the target is an error.
    pub target_timeout: Duration,
    /// `max_rate`: the most bytes per second a run reads, over all its targets.
    pub max_rate: Option<u64>,
    /// The hash cache of model targets (`cache = false`: none), as set at the top level.
    pub cache: Option<CacheSettings>,
    pub targets: Vec<Target>,
    pub waivers: Vec<Waiver>,
    pub alert: Alert,
}

#[derive(Clone, Debug)]
pub struct Target {
    pub name: String,
    pub owner: String,
    pub subject: Deployed,
    /// Paths left out, relative to the model root.
    pub ignore_paths: Vec<String>,
    /// `ignore_git_paths = false`: check `.git`, `.gitattributes`, `.github`, `.gitignore`.
    pub include_git_paths: bool,
    pub deny_unsafe_pickle: bool,
    /// How the target's files are read: its `io`, else the config's.
    pub io: Io,
    /// The hash cache with this target's budget and full-run interval; never for an image.
    pub cache: Option<CacheSettings>,
}

/// What is deployed, and what it must match.
#[derive(Clone, Debug)]
pub enum Deployed {
    /// A model directory or weights file on this host.
    Model { path: PathBuf, approval: Approval },
    /// A container image or model artifact in a registry or OCI layout.
    Image(Box<ImageTarget>),
}

#[derive(Clone, Debug)]
pub struct ImageTarget {
    pub reference: ImageRef,
    /// The approved digest of what the reference resolves to, and the approved manifest or
    /// signature of the model an artifact holds.
    pub approval: ImageApproval,
    pub platforms: Platforms,
    pub diff_ids: bool,
    pub insecure: bool,
    /// The slowest registry transfer accepted, in bytes per second.
    pub min_rate: u64,
}

impl Deployed {
    /// Where the target lives, for reports.
    pub fn location(&self) -> String {
        match self {
            Deployed::Model { path, .. } => path.display().to_string(),
            Deployed::Image(image) => image.reference.to_string(),
        }
    }
}

impl Config {
    /// What the config says `target` is and must match, in one string: everything about it
    /// a check reads (where it lives, its approval, what it ignores and how it is read) and
    /// the waivers that name it. Two loads of a config define a target alike exactly when
    /// these are equal.
    pub fn definition(&self, target: &Target) -> String {
        let waivers: Vec<&Waiver> = self
            .waivers
            .iter()
            .filter(|w| w.target == target.name)
            .collect();
        format!("{target:?} {waivers:?}")
    }
}

#[derive(Clone, Debug)]
pub struct Waiver {
    pub target: String,
    pub paths: Vec<String>,
    pub reason: String,
    pub owner: String,
    /// The last day the waiver holds (UTC).
    pub expires: Date,
}

#[derive(Clone, Debug, Default)]
pub struct Alert {
    pub command: Option<Vec<String>>,
    pub webhook: Option<String>,
}

impl Config {
    /// Reads and parses `path`. State the config does not place (the history, the report
    /// folder) goes into `state_directory` when one is given (systemd's `StateDirectory=`).
    pub fn load(path: &Path, state_directory: Option<&Path>) -> Result<Config> {
        let text = String::from_utf8(crate::fsio::read_input(path)?)
            .map_err(|_| Error::input(path, "is not UTF-8 text, so not a vouch.toml"))?;
        let today = jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date();
        Config::parse_with_state(&text, path, today, state_directory)
    }

    /// Parses the text of `source`; waiver expiries are checked against `today` (UTC).
    /// State the config does not place goes beside it.
    pub fn parse(text: &str, source: &Path, today: Date) -> Result<Config> {
        Config::parse_with_state(text, source, today, None)
    }

    /// [`Config::parse`], with the history and the report folder defaulting into
    /// `state_directory` when one is given; else the history defaults beside the config and
    /// the report folder beside the history.
    pub fn parse_with_state(
        text: &str,
        source: &Path,
        today: Date,
        state_directory: Option<&Path>,
    ) -> Result<Config> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| Error::input(source, toml_message(text, &e)))?;
        let dir = source
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let resolve = |p: &str| dir.join(p);
        let at = |span: std::ops::Range<usize>, message: String| {
            Error::input(
                source,
                format!("line {}: {message}", line_of(text, span.start)),
            )
        };

        let history = match &raw.history {
            Some(history) => resolve(history),
            None => state_directory.unwrap_or(dir).join(DEFAULT_HISTORY),
        };
        let state_dir = state_directory.or(history.parent()).unwrap_or(dir);
        let cache = cache_settings(&raw, &resolve, state_dir).map_err(|(span, m)| at(span, m))?;

        let mut targets: Vec<Target> = Vec::new();
        for spanned in &raw.targets {
            let span = spanned.span();
            let mut target =
                target(spanned.get_ref(), &resolve).map_err(|e| at(span.clone(), e.to_string()))?;
            if spanned.get_ref().io.is_none() {
                target.io = raw.io.unwrap_or_default();
            }
            target.cache = target_cache(spanned.get_ref(), &target, cache.as_ref())
                .map_err(|m| at(span.clone(), m))?;
            if targets.iter().any(|t| t.name == target.name) {
                return Err(at(
                    span,
                    format!("a second target is named \"{}\"", target.name),
                ));
            }
            targets.push(target);
        }
        if targets.is_empty() {
            return Err(Error::input(source, "no [[target]]: nothing to check"));
        }

        let max_waiver_days = positive(&raw.max_waiver_days, "max_waiver_days")
            .map_err(|(span, m)| at(span, m))?
            .unwrap_or(DEFAULT_MAX_WAIVER_DAYS);
        let target_timeout = positive(&raw.target_timeout, "target_timeout")
            .map_err(|(span, m)| at(span, m))?
            .map_or(DEFAULT_TARGET_TIMEOUT, |s| Duration::from_secs(s as u64));
        let max_rate = positive(&raw.max_rate, "max_rate")
            .map_err(|(span, m)| at(span, m))?
            .map(|rate| rate as u64);

        let mut waivers = Vec::new();
        for spanned in &raw.waivers {
            let raw = spanned.get_ref();
            let Some(waived) = targets.iter().find(|t| t.name == raw.target) else {
                return Err(at(
                    spanned.span(),
                    format!(
                        "the waiver names target \"{}\", which is not configured",
                        raw.target
                    ),
                ));
            };
            waivable(waived).map_err(|e| at(spanned.span(), e.to_string()))?;
            for (field, value) in [("owner", &raw.owner), ("reason", &raw.reason)] {
                if value.trim().is_empty() {
                    return Err(at(
                        spanned.span(),
                        format!("a waiver needs a non-empty {field}"),
                    ));
                }
            }
            let expires: Date = raw.expires.get_ref().parse().map_err(|_| {
                at(
                    raw.expires.span(),
                    format!(
                        "expires = \"{}\" is not a date (YYYY-MM-DD)",
                        raw.expires.get_ref()
                    ),
                )
            })?;
            let latest = today
                .checked_add(jiff::Span::new().days(max_waiver_days))
                .unwrap_or(Date::MAX);
            if expires > latest {
                return Err(at(
                    raw.expires.span(),
                    format!(
                        "expires = \"{expires}\" is more than max_waiver_days ({max_waiver_days}) days ahead \
                         (the latest allowed today is {latest}); waive for less, and renew"
                    ),
                ));
            }
            let paths = raw
                .paths
                .iter()
                .map(|p| normalize_relative_name(p))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|m| at(spanned.span(), format!("waiver path {m}")))?;
            if paths.is_empty() {
                return Err(at(
                    spanned.span(),
                    "a waiver needs at least one path".into(),
                ));
            }
            waivers.push(Waiver {
                target: raw.target.clone(),
                paths,
                reason: raw.reason.clone(),
                owner: raw.owner.clone(),
                expires,
            });
        }

        let alert = raw
            .alert
            .map(|a| Alert {
                command: a.command,
                webhook: a.webhook,
            })
            .unwrap_or_default();
        if alert.command.as_ref().is_some_and(|c| c.is_empty()) {
            return Err(Error::input(
                source,
                "[alert] command is empty: give the program and its arguments",
            ));
        }
        let report_dir = match &raw.report_dir {
            Some(report_dir) => resolve(report_dir),
            None => state_dir.join(DEFAULT_REPORT_DIR),
        };
        Ok(Config {
            source: source.to_path_buf(),
            history,
            metrics_file: raw.metrics_file.as_deref().map(resolve),
            report_dir,
            target_timeout,
            max_rate,
            cache,
            targets,
            waivers,
            alert,
        })
    }
}

/// The top-level hash cache settings: on by default, in the state folder.
fn cache_settings(
    raw: &RawConfig,
    resolve: &dyn Fn(&str) -> PathBuf,
    state_dir: &Path,
) -> std::result::Result<Option<CacheSettings>, (std::ops::Range<usize>, String)> {
    let path = match raw.cache.as_ref().map(|c| (c.span(), c.get_ref())) {
        None | Some((_, RawCache::On(true))) => state_dir.join(DEFAULT_CACHE),
        Some((_, RawCache::Path(path))) if !path.trim().is_empty() => resolve(path),
        Some((span, RawCache::Path(_))) => {
            return Err((
                span,
                "cache = \"\" names no file; give a path, or cache = false".into(),
            ))
        }
        Some((span, RawCache::On(false))) => {
            let set = [
                ("cache_key", raw.cache_key.is_some()),
                ("rehash_budget", raw.rehash_budget.is_some()),
                ("full_every", raw.full_every.is_some()),
            ];
            if let Some((key, _)) = set.iter().find(|(_, given)| *given) {
                return Err((
                    span,
                    format!("{key} is set, yet cache = false turns the hash cache off"),
                ));
            }
            return Ok(None);
        }
    };
    let mut settings = CacheSettings::at(path);
    if let Some(key) = &raw.cache_key {
        settings.key = resolve(key);
    }
    if let Some(budget) = &raw.rehash_budget {
        settings.rehash_budget = rehash_budget(budget.get_ref()).map_err(|m| (budget.span(), m))?;
    }
    if let Some(every) = &raw.full_every {
        settings.full_every = full_every(every.get_ref()).map_err(|m| (every.span(), m))?;
    }
    Ok(Some(settings))
}

/// A model target's cache: the top level's, with its own budget and interval; refused when
/// it would lie inside the model.
fn target_cache(
    raw: &RawTarget,
    target: &Target,
    cache: Option<&CacheSettings>,
) -> std::result::Result<Option<CacheSettings>, String> {
    let Deployed::Model { path, .. } = &target.subject else {
        return Ok(None);
    };
    let Some(cache) = cache else {
        return match (&raw.rehash_budget, &raw.full_every) {
            (None, None) => Ok(None),
            _ => Err(format!(
                "target \"{}\": rehash_budget and full_every need the hash cache, which cache = false turns off",
                target.name
            )),
        };
    };
    let mut settings = cache.clone();
    let of_target = |m: String| format!("target \"{}\": {m}", target.name);
    if let Some(budget) = &raw.rehash_budget {
        settings.rehash_budget = rehash_budget(budget).map_err(of_target)?;
    }
    if let Some(every) = &raw.full_every {
        settings.full_every = full_every(every).map_err(of_target)?;
    }
    settings
        .refuse_inside(path)
        .map_err(|e| of_target(e.to_string()))?;
    Ok(Some(settings))
}

fn rehash_budget(value: &RawBudget) -> std::result::Result<Budget, String> {
    let refused = |shown: String| {
        format!(
            "rehash_budget = {shown} is not a budget: give bytes (e.g. 1073741824), a share of the \
             target's bytes (e.g. \"1%\"), or \"off\""
        )
    };
    match value {
        RawBudget::Bytes(bytes) => u64::try_from(*bytes)
            .map(Budget::Bytes)
            .map_err(|_| refused(bytes.to_string())),
        RawBudget::Text(text) if text == "off" => Ok(Budget::Off),
        RawBudget::Text(text) => text
            .strip_suffix('%')
            .and_then(|n| n.trim().parse::<f64>().ok())
            .filter(|n| *n > 0.0 && *n <= 100.0)
            .map(|n| Budget::Fraction(n / 100.0))
            .ok_or_else(|| refused(format!("\"{text}\""))),
    }
}

fn full_every(text: &str) -> std::result::Result<Duration, String> {
    humantime::parse_duration(text)
        .ok()
        .filter(|d| d.as_secs() >= 1)
        .ok_or_else(|| {
            format!("full_every = \"{text}\" is not a duration of a second or more (e.g. 7d, 24h)")
        })
}

/// A setting that must be a whole number of at least 1, with where it was written.
fn positive(
    value: &Option<Spanned<i64>>,
    key: &str,
) -> std::result::Result<Option<i64>, (std::ops::Range<usize>, String)> {
    match value {
        None => Ok(None),
        Some(v) if *v.get_ref() >= 1 => Ok(Some(*v.get_ref())),
        Some(v) => Err((
            v.span(),
            format!("{key} = {} must be at least 1", v.get_ref()),
        )),
    }
}

/// Why a `[[target]]` (or a `[[waiver]]` of it) is refused; each message names the target.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("a target needs a name")]
    NoName,
    #[error("target \"{0}\" needs an owner")]
    NoOwner(String),
    #[error(
        "target \"{0}\": platform, all_platforms, diff_ids, insecure, min_rate, signed_repository, trust_policy, trust_store and attestation_type go with image"
    )]
    ImageSettingsOnPath(String),
    #[error("target \"{0}\" has both path and image; give one")]
    PathAndImage(String),
    #[error("target \"{0}\" has neither path nor image")]
    NeitherPathNorImage(String),
    #[error("target \"{target}\": path {message}")]
    HfModel { target: String, message: String },
    #[error("target \"{target}\": ignore_paths {error}")]
    IgnorePath { target: String, error: NameError },
    #[error("target \"{target}\": image {error}")]
    Image {
        target: String,
        error: ReferenceError,
    },
    #[error(
        "target \"{target}\": {keys}: an image is approved by digest (pinned) and/or the manifest or signature of \
         the model an artifact holds (with its trust keys); the other approval settings are for model paths"
    )]
    ModelSettingsOnImage { target: String, keys: String },
    /// The approval rules refused the target's keys (named as keys).
    #[error("target \"{target}\": {error}")]
    Rules { target: String, error: RuleError },
    #[error(
        "target \"{0}\" has no approval source: pin the image (digest = \"sha256:…\", or image = \"…@sha256:…\"), \
         give the manifest or signature of the model artifact, or the key the image is signed with"
    )]
    NoImageApproval(String),
    #[error("target \"{0}\": give platform or all_platforms, not both")]
    PlatformAndAllPlatforms(String),
    #[error("target \"{target}\": platform {error}")]
    Platform { target: String, error: NotAPlatform },
    #[error("target \"{0}\": min_rate must be at least 1")]
    ZeroMinRate(String),
    #[error("target \"{target}\": algo: {error}")]
    Algorithm { target: String, error: DigestError },
    #[error(
        "target \"{0}\" is an image; a waiver covers files of a model path, never an image's pins"
    )]
    WaiverOnImage(String),
    #[error(
        "target \"{0}\" is approved by a pinned digest, which names no files; a waiver covers files \
         of a model approved by manifest, signature or check list"
    )]
    WaiverOnPin(String),
}

/// A waiver hides failures of files inside a model approved file by file; a pinned digest,
/// an image's pins and a signature are never waived.
fn waivable(target: &Target) -> std::result::Result<(), TargetError> {
    let name = target.name.clone();
    match &target.subject {
        Deployed::Image(_) => Err(TargetError::WaiverOnImage(name)),
        Deployed::Model {
            approval: Approval::Pinned { .. },
            ..
        } => Err(TargetError::WaiverOnPin(name)),
        Deployed::Model { .. } => Ok(()),
    }
}

fn target(
    raw: &RawTarget,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> std::result::Result<Target, TargetError> {
    if raw.name.trim().is_empty() {
        return Err(TargetError::NoName);
    }
    if raw.owner.trim().is_empty() {
        return Err(TargetError::NoOwner(raw.name.clone()));
    }
    let image_only = raw.platform.is_some()
        || raw.all_platforms
        || raw.diff_ids
        || raw.insecure
        || raw.min_rate.is_some()
        || raw.signed_repository.is_some()
        || raw.trust_policy.is_some()
        || raw.trust_store.is_some()
        || raw.attestation_type.is_some();
    let subject = match (&raw.path, &raw.image) {
        (Some(path), None) if !image_only => Deployed::Model {
            // A Hugging Face model (hf://ORG/NAME[@REV]) is looked up in the hub cache
            // when it is checked.
            path: match crate::model::hf::parse_uri(path) {
                Some(Ok(_)) => PathBuf::from(path),
                Some(Err(message)) => {
                    return Err(TargetError::HfModel {
                        target: raw.name.clone(),
                        message,
                    })
                }
                None => resolve(path),
            },
            approval: approval(raw, resolve)?,
        },
        (Some(_), None) => return Err(TargetError::ImageSettingsOnPath(raw.name.clone())),
        (None, Some(image)) => Deployed::Image(Box::new(image_target(raw, image, resolve)?)),
        (Some(_), Some(_)) => return Err(TargetError::PathAndImage(raw.name.clone())),
        (None, None) => return Err(TargetError::NeitherPathNorImage(raw.name.clone())),
    };
    let ignore_paths = raw
        .ignore_paths
        .iter()
        .map(|p| {
            normalize_relative_name(p).map_err(|error| TargetError::IgnorePath {
                target: raw.name.clone(),
                error,
            })
        })
        .collect::<std::result::Result<_, _>>()?;
    Ok(Target {
        name: raw.name.clone(),
        owner: raw.owner.clone(),
        subject,
        ignore_paths,
        include_git_paths: raw.ignore_git_paths == Some(false),
        deny_unsafe_pickle: raw.deny_unsafe_pickle,
        io: raw.io.unwrap_or_default(),
        cache: None,
    })
}

/// An image target: a reference, and a pinned digest and/or an approved manifest or
/// signature.
fn image_target(
    raw: &RawTarget,
    image: &str,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> std::result::Result<ImageTarget, TargetError> {
    let name = || raw.name.clone();
    let reference = match ImageRef::parse(image) {
        // An image layout is a path like any other in the config.
        Ok(ImageRef::Layout(mut layout)) => {
            layout.dir = resolve(&layout.dir.to_string_lossy());
            ImageRef::Layout(layout)
        }
        Ok(registry) => registry,
        Err(error) => {
            return Err(TargetError::Image {
                target: name(),
                error,
            })
        }
    };
    let model_only: Vec<&str> = [
        ("check", raw.check.is_some()),
        ("manifest_digest", raw.manifest_digest.is_some()),
        ("algo", raw.algo.is_some()),
        ("shard_size", raw.shard_size.is_some()),
        ("allow_symlinks", raw.allow_symlinks),
        ("ignore_paths", !raw.ignore_paths.is_empty()),
        ("ignore_git_paths", raw.ignore_git_paths.is_some()),
        ("deny_unsafe_pickle", raw.deny_unsafe_pickle),
        ("io", raw.io.is_some()),
        ("registry", raw.registry.is_some()),
        ("tracking_uri", raw.tracking_uri.is_some()),
        ("rehash_budget", raw.rehash_budget.is_some()),
        ("full_every", raw.full_every.is_some()),
    ]
    .into_iter()
    .filter_map(|(key, given)| given.then_some(key))
    .collect();
    if !model_only.is_empty() {
        return Err(TargetError::ModelSettingsOnImage {
            target: name(),
            keys: model_only.join(", "),
        });
    }
    let approval = ImageApprovalParts {
        digest: raw.digest.clone(),
        manifest: raw.manifest.as_deref().map(resolve),
        signature: raw.signature.as_deref().map(resolve),
        trust: trust_parts(raw, resolve),
        signed_repository: raw.signed_repository.clone(),
        trust_policy: raw.trust_policy.as_deref().map(resolve),
        trust_store: raw.trust_store.as_deref().map(resolve),
        attestation_type: raw.attestation_type.clone(),
    }
    .approval()
    .map_err(|error| TargetError::Rules {
        target: name(),
        error,
    })?;
    if approval.pinned.is_none()
        && approval.files.is_none()
        && approval.signers.is_none()
        && reference.digest().is_none()
    {
        return Err(TargetError::NoImageApproval(name()));
    }
    let platforms = match (&raw.platform, raw.all_platforms) {
        (Some(_), true) => return Err(TargetError::PlatformAndAllPlatforms(name())),
        (Some(text), false) => {
            Platforms::Only(
                Platform::parse(text).map_err(|error| TargetError::Platform {
                    target: name(),
                    error,
                })?,
            )
        }
        (None, true) => Platforms::All,
        (None, false) => Platforms::Host,
    };
    let min_rate = match raw.min_rate {
        None => crate::oci::DEFAULT_MIN_RATE,
        Some(0) => return Err(TargetError::ZeroMinRate(name())),
        Some(rate) => rate,
    };
    Ok(ImageTarget {
        reference,
        approval,
        platforms,
        diff_ids: raw.diff_ids,
        insecure: raw.insecure,
        min_rate,
    })
}

/// The one approval source of a model target.
fn approval(
    raw: &RawTarget,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> std::result::Result<Approval, TargetError> {
    let algorithm = match &raw.algo {
        Some(a) => Some(
            a.parse::<Algorithm>()
                .map_err(|error| TargetError::Algorithm {
                    target: raw.name.clone(),
                    error,
                })?,
        ),
        None => None,
    };
    ApprovalParts {
        manifest: raw.manifest.as_deref().map(resolve),
        signature: raw.signature.as_deref().map(resolve),
        digest: raw.digest.clone(),
        manifest_digest: raw.manifest_digest.clone(),
        check: raw.check.as_deref().map(resolve),
        algorithm,
        shard_size: raw.shard_size,
        allow_symlinks: raw.allow_symlinks,
        trust: trust_parts(raw, resolve),
        registry: raw.registry.clone(),
        tracking_uri: raw.tracking_uri.clone(),
    }
    .approval()
    .map_err(|error| TargetError::Rules {
        target: raw.name.clone(),
        error,
    })
}

/// The target's trust settings, paths resolved against the config's folder.
fn trust_parts(raw: &RawTarget, resolve: &dyn Fn(&str) -> PathBuf) -> TrustParts {
    TrustParts {
        key: raw.key.as_deref().map(resolve),
        certificate_chain: raw.certificate_chain.iter().map(|c| resolve(c)).collect(),
        allow_partial_chain: raw.allow_partial_chain,
        identity: raw.identity.clone(),
        identity_regexp: raw.identity_regexp.clone(),
        issuer: raw.issuer.clone(),
        issuer_regexp: raw.issuer_regexp.clone(),
        trusted_root: raw.trusted_root.as_deref().map(resolve),
    }
}

/// The 1-based line of byte `offset`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// toml's message, led by the line the problem is on.
fn toml_message(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim_end();
    match error.span() {
        Some(span) => format!("line {}: {message}", line_of(text, span.start)),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approval::{Approval, IdentitySpec, Locator, TrustSpec};

    /// The day the tests' waivers are checked on: GOOD's waiver expires 30 days later.
    const TODAY: Date = jiff::civil::date(2026, 12, 1);

    const GOOD: &str = r#"
history = "state/history.sqlite"
metrics_file = "vouch.prom"

[[target]]
name = "llama-prod"
owner = "ml-platform@example.com"
path = "/srv/models/llama"
manifest = "approved/llama.oms.json"

[[target]]
name = "mistral"
owner = "ml@example.com"
path = "mistral"
signature = "mistral.sig"
identity = "release@example.com"
issuer = "https://accounts.example.com"

[[waiver]]
target = "llama-prod"
paths = ["README.md"]
reason = "model card edited after release"
owner = "alice@example.com"
expires = "2026-12-31"

[alert]
command = ["/usr/local/bin/page-oncall", "--urgent"]
webhook = "https://hooks.example.com/vouch"
"#;

    #[test]
    fn a_full_config_parses_with_paths_resolved() {
        let config = Config::parse(GOOD, Path::new("/etc/vouch/vouch.toml"), TODAY).unwrap();
        assert_eq!(config.history, Path::new("/etc/vouch/state/history.sqlite"));
        assert_eq!(config.targets.len(), 2);
        let Deployed::Model { path, approval } = &config.targets[0].subject else {
            panic!("a model target")
        };
        assert_eq!(path, Path::new("/srv/models/llama"));
        assert!(
            matches!(approval, Approval::Manifest(m) if m.file() == Some(Path::new("/etc/vouch/approved/llama.oms.json")))
        );
        assert_eq!(config.waivers[0].expires, jiff::civil::date(2026, 12, 31));
        assert!(!config.targets[0].include_git_paths);
        let checked = GOOD.replace(
            "manifest = \"approved/llama.oms.json\"",
            "manifest = \"approved/llama.oms.json\"\nignore_git_paths = false",
        );
        let config = Config::parse(&checked, Path::new("/etc/vouch/vouch.toml"), TODAY).unwrap();
        assert!(config.targets[0].include_git_paths);
        assert_eq!(config.alert.command.as_ref().unwrap().len(), 2);
    }

    fn error_of(text: &str) -> String {
        Config::parse(text, Path::new("vouch.toml"), TODAY)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn mistakes_are_named_with_their_line() {
        let unknown = GOOD.replace("metrics_file", "metrics_fiel");
        let e = error_of(&unknown);
        assert!(e.contains("line 3") && e.contains("metrics_fiel"), "{e}");

        let no_source = GOOD.replace("manifest = \"approved/llama.oms.json\"\n", "");
        let e = error_of(&no_source);
        assert!(
            e.contains("line 5") && e.contains("no approval source"),
            "{e}"
        );

        let bad_date = GOOD.replace("2026-12-31", "31/12/2026");
        let e = error_of(&bad_date);
        assert!(e.contains("line 24") && e.contains("not a date"), "{e}");

        let stray_waiver = GOOD.replace("target = \"llama-prod\"", "target = \"nope\"");
        assert!(error_of(&stray_waiver).contains("not configured"));

        let two = GOOD.replace("name = \"mistral\"", "name = \"llama-prod\"");
        assert!(error_of(&two).contains("second target"));

        let no_issuer = GOOD.replace("issuer = \"https://accounts.example.com\"\n", "");
        assert!(error_of(&no_issuer).contains("issuer"));
    }

    #[test]
    fn an_issuer_pattern_is_a_key_of_its_own() {
        let pattern = GOOD.replace(
            "issuer = \"https://accounts.example.com\"",
            "issuer_regexp = \"https://accounts\\\\.example\\\\.(com|org)\"",
        );
        let config = Config::parse(&pattern, Path::new("vouch.toml"), TODAY).unwrap();
        let Deployed::Model { approval, .. } = &config.targets[1].subject else {
            panic!("a model target")
        };
        let Approval::Signature {
            trust: TrustSpec::Keyless { issuer, .. },
            ..
        } = approval
        else {
            panic!("a keyless signature: {approval:?}")
        };
        assert!(
            matches!(issuer, IdentitySpec::Pattern(p) if p == r"https://accounts\.example\.(com|org)"),
            "{issuer:?}"
        );
        let both = GOOD.replace(
            "issuer = \"https://accounts.example.com\"",
            "issuer = \"https://accounts.example.com\"\nissuer_regexp = \".*\"",
        );
        let e = error_of(&both);
        assert!(e.contains("issuer_regexp") && e.contains("not both"), "{e}");
    }

    #[test]
    fn waivers_need_an_owner_a_reason_a_near_expiry_and_a_file_target() {
        let no_owner = GOOD.replace("owner = \"alice@example.com\"", "owner = \" \"");
        let e = error_of(&no_owner);
        assert!(
            e.contains("line 19") && e.contains("non-empty owner"),
            "{e}"
        );
        let no_reason = GOOD.replace("\"model card edited after release\"", "\"\"");
        assert!(error_of(&no_reason).contains("non-empty reason"));

        // 2026-12-01 + 90 days is 2027-03-01.
        let far = GOOD.replace("2026-12-31", "2027-03-02");
        let e = error_of(&far);
        assert!(
            e.contains("line 24") && e.contains("max_waiver_days (90)") && e.contains("2027-03-01"),
            "{e}"
        );
        assert!(Config::parse(
            &GOOD.replace("2026-12-31", "2027-03-01"),
            Path::new("vouch.toml"),
            TODAY
        )
        .is_ok());
        let short = format!("max_waiver_days = 10\n{GOOD}");
        assert!(error_of(&short).contains("max_waiver_days (10)"));
        let zero = format!("max_waiver_days = 0\n{GOOD}");
        let e = error_of(&zero);
        assert!(e.contains("line 1") && e.contains("at least 1"), "{e}");

        let pinned = GOOD.replace(
            "manifest = \"approved/llama.oms.json\"",
            &format!("digest = \"sha256:{}\"", "ab".repeat(32)),
        );
        let e = error_of(&pinned);
        assert!(e.contains("line 19") && e.contains("pinned digest"), "{e}");
        let image = GOOD.replace(
            "path = \"/srv/models/llama\"\nmanifest",
            "image = \"oci:layout:v1\"\nmanifest",
        );
        let e = error_of(&image);
        assert!(e.contains("line 19") && e.contains("is an image"), "{e}");
    }

    #[test]
    fn a_relative_image_layout_is_resolved_against_the_config_folder() {
        let text = "target_timeout = 5\n[[target]]\nname = \"a\"\nowner = \"o\"\nimage = \"oci:layouts/app:v1\"\ndigest = \"sha256:".to_string()
            + &"ab".repeat(32)
            + "\"\n";
        let config = Config::parse(&text, Path::new("/etc/vouch/vouch.toml"), TODAY).unwrap();
        let Deployed::Image(image) = &config.targets[0].subject else {
            panic!("an image target")
        };
        assert_eq!(image.reference.to_string(), "oci:/etc/vouch/layouts/app:v1");
        assert_eq!(config.target_timeout, Duration::from_secs(5));
    }

    #[test]
    fn an_image_target_takes_a_signature_and_its_trust_with_paths_resolved() {
        let text = "[[target]]\nname = \"a\"\nowner = \"o\"\nimage = \"oci:layout:v1\"\nsignature = \"a.sig\"\nkey = \"keys/pub.pem\"\n";
        let config = Config::parse(text, Path::new("/etc/vouch/vouch.toml"), TODAY).unwrap();
        let Deployed::Image(image) = &config.targets[0].subject else {
            panic!("an image target")
        };
        let Some(Approval::Signature {
            bundle: Locator::File(bundle),
            trust,
        }) = &image.approval.files
        else {
            panic!("a signature: {:?}", image.approval)
        };
        assert_eq!(bundle, Path::new("/etc/vouch/a.sig"));
        assert!(
            matches!(trust, TrustSpec::Key(key) if key == Path::new("/etc/vouch/keys/pub.pem"))
        );
        let e = error_of(&text.replace("key = \"keys/pub.pem\"\n", ""));
        assert!(
            e.contains("target \"a\"") && e.contains("signature needs exactly one of"),
            "{e}"
        );
        let e = error_of(&format!("{text}shard_size = 4096\n"));
        assert!(
            e.contains("target \"a\": shard_size: an image is approved by digest"),
            "{e}"
        );
    }

    #[test]
    fn a_registry_target_follows_an_alias_on_its_tracking_server() {
        let text = "[[target]]\nname = \"m\"\nowner = \"o\"\npath = \"/srv/m\"\nregistry = \"models:/fraud@production\"\ntracking_uri = \"https://mlflow.example.com\"\n";
        let config = Config::parse(text, Path::new("vouch.toml"), TODAY).unwrap();
        let Deployed::Model {
            approval: Approval::Manifest(Locator::Registry(kept)),
            ..
        } = &config.targets[0].subject
        else {
            panic!("a registry approval: {:?}", config.targets[0].subject)
        };
        assert_eq!(kept.model.to_string(), "models:/fraud@production");
        assert_eq!(
            kept.tracking_uri.as_deref(),
            Some("https://mlflow.example.com")
        );
        let e = error_of(&text.replace(
            "registry = \"models:/fraud@production\"",
            "manifest = \"m.json\"",
        ));
        assert!(e.contains("tracking_uri goes with registry"), "{e}");
        let e = error_of(&text.replace("models:/fraud@production", "fraud"));
        assert!(e.contains("line 1") && e.contains("registry: fraud"), "{e}");
        let e = error_of(&text.replace("path = \"/srv/m\"", "image = \"oci:layout:v1\""));
        assert!(e.contains("registry, tracking_uri: an image"), "{e}");

        // The documented registry target parses.
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/drift.md")).unwrap();
        let example = doc
            .split("```toml\n")
            .skip(1)
            .map(|block| &block[..block.find("```").unwrap()])
            .find(|block| block.contains("registry = \"models:/"))
            .expect("docs/drift.md shows a registry target");
        let config = Config::parse(example, Path::new("/etc/vouch/vouch.toml"), TODAY).unwrap();
        assert!(matches!(
            &config.targets[0].subject,
            Deployed::Model {
                approval: Approval::Manifest(Locator::Registry(_)),
                ..
            }
        ));
    }

    #[test]
    fn min_rate_is_an_image_setting_of_at_least_one() {
        let image = "[[target]]\nname = \"a\"\nowner = \"o\"\nimage = \"docker://reg.example/app:v1\"\ndigest = \"sha256:".to_string()
            + &"ab".repeat(32)
            + "\"\n";
        let min_rate = |text: &str| match &Config::parse(text, Path::new("vouch.toml"), TODAY)
            .unwrap()
            .targets[0]
            .subject
        {
            Deployed::Image(image) => image.min_rate,
            Deployed::Model { .. } => panic!("an image target"),
        };
        assert_eq!(min_rate(&image), crate::oci::DEFAULT_MIN_RATE);
        assert_eq!(min_rate(&format!("{image}min_rate = 4096\n")), 4096);
        let e = error_of(&format!("{image}min_rate = 0\n"));
        assert!(e.contains("min_rate must be at least 1"), "{e}");
        let model = "[[target]]\nname = \"m\"\nowner = \"o\"\npath = \"/srv/m\"\nmanifest = \"m.json\"\nmin_rate = 10\n";
        let e = error_of(model);
        assert!(
            e.contains(
                "signed_repository, trust_policy, trust_store and attestation_type go with image"
            ),
            "{e}"
        );
    }

    #[test]
    fn state_defaults_into_the_state_directory_else_beside_the_config_and_the_history() {
        let bare = "[[target]]\nname = \"m\"\nowner = \"o\"\npath = \"m\"\nmanifest = \"m.json\"\n";
        let source = Path::new("/etc/vouch/vouch.toml");
        let parse = |text: &str, state: Option<&str>| {
            Config::parse_with_state(text, source, TODAY, state.map(Path::new)).unwrap()
        };
        let beside = parse(bare, None);
        assert_eq!(beside.history, Path::new("/etc/vouch/vouch-history.sqlite"));
        assert_eq!(beside.report_dir, Path::new("/etc/vouch/vouch-reports"));
        let stated = parse(bare, Some("/var/lib/vouch"));
        assert_eq!(
            stated.history,
            Path::new("/var/lib/vouch/vouch-history.sqlite")
        );
        assert_eq!(stated.report_dir, Path::new("/var/lib/vouch/vouch-reports"));

        let placed = format!("history = \"/srv/state/h.sqlite\"\n{bare}");
        let beside_history = parse(&placed, None);
        assert_eq!(beside_history.history, Path::new("/srv/state/h.sqlite"));
        assert_eq!(
            beside_history.report_dir,
            Path::new("/srv/state/vouch-reports")
        );
        let both = parse(&placed, Some("/var/lib/vouch"));
        assert_eq!(both.history, Path::new("/srv/state/h.sqlite"));
        assert_eq!(both.report_dir, Path::new("/var/lib/vouch/vouch-reports"));
        // What the config places stays where it says, relative to the config.
        let reports = parse(
            &format!("report_dir = \"r\"\n{bare}"),
            Some("/var/lib/vouch"),
        );
        assert_eq!(reports.report_dir, Path::new("/etc/vouch/r"));
    }

    #[test]
    fn the_hash_cache_defaults_beside_the_state_and_targets_may_tune_it() {
        let bare =
            "[[target]]\nname = \"m\"\nowner = \"o\"\npath = \"/srv/m\"\nmanifest = \"m.json\"\n";
        let source = Path::new("/etc/vouch/vouch.toml");
        let parse = |text: &str, state: Option<&str>| {
            Config::parse_with_state(text, source, TODAY, state.map(Path::new)).unwrap()
        };
        let beside = parse(bare, None);
        let cache = beside.targets[0].cache.as_ref().unwrap();
        assert_eq!(cache.path, Path::new("/etc/vouch/vouch-hash-cache.json"));
        assert_eq!(cache.key, Path::new("/etc/vouch/vouch-hash-cache.json.key"));
        assert_eq!(cache.rehash_budget, Budget::Fraction(0.01));
        assert_eq!(cache.full_every, crate::hash::cache::DEFAULT_FULL_EVERY);
        let stated = parse(bare, Some("/var/lib/vouch"));
        assert_eq!(
            stated.cache.unwrap().path,
            Path::new("/var/lib/vouch/vouch-hash-cache.json")
        );

        let tuned = parse(
            &format!(
                "cache = \"c/cache.json\"\ncache_key = \"/keys/k\"\nrehash_budget = \"0.5%\"\nfull_every = \"1day\"\n{bare}\
                 rehash_budget = 1048576\nfull_every = \"12h\"\n"
            ),
            None,
        );
        assert_eq!(
            tuned.cache.as_ref().unwrap().rehash_budget,
            Budget::Fraction(0.005)
        );
        let cache = tuned.targets[0].cache.as_ref().unwrap();
        assert_eq!(cache.path, Path::new("/etc/vouch/c/cache.json"));
        assert_eq!(cache.key, Path::new("/keys/k"));
        assert_eq!(cache.rehash_budget, Budget::Bytes(1 << 20));
        assert_eq!(cache.full_every, Duration::from_secs(12 * 3600));
        let off = parse(&format!("rehash_budget = \"off\"\n{bare}"), None);
        assert_eq!(
            off.targets[0].cache.as_ref().unwrap().rehash_budget,
            Budget::Off
        );

        let none = parse(&format!("cache = false\n{bare}"), None);
        assert!(none.cache.is_none() && none.targets[0].cache.is_none());
        let e = error_of(&format!("cache = false\n{bare}full_every = \"1d\"\n"));
        assert!(
            e.contains("target \"m\"") && e.contains("cache = false"),
            "{e}"
        );

        let image = "[[target]]\nname = \"i\"\nowner = \"o\"\nimage = \"docker://reg.example/app:v1\"\ndigest = \"sha256:".to_string()
            + &"ab".repeat(32)
            + "\"\nrehash_budget = \"1%\"\n";
        let e = error_of(&image);
        assert!(e.contains("rehash_budget") && e.contains("image"), "{e}");
        for (bad, message) in [
            (
                "rehash_budget = \"0%\"",
                "rehash_budget = \"0%\" is not a budget",
            ),
            (
                "rehash_budget = \"150%\"",
                "rehash_budget = \"150%\" is not a budget",
            ),
            (
                "full_every = \"0s\"",
                "full_every = \"0s\" is not a duration",
            ),
            ("cache = \"\"", "cache = \"\" names no file"),
        ] {
            let e = error_of(&format!("{bad}\n{bare}"));
            assert!(e.contains("line 1") && e.contains(message), "{bad}: {e}");
        }
    }

    #[test]
    fn the_documented_example_parses() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/drift.md")).unwrap();
        let start = doc
            .find("```toml\n")
            .expect("docs/drift.md has a toml example")
            + "```toml\n".len();
        let example = &doc[start..start + doc[start..].find("```").unwrap()];
        let config = Config::parse(example, Path::new("/etc/vouch/vouch.toml"), TODAY).unwrap();
        assert_eq!(config.targets.len(), 4);
        assert!(matches!(config.targets[3].subject, Deployed::Image(_)));
        assert_eq!(config.waivers.len(), 1);
    }
}
