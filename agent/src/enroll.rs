//! `shaobing-agent enroll`: generates the agent's key, sends a CSR with a
//! one-time token to the collector's enrollment port (trusting only the CA
//! given by the operator), and saves the signed certificate. The private key
//! never leaves the host.

use std::path::Path;

use rcgen::{CertificateParams, DnType, KeyPair};
use serde::{Deserialize, Serialize};
use shaobing_wire::v1::{EnrollRequest, enrollment_client::EnrollmentClient};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use crate::config::AgentConfig;

/// What the agent knows about itself after enrolling (`identity.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Identity {
    pub agent_id: String,
    pub machine_id: String,
    pub enrolled_unix: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("cannot read CA certificate {path}: {source}")]
    Ca {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("key generation: {0}")]
    Key(#[from] rcgen::Error),
    #[error("cannot reach the collector: {0}")]
    Connect(#[from] tonic::transport::Error),
    #[error("enrollment refused: {}", .0.message())]
    Refused(tonic::Status),
    #[error("cannot write {path}: {source}")]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("invalid collector URL: {0}")]
    Url(String),
}

/// The host's machine id (`/etc/machine-id`), used to notice a cloned VM image.
pub fn machine_id() -> String {
    std::fs::read_to_string("/etc/machine-id")
        .or_else(|_| std::fs::read_to_string("/var/lib/dbus/machine-id"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Enrolls against `collector` (the enrollment port URL) with `token`.
pub async fn enroll(
    config: &AgentConfig,
    collector: &str,
    token: &str,
    ca_cert: &Path,
) -> Result<Identity, EnrollError> {
    let ca_pem = std::fs::read(ca_cert).map_err(|source| EnrollError::Ca {
        path: ca_cert.to_path_buf(),
        source,
    })?;
    let hostname = crate::host::hostname();
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, hostname.clone());
    let csr_pem = params.serialize_request(&key)?.pem()?;

    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&ca_pem))
        .domain_name(config.server_name.clone());
    let channel = Channel::from_shared(collector.to_string())
        .map_err(|e| EnrollError::Url(e.to_string()))?
        .tls_config(tls)?
        .connect_timeout(std::time::Duration::from_secs(10))
        .connect()
        .await?;
    let machine_id = machine_id();
    let response = EnrollmentClient::new(channel)
        .enroll(EnrollRequest {
            token: token.trim().to_string(),
            csr_pem,
            hostname,
            machine_id: machine_id.clone(),
            os: crate::host::os_name(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        })
        .await
        .map_err(EnrollError::Refused)?
        .into_inner();

    let write = |path: std::path::PathBuf, data: &[u8], secret: bool| {
        write_file(&path, data, secret).map_err(|source| EnrollError::Write { path, source })
    };
    std::fs::create_dir_all(&config.data_dir).map_err(|source| EnrollError::Write {
        path: config.data_dir.clone(),
        source,
    })?;
    write(config.key_path(), key.serialize_pem().as_bytes(), true)?;
    write(
        config.cert_path(),
        response.certificate_pem.as_bytes(),
        false,
    )?;
    write(config.ca_path(), response.ca_pem.as_bytes(), false)?;
    let identity = Identity {
        agent_id: response.agent_id,
        machine_id,
        enrolled_unix: time::OffsetDateTime::now_utc().unix_timestamp(),
    };
    let json = serde_json::to_vec_pretty(&identity).unwrap_or_default();
    write(config.identity_path(), &json, false)?;
    Ok(identity)
}

/// Writes a file atomically (temp + fsync + rename), mode 0600 when `secret`.
pub fn write_file(path: &Path, data: &[u8], secret: bool) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(tmp, path)
}

/// Reads `identity.json`, if the agent has enrolled.
pub fn load_identity(config: &AgentConfig) -> Option<Identity> {
    let bytes = std::fs::read(config.identity_path()).ok()?;
    serde_json::from_slice(&bytes).ok()
}
