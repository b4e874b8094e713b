//! TLS for the admin API and, where configured, for terminal listeners:
//! a certificate chain and key read from PEM files, and read again when
//! either file changes, without a restart.
//!
//! Guarantees:
//! - A listener with TLS configured never serves in clear: the switch does
//!   not start if the files cannot be read, and a later bad pair (a
//!   half-written file, a key that does not match) is refused and logged
//!   while the last good one goes on serving.
//! - A handshake happens off the accept loop, within [`HANDSHAKE`], so a
//!   slow or silent client holds up no one else.
//! - TLS 1.2 and 1.3 only, with rustls's safe defaults (the `ring`
//!   provider): no renegotiation, no compression, no legacy suites.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

pub use crate::config::TlsFiles;
use crate::error::SwitchError;

/// How long a client has to finish its handshake.
pub const HANDSHAKE: Duration = Duration::from_secs(10);

/// How often the files are looked at for a change.
const RELOAD_CHECK: Duration = Duration::from_secs(2);

/// A server configuration that follows its files.
pub struct Reloading {
    files: TlsFiles,
    current: ArcSwap<ServerConfig>,
}

fn tls_error(files: &TlsFiles, reason: impl std::fmt::Display) -> SwitchError {
    SwitchError::Tls {
        cert: files.cert.clone(),
        reason: reason.to_string(),
    }
}

/// The server configuration the files hold.
fn load(files: &TlsFiles) -> Result<ServerConfig, SwitchError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| tls_error(files, format!("{}: {e}", files.cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| tls_error(files, format!("{}: {e}", files.cert.display())))?;
    if certs.is_empty() {
        return Err(tls_error(files, "no certificate in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| tls_error(files, format!("{}: {e}", files.key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(files, e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| tls_error(files, e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// When a file last changed (None if it cannot be read now).
fn stamp(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Reloading {
    /// Reads the files; an error here stops the switch from starting.
    pub fn open(files: &TlsFiles) -> Result<Arc<Reloading>, SwitchError> {
        let config = load(files)?;
        Ok(Arc::new(Reloading {
            files: files.clone(),
            current: ArcSwap::from_pointee(config),
        }))
    }

    /// An acceptor with the configuration in force now.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.load_full())
    }

    /// Looks at the files every [`RELOAD_CHECK`] and takes a changed pair
    /// once it loads; a pair that does not load is logged and skipped
    /// until the files change again.
    pub fn watch(self: &Arc<Self>) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let seen = |f: &TlsFiles| (stamp(&f.cert), stamp(&f.key));
            let mut last = seen(&this.files);
            loop {
                tokio::time::sleep(RELOAD_CHECK).await;
                let now = seen(&this.files);
                if now == last {
                    continue;
                }
                last = now;
                match load(&this.files) {
                    Ok(config) => {
                        this.current.store(Arc::new(config));
                        tracing::info!(cert = %this.files.cert.display(), "TLS certificate reloaded");
                    }
                    Err(e) => {
                        tracing::error!("TLS certificate not reloaded, the previous one stays: {e}")
                    }
                }
            }
        });
    }

    /// Completes a handshake within [`HANDSHAKE`].
    pub async fn handshake(&self, stream: TcpStream) -> Option<TlsStream<TcpStream>> {
        match tokio::time::timeout(HANDSHAKE, self.acceptor().accept(stream)).await {
            Ok(Ok(s)) => Some(s),
            Ok(Err(e)) => {
                tracing::debug!("TLS handshake failed: {e}");
                None
            }
            Err(_) => {
                tracing::debug!("TLS handshake timed out");
                None
            }
        }
    }
}

/// A TCP listener whose connections arrive with their handshake done, for
/// `axum::serve`.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Accepts on `listener`, each handshake in a task of its own.
    pub fn new(listener: TcpListener, tls: Arc<Reloading>) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!("accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    break;
                }
                let (tls, tx) = (Arc::clone(&tls), tx.clone());
                tokio::spawn(async move {
                    if let Some(s) = tls.handshake(stream).await {
                        let _ = tx.send((s, peer)).await;
                    }
                });
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(v) => v,
            // The accepting task ended (it never does while the listener
            // lives): wait forever rather than spin.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
