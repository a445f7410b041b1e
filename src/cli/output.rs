//! Where a report goes: `--format` on stdout, `--output [FORMAT=]FILE` (repeatable), the
//! file locations SARIF and GitHub annotations point at, and the job summary GitHub Actions
//! shows (`$GITHUB_STEP_SUMMARY`).

use std::ffi::OsString;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use clap::{Args, ValueEnum};

use crate::error::{Error, Result};
use crate::fsio::write_atomically;
use crate::report::{self, Format, Locations, Report, Subject, Verdict};

/// `--format` and `--output`: where any report goes.
#[derive(Debug, Args)]
pub struct Outputs {
    /// Report format on stdout (or in a plain --output FILE)
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Write the report to FILE (atomically) instead of stdout; FORMAT=FILE (e.g.
    /// sarif=vouch.sarif) writes that format to FILE besides what stdout shows; repeatable
    #[arg(long, value_name = "[FORMAT=]FILE", value_parser = output_spec)]
    output: Vec<OutputSpec>,
}

/// The outputs of a report about one target, and where that target is in the repository.
#[derive(Debug, Args)]
pub struct OutputArgs {
    #[command(flatten)]
    outputs: Outputs,
    /// The target's path from the repository root, for the file locations in SARIF and
    /// GitHub annotations [default: from $GITHUB_WORKSPACE, else the current directory]
    #[arg(long, value_name = "PATH")]
    path_prefix: Option<String>,
}

/// One `--output`: a file, and the format written to it when one is named.
#[derive(Clone, Debug)]
pub struct OutputSpec {
    format: Option<Format>,
    path: PathBuf,
}

/// `FORMAT=FILE` when the text before `=` names a format, else a plain FILE.
fn output_spec(text: &str) -> std::result::Result<OutputSpec, String> {
    if let Some((name, path)) = text.split_once('=') {
        if let Ok(format) = Format::from_str(name, true) {
            if path.is_empty() {
                return Err(format!("'{text}' names no file after '{name}='"));
            }
            return Ok(OutputSpec {
                format: Some(format),
                path: PathBuf::from(path),
            });
        }
    }
    Ok(OutputSpec {
        format: None,
        path: PathBuf::from(OsString::from(text)),
    })
}

/// Where the outputs of one run go: the file that takes stdout's place (a plain
/// `--output FILE`), and the files of the named formats.
struct Destinations<'a> {
    stdout: Option<&'a Path>,
    files: Vec<(Format, &'a Path)>,
}

/// What a report's subject names are relative to, for locating them as files.
pub enum Target<'a> {
    /// A model: a directory (names inside it) or a single file.
    Model(&'a Path),
    /// Files named as paths from the current directory (a check list's names).
    Files,
    /// An image: no subject is a file here; results point at the approval file when there
    /// is one, else at the reference.
    Image {
        reference: &'a str,
        approval: Option<&'a Path>,
    },
}

impl OutputArgs {
    /// The files the reports are written to.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.outputs.output.iter().map(|spec| spec.path.as_path())
    }

    /// Whether any report option was given: `--format` other than text, `--output` or
    /// `--path-prefix`.
    pub fn is_given(&self) -> bool {
        self.outputs.format != Format::Text
            || !self.outputs.output.is_empty()
            || self.path_prefix.is_some()
    }

    /// Writes the report to every output, and returns the report's exit status. `text` renders
    /// the text format (commands differ in how they show it).
    pub fn emit(
        &self,
        report: &Report,
        target: Target,
        text: impl Fn(&Report) -> String,
    ) -> Result<u8> {
        let locations = locate(report, &target, self.path_prefix.as_deref());
        self.outputs.write(report, |format| match format {
            Format::Text => text(report),
            format => report::render_located(report, format, &locations),
        })?;
        Ok(report.exit_status())
    }

    /// On an error before any verdict, machine-readable outputs still get a report that says
    /// so (status `error`), so a pipeline parsing one is never left with nothing.
    pub fn emit_error(&self, target: &Path, error: &Error) {
        let report = Report::failed_run(target.display().to_string(), super::describe_error(error));
        let locations = Locations::by_name(&report);
        // The text form of an error is main's message on stderr.
        let _ = self.outputs.write_each(&report, |format| {
            (format != Format::Text).then(|| report::render_located(&report, format, &locations))
        });
    }
}

