//! Authentication through the Rust client, the admin API and the CLI:
//! credentials required, the admin API's alias changes need
//! `ManageAliases`, alias history records the authenticated user whatever
//! the client claims, and `quiver ... --token` works.

use quiver_client::{Actor, Client, CollectionSpec, ConnectOptions, MirrorSpec};
use quiver_server::StandaloneConfig;

use super::Server;

const ROOT_PASSWORD: &str = "root-pass-9";

async fn as_user(addr: &str, token: &str) -> Client {
    Client::connect_with(
        addr,
        &ConnectOptions {
            token: Some(token.to_string()),
            ..Default::default()
        },
    )
    .await
    .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_needs_its_privilege_and_records_the_caller() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut config = StandaloneConfig::new(tmp.path().join("data"));
    config.auth = quiver_roles::auth::AuthConfig {
        enabled: true,
        root_password: Some(ROOT_PASSWORD.into()),
        ..Default::default()
    };
    let server = Server::start_with(config).await;
    let addr = server.addr.to_string();
    let root = as_user(&addr, &format!("root:{ROOT_PASSWORD}")).await;
    for name in ["left", "right"] {
        root.create_collection(&CollectionSpec::new(name, 4))
            .await
            .expect("create");
    }

    // No credentials: refused before anything happens.
    let anonymous = Client::connect(&addr).await.expect("connect");
    let e = anonymous.list_collections().await.expect_err("no token");
    assert!(
        e.to_string().contains("auth check failure")
            || e.to_string().contains("missing authorization"),
        "{e}"
    );

    // The forged actor is ignored: history says root did it.
    let spec = MirrorSpec {
        alias: "feed".into(),
        primary: "left".into(),
        standby: "right".into(),
        auto_failover: false,
        max_lag_ms: None,
    };
    let status = root
        .mirror_alias(&spec, &Actor::new("coord:auto-failover", "forged"))
        .await
        .expect("root mirrors");
    let last = status.history.last().expect("an event");
    assert_eq!(last.by, "root", "{last:?}");

    // A reader may look at the alias but not flip it; nothing changes.
    root.create_user("reader", "reader-pass")
        .await
        .expect("user");
    let reader = as_user(&addr, "reader:reader-pass").await;
    let e = reader
        .flip_alias("feed", None, &Actor::new("reader", "try"))
        .await
        .expect_err("a reader cannot flip");
    assert!(e.to_string().contains("permission deny to reader"), "{e}");
    let after = root.show_alias("feed").await.expect("show");
    assert_eq!((after.target.as_str(), after.epoch), ("left", status.epoch));

    // The CLI with --token, and without.
    let cli = |token: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_quiver"));
        cmd.args(["collection", "list", "--addr", &addr])
            .env_remove("QUIVER_ADDR")
            .env_remove("QUIVER_TOKEN");
        if let Some(t) = token {
            cmd.args(["--token", t]);
        }
        cmd.output().expect("run quiver")
    };
    let out = cli(Some(&format!("root:{ROOT_PASSWORD}")));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("left"));
    let out = cli(None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("auth check failure")
            || String::from_utf8_lossy(&out.stderr).contains("missing authorization"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.close().await;
}
