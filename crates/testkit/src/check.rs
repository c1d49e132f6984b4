//! Reading back what a test wrote.

use anyhow::Result;
use quiver_client::Client;

/// How many of the Int64 keys `ids` (field `id`) are not in `collection`
/// (Strong reads through the proxy, 500 keys per query).
pub async fn missing_keys(client: &Client, collection: &str, ids: &[i64]) -> Result<usize> {
    let mut missing = 0;
    for chunk in ids.chunks(500) {
        let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
        let filter = format!("id in [{}]", list.join(","));
        let rows = client.query(collection, &filter, &["id"], None).await?;
        missing += chunk.len().saturating_sub(rows.len());
    }
    Ok(missing)
}

/// Whether every key of `ids` is in `collection`.
pub async fn has_all(client: &Client, collection: &str, ids: &[i64]) -> Result<bool> {
    Ok(missing_keys(client, collection, ids).await? == 0)
}
