//! HTTPS for the console: a rustls (ring) server config for browsers (TLS 1.2 and 1.3,
//! ALPN http/1.1) and a listener that completes handshakes off the accept path so a
//! slow client cannot stall others.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::error::ConsoleError;

/// Longest a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Server config from a PEM certificate chain and key.
pub fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<rustls::ServerConfig, ConsoleError> {
    let certs = shaobing_wire::tls::certs_from_pem(cert_pem, "console")
        .map_err(|e| ConsoleError::Tls(e.to_string()))?;
    let key =
        shaobing_wire::tls::key_from_pem(key_pem).map_err(|e| ConsoleError::Tls(e.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(shaobing_wire::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ConsoleError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ConsoleError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Yields connections whose TLS handshake has completed.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `listener`; handshakes run in their own tasks until `stop`.
    pub fn spawn(
        listener: TcpListener,
        config: rustls::ServerConfig,
        local: SocketAddr,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> (TlsListener, tokio::task::JoinHandle<()>) {
        let (tx, ready) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let task = tokio::spawn(async move {
            tokio::pin!(stop);
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    _ = &mut stop => return,
                };
                let (tcp, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        tracing::debug!(%error, "console accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "console TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "console TLS handshake timed out"),
                    }
                });
            }
        });
        (TlsListener { ready, local }, task)
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(pair) => pair,
            // The accept loop ended (shutdown): never yield again.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use crate::console::{self, ConsoleConfig, PasswordCost, RuleSnapshot};
    use crate::metrics::Metrics;
    use crate::store::Store;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn https_serves_pages_with_secure_cookies() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let store = Store::open_embedded(&dir.path().join("s.db"))
            .await
            .unwrap();
        let mut config = ConsoleConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().into())
            .with_tls(cert.pem().into_bytes(), key.serialize_pem().into_bytes());
        config.password_cost = PasswordCost::for_tests();
        let handle = console::start(
            config,
            store,
            Arc::new(Metrics::default()),
            Arc::new(RuleSnapshot::default()),
        )
        .await
        .unwrap();
        assert!(handle.url().starts_with("https://"));

        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.der().clone()).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(shaobing_wire::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(handle.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(client))
            .connect(name, tcp)
            .await
            .unwrap();
        tls.write_all(b"GET /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = Vec::new();
        let _ = tls.read_to_end(&mut response).await;
        let text = String::from_utf8_lossy(&response);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        assert!(
            text.contains("SameSite=Strict; Secure"),
            "cookies must be Secure over TLS"
        );
        assert!(
            text.to_ascii_lowercase()
                .contains("strict-transport-security")
        );
        handle.shutdown().await;
    }
}
