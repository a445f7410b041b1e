//! Where an approval's bytes come from, apart from what kind of approval they are.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::registry::ModelUri;

/// Where an approval is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Locator {
    /// A file on this machine.
    File(PathBuf),
    /// The approval kept with a model version in an MLflow registry (`vouch approve
    /// --registry`); an alias is resolved to a version each time it is read.
    Registry(RegistryLocator),
}

/// A model version (or alias) of a tracking server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryLocator {
    pub model: ModelUri,
    /// The tracking server; `None` is `MLFLOW_TRACKING_URI`.
    pub tracking_uri: Option<String>,
}

impl Locator {
    /// The file the approval is read from, when it is one: it is left out of a model it
    /// lies inside.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Locator::File(path) => Some(path),
            Locator::Registry(_) => None,
        }
    }

    /// The approval's name in errors: its path, or its `models:/` URI.
    pub fn shown(&self) -> PathBuf {
        match self {
            Locator::File(path) => path.clone(),
            Locator::Registry(kept) => PathBuf::from(kept.model.to_string()),
        }
    }
}

impl fmt::Display for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Locator::File(path) => write!(f, "{}", path.display()),
            Locator::Registry(kept) => write!(f, "{}", kept.model),
        }
    }
}