impl Outputs {
    /// Refuses outputs that cannot all be written (two that take stdout's place), so that a
    /// command can say so before it does anything.
    pub fn check(&self) -> Result<()> {
        self.destinations().map(|_| ())
    }

    /// Writes `render(format)` to every output, and the job summary of `summary` (the
    /// report as one list) when GitHub annotations are asked for.
    pub fn write(&self, summary: &Report, render: impl Fn(Format) -> String) -> Result<()> {
        self.write_each(summary, |format| Some(render(format)))
    }

    /// As [`Outputs::write`], leaving out the outputs whose format `render` gives nothing for.
    fn write_each(
        &self,
        summary: &Report,
        render: impl Fn(Format) -> Option<String>,
    ) -> Result<()> {
        let Destinations { stdout, files } = self.destinations()?;
        for (format, path) in files {
            if let Some(rendered) = render(format) {
                write_output(Some(path), rendered.as_bytes())?;
            }
        }
        if let Some(rendered) = render(self.format) {
            write_output(stdout, rendered.as_bytes())?;
        }
        self.append_job_summary(summary)
    }

    /// The file that takes stdout's place (a plain `--output FILE`), and the other outputs.
    fn destinations(&self) -> Result<Destinations<'_>> {
        let plain: Vec<&Path> = self
            .output
            .iter()
            .filter(|o| o.format.is_none())
            .map(|o| o.path.as_path())
            .collect();
        if plain.len() > 1 {
            return Err(Error::Usage(
                "--output FILE (without FORMAT=) takes stdout's place, so it is given once; \
                 name the format of the others (--output sarif=FILE)"
                    .into(),
            ));
        }
        let files = self
            .output
            .iter()
            .filter_map(|o| o.format.map(|f| (f, o.path.as_path())))
            .collect();
        Ok(Destinations {
            stdout: plain.first().copied(),
            files,
        })
    }

    /// Whether any output is GitHub's workflow commands.
    fn writes_github(&self) -> bool {
        self.format == Format::Github
            || self.output.iter().any(|o| o.format == Some(Format::Github))
    }

    /// Under GitHub Actions (`$GITHUB_STEP_SUMMARY`), with GitHub annotations asked for, a
    /// Markdown summary of the report is appended to the job's summary page.
    fn append_job_summary(&self, report: &Report) -> Result<()> {
        let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty())
        else {
            return Ok(());
        };
        if !self.writes_github() {
            return Ok(());
        }
        let path = PathBuf::from(summary);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(report::render_markdown(report).as_bytes()))
            .map_err(|e| Error::io(&path, e))
    }
}

/// Where each subject of `report`, a report about `target`, is, relative to the repository
/// root; `prefix` is the target's path from the root when the caller knows it.
fn locate(report: &Report, target: &Target, prefix: Option<&str>) -> Locations {
    let root = repository_root();
    let from_root = |path: &Path| relative_to(&root, path);
    let shown = match target {
        Target::Model(path) => prefix.map_or_else(|| from_root(path), str::to_string),
        Target::Files => prefix.unwrap_or(".").to_string(),
        Target::Image {
            reference,
            approval,
        } => approval.map_or_else(|| reference.to_string(), from_root),
    };
    let locate = |subject: &Subject| match target {
        Target::Model(dir) if dir.is_dir() => match file_name_of(&subject.name) {
            Some(name)
                if subject.verdict == Verdict::Missing
                    || dir.join(name).symlink_metadata().is_ok() =>
            {
                join(&shown, name)
            }
            _ => shown.clone(),
        },
        Target::Files => match prefix {
            Some(prefix) => join(prefix, &subject.name),
            None => from_root(Path::new(&subject.name)),
        },
        Target::Model(_) | Target::Image { .. } => shown.clone(),
    };
    Locations {
        subjects: report.subjects.iter().map(locate).collect(),
        target: shown.clone(),
        root_uri: Some(file_uri(&root)),
    }
}

