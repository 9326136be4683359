//! HTTP plumbing under every resource: problem documents, content negotiation, input text
//! rules, the API key, allowed methods, rate limits and request observation.

pub mod allow;
pub mod auth;
pub mod docs_headers;
pub mod json_keys;
pub mod negotiate;
pub mod observe;
pub mod problem;
mod problem_code;
pub mod rate_limit;
pub mod text;
