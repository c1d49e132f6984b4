//! Disk full: the cluster's object store (`DIR/objects`, every WAL, segment
//! and backup) lives on a small tmpfs mounted before the cluster starts; the
//! scenario fills it with a file, holds it full, then deletes the file.
//! Writes must be refused at once with a clear status, searches must go on,
//! writes must resume by themselves within 5 s, and nothing acknowledged may
//! be lost. Mounting needs root; without it the scenario is skipped (and
//! says so). `tests/pymilvus/disk_full.py` measures the same on standalone.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use quiver_client::Rows;

use super::load::{self, DIM, LoadStats};
use super::report::ScenarioReport;
use super::scenarios::{COLLECTION, Ctx};

/// Size of the tmpfs: roomy for every scenario's data, small to fill.
const TMPFS_MIB: u64 = 256;
const HOLD_FULL: Duration = Duration::from_secs(3);
const PROBE_KEYS: i64 = 900_000_000;

/// Mounts a small tmpfs on `DIR/objects` (before the cluster writes there).
/// Returns why not when it cannot (not root, no mount permission).
pub(super) fn mount(dir: &Path) -> std::result::Result<PathBuf, String> {
    let objects = dir.join("objects");
    std::fs::create_dir_all(&objects).map_err(|e| format!("{}: {e}", objects.display()))?;
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={TMPFS_MIB}m"), "tmpfs"])
        .arg(&objects)
        .output()
        .map_err(|e| format!("mount: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "mounting a tmpfs needs root: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(objects)
}

pub(super) fn unmount(objects: &Path) {
    let _ = Command::new("umount").arg(objects).status();
}

/// Writes zeros to `path` until the filesystem is full.
fn fill(path: &Path) -> Result<u64> {
    let mut f = std::fs::File::create(path).with_context(|| format!("{}", path.display()))?;
    let chunk = vec![0u8; 1 << 20];
    let mut written = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => return Err(e).context("filling the disk"),
        }
    }
    let _ = f.flush();
    Ok(written)
}

pub(super) async fn disk_full(
    ctx: &mut Ctx<'_>,
    mounted: &std::result::Result<PathBuf, String>,
) -> Result<ScenarioReport> {
    let objects = match mounted {
        Ok(p) => p.clone(),
        Err(why) => {
            let mut r = ScenarioReport::new("disk full", "not run", LoadStats::default());
            r.figure("skipped", why.clone());
            return Ok(r);
        }
    };
    let load = ctx.load().await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let client = super::connect(&ctx.file.proxy).await?;
    let probe = |k: i64| {
        let ids: Vec<i64> = (k..k + 10).collect();
        let vectors = ids.iter().flat_map(|&id| load::vector(id)).collect();
        Rows::new(DIM, vectors).with_ids(ids)
    };
    let filler = objects.join("filler");
    let filled = fill(&filler)?;
    let t0 = Instant::now();
    // The first insert that is refused, and how long it took to answer.
    let mut key = PROBE_KEYS;
    let mut acked_probes = Vec::new();
    let (refused, refusal_ms) = loop {
        let t = Instant::now();
        let r = client.insert(COLLECTION, probe(key)).await;
        let ms = t.elapsed().as_millis() as u64;
        match r {
            Ok(_) => acked_probes.extend(key..key + 10),
            Err(e) => break (e.to_string(), ms),
        }
        key += 10;
        if t0.elapsed() > Duration::from_secs(30) {
            bail!("no insert was refused 30 s after the disk filled");
        }
    };
    let refused_after_ms = t0.elapsed().as_millis() as u64;
    tokio::time::sleep(HOLD_FULL).await;
    std::fs::remove_file(&filler).context("deleting the filler")?;
    let t1 = Instant::now();
    let resumed = loop {
        key += 10;
        if client.insert(COLLECTION, probe(key)).await.is_ok() {
            acked_probes.extend(key..key + 10);
            break Some(t1.elapsed().as_millis() as u64);
        }
        if t1.elapsed() > Duration::from_secs(30) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let fault = format!(
        "the object store's filesystem (a {TMPFS_MIB} MiB tmpfs) filled with a {} MiB file for {} s, then the file deleted",
        filled >> 20,
        HOLD_FULL.as_secs()
    );
    let mut r = ctx.finish("disk full", &fault, load).await?;
    let missing = load::missing(&ctx.file.proxy, COLLECTION, &acked_probes).await?;
    r.missing_rows += missing.len();
    r.figure("first_refusal_ms_after_full", refused_after_ms);
    r.figure("refused_insert_answered_ms", refusal_ms);
    r.figure("writes_resumed_ms_after_space", resumed.unwrap_or(0));
    r.check(
        format!("a write on the full disk is refused with a clear status ({refused})"),
        refused.to_lowercase().contains("space") || refused.to_lowercase().contains("disk"),
    );
    r.check_time(
        format!("the refused write is answered within 1 s ({refusal_ms} ms)"),
        refusal_ms <= 1_000,
    );
    r.check(
        format!("writes resume by themselves once space returns ({resumed:?} ms)"),
        resumed.is_some(),
    );
    r.check_time(
        "writes resume within 5 s of space returning",
        resumed.is_some_and(|ms| ms <= 5_000),
    );
    r.check(
        format!(
            "0 acknowledged probe rows missing ({} of {})",
            missing.len(),
            acked_probes.len()
        ),
        missing.is_empty(),
    );
    r.check("0 failed searches", r.load.searches_failed == 0);
    Ok(r)
}
