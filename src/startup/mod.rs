//! Building and running the application.

mod app;
pub mod doctor;
mod reload;
mod serve;
mod watch;

pub use app::{App, forget_generated_token_secret, shutdown_signal};
pub use reload::{FILE_CHECK_INTERVAL, Load};
