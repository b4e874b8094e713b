//! Terminals over TCP: one task per connection, pipelined requests up to a
//! bound, limits on connections, frame size and idleness, and graceful
//! shutdown.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clubswitch_wire::{Frame, FrameCodec, LengthHeader};
use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::task::TaskTracker;

use crate::handler::Switch;
use crate::tls::Reloading;

/// Accepts terminal connections until `shutdown` turns true.
pub async fn serve(
    switch: Arc<Switch>,
    listener: TcpListener,
    header: LengthHeader,
    tls: Option<Arc<Reloading>>,
    slots: Arc<Semaphore>,
    tracker: TaskTracker,
    mut shutdown: watch::Receiver<bool>,
) {
    let codec = FrameCodec::new(header, switch.cfg.limits.max_frame);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(v) => v,
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            switch
                .metrics
                .connections_refused
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "connection refused: at the connection limit");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let switch = Arc::clone(&switch);
        let shutdown = shutdown.clone();
        let tls = tls.clone();
        tracker.spawn(async move {
            switch
                .metrics
                .connections_open
                .fetch_add(1, Ordering::Relaxed);
            switch
                .metrics
                .connections_total
                .fetch_add(1, Ordering::Relaxed);
            match tls {
                None => {
                    let (r, w) = stream.into_split();
                    connection(&switch, Some(peer), r, w, codec, shutdown).await;
                }
                // The handshake happens here, in the connection's task, so
                // a slow one holds up no other terminal.
                Some(tls) => {
                    if let Some(s) = tls.handshake(stream).await {
                        let (r, w) = tokio::io::split(s);
                        connection(&switch, Some(peer), r, w, codec, shutdown).await;
                    }
                }
            }
            switch
                .metrics
                .connections_open
                .fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
}

async fn handle(switch: Arc<Switch>, frame: Bytes) -> Option<Bytes> {
    switch.handle(frame).await
}

/// One terminal connection. Reads frames while fewer than the in-flight
/// limit are being processed; writes each response as soon as it is ready.
/// Closed when the peer sends nothing, or takes nothing, for the idle
/// timeout.
async fn connection<R, W>(
    switch: &Arc<Switch>,
    peer: Option<std::net::SocketAddr>,
    r: R,
    w: W,
    codec: FrameCodec,
    mut shutdown: watch::Receiver<bool>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = FramedRead::new(r, codec);
    let mut writer = FramedWrite::new(w, codec);
    let idle = Duration::from_secs(switch.cfg.limits.idle_timeout_secs);
    let max_in_flight = switch.cfg.limits.in_flight_per_connection;
    let mut in_flight = FuturesUnordered::new();
    let mut reading = !*shutdown.borrow();

    while reading || !in_flight.is_empty() {
        tokio::select! {
            Some(resp) = in_flight.next(), if !in_flight.is_empty() => {
                if let Some(bytes) = resp {
                    // A peer that reads nothing would hold this task, and
                    // its connection's place, for ever: a write gets the
                    // idle timeout too. What is still in flight is dropped;
                    // each request's record answers its retransmission.
                    match tokio::time::timeout(idle, writer.send(bytes)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            tracing::debug!(?peer, "write: {e}");
                            reading = false;
                        }
                        Err(_) => {
                            tracing::debug!(?peer, "write timeout: the peer reads nothing");
                            return;
                        }
                    }
                }
            }
            next = tokio::time::timeout(idle, reader.next()), if reading && in_flight.len() < max_in_flight => {
                match next {
                    Err(_) => {
                        tracing::debug!(?peer, "idle timeout");
                        reading = false;
                    }
                    Ok(None) => reading = false,
                    Ok(Some(Ok(Frame::KeepAlive))) => {}
                    Ok(Some(Ok(Frame::Message(m)))) => in_flight.push(handle(Arc::clone(switch), m)),
                    Ok(Some(Err(e))) => {
                        switch.metrics.framing_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(?peer, "closing the connection: {e}");
                        reading = false;
                    }
                }
            }
            _ = shutdown.changed(), if reading => reading = false,
        }
    }
    let _ = tokio::time::timeout(idle, SinkExt::<Bytes>::flush(&mut writer)).await;
}
