//! Names of files inside a model: validation, ordering, and ignore rules.
//!
//! A name is a relative POSIX path below the model root (`weights/model.safetensors`), or
//! `.` for a model that is a single file, as model-signing writes them.

use std::cmp::Ordering;
use std::path::{Component, Path, PathBuf};

/// The name of the single resource of a model that is one file.
pub const SINGLE_FILE_NAME: &str = ".";

/// Paths model-signing ignores unless told otherwise.
pub const DEFAULT_IGNORED: [&str; 4] = [".git", ".gitattributes", ".github", ".gitignore"];

/// Why a name or a path does not name a file inside the model.
#[derive(Debug, thiserror::Error)]
pub enum NameError {
    #[error("the name is empty")]
    Empty,
    #[error("the name contains a NUL byte")]
    Nul,
    #[error("the name is an absolute path; names must be relative to the model root")]
    Absolute,
    #[error("the name has an empty component ('//' or a trailing '/')")]
    EmptyComponent,
    #[error("the name has a '.' component; names must be normalized")]
    CurrentDir,
    #[error("the name has a '..' component, which would leave the model root")]
    ParentDir,
    #[error("cannot resolve the model root: {0}")]
    RootUnresolved(std::io::Error),
    #[error("'{given}' is not inside the model root {}", root.display())]
    OutsideRoot { given: String, root: PathBuf },
    #[error("'{0}' is not valid UTF-8")]
    NotUtf8(String),
    #[error("'{0}' uses '..'; it must name something inside the model")]
    PathLeavesRoot(String),
    #[error("'{0}' is an absolute path; it must be relative to the model root")]
    PathAbsolute(String),
    #[error("'{0}' names the whole model")]
    WholeModel(String),
}

/// Checks that `name` is a normalized relative path that stays inside the model root.
///
/// The error is the first rule broken; callers add which file and entry it was.
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name == SINGLE_FILE_NAME {
        return Ok(());
    }
    if name.contains('\0') {
        return Err(NameError::Nul);
    }
    if name.starts_with('/') {
        return Err(NameError::Absolute);
    }
    for component in name.split('/') {
        match component {
            "" => return Err(NameError::EmptyComponent),
            "." => return Err(NameError::CurrentDir),
            ".." => return Err(NameError::ParentDir),
            _ => {}
        }
    }
    Ok(())
}

/// Orders names component by component, as model-signing orders resources
/// (so `a/b` sorts before `a-b`, unlike a plain string comparison).
pub fn compare_names(a: &str, b: &str) -> Ordering {
    a.split('/').cmp(b.split('/'))
}

/// The paths excluded from a model: each entry excludes itself and everything below it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IgnoreSet {
    entries: Vec<String>,
}

impl IgnoreSet {
    /// The set model-signing starts from: `.git`, `.gitattributes`, `.github`, `.gitignore`.
    pub fn with_defaults() -> IgnoreSet {
        let mut set = IgnoreSet::default();
        set.add_defaults();
        set
    }

    /// Adds model-signing's default names, which a recorded set may leave out.
    pub fn add_defaults(&mut self) {
        for name in DEFAULT_IGNORED {
            self.insert(name.to_string());
        }
    }

    /// Adds a name already in normalized form (see [`normalize_ignore`]).
    pub fn insert(&mut self, name: String) {
        if !self.entries.contains(&name) {
            self.entries.push(name);
        }
    }

    pub fn matches(&self, name: &str) -> bool {
        self.entries.iter().any(|entry| {
            name == entry
                || (name.len() > entry.len()
                    && name.starts_with(entry.as_str())
                    && name.as_bytes()[entry.len()] == b'/')
        })
    }

    /// The entries, sorted, as a manifest records them.
    pub fn recorded(&self) -> Vec<String> {
        let mut entries = self.entries.clone();
        entries.sort();
        entries
    }
}

