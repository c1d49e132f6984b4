//! Which object store to open: a local (or shared) directory, or an S3-compatible bucket.
//!
//! TOML shape (serde, `kind` picks the variant, unknown fields are refused):
//!
//! ```toml
//! [store]
//! kind = "s3"
//! endpoint = "http://127.0.0.1:9000"   # omit for AWS
//! bucket = "quiver"
//! region = "us-east-1"                 # default
//! allow_http = true                    # default false
//! prefix = "cluster-a"                 # optional: every key goes under it
//! # access_key_id / secret_access_key: optional, else the AWS_* environment variables
//! ```

use std::path::{Path, PathBuf};

use object_store::path::Path as ObjectPath;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StorageError};

/// The object store holding WAL objects and segment files.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StoreConfig {
    /// A directory on this machine, or a shared file system mounted at the same path on
    /// every node. Written with fsync; put-if-absent by hard link.
    Local { path: PathBuf },
    /// An S3-compatible bucket (AWS S3, MinIO, s3s-fs, ...). It must honour conditional writes
    /// (`If-None-Match: *` on PUT): the WAL's fencing relies on them.
    S3 {
        /// `http(s)://host:port` of an S3-compatible server; `None` = AWS (or `AWS_ENDPOINT`).
        #[serde(default)]
        endpoint: Option<String>,
        bucket: String,
        #[serde(default = "default_region")]
        region: String,
        /// `None` = `AWS_ACCESS_KEY_ID` (then instance / web-identity credentials).
        #[serde(default)]
        access_key_id: Option<String>,
        /// `None` = `AWS_SECRET_ACCESS_KEY`.
        #[serde(default)]
        secret_access_key: Option<String>,
        /// Allow a plain-HTTP `endpoint` (test servers).
        #[serde(default)]
        allow_http: bool,
        /// Every key of this cluster goes under `prefix/` (several clusters in one bucket).
        #[serde(default)]
        prefix: Option<String>,
    },
}

fn default_region() -> String {
    "us-east-1".to_string()
}

fn invalid(field: &str, rule: impl Into<String>) -> StorageError {
    StorageError::Config {
        field: field.to_string(),
        rule: rule.into(),
    }
}

impl StoreConfig {
    /// The directory objects are kept in, for a store on this machine's file system.
    pub fn local_dir(&self) -> Option<&Path> {
        match self {
            StoreConfig::Local { path } => Some(path),
            StoreConfig::S3 { .. } => None,
        }
    }

    /// Checks the settings without contacting the store; errors name the field and the rule.
    pub fn validate(&self) -> Result<()> {
        match self {
            StoreConfig::Local { path } => {
                if path.as_os_str().is_empty() {
                    return Err(invalid("path", "must not be empty"));
                }
                Ok(())
            }
            StoreConfig::S3 {
                endpoint,
                bucket,
                region,
                access_key_id,
                secret_access_key,
                allow_http,
                prefix,
            } => {
                check_bucket(bucket)?;
                if region.trim().is_empty() {
                    return Err(invalid("region", "must not be empty (e.g. \"us-east-1\")"));
                }
                if let Some(e) = endpoint {
                    check_endpoint(e, *allow_http)?;
                }
                match (access_key_id, secret_access_key) {
                    (Some(_), None) => {
                        return Err(invalid(
                            "secret_access_key",
                            "must be set when access_key_id is",
                        ));
                    }
                    (None, Some(_)) => {
                        return Err(invalid(
                            "access_key_id",
                            "must be set when secret_access_key is",
                        ));
                    }
                    (Some(k), Some(_)) if k.trim().is_empty() => {
                        return Err(invalid("access_key_id", "must not be empty"));
                    }
                    _ => {}
                }
                if let Some(p) = prefix {
                    check_prefix(p)?;
                }
                Ok(())
            }
        }
    }
}

/// S3 bucket naming rules: 3..=63 of `a-z 0-9 . -`, starting and ending with a letter or digit.
fn check_bucket(b: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-';
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !(3..=63).contains(&b.len())
        || !b.chars().all(ok_char)
        || !alnum(b.chars().next())
        || !alnum(b.chars().last())
    {
        return Err(invalid(
            "bucket",
            format!(
                "{b:?} is not a bucket name: 3 to 63 of a-z 0-9 . -, starting and ending \
                 with a letter or digit"
            ),
        ));
    }
    Ok(())
}

fn check_endpoint(e: &str, allow_http: bool) -> Result<()> {
    let rest = if let Some(r) = e.strip_prefix("https://") {
        r
    } else if let Some(r) = e.strip_prefix("http://") {
        if !allow_http {
            return Err(invalid(
                "endpoint",
                format!("{e:?} is plain http: set allow_http = true or use https"),
            ));
        }
        r
    } else {
        return Err(invalid(
            "endpoint",
            format!("{e:?} must start with http:// or https://"),
        ));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(invalid("endpoint", format!("{e:?} has no host")));
    }
    Ok(())
}

