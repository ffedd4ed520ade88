//! Scenario files: their types, units, parsing and validation.

pub mod readiness;
pub mod types;
pub mod units;

pub use types::*;
pub use units::{DurSpec, RateSpec};
