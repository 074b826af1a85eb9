//! Running the bridge: the configuration of a whole run ([`config`]), the run itself
//! ([`mod@run`]: its servers served on one listener until a stop signal or the single server's
//! end, then everything stopped in order), the signals it obeys ([`signals`]), and the export of
//! its traces ([`telemetry`]). [`run()`]
//! is what `main` and the tests call.

pub mod config;
pub mod run;
pub mod signals;
pub mod telemetry;

pub use config::Config;
pub use run::{RunError, run};
