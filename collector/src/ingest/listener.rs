//! TLS accept loop: TCP accept → rustls handshake → a stream tonic can serve.
//! Each failed handshake is counted under `tls_handshake_failures` and the
//! process keeps accepting.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

use crate::metrics::Metrics;
use crate::pki::agent_id_from_cert_der;

/// Who is on the other end of a connection, as proven by TLS.
#[derive(Debug, Clone)]
pub struct AgentIdentity {
    /// Subject CN of the verified client certificate; `None` on the enrollment port.
    pub agent_id: Option<String>,
    pub peer: SocketAddr,
}

/// A TLS connection plus the identity established during its handshake.
pub struct AuthenticatedStream {
    inner: TlsStream<TcpStream>,
    identity: AgentIdentity,
}

impl Connected for AuthenticatedStream {
    type ConnectInfo = AgentIdentity;
    fn connect_info(&self) -> AgentIdentity {
        self.identity.clone()
    }
}

impl AsyncRead for AuthenticatedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for AuthenticatedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The stream of authenticated connections a tonic server consumes.
pub type Listener = ReceiverStream<Result<AuthenticatedStream, std::io::Error>>;

/// Accepts TCP connections on `listener`, completes the TLS handshake with
/// `config` (each on its own task, with a timeout), and yields the good ones.
/// `revoked` is consulted after the handshake: a revoked agent id is dropped.
pub fn spawn_tls_listener(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    metrics: Arc<Metrics>,
    port_name: &'static str,
    is_revoked: Arc<dyn Fn(&str) -> bool + Send + Sync>,
) -> Listener {
    let (tx, rx) = mpsc::channel(64);
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, port = port_name, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            let metrics = metrics.clone();
            let is_revoked = is_revoked.clone();
            tokio::spawn(async move {
                let handshake =
                    tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp))
                        .await;
                let tls = match handshake {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        metrics.inc_reject("tls_handshake");
                        tracing::warn!(%peer, port = port_name, error = %e, "TLS handshake refused");
                        return;
                    }
                    Err(_) => {
                        metrics.inc_reject("tls_handshake_timeout");
                        tracing::warn!(%peer, port = port_name, "TLS handshake timed out");
                        return;
                    }
                };
                let agent_id = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|certs| certs.first())
                    .and_then(|der| agent_id_from_cert_der(der));
                if let Some(id) = &agent_id
                    && is_revoked(id)
                {
                    metrics.inc_reject("revoked_certificate");
                    tracing::warn!(%peer, agent_id = %id, "revoked agent certificate refused");
                    return;
                }
                let stream = AuthenticatedStream {
                    inner: tls,
                    identity: AgentIdentity { agent_id, peer },
                };
                let _ = tx.send(Ok(stream)).await;
            });
        }
    });
    ReceiverStream::new(rx)
}
