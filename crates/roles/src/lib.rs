//! Each role's one composition root, and the control loops every deployment
//! runs. `quiver standalone`, the cluster processes (`quiver coord|datanode|
//! querynode|proxy`) and the in-process test cluster (`quiver-testkit`) all
//! build their roles here; they differ only in the transports they plug in:
//! - [`start_coord`]: a coord member, its gRPC server and the control loops
//!   that run next to it (automatic failover, divergence); a Raft transport
//!   can be injected (tests drop RPCs).
//! - [`start_datanode`], [`start_querynode`], [`start_proxy`]: a node over
//!   [`Links`] (how it reaches coord and its peers: plain gRPC in
//!   production, through fault-injection links in tests), its server and
//!   its agent (heartbeat + following coord's placement).
//! - [`Standalone`]: every role in one process over the in-process coord.
//!
//! The pieces they share: [`front_door`] (Milvus + admin + status page +
//! metrics on one port), `agent` (nodes follow placement), `failover` and
//! `divergence` (mirrored aliases).

pub mod agent;
pub mod auth;
pub mod certs;
pub mod config;
mod coord;
pub mod divergence;
pub mod failover;
mod front;
mod local;
mod nodes;
mod serve;
mod standalone;
pub mod tls;

pub use coord::{CoordRole, start_coord};
pub use front::{FrontDoor, front_door, time_alias_changes};
pub use nodes::{Links, NodeRole, advertise, start_datanode, start_proxy, start_querynode};
pub use serve::{BIND_PATIENCE, Running, bind};
pub use standalone::{Standalone, StandaloneConfig};
