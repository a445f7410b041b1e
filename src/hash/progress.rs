//! Progress reporting for long hashing runs.
//!
//! The engine only calls the [`Progress`] trait; the command line picks an implementation
//! (a bar, plain lines, or nothing) and hands it to the engine it builds.

/// Receives the size of the work and how much of it is done.
pub trait Progress: Sync {
    fn begin(&self, total_bytes: u64);
    fn advance(&self, bytes: u64);
    fn finish(&self);
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {
    fn begin(&self, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}
