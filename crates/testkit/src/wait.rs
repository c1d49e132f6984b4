//! Waiting on conditions: the workspace's one `wait_for` (`quiver-test-util`).

pub use quiver_test_util::wait_for;