/// The locations of several reports rendered as one, their subjects in order and then, for
/// a report that stopped with an error, one more at its target (as a drift run flattens its
/// targets); a result about the whole points at `whole` (a drift run's configuration).
pub fn locate_parts(parts: &[(&Report, Target)], whole: &Path) -> Locations {
    let root = repository_root();
    let mut subjects = Vec::new();
    for (report, target) in parts {
        let located = locate(report, target, None);
        subjects.extend(located.subjects);
        if report.error.is_some() {
            subjects.push(located.target);
        }
    }
    Locations {
        subjects,
        target: relative_to(&root, whole),
        root_uri: Some(file_uri(&root)),
    }
}

/// The repository root: `$GITHUB_WORKSPACE` under GitHub Actions, else the current directory.
fn repository_root() -> PathBuf {
    let root = std::env::var_os("GITHUB_WORKSPACE")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("/"));
    root.canonicalize().unwrap_or(root)
}

/// `path` from `root` (`models/bert`), or its absolute path when it lies outside.
fn relative_to(root: &Path, path: &Path) -> String {
    let absolute = match path.canonicalize() {
        Ok(path) => path,
        // A missing file: its directory locates it.
        Err(_) => match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) => parent
                .canonicalize()
                .map(|p| p.join(name))
                .unwrap_or_else(|_| path.to_path_buf()),
            _ => path.to_path_buf(),
        },
    };
    match absolute.strip_prefix(root) {
        Ok(relative) if relative.as_os_str().is_empty() => ".".to_string(),
        Ok(relative) => relative.to_string_lossy().into_owned(),
        Err(_) => absolute.to_string_lossy().into_owned(),
    }
}

/// The file a subject name denotes: the name without a shard's `:START:END`, when it is a
/// plain relative path.
fn file_name_of(name: &str) -> Option<&str> {
    let name = match name.rsplitn(3, ':').collect::<Vec<_>>().as_slice() {
        [end, start, path]
            if !end.is_empty()
                && !start.is_empty()
                && end.bytes().all(|b| b.is_ascii_digit())
                && start.bytes().all(|b| b.is_ascii_digit()) =>
        {
            path
        }
        _ => name,
    };
    let plain = !name.is_empty()
        && Path::new(name)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    plain.then_some(name)
}

fn join(base: &str, name: &str) -> String {
    match base {
        "" | "." => name.to_string(),
        base => format!("{}/{name}", base.trim_end_matches('/')),
    }
}

/// `file:///…/` for a directory, its bytes percent-encoded where a URI needs it.
fn file_uri(dir: &Path) -> String {
    let mut uri = String::from("file://");
    for b in dir.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(b) {
            uri.push(*b as char);
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

/// Writes to `path` atomically, or to stdout when there is no path.
pub fn write_output(path: Option<&Path>, bytes: &[u8]) -> Result<()> {
    match path {
        Some(path) => write_atomically(path, bytes),
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(bytes)
                .and_then(|_| stdout.flush())
                .map_err(|e| Error::io("<stdout>", e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_name_locates_its_file_and_odd_names_locate_nothing() {
        assert_eq!(file_name_of("w.bin:0:1000"), Some("w.bin"));
        assert_eq!(file_name_of("sub/w.bin"), Some("sub/w.bin"));
        assert_eq!(file_name_of("a:b"), Some("a:b"));
        assert_eq!(file_name_of("../x"), None);
        assert_eq!(file_name_of("/etc/passwd"), None);
        assert_eq!(file_name_of(""), None);
    }

    #[test]
    fn outputs_name_their_format_or_take_stdouts_place() {
        let named = output_spec("sarif=out/v.sarif").unwrap();
        assert_eq!(
            (named.format, named.path),
            (Some(Format::Sarif), PathBuf::from("out/v.sarif"))
        );
        let plain = output_spec("report=1.txt").unwrap();
        assert_eq!(
            (plain.format, plain.path),
            (None, PathBuf::from("report=1.txt"))
        );
        assert!(output_spec("json=").is_err());
    }
}
