use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use clap::Args;

use super::{algorithm_parser, write_output, EngineArgs, OutputArgs, Target};
use crate::error::{Error, Result, EXIT_INPUT, EXIT_INTEGRITY, EXIT_OPERATIONAL};
use crate::hash::reader::special_kind;
use crate::hash::{Algorithm, Digest, Identity, Io, Location, ReadError, Task};
use crate::manifest::checklist::format_line;
use crate::manifest::load_check_list;
use crate::model::paths::IgnoreSet;
use crate::model::walk::{walk, WalkOptions};
use crate::report::{render_check_lines, Report, Verdict};
use crate::verify::checklist::check_files;

#[derive(Debug, Args)]
pub struct HashArgs {
    /// Files and directories to hash; directories are walked recursively, in sorted order,
    /// and their files named by the directory as given (DIR/a.bin); `-` is standard input
    #[arg(
        value_name = "PATH",
        required_unless_present = "check",
        conflicts_with = "check"
    )]
    paths: Vec<PathBuf>,
    /// Check the files listed in SUMS (sha256sum/b3sum format, names relative to the
    /// current directory), as `sha256sum -c` does; --format, --output and --path-prefix go
    /// with it (a listing is printed as sha256sum prints it)
    #[arg(short = 'c', long, value_name = "SUMS")]
    check: Option<PathBuf>,
    /// With --check: leave out listed files that do not exist, instead of failing them (if
    /// none exists, the check fails: no file was verified)
    #[arg(long)]
    ignore_missing: bool,
    /// With --check: print no line for a file that checks out
    #[arg(long)]
    quiet: bool,
    /// With --check: print nothing; the exit status says the outcome
    #[arg(long, conflicts_with = "format")]
    status: bool,
    /// With --check: fail on an improperly formatted line. vouch always does (exit 2), so this
    /// is accepted for sha256sum's sake; sha256sum without it warns and skips such lines
    #[arg(long)]
    strict: bool,
    /// Digest algorithm
    #[arg(long, value_name = "ALGORITHM", value_parser = algorithm_parser(), default_value = "sha256")]
    algo: Algorithm,
    /// Inside directories, hash symbolic links that stay in the directory as their targets
    #[arg(long)]
    allow_symlinks: bool,
    /// Read with O_DIRECT, past the page cache (direct), or through it (buffered)
    #[arg(long, value_enum, value_name = "MODE", default_value = "buffered")]
    io: Io,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    engine: EngineArgs,
}

pub fn run(args: HashArgs) -> Result<u8> {
    match &args.check {
        Some(list) => check(&args, list),
        None => hash(&args),
    }
}

fn check(args: &HashArgs, list: &Path) -> Result<u8> {
    let entries = load_check_list(list, args.algo)?;
    let engine = args.engine.engine()?;
    let mut report = check_files(&entries, list, &engine);
    if args.ignore_missing {
        report.subjects.retain(|s| s.verdict != Verdict::Missing);
        if report.subjects.is_empty() {
            // As sha256sum: a check that verified nothing is no success.
            if !args.status {
                eprintln!("vouch: {}: no file was verified", list.display());
            }
            return Ok(EXIT_INTEGRITY);
        }
    }
    let status = args.output.emit(&report, Target::Files, |report| {
        if args.status {
            return String::new();
        }
        if !args.quiet {
            return render_check_lines(report);
        }
        let failures = Report {
            subjects: report
                .subjects
                .iter()
                .filter(|s| s.verdict != Verdict::Ok)
                .cloned()
                .collect(),
            ..report.clone()
        };
        render_check_lines(&failures)
    })?;
    if !args.status {
        for warning in check_warnings(&report) {
            eprintln!("vouch: WARNING: {warning}");
        }
    }
    Ok(status)
}

/// The closing warnings `sha256sum -c` prints, in its words.
fn check_warnings(report: &Report) -> Vec<String> {
    let plural = |n: usize, one: &str, many: &str| {
        if n == 1 {
            one.to_string()
        } else {
            many.to_string()
        }
    };
    let mut warnings = Vec::new();
    let unread = report.count(Verdict::Missing) + report.count(Verdict::Unreadable);
    if unread > 0 {
        warnings.push(format!(
            "{unread} listed {} could not be read",
            plural(unread, "file", "files")
        ));
    }
    let changed = report.count(Verdict::Changed) + report.count(Verdict::Unstable);
    if changed > 0 {
        warnings.push(format!(
            "{changed} computed {} did NOT match",
            plural(changed, "checksum", "checksums")
        ));
    }
    warnings
}

/// One output line to be: a file to hash, standard input, or a problem to report in its
/// place.
enum Item {
    Stdin,
    File {
        display: PathBuf,
        task: usize,
    },
    Problem {
        display: String,
        message: String,
        status: u8,
    },
}

