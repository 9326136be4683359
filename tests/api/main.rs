//! Integration tests: the real app over HTTP, a real SMTP server, mocked HTTP dependencies.

mod helpers;

mod flow;
