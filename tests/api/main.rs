//! Integration tests: the real app over HTTP, a real SMTP server, mocked HTTP dependencies.

mod helpers;

mod approvers;
mod azure;
mod flow;
mod resilience;
mod success_criteria;
