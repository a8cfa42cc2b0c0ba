//! The accept loop: HTTP/1.1 connections under the bounds of
//! [`ConnectionLimits`] (docs/operations.md, "Limits").
//!
//! - At most `max_connections` connections are open; at the cap the loop stops
//!   accepting, so new clients wait in the kernel's backlog instead of the
//!   process running out of file descriptors.
//! - At most `max_connections_per_ip` from one address (an IPv6 /64); a
//!   connection over that is closed at once. Trusted proxies are exempt.
//! - A request's headers must arrive within `header_read_timeout`, which also
//!   closes a kept-alive connection idle that long (hyper starts it when the
//!   connection waits for its next request).
//! - A connection whose peer, while an answer waits for it, accepts less than
//!   64 KiB within `send_timeout` is closed.
//!
//! A request's body has its own bound (`BODY_TIMEOUT` in the API handler).

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::slots::Places;

/// Bounds on connections and streams; defaults as documented in
/// docs/operations.md, "Limits".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open connections at most (also held below half the process's file
    /// descriptor limit, see [`effective_max_connections`]).
    pub max_connections: usize,
    /// Open connections from one address (IPv6: one /64) at most.
    pub max_connections_per_ip: usize,
    /// Time for a request's headers to arrive; also the keep-alive idle time.
    pub header_read_timeout: Duration,
    /// Time a peer may accept no byte of an answer before the connection closes.
    pub send_timeout: Duration,
    /// Open event streams (`/api/feed`, `/eventsource/`) per principal at most.
    pub max_streams_per_principal: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 1024,
            max_connections_per_ip: 64,
            header_read_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(30),
            max_streams_per_principal: 16,
        }
    }
}

/// `configured`, held at half the soft limit on open file descriptors (the
/// rest is for the store's files and the process), at least 16.
pub fn effective_max_connections(configured: usize) -> usize {
    match open_file_limit() {
        Some(limit) => configured.min((limit / 2).max(16)),
        None => configured,
    }
}

#[cfg(unix)]
fn open_file_limit() -> Option<usize> {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    limit.current.map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

#[cfg(not(unix))]
fn open_file_limit() -> Option<usize> {
    None
}

/// Raises the soft limit on open file descriptors to the hard limit, as
/// servers do at start; a failure leaves it as it was.
pub fn raise_open_file_limit() {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        if limit.current != limit.maximum {
            let raised = rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum };
            if let Err(e) = setrlimit(Resource::Nofile, raised) {
                tracing::debug!(error = %e, "cannot raise the open file limit");
            }
        }
    }
}

/// The address a connection counts against: IPv4 as is, IPv6 by its /64.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(a) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(a) & !((1u128 << 64) - 1))),
        v4 => v4,
    }
}

/// How [`serve_connections`] runs.
pub(super) struct Settings<E> {
    pub(super) limits: ConnectionLimits,
    /// Whether an address is a trusted proxy's (no per-address cap).
    pub(super) exempt: E,
    /// Kept at the number of open connections.
    pub(super) open: tokio::sync::watch::Sender<usize>,
    /// When set, every connection is TLS (the handshake must finish within
    /// the header read timeout).
    pub(super) tls: Option<tokio_rustls::TlsAcceptor>,
}

/// One open connection, counted in [`Settings::open`] while it lives.
struct Counted(tokio::sync::watch::Sender<usize>);

