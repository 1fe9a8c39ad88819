//! Serving the API over plain HTTP or HTTPS (axum-server for both, so both get the same
//! limits), with bounds that keep slow or numerous clients from exhausting the node (see:
//! attack review item 8, 1100 half-open connections made `/health` fail with "too many open
//! files"):
//!
//! * `api.header_read_timeout`: a request's headers must arrive within it, or the connection
//!   is closed. It covers the first request (with the protocol detection before it and the
//!   TLS handshake) and, in hyper, the wait for each next request on a keep-alive connection.
//! * `api.idle_timeout`: a connection that moved no bytes for this long is closed when no
//!   request is being answered on it, or when the answer is stuck because the client does not
//!   read it (a slow reader). HTTP/2 connections included.
//! * `api.max_connections` and `api.max_connections_per_ip`: a connection beyond either is
//!   closed as soon as it is accepted, so one address cannot take every slot.
//! * Accept errors (`EMFILE` when out of descriptors) do not end or spin the accept loop:
//!   axum-server backs off 50 ms and goes on; they are logged at most every 10 s.
//! * At start the open-file soft limit is raised to the hard limit, and `api.max_connections`
//!   is lowered (with a warning) when it would not leave half the descriptors to the index,
//!   the queue and the tailed files.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Router;
use axum::body::{Body, HttpBody};
use axum::http::Response;
use axum_server::accept::{Accept, DefaultAcceptor};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tracing::{info, warn};

use crate::config::NodeConfig;

/// The connection limits of `[api]`, as applied.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
}

/// Serve `app` on `config.listen` until `shutdown` resolves, then drain for up to 10 s.
pub async fn serve(
    app: Router,
    config: &NodeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut limits = ConnectionLimits {
        header_read_timeout: config.api.header_read_timeout,
        idle_timeout: config.api.idle_timeout,
        max_connections: config.api.max_connections,
        max_connections_per_ip: config.api.max_connections_per_ip,
    };
    if let Some(open_files) = raise_open_file_limit() {
        let fits = (open_files / 2) as usize;
        if limits.max_connections > fits {
            warn!(
                max_connections = limits.max_connections,
                open_file_limit = open_files,
                lowered_to = fits,
                "api.max_connections is more than half the open-file limit; lowering it (raise LimitNOFILE to allow more)"
            );
            limits.max_connections = fits.max(1);
            limits.max_connections_per_ip =
                limits.max_connections_per_ip.min(limits.max_connections);
        }
    }
    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("listening on {}", config.listen))?;
    let connections = Arc::new(Connections::new(limits));
    let handle = axum_server::Handle::new();
    {
        let handle = handle.clone();
        tokio::spawn(async move {
            shutdown.await;
            handle.graceful_shutdown(Some(Duration::from_secs(10)));
        });
    }
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    info!(
        listen = %config.listen, scheme, data_dir = %config.data_dir.display(), node = %config.node_name,
        max_connections = limits.max_connections, max_connections_per_ip = limits.max_connections_per_ip,
        "lograft is serving"
    );
    match &config.tls {
        None => {
            if !config.listen.ip().is_loopback() {
                for _ in 0..3 {
                    warn!(
                        listen = %config.listen,
                        "INSECURE: serving plain HTTP on a non-loopback address: passwords, tokens and logs cross the network in clear; configure [tls] cert and key"
                    );
                }
            }
            let acceptor = LimitAcceptor {
                inner: DefaultAcceptor::new(),
                connections,
                idle_timeout: limits.idle_timeout,
            };
            let mut server = axum_server::from_tcp(listener)
                .context("HTTP server")?
                .acceptor(acceptor);
            // axum-server installs hyper's timer, which this timeout needs.
            server
                .http_builder()
                .http1()
                .header_read_timeout(limits.header_read_timeout);
            server
                .first_request_timeout(limits.header_read_timeout)
                .accept_error_handler(log_accept_error)
                .handle(handle)
                .serve(app)
                .await
                .context("HTTP server")?;
        }
        Some(tls) => {
            // One crypto provider for rustls, chosen explicitly (reqwest and axum-server agree).
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            let tls_config =
                axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                    .await
                    .with_context(|| {
                        format!(
                            "loading tls.cert {} and tls.key {}",
                            tls.cert.display(),
                            tls.key.display()
                        )
                    })?;
            let acceptor = LimitAcceptor {
                inner: axum_server::tls_rustls::RustlsAcceptor::new(tls_config)
                    .handshake_timeout(limits.header_read_timeout),
                connections,
                idle_timeout: limits.idle_timeout,
            };
            let mut server = axum_server::from_tcp(listener)
                .with_context(|| format!("HTTPS server on {}", config.listen))?
                .acceptor(acceptor);
            server
                .http_builder()
                .http1()
                .header_read_timeout(limits.header_read_timeout);
            server
                .first_request_timeout(limits.header_read_timeout)
                .accept_error_handler(log_accept_error)
                .handle(handle)
                .serve(app)
                .await
                .with_context(|| format!("HTTPS server on {}", config.listen))?;
        }
    }
    Ok(())
}

