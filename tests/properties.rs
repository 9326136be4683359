//! Property-based tests (proptest) of the domain's pure core. Generators build the
//! interesting inputs on purpose (well-formed and nearly well-formed addresses,
//! control and bidi characters, lengths at each limit, releases reaching every
//! status), and a test per generator proves it reaches them. The oracles state the
//! documented rule rather than replay the code.

#[path = "properties/addresses.rs"]
mod addresses;
#[path = "properties/board.rs"]
mod board;
#[path = "properties/decision.rs"]
mod decision;
#[path = "properties/release_text.rs"]
mod release_text;
#[path = "properties/tokens.rs"]
mod tokens;
