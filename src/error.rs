//! Errors that stop a command before it can produce a verdict.
//!
//! Integrity failures are not errors: they are verdicts in a [`crate::report::Report`].
//! Each variant maps to one of the documented exit statuses.

use std::io;
use std::path::{Path, PathBuf};

/// Exit status: usage or input error.
pub const EXIT_INPUT: u8 = 2;
/// Exit status: operational error.
pub const EXIT_OPERATIONAL: u8 = 3;
/// Exit status: integrity failure.
pub const EXIT_INTEGRITY: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad flags or arguments.
    #[error("{0}")]
    Usage(String),

    /// A path the user named does not exist.
    #[error("{}: no such file or directory", .0.display())]
    NotFound(PathBuf),

    /// An input (manifest, check list, model, signature) is malformed or breaks a rule.
    #[error("{}: {message}", path.display())]
    Input { path: PathBuf, message: String },

    /// Something could not be read or written for reasons outside the input's content.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },

    /// A file changed while vouch was reading it, so no trustworthy result exists.
    #[error("{}: {message}", path.display())]
    Unstable { path: PathBuf, message: String },

    /// A registry or image store could not be used: unreachable, credentials refused, or
    /// an answer outside the protocol.
    #[error("{target}: {message}")]
    Remote { target: String, message: String },

    /// An error and what the user can change to get past it. It reads as the inner error;
    /// the top adds the hint in the user's own words (a flag, a vouch.toml key).
    #[error("{error}")]
    Hinted { error: Box<Error>, hint: Hint },
}

/// A setting that gets past an error, named by what it does rather than how it is spelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hint {
    /// Leave the named files out of the model; when `or_allow_symlinks`, allowing symbolic
    /// links that stay inside the model would take some of them in.
    LeaveOut { or_allow_symlinks: bool },
    /// The document is signed: give it as a signature, with who must have signed it.
    CheckSignature,
    /// The check list's digests are of the algorithm of this name.
    Algorithm(&'static str),
    /// The registry wants credentials.
    GiveCredentials,
    /// Credentials and plain HTTP to another machine do not go together.
    PlainHttpWithCredentials,
    /// The pinned digest and the one the image reference names differ: give one, or both
    /// the same.
    OnePin,
    /// The signer's identity pattern is not a regular expression.
    IdentityPattern,
}

impl Error {
    pub fn input(path: impl AsRef<Path>, message: impl Into<String>) -> Error {
        Error::Input {
            path: path.as_ref().to_path_buf(),
            message: message.into(),
        }
    }

    pub fn io(path: impl AsRef<Path>, source: io::Error) -> Error {
        if source.kind() == io::ErrorKind::NotFound {
            return Error::NotFound(path.as_ref().to_path_buf());
        }
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// The same error, with what the user can change to get past it.
    pub fn with_hint(self, hint: Hint) -> Error {
        Error::Hinted {
            error: Box::new(self),
            hint,
        }
    }

    /// What the user can change to get past this error, if the library knows.
    pub fn hint(&self) -> Option<Hint> {
        match self {
            Error::Hinted { hint, .. } => Some(*hint),
            _ => None,
        }
    }

    /// The exit status DESIGN.md assigns to this error.
    pub fn exit_status(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::NotFound(_) | Error::Input { .. } => EXIT_INPUT,
            Error::Io { .. } | Error::Remote { .. } => EXIT_OPERATIONAL,
            Error::Unstable { .. } => EXIT_INTEGRITY,
            Error::Hinted { error, .. } => error.exit_status(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error and its causes, `outer: inner: innermost` (reqwest hides the OS message, such
/// as "Connection refused", in its sources).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hinted_error_reads_and_exits_as_the_error_it_wraps() {
        let plain = Error::Unstable {
            path: "model/w.bin".into(),
            message: "grew while it was read".into(),
        };
        let hinted =
            Error::input("model", "cannot be serialized faithfully").with_hint(Hint::LeaveOut {
                or_allow_symlinks: true,
            });
        assert_eq!(plain.hint(), None);
        assert_eq!(
            hinted.hint(),
            Some(Hint::LeaveOut {
                or_allow_symlinks: true
            })
        );
        assert_eq!(hinted.to_string(), "model: cannot be serialized faithfully");
        assert_eq!(hinted.exit_status(), EXIT_INPUT);
        assert_eq!(
            plain.with_hint(Hint::CheckSignature).exit_status(),
            EXIT_INTEGRITY
        );
    }
}
