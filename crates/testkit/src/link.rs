//! A TCP forwarder for one (from, to) pair of nodes that drops traffic while
//! the pair is cut.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::faults::Faults;

/// Forwards connections made to [`Link::addr`] to `target`, unless
/// `faults` cuts `from -> to`: then open connections are closed and new
/// ones are held without being read (calls hang until their deadline).
pub struct Link {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Link {
    pub async fn spawn(
        from: u64,
        to: u64,
        target: String,
        faults: Arc<Faults>,
    ) -> std::io::Result<Link> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    continue;
                };
                let _ = conn.set_nodelay(true);
                tokio::spawn(forward(conn, from, to, target.clone(), faults.clone()));
            }
        });
        Ok(Link { addr, task })
    }

    /// The address the `from` node dials to reach `to`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(mut conn: TcpStream, from: u64, to: u64, target: String, faults: Arc<Faults>) {
    let mut changes = faults.subscribe();
    // Cut: hold the connection unread until the link heals, then drop it
    // (the caller reconnects through a healthy link).
    while faults.blocks(from, to) {
        if changes.changed().await.is_err() {
            return;
        }
    }
    let Ok(mut upstream) = TcpStream::connect(&target).await else {
        return;
    };
    let _ = upstream.set_nodelay(true);
    let copy = tokio::spawn(async move {
        let _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream).await;
    });
    let abort = copy.abort_handle();
    let watch = async {
        loop {
            if changes.changed().await.is_err() || faults.blocks(from, to) {
                return;
            }
        }
    };
    tokio::select! {
        _ = copy => {}
        () = watch => abort.abort(),
    }
}
