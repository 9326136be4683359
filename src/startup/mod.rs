//! Building and running the application.

mod app;
pub mod doctor;
mod serve;
mod watch;

pub use app::{App, forget_generated_token_secret, shutdown_signal};
