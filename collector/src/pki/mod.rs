//! The fleet's private PKI: the CA, the collector's server certificate, signing
//! agents' certificate requests, and one-time enrollment tokens.
//!
//! Layout of the PKI directory (`<data dir>/pki`):
//! `ca.crt`, `ca.key` (0600), `server.crt`, `server.key` (0600), `tokens.json`,
//! `revoked.json`.

mod ca;
mod revocation;
mod tokens;

pub use ca::{AgentCertificate, Pki, agent_id_from_cert_der};
pub use revocation::{Revocation, RevocationList};
pub use tokens::{TokenError, TokenStore};

/// PKI failures, each naming the file or step.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("the CA already exists in {0} (refusing to overwrite it)")]
    AlreadyInitialised(std::path::PathBuf),
    #[error("no CA in {0}: run `shaobing-collector ca init` first")]
    NotInitialised(std::path::PathBuf),
    #[error("invalid certificate request: {0}")]
    BadRequest(String),
}

pub(crate) fn read(path: &std::path::Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `contents` to `path` atomically (temp file + rename), with mode 0600 when `secret`.
pub(crate) fn write(path: &std::path::Path, contents: &[u8], secret: bool) -> Result<(), PkiError> {
    use std::io::Write;
    let err = |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if secret { 0o600 } else { 0o644 });
    }
    let mut f = opts.open(&tmp).map_err(err)?;
    f.write_all(contents).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}
