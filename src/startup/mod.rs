//! Building and running the application.

mod app;
pub mod doctor;
mod serve;
mod watch;

pub use app::{App, shutdown_signal};
