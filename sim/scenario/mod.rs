//! Scenario files: their types, units, parsing and validation.

pub mod draw;
pub mod error;
pub mod generate;
pub mod load;
pub mod protocols;
pub mod readiness;
pub mod schema;
pub mod types;
pub mod units;
pub mod validate;

pub use error::{ErrorKind, FieldPath, Invalid, Part, ScenarioError};
pub use load::{default_scenario, load, parse, DEFAULT_SCENARIO_PATH};
pub use types::*;
pub use units::{DurSpec, RateSpec};
pub use validate::{host_profile, resolve_to, validate, with_sysctls};
