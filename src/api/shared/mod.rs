//! What more than one resource uses: the handlers' state, the release status body and its
//! poll cache, finding a release named in a path, and taking a new release in.

pub mod intake;
pub mod lookup;
pub mod poll_cache;
pub mod state;
pub mod status;
mod status_values;
mod troubles;
