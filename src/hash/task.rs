//! One unit of hashing work.

use super::opening::Location;
use super::reader::Identity;

/// One unit of hashing work: bytes `[start, end)` of the file at `location`, which must
/// still be the file `identity` describes when it is opened.
#[derive(Clone, Debug)]
pub struct Task {
    pub location: Location,
    pub start: u64,
    pub end: u64,
    pub identity: Identity,
}

impl Task {
    /// The whole of the file that was listed as `identity`.
    pub fn whole(location: Location, identity: Identity) -> Task {
        Task {
            location,
            start: 0,
            end: identity.len,
            identity,
        }
    }

    pub(super) fn len(&self) -> u64 {
        self.end - self.start
    }
}