/// Turns an ignore path as a user wrote it into a model-relative name.
///
/// A relative path is taken relative to the model root (`README.md`, `./docs/`); an absolute
/// path must lie inside the root.
pub fn normalize_ignore(root: &Path, given: &str) -> Result<String, NameError> {
    let path = Path::new(given);
    if !path.is_absolute() {
        return normalize_relative_name(given);
    }
    let canonical_root = root.canonicalize().map_err(NameError::RootUnresolved)?;
    let relative = path
        .strip_prefix(root)
        .or_else(|_| path.strip_prefix(&canonical_root))
        .map_err(|_| NameError::OutsideRoot {
            given: given.to_string(),
            root: root.to_path_buf(),
        })?;
    let relative = relative
        .to_str()
        .ok_or_else(|| NameError::NotUtf8(given.to_string()))?;
    normalize_relative_name(relative)
}

/// Normalizes a relative path inside the model (`./a//b/` becomes `a/b`); `..` and absolute
/// paths are refused, since they would name something outside the model.
pub fn normalize_relative_name(given: &str) -> Result<String, NameError> {
    let mut parts = Vec::new();
    for component in Path::new(given).components() {
        match component {
            Component::CurDir => {}
            Component::Normal(part) => parts.push(
                part.to_str()
                    .ok_or_else(|| NameError::NotUtf8(given.to_string()))?
                    .to_string(),
            ),
            Component::ParentDir => return Err(NameError::PathLeavesRoot(given.to_string())),
            Component::RootDir | Component::Prefix(_) => {
                return Err(NameError::PathAbsolute(given.to_string()))
            }
        }
    }
    if parts.is_empty() {
        return Err(NameError::WholeModel(given.to_string()));
    }
    Ok(parts.join("/"))
}

/// The model-relative name of `file` when it lies inside the model directory `root`.
pub fn name_inside(root: &Path, file: &Path) -> Option<String> {
    let root = root.canonicalize().ok()?;
    if !root.is_dir() {
        return None;
    }
    let parent = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file = parent.canonicalize().ok()?.join(file.file_name()?);
    let relative = file.strip_prefix(&root).ok()?;
    let name: Vec<&str> = relative.iter().map(|c| c.to_str()).collect::<Option<_>>()?;
    (!name.is_empty()).then(|| name.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_outside_the_root_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "a/",
            "./a",
            "a/./b",
            "a\0b",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} should be refused");
        }
        for good in [".", "a", "a/b", "a-b", "né/ü", "..a", "a..", "a:0:10"] {
            assert!(check_name(good).is_ok(), "{good:?} should be accepted");
        }
    }

    #[test]
    fn ordering_is_by_component() {
        let mut names = vec!["a-b", "a/b", "a", "b", "a/b/c", "A"];
        names.sort_by(|a, b| compare_names(a, b));
        assert_eq!(names, ["A", "a", "a/b", "a/b/c", "a-b", "b"]);
    }

    #[test]
    fn ignore_matches_the_path_and_below_only() {
        let mut set = IgnoreSet::with_defaults();
        set.insert("docs".into());
        assert!(set.matches(".git"));
        assert!(set.matches(".git/config"));
        assert!(set.matches("docs/a.md"));
        assert!(!set.matches("docs2"));
        assert!(!set.matches("sub/.git"));
        assert!(!set.matches(".gitx"));
    }

    #[test]
    fn ignore_paths_are_normalized_relative_to_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert_eq!(normalize_ignore(root, "./docs/").unwrap(), "docs");
        assert_eq!(normalize_ignore(root, "a//b").unwrap(), "a/b");
        let inside = root.join("x/y");
        assert_eq!(
            normalize_ignore(root, inside.to_str().unwrap()).unwrap(),
            "x/y"
        );
        assert!(matches!(
            normalize_ignore(root, "/elsewhere"),
            Err(NameError::OutsideRoot { .. })
        ));
        assert!(matches!(
            normalize_ignore(root, "../x"),
            Err(NameError::PathLeavesRoot(given)) if given == "../x"
        ));
        assert_eq!(
            normalize_ignore(root, ".").unwrap_err().to_string(),
            "'.' names the whole model"
        );
    }
}
