//! Accepting connections so that silent or idle ones cannot take a server
//! down (every role's listening port goes through [`incoming`]).
//!
//! - A connection is handed to the gRPC/HTTP server only once it has spoken:
//!   its first bytes arrived (plain text) or its TLS handshake finished,
//!   within [`AcceptLimits::handshake_timeout`].
//! - At most [`AcceptLimits::max_handshakes`] connections wait to speak; a
//!   new one closes the oldest waiting one. A real client speaks within
//!   milliseconds, so a flood of silent connections only ever evicts itself
//!   and a new client is served at once.
//! - At most [`AcceptLimits::max_connections`] connections are open at all
//!   (waiting or served); at the limit new ones wait in the kernel's listen
//!   backlog until one closes, so the process never runs out of file
//!   descriptors for its own files. The limit follows the process's
//!   descriptor limit, whose soft value is raised to the hard one.

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

/// How connections are admitted (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptLimits {
    pub max_connections: usize,
    pub max_handshakes: usize,
    pub handshake_timeout: Duration,
}

impl Default for AcceptLimits {
    fn default() -> Self {
        Self {
            max_connections: default_max_connections(),
            max_handshakes: 1024,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Descriptors kept for the process's own files (WAL, segments, caches).
const RESERVED_FDS: u64 = 1024;

/// Raises this process's soft descriptor limit to the hard one; the soft
/// limit after (4,096 if it cannot be read).
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 4096;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
        lim.rlim_cur
    }
}

/// Raises the soft descriptor limit to the hard one and leaves a quarter of
/// it (at least [`RESERVED_FDS`]) to the process's own files.
fn default_max_connections() -> usize {
    let soft = raise_fd_limit().min(1 << 20);
    let reserve = (soft / 4).max(RESERVED_FDS);
    usize::try_from(soft.saturating_sub(reserve).max(64)).unwrap_or(64)
}

/// An admitted connection: plain or TLS, holding its place under
/// [`AcceptLimits::max_connections`] until it is dropped.
pub struct Accepted {
    io: Conn,
    _slot: Slot,
}

/// `quiver_open_connections`: connections the process's servers admitted
/// and have not closed (docs/metrics.md).
static OPEN: std::sync::LazyLock<quiver_metrics::IntGauge> = std::sync::LazyLock::new(|| {
    quiver_metrics::int_gauge(
        "quiver_open_connections",
        "Connections admitted to this process's servers and still open",
    )
});

/// A connection's place under the limit, counted while it is held.
struct Slot {
    _permit: OwnedSemaphorePermit,
}

impl Slot {
    fn new(permit: OwnedSemaphorePermit) -> Self {
        OPEN.inc();
        Slot { _permit: permit }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        OPEN.dec();
    }
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl tonic::transport::server::Connected for Accepted {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Accepted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Accepted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Conn::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Conn::Plain(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Connections waiting to speak, oldest first.
type Waiting = Arc<Mutex<BTreeMap<u64, CancellationToken>>>;

/// The admitted connections of `listener` (TLS when `tls` is given), for
/// tonic's `serve_with_incoming_shutdown`. The accept task stops when the
/// stream is dropped (which closes the listening socket).
pub fn incoming(
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    limits: AcceptLimits,
) -> impl Stream<Item = io::Result<Accepted>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<Accepted>(64);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let waiting: Waiting = Arc::default();
    let acceptor = tls.map(TlsAcceptor::from);
    tokio::spawn(async move {
        let mut next_id = 0u64;
        loop {
            let slot = tokio::select! {
                () = tx.closed() => return,
                s = slots.clone().acquire_owned() => match s {
                    Ok(s) => s,
                    Err(_) => return,
                },
            };
            let accepted = tokio::select! {
                () = tx.closed() => return,
                a = listener.accept() => a,
            };
            let (tcp, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: pause, keep serving.
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let id = next_id;
            next_id += 1;
            let evict = CancellationToken::new();
            {
                let mut w = waiting.lock().unwrap_or_else(|p| p.into_inner());
                w.insert(id, evict.clone());
                if w.len() > limits.max_handshakes
                    && let Some((_, oldest)) = w.pop_first()
                {
                    oldest.cancel();
                }
            }
            let (acceptor, tx, waiting) = (acceptor.clone(), tx.clone(), waiting.clone());
            tokio::spawn(async move {
                let spoke = tokio::select! {
                    () = evict.cancelled() => {
                        tracing::debug!(%peer, "closed a connection that had not spoken (too many waiting)");
                        None
                    }
                    r = tokio::time::timeout(limits.handshake_timeout, speak(tcp, acceptor)) => match r {
                        Ok(Ok(io)) => Some(io),
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "connection closed before it spoke");
                            None
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "connection silent past the handshake timeout");
                            None
                        }
                    },
                };
                waiting
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                if let Some(io) = spoke {
                    let _ = tx
                        .send(Accepted {
                            io,
                            _slot: Slot::new(slot),
                        })
                        .await;
                }
            });
        }
    });
    futures::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|c| (Ok(c), rx)) },
    )
}

