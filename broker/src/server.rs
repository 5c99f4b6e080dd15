//! Listeners and the per-connection loop.
//!
//! Each connection has a reader (this task) and a writer task joined by a bounded channel of
//! pending replies: the reader decodes frames and runs each handler's ordered phase, the writer
//! awaits replies in order and writes them. The channel's capacity
//! (`oxbow.max.inflight.requests.per.connection`) bounds the requests in flight per connection;
//! when it is full the reader stops reading, which pushes back on the client through TCP.
//!
//! Slow and silent clients are bounded: a partial frame's buffer grows with the bytes that
//! arrive (not the size its header declares), the bytes of frames being read count against the
//! broker-wide `queued.max.request.bytes` (a reader waits for room), a request whose bytes stop
//! arriving for `oxbow.request.read.timeout.ms` closes its connection, and a connection that
//! sends nothing for `connections.max.idle.ms` is closed as Kafka closes idle connections.
//!
//! A frame that cannot be delimited (negative or larger than `socket.request.max.bytes`), a
//! header or body that cannot be decoded, or an unknown API or version closes that connection
//! only; nothing a client sends can stop the broker serving others.

use std::net::SocketAddr;
use std::sync::Arc;

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Encodable;
use oxbow_wire::frame;
use oxbow_wire::header::{decode_request, encode_response_frame_head};
use oxbow_wire::registry::{api_versions_response, API_VERSIONS_MAX};
use oxbow_wire::splice::SPLICE_MIN_BYTES;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};

use crate::broker::{AdvertisedListener, Broker};
use crate::handlers::{self, Body, Encoded, Reply, RequestCtx};

/// A listener bound to one or more sockets.
pub struct Bound {
    pub name: Arc<str>,
    pub sockets: Vec<TcpListener>,
    pub advertised: AdvertisedListener,
}

/// Binds every configured listener. A port of 0 is resolved once and reused for each address
/// of the same listener (so `localhost` gets the same port on 127.0.0.1 and ::1).
pub async fn bind(broker: &Broker) -> anyhow::Result<Vec<Bound>> {
    let mut out = Vec::new();
    for l in &broker.config.listeners {
        let mut sockets = Vec::new();
        let mut port = l.bind_port;
        let addrs = l.bind_addrs();
        if addrs.is_empty() {
            anyhow::bail!("listener {}: cannot resolve host {:?}", l.name, l.bind_host);
        }
        for (i, addr) in addrs.iter().enumerate() {
            let addr = SocketAddr::new(addr.ip(), port);
            match TcpListener::bind(addr).await {
                Ok(s) => {
                    port = s.local_addr()?.port();
                    sockets.push(s);
                }
                // A second loopback (::1 on a host without IPv6) is optional.
                Err(e) if i > 0 => {
                    tracing::warn!(listener = %l.name, %addr, error = %e, "could not bind")
                }
                Err(e) => anyhow::bail!("listener {} cannot bind {addr}: {e}", l.name),
            }
        }
        let advertised = AdvertisedListener {
            name: l.name.clone(),
            host: l.advertised_host.clone(),
            port: if l.advertised_port == 0 {
                port
            } else {
                l.advertised_port
            },
        };
        for s in &sockets {
            tracing::info!(
                listener = %l.name,
                bound = %s.local_addr()?,
                advertised = %format!("{}:{}", advertised.host, advertised.port),
                "listening"
            );
        }
        out.push(Bound {
            name: Arc::from(l.name.as_str()),
            sockets,
            advertised,
        });
    }
    Ok(out)
}

/// Accepts connections until `shutdown` flips, then waits for every connection to finish what
/// it had in flight. `done` is dropped by each connection task when it ends.
pub async fn serve(broker: Arc<Broker>, bound: Vec<Bound>, shutdown: watch::Receiver<bool>) {
    let limit = Arc::new(Semaphore::new(broker.config.max_connections));
    let queued = Arc::new(Semaphore::new(
        broker.config.queued_max_request_bytes.div_ceil(BUDGET_UNIT),
    ));
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let mut accept_tasks = Vec::new();
    for b in bound {
        for sock in b.sockets {
            let broker = broker.clone();
            let name = b.name.clone();
            let limit = limit.clone();
            let queued = queued.clone();
            let done = done_tx.clone();
            let mut shutdown = shutdown.clone();
            accept_tasks.push(tokio::spawn(async move {
                loop {
                    let permit = tokio::select! {
                        _ = shutdown.changed() => break,
                        p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                    };
                    let (stream, peer) = tokio::select! {
                        _ = shutdown.changed() => break,
                        r = sock.accept() => match r {
                            Ok(x) => x,
                            Err(e) => {
                                tracing::warn!(error = %e, "accept failed");
                                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                                continue;
                            }
                        },
                    };
                    let _ = stream.set_nodelay(true);
                    let broker = broker.clone();
                    let name = name.clone();
                    let done = done.clone();
                    let shutdown = shutdown.clone();
                    let queued = queued.clone();
                    tokio::spawn(async move {
                        if let Err(e) =
                            connection(broker, stream, name, peer, shutdown, queued).await
                        {
                            tracing::debug!(%peer, error = %e, "connection closed");
                        }
                        drop(permit);
                        drop(done);
                    });
                }
            }));
        }
    }
    drop(done_tx);
    for t in accept_tasks {
        let _ = t.await;
    }
    // Every connection holds a sender; recv returns None once all have finished.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(30), done_rx.recv()).await;
}

