//! vouch: model and artifact integrity verification.
//!
//! Only `main` decides what the user sees and the exit status: below [`cli`] the library
//! prints nothing, reads no arguments and returns values and typed errors.
//!
//! # Layers
//!
//! Data flows down only. Each line below is a layer, the top first; a module imports only
//! modules on lines below its own, and modules on one line are peers that do not import each
//! other. `main.rs` and [`cli`] may import anything. `tests/architecture.rs` reads this table
//! and fails on any import against it, and on any import circle between the files of one
//! folder.
//!
//! ```text
//! cli
//! drift, sbom
//! verify
//! approval
//! oci, registry, sign, manifest
//! formats, model
//! hash
//! report
//! fsio, json, python
//! error
//! ```

pub mod approval;
pub mod cli;
pub mod drift;
pub mod error;
pub mod formats;
pub mod fsio;
pub mod hash;
pub mod json;
pub mod manifest;
pub mod model;
pub mod oci;
pub mod python;
pub mod registry;
pub mod report;
pub mod sbom;
pub mod sign;
pub mod verify;

pub use error::{Error, Result};
