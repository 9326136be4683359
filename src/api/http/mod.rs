//! HTTP plumbing under every resource: problem documents, content negotiation, input text
//! rules, refusals of every field at once, the API key, cross-site refusals, allowed methods, rate limits and request observation.

pub mod allow;
pub mod auth;
pub mod body_limit;
pub mod cross_site;
pub mod docs_headers;
pub mod json_keys;
pub mod negotiate;
pub mod observe;
pub mod outcome;
pub mod plain_words;
pub mod problem;
mod problem_code;
pub mod rate_limit;
pub mod received;
pub mod refusals;
pub mod text;