fn hash(args: &HashArgs) -> Result<u8> {
    if args.ignore_missing || args.quiet || args.status || args.strict {
        return Err(Error::Usage(
            "--ignore-missing, --quiet, --status and --strict go with --check".into(),
        ));
    }
    if args.output.is_given() {
        return Err(Error::Usage(
            "--format, --output and --path-prefix go with --check: a listing is printed as \
             sha256sum prints it (redirect it to a file)"
                .into(),
        ));
    }
    let mut items = Vec::new();
    let mut tasks = Vec::new();
    for path in &args.paths {
        if path.as_os_str() == "-" {
            items.push(Item::Stdin);
            continue;
        }
        list_path(path, args.allow_symlinks, &mut items, &mut tasks);
    }
    let engine = args.engine.engine_reading(args.io)?;
    let (results, _) = engine.hash_all(&tasks, &[args.algo]);
    for refused in engine.direct_refused() {
        eprintln!("vouch: {refused}");
    }

    let mut out = Vec::new();
    let mut status = 0;
    for item in items {
        let (display, message, item_status) = match item {
            Item::File { display, task } => match &results[task] {
                Ok(digests) => {
                    out.extend(format_line(&digests[0], display.as_os_str().as_bytes()));
                    continue;
                }
                Err(error) => {
                    let (message, status) = describe(error);
                    (display.display().to_string(), message, status)
                }
            },
            Item::Stdin => match hash_stdin(args.algo) {
                Ok(digest) => {
                    out.extend(format_line(&digest, b"-"));
                    continue;
                }
                Err(e) => ("-".to_string(), e.to_string(), EXIT_OPERATIONAL),
            },
            Item::Problem {
                display,
                message,
                status,
            } => (display, message, status),
        };
        eprintln!("vouch: {display}: {message}");
        status = worse(status, item_status);
    }
    write_output(None, &out)?;
    Ok(status)
}

/// The digest of everything on standard input, read to its end.
fn hash_stdin(algorithm: Algorithm) -> std::io::Result<Digest> {
    let mut hasher = algorithm.hasher();
    let mut stdin = std::io::stdin().lock();
    let mut buffer = vec![0; 1 << 16];
    loop {
        match stdin.read(&mut buffer) {
            Ok(0) => return Ok(hasher.finalize()),
            Ok(n) => hasher.update(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Adds the lines `path` produces: itself if a file, its files (sorted) if a directory.
fn list_path(path: &Path, allow_symlinks: bool, items: &mut Vec<Item>, tasks: &mut Vec<Task>) {
    let problem = |message: String, status: u8| Item::Problem {
        display: path.display().to_string(),
        message,
        status,
    };
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) => {
            let status = if e.kind() == std::io::ErrorKind::NotFound {
                EXIT_INPUT
            } else {
                EXIT_OPERATIONAL
            };
            return items.push(problem(e.to_string(), status));
        }
    };
    if meta.is_file() {
        items.push(Item::File {
            display: path.to_path_buf(),
            task: tasks.len(),
        });
        tasks.push(Task::whole(
            Location::Given(path.to_path_buf()),
            Identity::of(&meta),
        ));
        return;
    }
    if !meta.is_dir() {
        let kind = special_kind(&meta).unwrap_or("not a regular file");
        return items.push(problem(format!("is {kind}; it was not opened"), EXIT_INPUT));
    }
    let ignore = IgnoreSet::default();
    let options = WalkOptions {
        allow_symlinks,
        ignore: &ignore,
        require_utf8: false,
    };
    let model = match walk(path, &options) {
        Ok(model) => model,
        Err(e) => return items.push(problem(error_message(&e), e.exit_status())),
    };
    for p in &model.problems {
        let status = if matches!(p.kind, crate::model::walk::ProblemKind::Unreadable(_)) {
            EXIT_OPERATIONAL
        } else {
            EXIT_INPUT
        };
        items.push(Item::Problem {
            display: path.join(&p.name).display().to_string(),
            message: p.describe(),
            status,
        });
    }
    let mut files = model.files;
    files.sort_by(|a, b| {
        a.relative
            .as_os_str()
            .as_bytes()
            .cmp(b.relative.as_os_str().as_bytes())
    });
    for file in files {
        items.push(Item::File {
            display: path.join(&file.relative),
            task: tasks.len(),
        });
        tasks.push(Task::whole(file.location, file.identity));
    }
}

/// The message and exit status for a listed file that could not be hashed, from the verdict
/// its read error maps to.
fn describe(error: &ReadError) -> (String, u8) {
    let (verdict, message) = error.verdict();
    let status = match verdict {
        Verdict::Unstable => EXIT_INTEGRITY,
        Verdict::Unreadable => EXIT_OPERATIONAL,
        // No longer a regular file.
        _ => EXIT_INPUT,
    };
    (message, status)
}

fn error_message(error: &Error) -> String {
    match error {
        Error::Io { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}

/// Combines exit statuses: an integrity failure outranks an operational error, which
/// outranks an input error.
fn worse(a: u8, b: u8) -> u8 {
    let rank = |s: u8| match s {
        EXIT_INTEGRITY => 3,
        EXIT_OPERATIONAL => 2,
        EXIT_INPUT => 1,
        _ => 0,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}
