//! Where an approval's bytes come from, apart from what kind of approval they are.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where an approval is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Locator {
    /// A file on this machine.
    File(PathBuf),
}

impl Locator {
    /// The file the approval is read from: it names the approval in errors, and is left out
    /// of a model it lies inside.
    pub fn path(&self) -> &Path {
        match self {
            Locator::File(path) => path,
        }
    }
}

impl fmt::Display for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Locator::File(path) => write!(f, "{}", path.display()),
        }
    }
}
