//! `quiver alias create|alter|drop|list` (the Milvus API) and
//! `quiver alias mirror|show|flip|pin|unpin|verify` (Quiver's admin API;
//! `alter` with `--expect` or `--reason` too).

use anyhow::Result;
use clap::{Args, Subcommand};
use quiver_client::{Actor, AliasStatus, MirrorSpec, VerifyReport};
use serde_json::json;

use super::{Conn, print_json};

/// Why a change is made, recorded in the alias's history with who made it.
#[derive(Debug, Args)]
pub struct Why {
    /// Why (kept in the alias's history).
    #[arg(long, default_value = "")]
    reason: String,
    /// Who, for the history [default: cli:$USER].
    #[arg(long)]
    by: Option<String>,
}

impl Why {
    fn actor(&self) -> Actor {
        let by = self.by.clone().unwrap_or_else(|| {
            let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
            format!("cli:{user}")
        });
        Actor::new(by, self.reason.clone())
    }
}

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
        /// Only if the alias targets this collection now (compare-and-swap).
        #[arg(long)]
        expect: Option<String>,
        #[command(flatten)]
        why: Why,
        #[command(flatten)]
        conn: Conn,
    },
    /// Pairs two collections of the same shape under an alias: writes
    /// through it reach both; it targets the primary until it flips.
    Mirror {
        alias: String,
        #[arg(long)]
        primary: String,
        #[arg(long)]
        standby: String,
        /// Lets coord flip the alias by itself when its target is unhealthy.
        #[arg(long)]
        auto_failover: bool,
        /// An automatic flip needs the other side within this lag [default: 1000].
        #[arg(long)]
        max_lag_ms: Option<u64>,
        #[command(flatten)]
        why: Why,
        #[command(flatten)]
        conn: Conn,
    },
    /// An alias's target, mirror, lag, divergence and history.
    Show {
        alias: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Points a mirrored alias at the other collection of its pair.
    Flip {
        alias: String,
        /// Only if the alias targets this collection now (compare-and-swap).
        #[arg(long)]
        expect: Option<String>,
        #[command(flatten)]
        why: Why,
        #[command(flatten)]
        conn: Conn,
    },
    /// Stops automatic flips of a mirrored alias until `unpin`.
    Pin {
        alias: String,
        #[command(flatten)]
        why: Why,
        #[command(flatten)]
        conn: Conn,
    },
    /// Allows automatic flips again.
    Unpin {
        alias: String,
        #[command(flatten)]
        why: Why,
        #[command(flatten)]
        conn: Conn,
    },
    /// Compares the two collections of a mirrored alias now and reports
    /// the rows that differ (exit status 1 if any still differ).
    Verify {
        alias: String,
        /// Copy the rows that differ from the alias's target to the other
        /// collection.
        #[arg(long)]
        repair: bool,
        /// Time between the two looks at differing rows (a row still in
        /// flight is not divergent) [default: the mirror lag plus 1 s].
        #[arg(long)]
        settle_ms: Option<u64>,
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
            expect,
            why,
            conn,
        } => {
            let client = conn.connect().await?;
            if expect.is_some() || !why.reason.is_empty() || why.by.is_some() {
                // The admin API: compare-and-swap, and a history entry with
                // who and why.
                let s = client
                    .alter_alias_checked(&alias, &collection, expect.as_deref(), &why.actor())
                    .await?;
                show(&conn, &s);
            } else {
                client.alter_alias(&alias, &collection).await?;
                report(&conn, &alias, &collection, "altered");
            }
        }
        AliasCommand::Mirror {
            alias,
            primary,
            standby,
            auto_failover,
            max_lag_ms,
            why,
            conn,
        } => {
            let spec = MirrorSpec {
                alias,
                primary,
                standby,
                auto_failover,
                max_lag_ms,
            };
            let s = conn
                .connect()
                .await?
                .mirror_alias(&spec, &why.actor())
                .await?;
            show(&conn, &s);
        }
        AliasCommand::Show { alias, conn } => {
            let s = conn.connect().await?.show_alias(&alias).await?;
            show(&conn, &s);
        }
        AliasCommand::Flip {
            alias,
            expect,
            why,
            conn,
        } => {
            let client = conn.connect().await?;
            let s = client
                .flip_alias(&alias, expect.as_deref(), &why.actor())
                .await?;
            show(&conn, &s);
        }
        AliasCommand::Pin { alias, why, conn } => pin(&alias, true, &why, &conn).await?,
        AliasCommand::Unpin { alias, why, conn } => pin(&alias, false, &why, &conn).await?,
        AliasCommand::Verify {
            alias,
            repair,
            settle_ms,
            conn,
        } => {
            let r = conn
                .connect()
                .await?
                .verify_alias(&alias, repair, settle_ms)
                .await?;
            print_verify(&conn, &r);
            if r.remaining_rows > 0 {
                anyhow::bail!(
                    "{} row(s) of {} differ between {} and {}",
                    r.remaining_rows,
                    r.alias,
                    r.target,
                    r.other
                );
            }
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

/// `alias show --json`: the one alias shape, shared with the status page
/// (`quiver_admin::alias_json`).
pub(crate) use quiver_admin::{alias_json, utc};

fn print_verify(conn: &Conn, r: &VerifyReport) {
    if conn.json {
        let samples: Vec<_> = r
            .samples
            .iter()
            .map(|d| json!({ "shard": d.shard, "pk": d.pk, "kind": d.kind }))
            .collect();
        print_json(&json!({
            "alias": r.alias,
            "target": r.target,
            "other": r.other,
            "target_rows": r.target_rows,
            "other_rows": r.other_rows,
            "divergent_rows": r.divergent_rows,
            "repaired_rows": r.repaired_rows,
            "remaining_rows": r.remaining_rows,
            "settle_ms": r.settle_ms,
            "samples": samples,
        }));
        return;
    }
    println!(
        "{}: target {} ({} rows), other {} ({} rows); looked twice, {} ms apart",
        r.alias, r.target, r.target_rows, r.other, r.other_rows, r.settle_ms
    );
    println!("  divergent rows: {}", r.divergent_rows);
    if r.repaired_rows > 0 || r.divergent_rows > 0 {
        println!(
            "  repaired: {}; still differing: {}",
            r.repaired_rows, r.remaining_rows
        );
    }
    for d in &r.samples {
        println!("  shard {} key {}: {}", d.shard, d.pk, d.kind);
    }
}

async fn pin(alias: &str, pinned: bool, why: &Why, conn: &Conn) -> Result<()> {
    let client = conn.connect().await?;
    let s = client.pin_alias(alias, pinned, &why.actor()).await?;
    show(conn, &s);
    Ok(())
}

fn show(conn: &Conn, s: &AliasStatus) {
    if conn.json {
        print_json(&alias_json(s));
        return;
    }
    println!("{} -> {} (epoch {})", s.alias, s.target, s.epoch);
    if s.mirrored {
        println!(
            "  mirror: primary {}, standby {}; automatic failover {} (max lag {} ms){}",
            s.primary,
            s.standby,
            if s.auto_failover { "on" } else { "off" },
            s.max_lag_ms,
            if s.pinned { "; PINNED" } else { "" }
        );
        let known =
            |v: Option<u64>, unit: &str| v.map_or("unknown".to_string(), |v| format!("{v}{unit}"));
        println!(
            "  standby lag: {}; divergent rows: {}",
            known(s.standby_lag_ms, " ms"),
            known(s.divergent_rows, "")
        );
    }
    println!("  history (oldest first):");
    for e in &s.history {
        let from = if e.from.is_empty() { "-" } else { &e.from };
        let why = if e.reason.is_empty() {
            String::new()
        } else {
            format!(": {}", e.reason)
        };
        println!(
            "    {}  epoch {:>6}  {:<6} {from} -> {}  by {}{why}",
            utc(e.at_ms),
            e.epoch,
            e.action,
            e.to,
            e.by
        );
    }
}
