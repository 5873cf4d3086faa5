//! The one TLS stack: rustls with the ring provider, TLS 1.3 only, for both sides.
//!
//! The collector's data port requires a client certificate signed by the fleet CA
//! (and not revoked); the enrollment port authenticates only the server. The agent
//! pins the fleet CA and checks the collector's certificate against
//! [`COLLECTOR_SERVER_NAME`], which every collector certificate carries.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// The DNS name every collector certificate carries and every agent verifies,
/// whatever address it dials (IP, hostname, load balancer).
pub const COLLECTOR_SERVER_NAME: &str = "shaobing-collector";

/// TLS set-up failures, with the file or item that caused them.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("no certificate found in PEM input ({0})")]
    NoCertificate(&'static str),
    #[error("no private key found in PEM input")]
    NoPrivateKey,
    #[error("invalid PEM: {0}")]
    Pem(#[from] std::io::Error),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// The crypto provider everything uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses every certificate in a PEM bundle.
pub fn certs_from_pem(
    pem: &[u8],
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = rustls_pemfile::certs(&mut &pem[..]).collect::<Result<Vec<_>, _>>()?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(what));
    }
    Ok(certs)
}

/// Parses the first private key (PKCS#8, PKCS#1 or SEC1) in a PEM input.
pub fn key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    rustls_pemfile::private_key(&mut &pem[..])?.ok_or(TlsError::NoPrivateKey)
}

/// Parses every CRL in a PEM bundle (may be empty).
pub fn crls_from_pem(pem: &[u8]) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    Ok(rustls_pemfile::crls(&mut &pem[..]).collect::<Result<Vec<_>, _>>()?)
}

fn roots(ca_pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certs_from_pem(ca_pem, "CA")? {
        roots.add(cert)?;
    }
    Ok(roots)
}

/// Data-port server config: TLS 1.3, a client certificate signed by `ca_pem` is
/// mandatory, certificates listed in `crls` are refused. ALPN `h2` for gRPC.
pub fn mtls_server_config(
    ca_pem: &[u8],
    cert_pem: &[u8],
    key_pem: &[u8],
    crls: Vec<CertificateRevocationListDer<'static>>,
) -> Result<ServerConfig, TlsError> {
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca_pem)?), provider())
            .with_crls(crls)
            .allow_unknown_revocation_status()
            .build()?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs_from_pem(cert_pem, "server")?, key_from_pem(key_pem)?)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Enrollment-port server config: server authentication only.
pub fn enroll_server_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<ServerConfig, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(certs_from_pem(cert_pem, "server")?, key_from_pem(key_pem)?)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Agent-side config: trusts only the fleet CA; presents `identity` (cert, key PEM) if given.
pub fn client_config(
    ca_pem: &[u8],
    identity: Option<(&[u8], &[u8])>,
) -> Result<ClientConfig, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots(ca_pem)?);
    let mut config = match identity {
        Some((cert, key)) => {
            builder.with_client_auth_cert(certs_from_pem(cert, "client")?, key_from_pem(key)?)?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}
