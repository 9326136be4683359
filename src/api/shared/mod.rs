//! What more than one resource uses: the handlers' state, the release status body and its
//! poll cache, and finding a release named in a path.

pub mod lookup;
pub mod poll_cache;
pub mod state;
pub mod status;
mod status_values;
pub mod troubles;