/// Raise the open-file soft limit to the hard limit; returns the limit now in force.
fn raise_open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    // `rlim_t` is u64 on Linux but not on every target.
    #[allow(clippy::unnecessary_cast)]
    let current = limit.rlim_cur as u64;
    (limit.rlim_cur != libc::RLIM_INFINITY).then_some(current)
}

/// Accept errors, refused connections and failed TLS handshakes, logged at most every 10 s
/// (a flood of them must not become a flood of log lines).
fn log_accept_error(peer: Option<&SocketAddr>, error: &io::Error) {
    static LAST_LOGGED_SECS: AtomicU64 = AtomicU64::new(0);
    static SUPPRESSED: AtomicU64 = AtomicU64::new(0);
    let now = since_start().as_secs() + 10;
    let last = LAST_LOGGED_SECS.load(Ordering::Relaxed);
    if now < last + 10
        || LAST_LOGGED_SECS
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        SUPPRESSED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let suppressed = SUPPRESSED.swap(0, Ordering::Relaxed);
    match peer {
        Some(peer) => warn!(%peer, error = %error, suppressed, "connection not served"),
        None => warn!(error = %error, suppressed, "accepting a connection failed; retrying"),
    }
}

fn since_start() -> Duration {
    static START: LazyLock<Instant> = LazyLock::new(Instant::now);
    START.elapsed()
}

/// Open connections, in total and by client address.
struct Connections {
    limits: ConnectionLimits,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

impl Connections {
    fn new(limits: ConnectionLimits) -> Connections {
        Connections {
            limits,
            open: Mutex::new((0, HashMap::new())),
        }
    }

    /// A slot for a new connection from `ip`, or why there is none.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> io::Result<ConnectionSlot> {
        let mut open = self.open.lock().expect("connections lock");
        let (total, by_ip) = &mut *open;
        if *total >= self.limits.max_connections {
            return Err(io::Error::other(format!(
                "api.max_connections ({}) reached",
                self.limits.max_connections
            )));
        }
        let from_ip = by_ip.entry(ip).or_default();
        if *from_ip >= self.limits.max_connections_per_ip {
            return Err(io::Error::other(format!(
                "api.max_connections_per_ip ({}) reached for {ip}",
                self.limits.max_connections_per_ip
            )));
        }
        *from_ip += 1;
        *total += 1;
        Ok(ConnectionSlot {
            connections: self.clone(),
            ip,
        })
    }
}

/// Held for as long as a connection is open.
struct ConnectionSlot {
    connections: Arc<Connections>,
    ip: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.connections.open.lock().expect("connections lock");
        let (total, by_ip) = &mut *open;
        *total -= 1;
        if let Some(from_ip) = by_ip.get_mut(&self.ip) {
            *from_ip -= 1;
            if *from_ip == 0 {
                by_ip.remove(&self.ip);
            }
        }
    }
}

/// Admits connections within the limits, then hands them to `inner` (TLS or nothing) and
/// wraps them to close them when idle.
#[derive(Clone)]
struct LimitAcceptor<A> {
    inner: A,
    connections: Arc<Connections>,
    idle_timeout: Duration,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<A, S> Accept<TcpStream, S> for LimitAcceptor<A>
where
    A: Accept<TcpStream, InFlight<S>> + Clone + Send + 'static,
    A::Future: Send,
    A::Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    A::Service: Send + 'static,
    S: Send + 'static,
{
    type Stream = IdleStream<A::Stream>;
    type Service = A::Service;
    type Future = BoxFuture<io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let slot = stream
            .peer_addr()
            .and_then(|peer| self.connections.admit(peer.ip()));
        let inner = self.inner.clone();
        let idle_timeout = self.idle_timeout;
        Box::pin(async move {
            // Refused: the stream is dropped here, which closes it.
            let slot = slot?;
            let activity = Arc::new(Activity::default());
            let service = InFlight {
                inner: service,
                activity: activity.clone(),
            };
            let (stream, service) = inner.accept(stream, service).await?;
            Ok((
                IdleStream::new(stream, activity, idle_timeout, slot),
                service,
            ))
        })
    }
}

/// What a connection is doing: requests being answered, and when bytes last moved.
#[derive(Default)]
struct Activity {
    in_flight: AtomicUsize,
    last_active_ms: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        self.last_active_ms
            .store(since_start().as_millis() as u64, Ordering::Relaxed);
    }
}

/// Counts a request as in flight until its response body is dropped (written or abandoned).
struct RequestInFlight(Arc<Activity>);

impl RequestInFlight {
    fn new(activity: Arc<Activity>) -> RequestInFlight {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        RequestInFlight(activity)
    }
}