/// The broker-wide budget of request bytes (`queued.max.request.bytes`) counts in these units,
/// so a frame's share fits a semaphore's `u32` permit count.
const BUDGET_UNIT: usize = 1024;

/// A partial frame gets at most this much buffer up front; beyond it the buffer grows with the
/// bytes that arrive (doubling), so a client that declares a 100 MiB frame and stalls costs
/// about 2 MiB, not 100 MiB. Requests up to this size (clients cap theirs at about 1 MiB by
/// default: Java's `max.request.size`, librdkafka's `message.max.bytes`) are still read into
/// one allocation without copies.
const INITIAL_FRAME_RESERVE: usize = 2 << 20;

/// Ready responses are coalesced into one socket write up to about this many bytes.
const WRITE_COALESCE_MAX_BYTES: usize = 1 << 20;

/// Parts handed to one `writev` at most (Linux's IOV_MAX is 1024).
const MAX_PARTS_PER_WRITE: usize = 256;

/// Frames responses for one connection and writes them with vectored writes: small pieces
/// (frame heads, most bodies) are copied into one buffer, large parts (record sets) are
/// written from their own buffers, so fetched records are never copied in user space.
struct ResponseWriter {
    wr: OwnedWriteHalf,
    small: BytesMut,
    parts: VecDeque<Bytes>,
    queued: usize,
}

impl ResponseWriter {
    fn new(wr: OwnedWriteHalf) -> Self {
        Self {
            wr,
            small: BytesMut::with_capacity(64 * 1024),
            parts: VecDeque::new(),
            queued: 0,
        }
    }

    fn push(&mut self, api_key: ApiKey, api_version: i16, correlation_id: i32, body: Body) {
        let len = body.iter().map(|b| b.len()).sum();
        encode_response_frame_head(&mut self.small, api_key, api_version, correlation_id, len);
        for part in body {
            if part.is_empty() {
                continue;
            }
            if part.len() < SPLICE_MIN_BYTES {
                self.small.put_slice(&part);
            } else {
                if !self.small.is_empty() {
                    self.parts.push_back(self.small.split().freeze());
                }
                self.parts.push_back(part);
            }
        }
        self.queued += len;
    }

    fn queued_bytes(&self) -> usize {
        self.queued
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if !self.small.is_empty() {
            self.parts.push_back(self.small.split().freeze());
        }
        while !self.parts.is_empty() {
            let slices: Vec<IoSlice<'_>> = self
                .parts
                .iter()
                .take(MAX_PARTS_PER_WRITE)
                .map(|b| IoSlice::new(b))
                .collect();
            let mut n = self.wr.write_vectored(&slices).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            while n > 0 {
                let front = self.parts.front_mut().expect("n <= queued bytes");
                if n >= front.len() {
                    n -= front.len();
                    self.parts.pop_front();
                } else {
                    front.advance(n);
                    n = 0;
                }
            }
        }
        self.queued = 0;
        Ok(())
    }
}

/// Polls a reply future once without waiting: `Some` if it is already complete. A later
/// `.await` polls it again with the real waker, so nothing is lost by the no-op one here.
fn poll_once<T>(f: &mut handlers::BoxFuture<T>) -> Option<T> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

struct Pending {
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    reply: Reply<Encoded>,
}

