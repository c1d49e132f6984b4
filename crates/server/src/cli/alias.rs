//! `quiver alias create|alter|drop|list`.

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use super::{Conn, print_json};

#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// Points a new alias at a collection.
    Create {
        alias: String,
        collection: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Re-points an existing alias at another collection (atomically).
    Alter {
        alias: String,
        collection: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Drops an alias (it must exist).
    Drop {
        alias: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Lists aliases and their collections.
    List {
        /// Only the aliases of this collection.
        #[arg(long)]
        collection: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
}

pub(super) async fn run(cmd: AliasCommand) -> Result<()> {
    match cmd {
        AliasCommand::Create {
            alias,
            collection,
            conn,
        } => {
            conn.connect()
                .await?
                .create_alias(&alias, &collection)
                .await?;
            report(&conn, &alias, &collection, "created");
        }
        AliasCommand::Alter {
            alias,
            collection,
            conn,
        } => {
            conn.connect()
                .await?
                .alter_alias(&alias, &collection)
                .await?;
            report(&conn, &alias, &collection, "altered");
        }
        AliasCommand::Drop { alias, conn } => {
            let client = conn.connect().await?;
            // The server answers success for a missing alias; this fails with 1600 instead.
            let collection = client.describe_alias(&alias).await?;
            client.drop_alias(&alias).await?;
            report(&conn, &alias, &collection, "dropped");
        }
        AliasCommand::List { collection, conn } => {
            let client = conn.connect().await?;
            let mut pairs = Vec::new();
            for alias in client.list_aliases(collection.as_deref()).await? {
                let target = client.describe_alias(&alias).await?;
                pairs.push((alias, target));
            }
            if conn.json {
                let list: Vec<_> = pairs
                    .iter()
                    .map(|(a, c)| json!({ "alias": a, "collection": c }))
                    .collect();
                print_json(&json!({ "aliases": list }));
            } else {
                for (a, c) in pairs {
                    println!("{a} -> {c}");
                }
            }
        }
    }
    Ok(())
}

fn report(conn: &Conn, alias: &str, collection: &str, what: &str) {
    if conn.json {
        print_json(&json!({ "alias": alias, "collection": collection, what: true }));
    } else {
        println!("{what} alias {alias} -> {collection}");
    }
}
