//! `quiver coord recover`: rebuilds coord directories from the newest
//! metadata backup in the object store (`quiver_coord::backup`), after every
//! coord lost its directory. Every coord is rebuilt from the same backup;
//! none may be running, and a directory that still holds Raft state is
//! refused (or, with `--force`, moved aside).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use object_store::ObjectStore;
use quiver_coord::backup;
use quiver_roles::config::{self, CoordConfig};

use super::local;

/// Coord ids and their directories.
type Coords = Vec<(u64, PathBuf)>;

pub async fn run(dir: Option<PathBuf>, coord_config: Option<PathBuf>, force: bool) -> Result<()> {
    let (store, coords) = match (dir, coord_config) {
        (Some(dir), _) => local_cluster(&dir)?,
        (None, Some(path)) => {
            let cfg: CoordConfig = config::load(&path, std::env::vars(), &[])?;
            let Some(store) = &cfg.store else {
                bail!(
                    "{}: no `store`: this coord wrote no metadata backups",
                    path.display()
                );
            };
            let store = quiver_storage::open_store(store).context("opening the object store")?;
            (store, vec![(cfg.id, cfg.dir)])
        }
        (None, None) => {
            bail!("name the coords: --dir DIR (a local cluster) or --coord-config FILE")
        }
    };
    let Some((index, bytes)) = backup::latest(&store).await? else {
        bail!(
            "the object store holds no metadata backup ({}/)",
            backup::BACKUP_PREFIX
        );
    };
    for (id, dir) in &coords {
        if force {
            move_aside(dir)?;
        }
        let r = backup::restore(dir, *id, &bytes)
            .with_context(|| format!("rebuilding coord {id} in {}", dir.display()))?;
        println!(
            "coord {id}: rebuilt in {} from the backup at log index {index} ({} collections, cluster {})",
            dir.display(),
            r.collections,
            r.cluster_id.as_deref().unwrap_or("not yet named")
        );
    }
    Ok(())
}

/// The store and every coord of the local cluster in `dir`, none running.
fn local_cluster(dir: &Path) -> Result<(Arc<dyn ObjectStore>, Coords)> {
    let file = local::ClusterFile::read(dir)?;
    let mut coords = Vec::new();
    for p in file.by_role("coord") {
        if local::running(p.pid) {
            bail!(
                "coord {} is running (pid {}): stop every coord first (quiver cluster down --dir {})",
                p.id,
                p.pid,
                dir.display()
            );
        }
        coords.push((p.id, dir.join(format!("coord-{}", p.id))));
    }
    let store = quiver_storage::open_local_store(&dir.join("objects"))
        .context("opening the cluster's object store")?;
    Ok((store, coords))
}

/// Moves a directory that holds anything to `DIR.before-recover-<unix time>`.
fn move_aside(dir: &Path) -> Result<()> {
    let holds = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
    if !holds {
        return Ok(());
    }
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let aside = PathBuf::from(format!("{}.before-recover-{secs}", dir.display()));
    std::fs::rename(dir, &aside)
        .with_context(|| format!("moving {} to {}", dir.display(), aside.display()))?;
    println!("moved {} aside to {}", dir.display(), aside.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use quiver_common::{CollectionSchema, Metric};
    use quiver_coord::{Coord, MetaOps};
    use tokio_util::sync::CancellationToken;

    use super::*;

    /// `quiver coord recover --coord-config FILE`: a coord's directory is
    /// rebuilt from the backups its `store` holds, opens, and holds what was
    /// acknowledged; a directory with state is refused unless `--force`.
    #[tokio::test]
    async fn a_coord_directory_is_rebuilt_from_its_config_s_store() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let objects = tmp.path().join("objects");
        let store = quiver_storage::open_local_store(&objects)?;
        let old_dir = tmp.path().join("old");
        let coord = Coord::open(&old_dir, 1).await?;
        let stop = CancellationToken::new();
        backup::spawn(&coord, store.clone(), Duration::from_secs(5), stop.clone());
        coord
            .create_collection(CollectionSchema::simple("kept", 4), 1, Metric::L2, None)
            .await?;
        stop.cancel();
        coord.shutdown().await?;

        let dir = tmp.path().join("coord-1");
        let toml = tmp.path().join("coord-1.toml");
        std::fs::write(
            &toml,
            format!(
                "id = 1\ndir = {dir:?}\nmembers = [{{ id = 1, addr = \"127.0.0.1:1\" }}]\n\
                 store = {{ kind = \"local\", path = {objects:?} }}\n"
            ),
        )?;
        run(None, Some(toml.clone()), false).await?;
        // Rebuilt once: a second run finds state there and refuses...
        assert!(run(None, Some(toml.clone()), false).await.is_err());
        // ... unless told to move it aside.
        run(None, Some(toml), true).await?;
        let moved = std::fs::read_dir(tmp.path())?
            .filter_map(|e| e.ok())
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("coord-1.before-recover-")
            });
        assert!(moved, "the old directory is kept aside");

        let coord = Coord::open(&dir, 1).await?;
        assert!(
            coord.state().collection("kept").is_some(),
            "acknowledged metadata back"
        );
        coord.shutdown().await?;
        Ok(())
    }
}
