//! Opening the object store.
//!
//! Durability: `LocalFileSystem` does NOT fsync by default. object_store 0.14.2 has
//! `with_fsync(true)`: every put `sync_all`s the staged file, publishes it (rename for
//! `Overwrite`, hard link for `Create`) and fsyncs the destination's parent directory (and any
//! directory it had to create) before returning. We always turn it on, so a successful put —
//! and hence an acknowledged WAL batch — is on stable storage.
//!
//! S3: a put returns once the object is stored, and `PutMode::Create` is a real conditional
//! write (`If-None-Match: *`, answered 412 when the key exists), which the WAL's fencing needs.
//! It is forced on even if `AWS_CONDITIONAL_PUT` says otherwise.

use std::path::Path;
use std::sync::{Arc, Once};

use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;

use crate::config::StoreConfig;
use crate::error::{Result, StorageError};

/// Opens (creating the directory if needed) a durable local-filesystem object store at `root`.
pub fn open_local_store(root: &Path) -> Result<Arc<dyn ObjectStore>> {
    std::fs::create_dir_all(root).map_err(|e| StorageError::io(root.display().to_string(), e))?;
    let fs = LocalFileSystem::new_with_prefix(root)
        .map_err(|e| StorageError::io(root.display().to_string(), e))?
        .with_fsync(true);
    Ok(Arc::new(fs))
}

/// Opens the store `cfg` names, after [`StoreConfig::validate`]. S3 settings left out fall back
/// to the standard `AWS_*` environment variables (credentials, `AWS_ENDPOINT`, ...). Nothing is
/// contacted yet: a wrong endpoint or key shows on the first request.
pub fn open_store(cfg: &StoreConfig) -> Result<Arc<dyn ObjectStore>> {
    cfg.validate()?;
    match cfg {
        StoreConfig::Local { path } => open_local_store(path),
        StoreConfig::S3 {
            endpoint,
            bucket,
            region,
            access_key_id,
            secret_access_key,
            allow_http,
            prefix,
        } => {
            install_tls_provider();
            let mut b = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_region(region)
                .with_allow_http(*allow_http)
                .with_conditional_put(S3ConditionalPut::ETagMatch);
            if let Some(e) = endpoint {
                b = b.with_endpoint(e);
            }
            if let (Some(k), Some(s)) = (access_key_id, secret_access_key) {
                b = b.with_access_key_id(k).with_secret_access_key(s);
            }
            let s3 = b
                .build()
                .map_err(|e| StorageError::io(format!("s3 bucket {bucket}"), e))?;
            Ok(match prefix {
                Some(p) => Arc::new(PrefixStore::new(s3, p.as_str())),
                None => Arc::new(s3),
            })
        }
    }
}

/// reqwest is built with `rustls-no-provider`: rustls needs a process-wide crypto provider
/// before the first client is made. Ours is ring (no aws-lc C build); if the embedding
/// program installed one already, that one stays.
fn install_tls_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _already_installed = rustls::crypto::ring::default_provider().install_default();
    });
}
