//! Test support shared by the workspace's tests, one copy of each:
//!
//! - [`MemMeta`]: coord's catalog in memory (a [`quiver_api::MetaClient`]
//!   that fences stale owner epochs like coord does);
//! - [`FailingStore`]: an in-memory object store whose puts fail on demand;
//! - [`wait_for`] / [`wait_for_blocking`]: wait until a condition holds,
//!   failing with what was awaited after a timeout.
//!
//! Only ever a dev-dependency (and of `quiver-testkit`, itself test support):
//! production code does not depend on it.

mod failing_store;
mod meta;
mod wait;

pub use failing_store::FailingStore;
pub use meta::MemMeta;
pub use wait::{wait_for, wait_for_blocking};
