//! `quiver collection create|list|describe|drop|load|release|compact`.

use anyhow::{Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use quiver_client::{CollectionInfo, CollectionSpec, Index, IndexInfo, Metric};
use serde_json::json;

use super::{Conn, print_json};

#[derive(Debug, Subcommand)]
pub enum CollectionCommand {
    /// Creates a collection (Int64 key `id`, FloatVector `vector`), indexes it
    /// with HNSW and loads it.
    Create(CreateArgs),
    /// Lists the collections.
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Describes a collection (by name or alias): fields, index, rows, aliases.
    Describe {
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Drops a collection (it must exist and have no aliases).
    Drop {
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Loads a released collection (by name or alias): its reads are served again.
    Load {
        name: String,
        /// Querynodes per shard in a cluster (0 keeps the current number).
        #[arg(long, default_value_t = 0)]
        replicas: u32,
        #[command(flatten)]
        conn: Conn,
    },
    /// Releases a collection (by name or alias): querynodes free it and its
    /// reads are refused until it is loaded again; writes still land.
    Release {
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Compacts a collection (by name or alias) now: every shard rewrites
    /// segments holding superseded or deleted rows and merges small ones.
    Compact {
        name: String,
        /// Wait until every shard is done, then print what was compacted.
        #[arg(long)]
        wait: bool,
        /// With --wait: give up after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MetricArg {
    L2,
    Ip,
    Cosine,
}

impl From<MetricArg> for Metric {
    fn from(m: MetricArg) -> Self {
        match m {
            MetricArg::L2 => Metric::L2,
            MetricArg::Ip => Metric::Ip,
            MetricArg::Cosine => Metric::Cosine,
        }
    }
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    name: String,
    /// Vector dimension.
    #[arg(long)]
    dim: usize,
    #[arg(long, value_enum, default_value = "l2")]
    metric: MetricArg,
    /// HNSW: neighbours per node.
    #[arg(long, default_value_t = 16)]
    m: usize,
    /// HNSW: beam width while building.
    #[arg(long, default_value_t = 200)]
    ef_construction: usize,
    /// Shards (default: the server's, 1).
    #[arg(long)]
    shards: Option<u32>,
    /// The server assigns the keys.
    #[arg(long)]
    auto_id: bool,
    #[command(flatten)]
    conn: Conn,
}

pub(super) async fn run(cmd: CollectionCommand) -> Result<()> {
    match cmd {
        CollectionCommand::Create(args) => create(args).await,
        CollectionCommand::List { conn } => {
            let names = conn.connect().await?.list_collections().await?;
            if conn.json {
                print_json(&json!({ "collections": names }));
            } else {
                for n in names {
                    println!("{n}");
                }
            }
            Ok(())
        }
        CollectionCommand::Describe { name, conn } => describe(&name, &conn).await,
        CollectionCommand::Drop { name, conn } => {
            let client = conn.connect().await?;
            // The server answers success for a missing collection; say so instead.
            let info = client.describe_collection(&name).await?;
            if info.name != name {
                bail!(
                    "{name:?} is an alias of collection {:?}: drop the alias with `quiver alias drop {name}`, or the collection by its name",
                    info.name
                );
            }
            client.drop_collection(&name).await?;
            if conn.json {
                print_json(&json!({ "dropped": name }));
            } else {
                println!("dropped collection {name}");
            }
            Ok(())
        }
        CollectionCommand::Load {
            name,
            replicas,
            conn,
        } => {
            conn.connect()
                .await?
                .load_collection(&name, replicas)
                .await?;
            if conn.json {
                print_json(&json!({ "loaded": name }));
            } else {
                println!("loaded collection {name}");
            }
            Ok(())
        }
        CollectionCommand::Compact {
            name,
            wait,
            timeout,
            conn,
        } => super::compact::run(&name, wait, timeout, &conn).await,
        CollectionCommand::Release { name, conn } => {
            conn.connect().await?.release_collection(&name).await?;
            if conn.json {
                print_json(&json!({ "released": name }));
            } else {
                println!("released collection {name}");
            }
            Ok(())
        }
    }
}

async fn create(args: CreateArgs) -> Result<()> {
    let client = args.conn.connect().await?;
    let mut spec = CollectionSpec::new(&args.name, args.dim);
    spec.metric = args.metric.into();
    spec.index = Index::Hnsw {
        m: args.m,
        ef_construction: args.ef_construction,
    };
    spec.shards = args.shards;
    spec.auto_id = args.auto_id;
    client.create_collection(&spec).await?;
    let info = client.describe_collection(&args.name).await?;
    if args.conn.json {
        print_json(&json!({
            "created": info.name,
            "dim": info.dim(),
            "metric": spec.metric.as_str(),
            "index": "HNSW",
            "m": args.m,
            "ef_construction": args.ef_construction,
            "shards": info.shards,
            "auto_id": info.auto_id(),
        }));
    } else {
        println!(
            "created collection {} (dim {}, {}, HNSW M={} efConstruction={}, {} shard{}{})",
            info.name,
            args.dim,
            spec.metric,
            args.m,
            args.ef_construction,
            info.shards,
            if info.shards == 1 { "" } else { "s" },
            if info.auto_id() { ", auto id" } else { "" },
        );
    }
    Ok(())
}

async fn describe(name: &str, conn: &Conn) -> Result<()> {
    let client = conn.connect().await?;
    let info = client.describe_collection(name).await?;
    let index = client.describe_index(&info.name).await?;
    // A released collection's rows cannot be counted (no querynode serves it).
    let loaded = client.is_loaded(&info.name).await?;
    let rows = match loaded {
        true => Some(client.count(&info.name).await?),
        false => None,
    };
    // Quiver's admin API; a plain Milvus server has none.
    let storage = client
        .collection_storage(&info.name)
        .await
        .ok()
        .map(|shards| storage_json(&shards));
    if conn.json {
        let mut v = describe_json(&info, &index, rows, loaded);
        v["storage"] = storage.unwrap_or(serde_json::Value::Null);
        print_json(&v);
        return Ok(());
    }
    println!("collection: {}", info.name);
    println!("id:         {}", info.id);
    println!("shards:     {}", info.shards);
    println!(
        "loaded:     {}",
        if loaded { "yes" } else { "no (released)" }
    );
    match rows {
        Some(rows) => println!("rows:       {rows}"),
        None => println!("rows:       (load the collection to count them)"),
    }
    println!(
        "index:      {} {} {}",
        index.index_type, index.metric, index.params
    );
    println!("aliases:    {}", info.aliases.join(", "));
    if let Some(s) = &storage {
        let last = match s["last_compaction_ms"].as_u64() {
            Some(ms) if ms > 0 => format!(
                "{} ms ago",
                quiver_common::ts_physical_ms(quiver_common::wall_ts()).saturating_sub(ms)
            ),
            _ => "never".to_string(),
        };
        println!(
            "storage:    {} segments, {} live rows, {} dead rows, {:.1} MiB, compaction backlog {}, last compaction {last}",
            s["segments"],
            s["live_rows"],
            s["dead_rows"],
            s["bytes"].as_u64().unwrap_or(0) as f64 / (1 << 20) as f64,
            s["compaction_backlog"],
        );
    }
    println!("fields:");
    for f in &info.fields {
        let mut notes = Vec::new();
        if f.is_primary_key {
            notes.push("primary key".to_string());
        }
        if f.auto_id {
            notes.push("auto id".to_string());
        }
        if let Some(d) = f.dim {
            notes.push(format!("dim {d}"));
        }
        if let Some(l) = f.max_length {
            notes.push(format!("max length {l}"));
        }
        if f.nullable {
            notes.push("nullable".to_string());
        }
        println!(
            "  {:<16} {:<12} {}",
            f.name,
            f.data_type.as_str_name(),
            notes.join(", ")
        );
    }
    if info.enable_dynamic_field {
        println!("  (dynamic fields enabled)");
    }
    Ok(())
}

/// The storage figures in the shape the status page shows them.
fn storage_json(shards: &[quiver_client::ShardStorage]) -> serde_json::Value {
    let shards: Vec<quiver_api::ShardStorage> =
        shards.iter().map(quiver_admin::storage::from_pb).collect();
    quiver_admin::storage::storage_json(&shards.iter().collect::<Vec<_>>())
}

fn describe_json(
    info: &CollectionInfo,
    index: &IndexInfo,
    rows: Option<u64>,
    loaded: bool,
) -> serde_json::Value {
    let params: serde_json::Value =
        serde_json::from_str(&index.params).unwrap_or_else(|_| index.params.clone().into());
    let fields: Vec<serde_json::Value> = info
        .fields
        .iter()
        .map(|f| {
            json!({
                "name": f.name,
                "type": f.data_type.as_str_name(),
                "primary_key": f.is_primary_key,
                "auto_id": f.auto_id,
                "nullable": f.nullable,
                "dim": f.dim,
                "max_length": f.max_length,
            })
        })
        .collect();
    json!({
        "name": info.name,
        "id": info.id,
        "shards": info.shards,
        "dim": info.dim(),
        "auto_id": info.auto_id(),
        "metric": index.metric,
        "index": { "type": index.index_type, "params": params },
        "rows": rows,
        "loaded": loaded,
        "aliases": info.aliases,
        "enable_dynamic_field": info.enable_dynamic_field,
        "fields": fields,
    })
}
