//! Data dirs written by earlier releases (testdata/datadir-*, see their
//! READMEs) open and serve with this release, and keep working after new
//! writes and a restart. Users never run a migration by hand.

use std::path::{Path, PathBuf};

use quiver_client::Value;

use crate::Server;

fn fixture(release: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../testdata/datadir-{release}"))
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

async fn check_books(server: &Server) {
    let client = server.client().await;
    // 300 written, key 5 deleted (the upsert of 7 replaced a row).
    assert_eq!(client.count("books").await.expect("count"), 299);
    assert_eq!(client.count("library").await.expect("count"), 299);
    let gone = client
        .query("books", "id == 5", &["id"], None)
        .await
        .expect("query 5");
    assert!(gone.is_empty(), "the deleted key came back: {gone:?}");
    let seven = client
        .query("books", "id in [7, 250]", &["tag", "extra"], None)
        .await
        .expect("query 7");
    let tag = |id: i64| {
        seven
            .iter()
            .find(|r| r.get("id") == Some(&Value::Int(id)))
            .and_then(|r| r.get("tag").cloned())
    };
    assert_eq!(tag(7), Some(Value::Str("up".into())));
    assert_eq!(tag(250), Some(Value::Str("t1".into())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_of_the_previous_release_opens_and_serves() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&fixture("3e44f57"), dir.path()).expect("copy the fixture");

    let server = Server::start(dir.path()).await;
    check_books(&server).await;
    let client = server.client().await;
    // The released collection stays released, and loads again.
    assert!(!client.is_loaded("old").await.expect("is_loaded"));
    client.load_collection("old", 1).await.expect("load old");
    assert_eq!(client.count("old").await.expect("count old"), 1);
    // New writes (new coord log entries, with request ids where proposed
    // over the network) on top of the old ones.
    let rows = quiver_client::Rows::new(4, crate::vectors(3, 4, 11)).with_ids(vec![10, 11, 12]);
    client.insert("old", rows).await.expect("insert");
    client.create_alias("shelf", "books").await.expect("alias");
    server.close().await;

    // And the mixed directory opens again.
    let server = Server::start(dir.path()).await;
    check_books(&server).await;
    let client = server.client().await;
    assert_eq!(client.count("shelf").await.expect("count shelf"), 299);
    assert_eq!(client.count("old").await.expect("count old"), 4);
    server.close().await;
}

/// What the 4d844dc fixture's aliases must read as (its README).
async fn check_aliases(server: &Server) {
    let client = server.client().await;
    let feed = client.show_alias("feed").await.expect("show feed");
    assert_eq!(feed.target, "feed_b");
    assert!(feed.mirrored && feed.auto_failover && feed.pinned);
    assert_eq!(
        (feed.primary.as_str(), feed.standby.as_str()),
        ("feed_a", "feed_b")
    );
    assert_eq!(feed.max_lag_ms, 700);
    let actions: Vec<&str> = feed.history.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions[..3], ["mirror", "flip", "pin"]);
    let library = client.show_alias("library").await.expect("show library");
    assert_eq!(library.target, "books");
    assert!(!library.mirrored);
    assert_eq!(client.count("library").await.expect("count library"), 3);
}

/// The release before aliases were kept by collection id wrote them by name
/// into coord's snapshot; they are read by id, and change and persist as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases_a_release_kept_by_name_open_by_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&fixture("4d844dc"), dir.path()).expect("copy the fixture");

    let server = Server::start(dir.path()).await;
    check_aliases(&server).await;
    let client = server.client().await;
    let sre = quiver_client::Actor::new("test", "compat");
    client.pin_alias("feed", false, &sre).await.expect("unpin");
    let flipped = client
        .flip_alias("feed", Some("feed_b"), &sre)
        .await
        .expect("flip");
    assert_eq!(flipped.target, "feed_a");
    server.close().await;

    let server = Server::start(dir.path()).await;
    let feed = server
        .client()
        .await
        .show_alias("feed")
        .await
        .expect("show");
    assert_eq!((feed.target.as_str(), feed.pinned), ("feed_a", false));
    server.close().await;
}