impl Counted {
    fn new(open: &tokio::sync::watch::Sender<usize>) -> Self {
        open.send_modify(|n| *n += 1);
        Counted(open.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Serves `app` on `listener` until `stopping` turns true, then lets the
/// requests in flight finish and returns.
pub(super) async fn serve_connections(
    listener: TcpListener,
    app: Router,
    settings: Settings<impl Fn(IpAddr) -> bool>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) -> io::Result<()> {
    let Settings { limits, exempt, open, tls } = settings;
    let max = effective_max_connections(limits.max_connections);
    tracing::info!(
        max_connections = max,
        max_connections_per_ip = limits.max_connections_per_ip,
        "accepting connections"
    );
    let slots = Arc::new(Semaphore::new(max));
    let per_address = Arc::new(Places::default());
    let tracker = TaskTracker::new();
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => permit.map_err(io::Error::other)?,
            _ = stopped(&mut stopping) => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Per-connection errors (a reset before accept) and
                    // descriptor exhaustion: wait a little, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut stopping) => break,
        };
        let address = if exempt(peer.ip()) {
            None
        } else {
            match per_address.take(address_key(peer.ip()), limits.max_connections_per_ip) {
                Some(slot) => Some(slot),
                None => {
                    tracing::debug!(%peer, "connection refused: too many from this address");
                    drop(stream);
                    continue;
                }
            }
        };
        let app = app.clone();
        let mut stop = stopping.clone();
        let counted = Counted::new(&open);
        let tls = tls.clone();
        tracker.spawn(async move {
            let _held = (permit, address, counted);
            let _ = stream.set_nodelay(true);
            let stream = SendTimeout::new(stream, limits.send_timeout);
            let stream = match tls {
                None => tokio_util::either::Either::Left(stream),
                Some(acceptor) => {
                    match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => tokio_util::either::Either::Right(tls),
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            let io = TokioIo::new(stream);
            let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let mut request = request.map(axum::body::Body::new);
                request.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(request)
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
            let connection = builder.serve_connection(io, service);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection ended");
                    }
                    return;
                }
                _ = stopped(&mut stop) => connection.as_mut().graceful_shutdown(),
            }
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// Resolves once `stopping` is true (or its sender is gone).
async fn stopped(stopping: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stopping.wait_for(|s| *s).await;
}

/// A TCP stream whose writes fail once the peer, while an answer waits for it,
/// has accepted less than [`MIN_PROGRESS`] bytes within `timeout` (a client
/// that stops reading, or reads a byte now and then to look alive).
struct SendTimeout<S = TcpStream> {
    inner: S,
    timeout: Duration,
    /// While writes wait: when the window ends, and what the peer accepted in it.
    stalled: Option<(Pin<Box<tokio::time::Sleep>>, usize)>,
}

/// Bytes a peer must accept per send timeout while writes wait for it
/// (64 KiB per 30 s by default: about 2 KiB/s).
const MIN_PROGRESS: usize = 64 * 1024;

impl<S> SendTimeout<S> {
    fn new(inner: S, timeout: Duration) -> Self {
        SendTimeout { inner, timeout, stalled: None }
    }

    /// A write waits: `Ready(Err)` once the window has passed without enough
    /// progress; starts the window on the first wait.
    fn poll_stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let timeout = self.timeout;
        let (sleep, _) = self.stalled.get_or_insert_with(|| (Box::pin(tokio::time::sleep(timeout)), 0));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the peer accepted less than {MIN_PROGRESS} bytes in {timeout:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// A write went through: progress in the window, which closes once the
    /// peer has taken enough.
    fn wrote(&mut self, result: &io::Result<usize>) {
        if let (Some((_, progress)), Ok(n)) = (&mut self.stalled, result) {
            *progress += n;
            if *progress >= MIN_PROGRESS {
                self.stalled = None;
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SendTimeout<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SendTimeout<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(result) => {
                self.wrote(&result);
                Poll::Ready(result)
            }
            Poll::Pending => self.poll_stall(cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(result) => {
                self.wrote(&result);
                Poll::Ready(result)
            }
            Poll::Pending => self.poll_stall(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Writes `total` bytes through a [`SendTimeout`] of 1 s to a reader that
    /// takes `chunk` bytes every 10 ms through a 64 KiB pipe; whether the
    /// write ends in time-out.
    async fn times_out(chunk: usize, total: usize) -> bool {
        let (near, mut far) = tokio::io::duplex(64 * 1024);
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; chunk];
            while let Ok(n) = far.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        let mut writer = SendTimeout::new(near, Duration::from_secs(1));
        let result = writer.write_all(&vec![7u8; total]).await;
        drop(writer);
        reader.await.unwrap();
        result.is_err_and(|e| e.kind() == io::ErrorKind::TimedOut)
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_taking_a_trickle_is_timed_out_and_a_steady_one_is_not() {
        assert!(times_out(1, 1_000_000).await, "1 byte per 10 ms: 100 B/s, far below 64 KiB per second");
        assert!(!times_out(8 * 1024, 1_000_000).await, "8 KiB per 10 ms keeps up");
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        let key = |s: &str| address_key(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.1"), key("192.0.2.1"));
        assert_ne!(key("127.0.0.1"), key("127.0.0.2"));
    }
}
