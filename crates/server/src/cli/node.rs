//! `quiver node list | drain | remove`: a cluster's datanodes and
//! querynodes through a proxy's admin API.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Subcommand;
use quiver_client::NodeStatus;

use super::{Conn, print_json};

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Every datanode and querynode: state (active, draining, drained,
    /// gone), shards owned, replicas served, rows and memory.
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Moves everything off a node (each replica copied before its old one
    /// goes; shard ownership handed over) and puts nothing new on it.
    Drain {
        /// The node's id (`quiver node list`).
        id: u64,
        /// Waits until the node holds nothing (state drained).
        #[arg(long)]
        wait: bool,
        /// How long --wait waits (seconds).
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        /// Stops draining (the node takes work again).
        #[arg(long, conflicts_with = "wait")]
        undo: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Forgets a node that is gone (its lease expired) and holds nothing.
    Remove {
        id: u64,
        #[command(flatten)]
        conn: Conn,
    },
}

fn node_json(n: &NodeStatus) -> serde_json::Value {
    serde_json::json!({
        "id": n.id, "role": n.role, "addr": n.addr, "state": n.state,
        "last_seen_ms": n.last_seen_ms, "shards_owned": n.shards_owned,
        "replicas": n.replicas, "rows": n.rows, "memory_bytes": n.memory_bytes,
    })
}

fn node_line(n: &NodeStatus) -> String {
    format!(
        "{:>5}  {:<9}  {:<8}  owns {:>3}  serves {:>3}  rows {:>10}  mem {:>7.1} MiB  {}",
        n.id,
        n.role,
        n.state,
        n.shards_owned,
        n.replicas,
        n.rows,
        n.memory_bytes as f64 / (1u64 << 20) as f64,
        n.addr
    )
}

fn show(conn: &Conn, n: &NodeStatus) {
    if conn.json {
        print_json(&node_json(n));
    } else {
        println!("{}", node_line(n));
    }
}

pub(super) async fn run(cmd: NodeCommand) -> Result<()> {
    match cmd {
        NodeCommand::List { conn } => {
            let nodes = conn.connect().await?.list_nodes().await?;
            if conn.json {
                let list: Vec<_> = nodes.iter().map(node_json).collect();
                print_json(&serde_json::json!({ "nodes": list }));
            } else {
                for n in &nodes {
                    println!("{}", node_line(n));
                }
            }
        }
        NodeCommand::Drain {
            id,
            wait,
            timeout,
            undo,
            conn,
        } => {
            let client = conn.connect().await?;
            let mut node = client.drain_node(id, undo).await?;
            if wait {
                let deadline = Instant::now() + Duration::from_secs(timeout);
                while node.state == "draining" {
                    if Instant::now() >= deadline {
                        show(&conn, &node);
                        bail!(
                            "node {id} still holds {} shards and {} replicas after {timeout} s",
                            node.shards_owned,
                            node.replicas
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let nodes = client.list_nodes().await?;
                    match nodes.into_iter().find(|n| n.id == id) {
                        Some(n) => node = n,
                        None => bail!("node {id} was removed while draining"),
                    }
                }
                if node.state == "gone" {
                    show(&conn, &node);
                    bail!(
                        "node {id} is gone (its lease expired) before it was drained: placement moves what it held"
                    );
                }
            }
            show(&conn, &node);
        }
        NodeCommand::Remove { id, conn } => {
            conn.connect().await?.remove_node(id).await?;
            if conn.json {
                print_json(&serde_json::json!({ "id": id, "removed": true }));
            } else {
                println!("node {id} removed");
            }
        }
    }
    Ok(())
}
