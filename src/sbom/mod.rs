//! Software bills of materials (CycloneDX 1.6 and SPDX 2.3) for models and container
//! images, and the format facts they carry ([`formats`]).

pub mod cyclonedx;
pub mod document;
pub mod image;
pub mod model;
pub mod purl;
pub mod spdx;