fn check_prefix(p: &str) -> Result<()> {
    let bad = |why: &str| Err(invalid("prefix", format!("{p:?} {why}")));
    if p.is_empty() {
        return bad("is empty: leave prefix out instead");
    }
    if p.starts_with('/') || p.ends_with('/') {
        return bad("must not start or end with '/'");
    }
    match ObjectPath::parse(p) {
        Ok(parsed) if parsed.as_ref() == p => Ok(()),
        Ok(_) => bad("is not a normalized object path"),
        Err(e) => bad(&format!("is not a valid object path: {e}")),
    }
}

impl std::fmt::Debug for StoreConfig {
    /// Like the derived one, with the secret key redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreConfig::Local { path } => f.debug_struct("Local").field("path", path).finish(),
            StoreConfig::S3 {
                endpoint,
                bucket,
                region,
                access_key_id,
                secret_access_key,
                allow_http,
                prefix,
            } => f
                .debug_struct("S3")
                .field("endpoint", endpoint)
                .field("bucket", bucket)
                .field("region", region)
                .field("access_key_id", access_key_id)
                .field(
                    "secret_access_key",
                    &secret_access_key.as_ref().map(|_| "<redacted>"),
                )
                .field("allow_http", allow_http)
                .field("prefix", prefix)
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn base() -> Value {
        json!({"kind": "s3", "endpoint": "http://127.0.0.1:9000", "bucket": "quiver",
               "access_key_id": "k", "secret_access_key": "s", "allow_http": true})
    }

    fn parse(v: Value) -> StoreConfig {
        serde_json::from_value(v).expect("parses")
    }

    /// The field named by the validation error of `base()` with `key` set to `value`
    /// (`null` removes it).
    fn failing_field(key: &str, value: Value) -> String {
        let mut v = base();
        match value {
            Value::Null => v.as_object_mut().map(|o| o.remove(key)),
            value => v.as_object_mut().map(|o| o.insert(key.into(), value)),
        };
        match parse(v).validate() {
            Err(StorageError::Config { field, .. }) => field,
            other => panic!("{key}: expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn serde_shape_and_defaults() {
        let c = parse(json!({"kind": "s3", "bucket": "quiver"}));
        let StoreConfig::S3 {
            region,
            allow_http,
            endpoint,
            prefix,
            ..
        } = &c
        else {
            panic!("s3 expected")
        };
        assert_eq!((region.as_str(), *allow_http), ("us-east-1", false));
        assert_eq!((endpoint, prefix), (&None, &None));
        c.validate().expect("valid");
        let local = parse(json!({"kind": "local", "path": "/data/objects"}));
        assert_eq!(
            local,
            StoreConfig::Local {
                path: "/data/objects".into()
            }
        );
        let mut v = base();
        v["regoin"] = json!("eu-west-1");
        let e = serde_json::from_value::<StoreConfig>(v).expect_err("unknown field");
        assert!(e.to_string().contains("regoin"), "{e}");
        assert!(serde_json::from_value::<StoreConfig>(json!({"kind": "gcs"})).is_err());
    }

    #[test]
    fn validation_names_the_field() {
        parse(base()).validate().expect("valid");
        let local = StoreConfig::Local {
            path: PathBuf::new(),
        };
        assert!(
            matches!(local.validate(), Err(StorageError::Config { field, .. }) if field == "path")
        );
        assert_eq!(failing_field("bucket", json!("Bad_Bucket")), "bucket");
        assert_eq!(failing_field("bucket", json!("ab")), "bucket");
        assert_eq!(failing_field("bucket", json!("-quiver")), "bucket");
        assert_eq!(failing_field("region", json!(" ")), "region");
        assert_eq!(failing_field("allow_http", Value::Null), "endpoint");
        assert_eq!(
            failing_field("endpoint", json!("127.0.0.1:9000")),
            "endpoint"
        );
        assert_eq!(failing_field("endpoint", json!("https://")), "endpoint");
        assert_eq!(
            failing_field("secret_access_key", Value::Null),
            "secret_access_key"
        );
        assert_eq!(failing_field("access_key_id", Value::Null), "access_key_id");
        assert_eq!(failing_field("access_key_id", json!("")), "access_key_id");
        for p in ["", "/a", "a/", "a//b", "a/../b"] {
            assert_eq!(failing_field("prefix", json!(p)), "prefix", "{p:?}");
        }
        let mut v = base();
        v["prefix"] = json!("team-a/quiver");
        v["endpoint"] = json!("https://s3.example.com");
        parse(v).validate().expect("nested prefix, https");
    }

    #[test]
    fn debug_redacts_the_secret() {
        let d = format!("{:?}", parse(base()));
        assert!(d.contains("<redacted>") && !d.contains("\"s\""), "{d}");
    }
}