/// Waits for a connection's first bytes (plain) or its TLS handshake.
async fn speak(tcp: TcpStream, tls: Option<TlsAcceptor>) -> io::Result<Conn> {
    match tls {
        None => {
            let mut first = [0u8; 1];
            if tcp.peek(&mut first).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            Ok(Conn::Plain(tcp))
        }
        Some(acceptor) => Ok(Conn::Tls(Box::new(acceptor.accept(tcp).await?))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn silent_connections_evict_each_other_and_a_client_that_speaks_gets_in() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let limits = AcceptLimits {
            max_connections: 10_000,
            max_handshakes: 8,
            handshake_timeout: Duration::from_secs(60),
        };
        let mut conns = Box::pin(incoming(listener, None, limits));
        let mut silent = Vec::new();
        for _ in 0..64 {
            silent.push(TcpStream::connect(addr).await.expect("connect"));
        }
        // All but the newest 8 silent ones are closed by the server.
        let mut closed = 0;
        for s in &mut silent[..56] {
            let mut b = [0u8; 1];
            let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut b))
                .await
                .expect("the server closes it")
                .unwrap_or(0);
            closed += usize::from(n == 0);
        }
        assert_eq!(closed, 56);
        let mut client = TcpStream::connect(addr).await.expect("connect");
        client.write_all(b"hello").await.expect("speak");
        let mut got = tokio::time::timeout(Duration::from_secs(10), conns.next())
            .await
            .expect("admitted")
            .expect("stream open")
            .expect("connection");
        let mut b = [0u8; 5];
        got.read_exact(&mut b).await.expect("read");
        assert_eq!(&b, b"hello");
    }

    #[tokio::test]
    async fn at_the_connection_limit_a_new_client_waits_for_a_free_place() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let limits = AcceptLimits {
            max_connections: 2,
            max_handshakes: 8,
            handshake_timeout: Duration::from_secs(60),
        };
        let mut conns = Box::pin(incoming(listener, None, limits));
        let mut admitted = Vec::new();
        for _ in 0..2 {
            let mut c = TcpStream::connect(addr).await.expect("connect");
            c.write_all(b"x").await.expect("speak");
            admitted.push((c, conns.next().await.expect("open").expect("conn")));
        }
        let mut third = TcpStream::connect(addr).await.expect("connect (backlog)");
        third.write_all(b"y").await.expect("speak");
        let next = conns.next();
        tokio::pin!(next);
        assert!(
            tokio::time::timeout(Duration::from_millis(200), &mut next)
                .await
                .is_err(),
            "no third connection while two are open"
        );
        drop(admitted.pop());
        let mut got = tokio::time::timeout(Duration::from_secs(10), next)
            .await
            .expect("admitted once a place is free")
            .expect("open")
            .expect("conn");
        let mut b = [0u8; 1];
        got.read_exact(&mut b).await.expect("read");
        assert_eq!(&b, b"y");
    }
}
