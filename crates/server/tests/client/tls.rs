//! The front door over TLS (`--tls-cert/--tls-key`, mutual with `--tls-ca`),
//! through `Client::connect_with` and the `quiver` client commands.

use std::path::{Path, PathBuf};
use std::process::Output;

use quiver_client::{Client, CollectionSpec, ConnectOptions, Rows, SearchParams};
use quiver_roles::certs::CertAuthority;
use quiver_roles::tls::TlsConfig;
use quiver_server::StandaloneConfig;

use super::Server;

const DIM: usize = 4;

struct Certs {
    ca: PathBuf,
    server: (PathBuf, PathBuf),
    client: (PathBuf, PathBuf),
    /// A client certificate of another CA.
    stranger: (PathBuf, PathBuf),
}

fn certs(dir: &Path) -> Certs {
    let ca = CertAuthority::new("test CA").expect("ca");
    let ca_path = dir.join("ca.crt");
    ca.write_cert(&ca_path).expect("write ca");
    let issue = |ca: &CertAuthority, stem: &str| {
        ca.issue(stem, &[])
            .expect("issue")
            .write(dir, stem)
            .expect("write")
    };
    let other = CertAuthority::new("other CA").expect("ca");
    Certs {
        server: issue(&ca, "server"),
        client: issue(&ca, "client"),
        stranger: issue(&other, "stranger"),
        ca: ca_path,
    }
}

async fn tls_server(dir: &Path, certs: &Certs, mutual: bool) -> Server {
    let config = StandaloneConfig {
        tls: Some(TlsConfig {
            cert: certs.server.0.clone(),
            key: certs.server.1.clone(),
            ca: mutual.then(|| certs.ca.clone()),
        }),
        ..StandaloneConfig::new(dir.join("data"))
    };
    Server::start_with(config).await
}

async fn round_trip(client: &Client, name: &str) {
    client
        .create_collection(&CollectionSpec::new(name, DIM))
        .await
        .expect("create");
    client
        .insert(
            name,
            Rows::new(DIM, vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]).with_ids(vec![1, 2]),
        )
        .await
        .expect("insert");
    let hits = client
        .search(name, &[0.0, 1.0, 0.0, 0.0], DIM, &SearchParams::new(1))
        .await
        .expect("search");
    assert_eq!(hits[0][0].id, quiver_client::Id::Int(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_way_tls_with_the_ca_and_refused_in_plain_text() {
    let tmp = tempfile::tempdir().expect("tmp");
    let certs = certs(tmp.path());
    let server = tls_server(tmp.path(), &certs, false).await;
    let addr = server.addr.to_string();

    let options = ConnectOptions {
        tls_ca: Some(certs.ca.clone()),
        token: Some("root:Milvus".into()),
        ..Default::default()
    };
    // `--tls-ca` alone means TLS; so does https:// (with the CA).
    let client = Client::connect_with(&addr, &options)
        .await
        .expect("connect over TLS");
    round_trip(&client, "tls_one_way").await;
    let https = Client::connect_with(
        &format!("https://localhost:{}", server.addr.port()),
        &options,
    )
    .await
    .expect("https:// with the CA");
    assert!(https.has_collection("tls_one_way").await.expect("has"));

    // A plain-text client gets no answer.
    let plain = Client::connect(&addr).await;
    if let Ok(plain) = plain {
        plain
            .list_collections()
            .await
            .expect_err("plain text refused by a TLS server");
    }
    // https:// without a CA to verify the server is an error naming the flag.
    let e = Client::connect_with(&format!("https://{addr}"), &ConnectOptions::default())
        .await
        .expect_err("no CA");
    assert!(e.to_string().contains("--tls-ca"), "{e}");

    // The CLI: --tls-ca; a wrong CA fails the handshake.
    let out = quiver(
        &["collection", "list", "--addr", &addr, "--tls-ca"],
        &certs.ca,
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("tls_one_way"));
    let wrong = tmp.path().join("wrong-ca.crt");
    CertAuthority::new("wrong")
        .expect("ca")
        .write_cert(&wrong)
        .expect("write");
    let out = quiver(&["collection", "list", "--addr", &addr, "--tls-ca"], &wrong).await;
    assert!(
        !out.status.success(),
        "a server certificate of another CA is refused"
    );
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_needs_a_client_certificate_of_its_ca() {
    let tmp = tempfile::tempdir().expect("tmp");
    let certs = certs(tmp.path());
    let server = tls_server(tmp.path(), &certs, true).await;
    let addr = server.addr.to_string();
    let with = |cert: Option<&(PathBuf, PathBuf)>| ConnectOptions {
        tls_ca: Some(certs.ca.clone()),
        tls_cert: cert.map(|c| c.0.clone()),
        tls_key: cert.map(|c| c.1.clone()),
        ..Default::default()
    };
    let client = Client::connect_with(&addr, &with(Some(&certs.client)))
        .await
        .expect("a client certificate of the CA");
    round_trip(&client, "tls_mutual").await;

    for (what, options) in [
        ("no client certificate", with(None)),
        ("a certificate of another CA", with(Some(&certs.stranger))),
    ] {
        // The handshake fails at connect, or the first call fails.
        if let Ok(c) = Client::connect_with(&addr, &options).await {
            c.list_collections()
                .await
                .expect_err(&format!("{what} refused"));
        }
    }
    server.close().await;
}

/// Runs `quiver ARGS PATH` (the last flag's value is a path).
async fn quiver(args: &[&str], path: &Path) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args(args)
        .arg(path)
        .env_remove("QUIVER_ADDR")
        .env("RUST_BACKTRACE", "0")
        .output()
        .await
        .expect("run quiver")
}
