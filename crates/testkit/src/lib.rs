//! An in-process Quiver cluster for tests. Every role runs in this process
//! but talks to the others over real gRPC on loopback, as in cluster mode;
//! the harness sits on every link so a test can drop the RPCs between two
//! named nodes, cut one node off from all others, kill and restart nodes,
//! and wait for a condition (never for a fixed time).
//!
//! Nodes are named by id, as `quiver cluster up` numbers them: coords
//! `1..=C`, then the datanodes, the querynodes, and the proxy.
//!
//! How faults are injected (no change to the code under test):
//! - between coords, by the Raft peer transport ([`quiver_coord::FaultyTransport`]);
//! - from a datanode, querynode or the proxy to a coord, by a TCP forwarder
//!   per (node, coord) pair: the node's coord list names its forwarders;
//! - from the proxy or a querynode to a datanode or querynode, by a TCP
//!   forwarder per pair: the node's route table rewrites each peer's
//!   address to the forwarder of that pair ([`routes::RewriteRoutes`]).
//!
//! With [`ClusterSpec::tls`] every internal port requires mutual TLS, as
//! with `[cluster_tls]` in cluster mode (the forwarders pass TLS through).
//!
//! A cut forwarder closes its open connections and holds new ones without
//! reading them: calls hang until their deadline, as over a dead network.

pub mod check;
pub mod cluster;
pub mod faults;
pub mod link;
pub mod routes;
mod tls;
pub mod wait;

pub use check::{has_all, missing_keys};
pub use cluster::{Cluster, ClusterSpec, Role};
pub use faults::Faults;
pub use wait::wait_for;