impl Drop for RequestInFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The per-connection service, counting the requests in flight on its connection.
#[derive(Clone)]
struct InFlight<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S, R> tower::Service<R> for InFlight<S>
where
    S: tower::Service<R, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let in_flight = RequestInFlight::new(self.activity.clone());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| {
                Body::new(CountedBody {
                    inner: body,
                    _in_flight: in_flight,
                })
            }))
        })
    }
}

/// A response body that keeps its request counted as in flight.
struct CountedBody {
    inner: Body,
    _in_flight: RequestInFlight,
}

impl HttpBody for CountedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A connection that fails with `TimedOut` once it has been idle for `idle_timeout` (see the
/// module doc); hyper then closes it.
struct IdleStream<S> {
    inner: S,
    activity: Arc<Activity>,
    idle_timeout: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    /// The last write could not proceed: the client is not reading.
    write_stalled: bool,
    _slot: ConnectionSlot,
}

impl<S> IdleStream<S> {
    fn new(
        inner: S,
        activity: Arc<Activity>,
        idle_timeout: Duration,
        slot: ConnectionSlot,
    ) -> IdleStream<S> {
        // Idle time counts from now, not from the process start.
        activity.touch();
        IdleStream {
            inner,
            activity,
            idle_timeout,
            timer: Box::pin(tokio::time::sleep(idle_timeout)),
            write_stalled: false,
            _slot: slot,
        }
    }

    /// Called when the connection waits: time it out, or arm the timer for when it could.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        loop {
            let last = Duration::from_millis(self.activity.last_active_ms.load(Ordering::Relaxed));
            let deadline = last + self.idle_timeout;
            let now = since_start();
            let answering = self.activity.in_flight.load(Ordering::Relaxed) > 0;
            if now >= deadline && (!answering || self.write_stalled) {
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle longer than api.idle_timeout",
                ));
            }
            // While a request is answered, look again one timeout later.
            let wait = if now >= deadline {
                self.idle_timeout
            } else {
                deadline - now
            };
            self.timer
                .as_mut()
                .reset(tokio::time::Instant::now() + wait);
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for IdleStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.activity.touch();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => self.poll_idle(cx).map(Err),
        }
    }
}

impl<S: AsyncWrite + Unpin> IdleStream<S> {
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match written {
            Poll::Ready(Ok(n)) => {
                self.write_stalled = false;
                if n > 0 {
                    self.activity.touch();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => {
                self.write_stalled = true;
                self.poll_idle(cx).map(Err)
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.after_write(cx, written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.after_write(cx, written)
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

    fn idle_stream(
        inner: tokio::io::DuplexStream,
        idle_timeout: Duration,
    ) -> IdleStream<tokio::io::DuplexStream> {
        let connections = Arc::new(Connections::new(ConnectionLimits {
            header_read_timeout: idle_timeout,
            idle_timeout,
            max_connections: 10,
            max_connections_per_ip: 10,
        }));
        let slot = connections.admit("10.0.0.1".parse().unwrap()).unwrap();
        IdleStream::new(inner, Arc::new(Activity::default()), idle_timeout, slot)
    }

    #[tokio::test]
    async fn a_silent_connection_times_out_and_a_new_one_is_not_old() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let idle = Duration::from_millis(500);
        let (client, server) = tokio::io::duplex(64);
        let mut silent = idle_stream(server, idle);
        let mut buffer = [0u8; 8];
        let err = silent.read(&mut buffer).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        drop(client);
        // Well after the process started, a new connection still gets its whole idle time:
        // its first read waits (nothing sent yet) and then gets the bytes.
        tokio::time::sleep(idle * 3).await;
        let (mut client, server) = tokio::io::duplex(64);
        let mut fresh = idle_stream(server, idle);
        let reader = tokio::spawn(async move {
            let mut buffer = [0u8; 5];
            fresh.read_exact(&mut buffer).await.map(|_| buffer)
        });
        tokio::task::yield_now().await;
        client.write_all(b"hello").await.unwrap();
        assert_eq!(&reader.await.unwrap().unwrap(), b"hello");
    }

    #[test]
    fn connections_are_capped_in_total_and_per_address() {
        let connections = Arc::new(Connections::new(ConnectionLimits {
            header_read_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            max_connections: 3,
            max_connections_per_ip: 2,
        }));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = connections.admit(a).unwrap();
        let _second = connections.admit(a).unwrap();
        let err = connections.admit(a).err().unwrap().to_string();
        assert!(
            err.contains("api.max_connections_per_ip (2) reached for 10.0.0.1"),
            "{err}"
        );
        let _third = connections.admit(b).unwrap();
        let err = connections.admit(b).err().unwrap().to_string();
        assert!(err.contains("api.max_connections (3) reached"), "{err}");
        drop(first);
        connections.admit(a).unwrap();
    }
}
