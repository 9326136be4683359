// Integration tests: the real app over HTTP, a real SMTP server, mocked HTTP dependencies.
// `tests/api_postgres/main.rs` includes this file to run the same suite on PostgreSQL;
// inner attributes (`//!`, `#![…]`) cannot be included, so there are none here.

mod helpers;

mod all_refusals;
mod approvers;
mod azure;
mod bad_input;
mod board;
mod board_batches;
mod browser;
mod callback_mode;
mod callback_progress;
mod chromium;
mod contract;
mod cross_site;
mod deadline_instant;
mod email;
mod extension;
mod failsafe;
mod fakes;
mod flow;
mod job_problems;
mod jobs;
mod links;
mod mail_preview;
mod observability;
mod openapi_schema;
mod operator_metrics;
mod pages;
mod policies;
mod poll_cache;
mod poll_cache_many;
mod rate_limits;
mod rate_limits_http;
mod raw_http;
mod recipes;
mod replicas;
mod resend;
mod resilience;
mod rounds;
mod screens;
mod settlements;
mod success_criteria;
mod token_rotation;
mod tokens;
mod write_back;
