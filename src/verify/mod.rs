//! The pipelines: each walks a target, hashes it, compares it with what its approval
//! expects, applies the content policy and produces the one outcome [`crate::report::Report`].

pub mod checklist;
pub mod detached;
pub mod hf;
pub mod image;
pub mod image_signatures;
pub mod image_signing;
pub mod inspect;
pub mod model;
pub mod registry;
pub mod scan;
