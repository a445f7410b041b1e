//! The drift checker: scheduled runs that verify every deployed target against what was
//! approved, remember what drifted and since when, honour waivers, export metrics and alert.
//!
//! [`run::run`] checks the targets and returns the run's [`outcome`]; [`publish::publish`]
//! then writes the report file and the metrics and raises the alerts. The outcome imports
//! none of its renderers ([`render`], [`metrics`]); they import it.

pub mod alert;
pub mod config;
pub mod endpoint;
pub mod events;
pub mod history;
pub mod metrics;
pub mod outcome;
pub mod publish;
pub mod quiet;
pub mod render;
pub mod run;
pub mod waiver;
