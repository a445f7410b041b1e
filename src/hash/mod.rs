//! The hashing engine: digest algorithms, the windowed file reader, the parallel
//! scheduler, the work queue it shares with the other pools, and progress reporting.

pub mod algorithm;
pub mod cache;
pub mod opening;
pub mod progress;
pub mod queue;
pub mod reader;
pub mod scheduler;
mod sigbus;
mod task;
pub mod throttle;

pub use algorithm::{Algorithm, Digest, DigestError, Hasher};
pub use opening::{Location, RootDir};
pub use progress::{Progress, Silent};
pub use reader::{Identity, Io, ReadError, ReaderConfig, Stamp};
pub use scheduler::{default_jobs, Engine, Inspect};
pub use task::Task;
pub use throttle::Throttle;
