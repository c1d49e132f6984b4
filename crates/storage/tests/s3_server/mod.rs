//! A real S3 server for tests: s3s-fs (`cargo install s3s-fs@0.14.1 --features binary
//! --locked`) on a free port over a temp dir, killed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use quiver_storage::{ObjectStore, StoreConfig, open_store};

pub const INSTALL: &str = "cargo install s3s-fs@0.14.1 --features binary --locked";
const KEY: &str = "quiver-test-key";
const SECRET: &str = "quiver-test-secret";
pub const BUCKET: &str = "quiver-test";

/// The s3s-fs binary: `$S3S_FS`, else `~/.cargo/bin/s3s-fs` (or `$CARGO_HOME/bin`), else PATH.
pub fn find_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("S3S_FS") {
        return Some(PathBuf::from(p));
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let in_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    cargo_home
        .map(|h| h.join("bin"))
        .into_iter()
        .chain(in_path)
        .map(|d| d.join("s3s-fs"))
        .find(|p| p.is_file())
}

/// A running s3s-fs; the process is killed and its data removed on drop.
pub struct S3Server {
    child: Child,
    pub endpoint: String,
    _dir: tempfile::TempDir,
}

impl S3Server {
    /// Starts s3s-fs and waits until it answers S3 requests (polling, up to 30 s).
    pub async fn start(binary: &std::path::Path) -> S3Server {
        // A port found free may be taken before s3s-fs binds it: then it exits, try another.
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("tempdir");
            std::fs::create_dir(dir.path().join(BUCKET)).expect("bucket folder");
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let log = std::fs::File::create(dir.path().join("s3s-fs.log")).expect("log file");
            let child = Command::new(binary)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", KEY, "--secret-key", SECRET])
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
            let mut server = S3Server {
                child,
                endpoint: format!("http://127.0.0.1:{port}"),
                _dir: dir,
            };
            if server.wait_ready().await {
                return server;
            }
        }
        panic!("s3s-fs did not start (5 tries)");
    }

    /// The config of a store on this server's bucket, under `prefix`.
    pub fn config(&self, prefix: Option<&str>) -> StoreConfig {
        StoreConfig::S3 {
            endpoint: Some(self.endpoint.clone()),
            bucket: BUCKET.into(),
            region: "us-east-1".into(),
            access_key_id: Some(KEY.into()),
            secret_access_key: Some(SECRET.into()),
            allow_http: true,
            prefix: prefix.map(str::to_string),
        }
    }

    pub fn store(&self, prefix: Option<&str>) -> Arc<dyn ObjectStore> {
        open_store(&self.config(prefix)).expect("open s3 store")
    }

    /// Polls until the port accepts and then until a listing of the bucket succeeds; false if
    /// the process exited first.
    async fn wait_ready(&mut self) -> bool {
        let store = self.store(None);
        let addr = self.endpoint.trim_start_matches("http://").to_string();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                eprintln!("s3s-fs exited early ({status}): {}", self.log());
                return false;
            }
            // Connect first: the S3 client retries refused connections with backoff.
            if tokio::net::TcpStream::connect(&addr).await.is_ok() {
                let probe = store.list_with_delimiter(None);
                match tokio::time::timeout(Duration::from_secs(5), probe).await {
                    Ok(Ok(_)) => return true,
                    Ok(Err(e)) => eprintln!("s3s-fs not ready: {e}"),
                    Err(_) => eprintln!("s3s-fs not ready: listing timed out"),
                }
            }
            assert!(
                Instant::now() < deadline,
                "s3s-fs at {} did not answer within 30 s: {}",
                self.endpoint,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("s3s-fs.log")).unwrap_or_default()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
