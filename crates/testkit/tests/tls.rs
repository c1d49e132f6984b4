//! Cluster-internal mutual TLS (`[cluster_tls]`, here `ClusterSpec::tls`):
//! the cluster works through the proxy (inserts, a flush, searches, a
//! query; so the proxy → datanode / querynode, querynode → datanode, node →
//! coord and coord ↔ coord links all run TLS), and a process without the
//! cluster's client certificate cannot call a coord, a datanode or a
//! querynode: neither in plain text nor over TLS without a certificate.
//! The same calls with the cluster's certificate are answered (so the
//! refusals are the TLS layer's, not a bad request).

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use quiver_client::{CollectionSpec, Rows, SearchParams};
use quiver_proto::coord::Empty as CoordEmpty;
use quiver_proto::coord::coord_service_client::CoordServiceClient;
use quiver_proto::node::data_service_client::DataServiceClient;
use quiver_proto::node::query_service_client::QueryServiceClient;
use quiver_proto::node::{CountRequest, ShardRequest};
use quiver_rpc::{CLUSTER_SERVER_NAME, ClusterTls, ERROR_HEADER};
use quiver_testkit::{Cluster, ClusterSpec, Role};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

const DIM: usize = 4;
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// How a caller reaches an internal port.
#[derive(Debug, Clone, Copy)]
enum Caller {
    PlainText,
    TlsWithoutCertificate,
    ClusterMember,
}

async fn channel(addr: &str, caller: Caller, cluster: &Cluster) -> Result<Channel> {
    let endpoint = match caller {
        Caller::PlainText => Endpoint::from_shared(format!("http://{addr}"))?,
        Caller::TlsWithoutCertificate => {
            let ca = std::fs::read(cluster.tls_ca().context("a TLS cluster")?)?;
            Endpoint::from_shared(format!("https://{addr}"))?.tls_config(
                ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(ca))
                    .domain_name(CLUSTER_SERVER_NAME),
            )?
        }
        Caller::ClusterMember => {
            let tls: ClusterTls = cluster.tls_identity().context("a TLS cluster")?;
            quiver_rpc::tls::endpoint(addr, Some(&tls))?
        }
    };
    Ok(endpoint
        .connect_timeout(CALL_TIMEOUT)
        .timeout(CALL_TIMEOUT)
        .connect_lazy())
}

/// Whether the server answered the call: a reply, or an error that Quiver's
/// service itself sent (it carries the wire error). A refused connection or
/// a failed handshake is neither.
fn answered<T>(reply: std::result::Result<tonic::Response<T>, tonic::Status>) -> bool {
    match reply {
        Ok(_) => true,
        Err(status) => status.metadata().get_bin(ERROR_HEADER).is_some(),
    }
}

/// One unary call to the internal service of node `id`.
async fn call(cluster: &Cluster, id: u64, caller: Caller) -> Result<bool> {
    let addr = cluster.addr(id).context("node address")?;
    let channel = channel(&addr, caller, cluster).await?;
    let role = cluster.role(id).context("node role")?;
    let answered = match role {
        Role::Coord => answered(
            CoordServiceClient::new(channel)
                .cluster_status(CoordEmpty {})
                .await,
        ),
        Role::DataNode => answered(
            DataServiceClient::new(channel)
                .last_ts(ShardRequest::default())
                .await,
        ),
        Role::QueryNode => answered(
            QueryServiceClient::new(channel)
                .count(CountRequest::default())
                .await,
        ),
        Role::Proxy => anyhow::bail!("the proxy is not an internal port"),
    };
    Ok(answered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_tls_serves_members_and_refuses_everyone_else() -> Result<()> {
    let spec = ClusterSpec {
        tls: true,
        ..ClusterSpec::new(2, 1, 1)
    };
    let cluster = Cluster::start(spec).await?;

    // The data path, end to end over mutual TLS.
    let client = cluster.client().await?;
    let name = "tls_data";
    client
        .create_collection(&CollectionSpec::new(name, DIM))
        .await?;
    let ids: Vec<i64> = (0..50).collect();
    let vectors: Vec<f32> = ids
        .iter()
        .flat_map(|i| [*i as f32, 1.0, 0.0, 0.0])
        .collect();
    client
        .insert(name, Rows::new(DIM, vectors).with_ids(ids))
        .await?;
    client.flush(&[name]).await?;
    let hits = client
        .search(name, &[7.0, 1.0, 0.0, 0.0], DIM, &SearchParams::new(3))
        .await?;
    ensure!(
        hits[0].first().map(|h| h.id.clone()) == Some(quiver_client::Id::Int(7)),
        "nearest hit: {hits:?}"
    );
    ensure!(
        client.count(name).await? == 50,
        "every inserted row is counted"
    );

    // Every internal port: members are answered, strangers refused.
    let internal: Vec<u64> = [Role::Coord, Role::DataNode, Role::QueryNode]
        .into_iter()
        .flat_map(|r| cluster.ids(r))
        .collect();
    ensure!(internal.len() == 4, "two coords, a datanode, a querynode");
    for id in internal {
        let role = cluster.role(id);
        ensure!(
            call(&cluster, id, Caller::ClusterMember).await?,
            "{role:?} {id} answers a member of the cluster"
        );
        for stranger in [Caller::PlainText, Caller::TlsWithoutCertificate] {
            ensure!(
                !call(&cluster, id, stranger).await?,
                "{role:?} {id} answered a caller without the cluster's certificate ({stranger:?})"
            );
        }
    }
    cluster.shutdown().await;
    Ok(())
}
