//! vouch: model and artifact integrity verification.
//!
//! Data flows one way: [`cli`] parses arguments and calls the domain modules ([`model`],
//! [`manifest`], [`oci`]), which hash through [`hash`] and describe their findings as a
//! [`report::Report`]. Only `main` decides what the user sees and the exit status.

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
pub mod report;
pub mod sbom;
pub mod sign;
pub mod verify;

pub use error::{Error, Result};
