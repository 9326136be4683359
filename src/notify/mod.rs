//! Telling approvers: email rendering and delivery.

mod mailer;
mod render;

pub use mailer::Mailer;
pub use render::{ApprovalEmail, EmailTemplates, Sender};
