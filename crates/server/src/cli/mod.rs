//! The client commands of `quiver` (`collection`, `insert`, `search`,
//! `alias`, `node`), built on `quiver-client`. Every command takes `--addr`,
//! `--json`, `--token` and the TLS flags (`--tls-ca`, `--tls-cert`,
//! `--tls-key`); with `--json` it prints JSON objects on stdout, one per line.
//! Errors (including a server's refusal, with its Milvus code) go to stderr
//! and make the process exit non-zero.

mod alias;
mod collection;
mod compact;
mod insert;
mod node;
mod search;

use anyhow::Result;
use clap::{Args, Subcommand};
use quiver_client::Client;

pub use alias::AliasCommand;
pub use collection::CollectionCommand;
pub use insert::InsertArgs;
pub use node::NodeCommand;
pub use search::SearchArgs;

/// Where the server is, how to reach it, and how to print.
#[derive(Debug, Clone, Args)]
pub struct Conn {
    /// The server's Milvus gRPC address: host:port, http://host:port or
    /// https://host:port (TLS; also implied by --tls-ca).
    #[arg(long, default_value = quiver_client::DEFAULT_ADDR, env = "QUIVER_ADDR")]
    pub addr: String,
    /// Prints JSON (one object per line) instead of text.
    #[arg(long)]
    pub json: bool,
    /// user:password, sent with every call (the `authorization` metadata
    /// pymilvus sends).
    #[arg(long, env = "QUIVER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The CA certificate (PEM) that signed the server's certificate: TLS.
    #[arg(long, env = "QUIVER_CLIENT_TLS_CA")]
    pub tls_ca: Option<std::path::PathBuf>,
    /// This client's certificate (PEM), for a server that requires mutual TLS.
    #[arg(long, env = "QUIVER_CLIENT_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "QUIVER_CLIENT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// The name the server's certificate must carry (default: the address's host).
    #[arg(long)]
    pub tls_server_name: Option<String>,
}

impl Conn {
    fn options(&self) -> quiver_client::ConnectOptions {
        quiver_client::ConnectOptions {
            token: self.token.clone(),
            tls_ca: self.tls_ca.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            server_name: self.tls_server_name.clone(),
        }
    }

    async fn connect(&self) -> Result<Client> {
        Client::connect_with(&self.addr, &self.options())
            .await
            .map_err(|e| match e {
                quiver_client::Error::Connect { .. } => {
                    anyhow::anyhow!("{e} (is a Quiver server running there? --addr sets where)")
                }
                e => e.into(),
            })
    }
}

/// A client command.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Creates, lists, describes and drops collections.
    Collection {
        #[command(subcommand)]
        what: CollectionCommand,
    },
    /// Inserts the vectors of a TEXMEX .fvecs file.
    Insert(InsertArgs),
    /// Searches with the vectors of a TEXMEX .fvecs file.
    Search(SearchArgs),
    /// Creates, re-points, drops and lists aliases.
    Alias {
        #[command(subcommand)]
        what: AliasCommand,
    },
    /// A cluster's datanodes and querynodes: list, drain, remove.
    Node {
        #[command(subcommand)]
        what: NodeCommand,
    },
}

/// Runs a client command.
pub async fn run(cmd: ClientCommand) -> Result<()> {
    match cmd {
        ClientCommand::Collection { what } => collection::run(what).await,
        ClientCommand::Insert(args) => insert::run(args).await,
        ClientCommand::Search(args) => search::run(args).await,
        ClientCommand::Alias { what } => alias::run(what).await,
        ClientCommand::Node { what } => node::run(what).await,
    }
}

/// A TEXMEX .fvecs file: (dimension, row-major vectors).
fn read_fvecs(path: &std::path::Path) -> Result<(usize, Vec<f32>)> {
    // The index error names the path and the cause; its source repeats the cause.
    quiver_index::bench::read_fvecs(path).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Prints one JSON object as a line.
fn print_json(v: &serde_json::Value) {
    println!("{v}");
}

/// An f32 as the shortest JSON number that reads back as the same f32 (null
/// if not finite).
fn f32_json(x: f32) -> serde_json::Value {
    x.to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(serde_json::Value::Null, serde_json::Value::Number)
}

fn id_json(id: &quiver_client::Id) -> serde_json::Value {
    match id {
        quiver_client::Id::Int(i) => (*i).into(),
        quiver_client::Id::Str(s) => s.clone().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_short() {
        assert_eq!(f32_json(0.1).to_string(), "0.1");
        assert_eq!(f32_json(2.0).to_string(), "2.0");
        assert_eq!(f32_json(f32::NAN), serde_json::Value::Null);
    }
}
