//! The certificate authority: creates the CA and the collector's server
//! certificate, signs agent CSRs (the agent id becomes the subject CN), and reads
//! an agent's id back from a presented certificate.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use super::{PkiError, read, write};
use shaobing_wire::tls::COLLECTOR_SERVER_NAME;

/// How long certificates live.
const CA_VALIDITY_DAYS: i64 = 3650;
const SERVER_VALIDITY_DAYS: i64 = 825;
/// Agent certificates are short-lived so that rotation is routine.
pub const AGENT_VALIDITY_DAYS: i64 = 365;

/// The PKI directory and its files.
#[derive(Debug, Clone)]
pub struct Pki {
    dir: PathBuf,
}

/// A freshly signed agent certificate.
#[derive(Debug, Clone)]
pub struct AgentCertificate {
    pub agent_id: String,
    pub certificate_pem: String,
    pub not_after_unix: i64,
}

impl Pki {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn ca_cert_path(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    fn ca_key_path(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    pub fn server_cert_path(&self) -> PathBuf {
        self.dir.join("server.crt")
    }
    pub fn server_key_path(&self) -> PathBuf {
        self.dir.join("server.key")
    }
    pub fn tokens_path(&self) -> PathBuf {
        self.dir.join("tokens.json")
    }
    pub fn revoked_path(&self) -> PathBuf {
        self.dir.join("revoked.json")
    }

    pub fn is_initialised(&self) -> bool {
        self.ca_cert_path().exists() && self.ca_key_path().exists()
    }

    /// Creates the CA and a server certificate valid for [`COLLECTOR_SERVER_NAME`],
    /// `localhost`, 127.0.0.1, ::1, this host's name and `extra_sans`.
    pub fn init(&self, extra_sans: &[String]) -> Result<(), PkiError> {
        if self.is_initialised() {
            return Err(PkiError::AlreadyInitialised(self.dir.clone()));
        }
        std::fs::create_dir_all(&self.dir).map_err(|source| PkiError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let now = OffsetDateTime::now_utc();

        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::default();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Shaobing fleet CA");
        ca_params
            .distinguished_name
            .push(DnType::OrganizationName, "Shaobing");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca_params.not_before = now - Duration::hours(1);
        ca_params.not_after = now + Duration::days(CA_VALIDITY_DAYS);
        let ca_cert = ca_params.self_signed(&ca_key)?;

        let mut sans = vec![
            COLLECTOR_SERVER_NAME.to_string(),
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ];
        if let Ok(h) = hostname::get() {
            sans.push(h.to_string_lossy().into_owned());
        }
        sans.extend(extra_sans.iter().cloned());
        sans.dedup();
        let server_key = KeyPair::generate()?;
        let mut server_params = CertificateParams::default();
        server_params.subject_alt_names = sans
            .iter()
            .map(|s| match s.parse::<std::net::IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => s.clone().try_into().map(SanType::DnsName),
            })
            .collect::<Result<_, _>>()?;
        server_params
            .distinguished_name
            .push(DnType::CommonName, COLLECTOR_SERVER_NAME);
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server_params.not_before = now - Duration::hours(1);
        server_params.not_after = now + Duration::days(SERVER_VALIDITY_DAYS);
        let issuer = Issuer::new(ca_params, &ca_key);
        let server_cert = server_params.signed_by(&server_key, &issuer)?;

        write(&self.ca_key_path(), ca_key.serialize_pem().as_bytes(), true)?;
        write(&self.ca_cert_path(), ca_cert.pem().as_bytes(), false)?;
        write(
            &self.server_key_path(),
            server_key.serialize_pem().as_bytes(),
            true,
        )?;
        write(
            &self.server_cert_path(),
            server_cert.pem().as_bytes(),
            false,
        )?;
        Ok(())
    }

    /// CA certificate, PEM.
    pub fn ca_pem(&self) -> Result<String, PkiError> {
        if !self.is_initialised() {
            return Err(PkiError::NotInitialised(self.dir.clone()));
        }
        read(&self.ca_cert_path())
    }

    /// Signs an agent's CSR. The subject is replaced: CN = a new agent id, so the
    /// identity is chosen by the collector, never by the agent.
    pub fn sign_agent_csr(&self, csr_pem: &str) -> Result<AgentCertificate, PkiError> {
        self.sign_csr_as(csr_pem, &uuid::Uuid::new_v4().to_string())
    }

    /// Signs a CSR for an existing agent (certificate rotation): same agent id,
    /// new key, new validity period.
    pub fn sign_csr_as(&self, csr_pem: &str, agent_id: &str) -> Result<AgentCertificate, PkiError> {
        let agent_id = agent_id.to_string();
        let ca_pem = self.ca_pem()?;
        let ca_key = KeyPair::from_pem(&read(&self.ca_key_path())?)?;
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key)?;
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| PkiError::BadRequest(e.to_string()))?;
        let now = OffsetDateTime::now_utc();
        let not_after = now + Duration::days(AGENT_VALIDITY_DAYS);
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, agent_id.clone());
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Shaobing agents");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = now - Duration::minutes(5);
        params.not_after = not_after;
        params.serial_number = Some(rcgen::SerialNumber::from_slice(
            uuid::Uuid::new_v4().as_bytes(),
        ));
        csr.params = params;
        let cert = csr.signed_by(&issuer)?;
        Ok(AgentCertificate {
            agent_id,
            certificate_pem: cert.pem(),
            not_after_unix: not_after.unix_timestamp(),
        })
    }
}

/// The agent id (subject CN) of a client certificate the TLS layer already verified.
pub fn agent_id_from_cert_der(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_refuses_to_overwrite_and_signs_csrs() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(dir.path());
        pki.init(&["10.0.0.1".into()]).unwrap();
        assert!(matches!(
            pki.init(&[]),
            Err(PkiError::AlreadyInitialised(_))
        ));

        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "forged-id");
        let csr = params.serialize_request(&key).unwrap().pem().unwrap();
        let signed = pki.sign_agent_csr(&csr).unwrap();
        let der =
            shaobing_wire::tls::certs_from_pem(signed.certificate_pem.as_bytes(), "agent").unwrap();
        let id = agent_id_from_cert_der(&der[0]).unwrap();
        assert_eq!(id, signed.agent_id);
        assert_ne!(id, "forged-id");

        assert!(matches!(
            pki.sign_agent_csr("not a csr"),
            Err(PkiError::BadRequest(_))
        ));
    }
}