#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Frame(#[from] frame::FrameError),
    #[error(transparent)]
    Header(#[from] oxbow_wire::header::HeaderError),
    #[error(transparent)]
    Handler(#[from] handlers::HandlerError),
    #[error("{0:?} v{1} is not supported")]
    Unsupported(ApiKey, i16),
    #[error("no bytes of the current request for {0:?}")]
    Stalled(std::time::Duration),
}

async fn connection(
    broker: Arc<Broker>,
    stream: TcpStream,
    listener: Arc<str>,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
    queued: Arc<Semaphore>,
) -> Result<(), ConnError> {
    let max_frame = broker.config.socket_request_max_bytes;
    let idle = std::time::Duration::from_millis(broker.config.connections_max_idle_ms);
    let stall = std::time::Duration::from_millis(broker.config.request_read_timeout_ms);
    let budget_units = broker.config.queued_max_request_bytes.div_ceil(BUDGET_UNIT);
    let (mut rd, wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Pending>(broker.config.max_inflight_per_connection);

    let writer = tokio::spawn(async move {
        // Responses that are ready are coalesced into one write; the batch is written as soon
        // as the next reply is not ready yet (or nothing is queued), so a ready response never
        // waits behind a later request's fsync or long poll.
        let mut out = ResponseWriter::new(wr);
        loop {
            let p = match rx.try_recv() {
                Ok(p) => p,
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    out.flush().await?;
                    match rx.recv().await {
                        Some(p) => p,
                        None => break,
                    }
                }
            };
            let body = match p.reply {
                Reply::Now(b) => b,
                Reply::Later(mut f) => match poll_once(&mut f) {
                    Some(b) => b,
                    None => {
                        out.flush().await?;
                        f.await
                    }
                },
                Reply::Nothing => continue,
            };
            let Some(body) = body else { continue };
            out.push(p.api_key, p.api_version, p.correlation_id, body);
            if out.queued_bytes() > WRITE_COALESCE_MAX_BYTES {
                out.flush().await?;
            }
        }
        out.flush().await?;
        out.wr.shutdown().await?;
        Ok::<(), std::io::Error>(())
    });

    let result = async {
        let mut buf = BytesMut::with_capacity(16 * 1024);
        // The share of `queued.max.request.bytes` held by the frame being read.
        let mut held: Option<tokio::sync::OwnedSemaphorePermit> = None;
        loop {
            while let Some(frame) = frame::take_frame(&mut buf, max_frame)? {
                held = None;
                let req = decode_request(frame)?;
                let api_key = req.api_key;
                let api_version = req.api_version();
                let correlation_id = req.correlation_id();
                let reply = if api_key == ApiKey::ApiVersions && api_version > API_VERSIONS_MAX {
                    // KIP-511: answer as v0 with UNSUPPORTED_VERSION and our list.
                    let resp = api_versions_response(&handlers::specs(), true);
                    let mut b = BytesMut::new();
                    resp.encode(&mut b, 0).expect("v0 ApiVersions encodes");
                    Pending {
                        api_key,
                        api_version: 0,
                        correlation_id,
                        reply: Reply::Now(Some(vec![b.freeze()])),
                    }
                } else if api_key == ApiKey::Produce && api_version < 3 {
                    let body = handlers::produce::legacy_unsupported(&req.body, api_version)
                        .ok_or(ConnError::Unsupported(api_key, api_version))?;
                    Pending {
                        api_key,
                        api_version,
                        correlation_id,
                        reply: Reply::Now(Some(vec![body])),
                    }
                } else {
                    let entry = handlers::lookup(api_key)
                        .filter(|e| e.spec.supports(api_version))
                        .ok_or(ConnError::Unsupported(api_key, api_version))?;
                    let ctx = RequestCtx {
                        listener: listener.clone(),
                        peer,
                        client_id: Arc::from(req.header.client_id.as_deref().unwrap_or("")),
                        api_version,
                    };
                    let reply = entry.dispatch(broker.clone(), ctx, req.body).await?;
                    Pending {
                        api_key,
                        api_version,
                        correlation_id,
                        reply,
                    }
                };
                if tx.send(reply).await.is_err() {
                    return Ok(()); // writer failed: the socket is gone
                }
            }
            frame::check_frame(&buf, max_frame)?;
            let want = frame::bytes_wanted(&buf).min(max_frame + 4);
            if buf.len() >= 4 && held.is_none() {
                // A frame has begun: take its declared size from the broker-wide budget before
                // reading the rest, so the bytes of half-read requests stay bounded.
                let units = (buf.len() + want).div_ceil(BUDGET_UNIT).min(budget_units) as u32;
                held = tokio::select! {
                    p = queued.clone().acquire_many_owned(units) => p.ok(),
                    _ = shutdown.changed() => return Ok(()),
                };
            }
            buf.reserve(want.min(buf.len().max(INITIAL_FRAME_RESERVE)).max(4096));
            // Between requests a connection may idle up to `connections.max.idle.ms`; inside
            // a request the next bytes must come within `oxbow.request.read.timeout.ms`.
            let (limit, mid_request) = if buf.is_empty() {
                (idle, false)
            } else {
                (stall, true)
            };
            let n = tokio::select! {
                r = tokio::time::timeout(limit, rd.read_buf(&mut buf)) => match r {
                    Ok(r) => r?,
                    Err(_) if mid_request => return Err(ConnError::Stalled(limit)),
                    Err(_) => {
                        tracing::debug!(%peer, "closing a connection idle for connections.max.idle.ms");
                        0
                    }
                },
                _ = shutdown.changed() => 0,
            };
            if n == 0 {
                return Ok(());
            }
        }
    }
    .await;
    if let Err(e) = &result {
        tracing::info!(%peer, error = %e, "closing connection after a bad request");
    }
    drop(tx);
    // Let in-flight replies finish (graceful shutdown waits here), unless the request was bad:
    // then Kafka closes the socket at once.
    match &result {
        Ok(()) => {
            let _ = writer.await;
        }
        Err(_) => writer.abort(),
    }
    result
}
