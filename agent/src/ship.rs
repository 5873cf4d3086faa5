//! Ship: drains the spool to the collector over one long-lived mutual-TLS gRPC
//! stream. Batches go out in seq order with at most `max_in_flight` unacked; a
//! batch leaves the spool only when the collector acks it (stored or duplicate).
//! On any error the stream is dropped and, after an exponential backoff with
//! jitter, the next collector address is tried and every unacked batch is sent
//! again (the collector deduplicates by seq).
//!
//! Certificate rotation: at each connect, if the client certificate expires
//! within `renew_before`, a new key is generated and `Ingest.Renew` returns a
//! certificate for the same agent id; it is saved and used from the next
//! connection on.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use rand::Rng;
use shaobing_wire::v1::{AckStatus, Batch, RenewRequest, ingest_client::IngestClient};
use tokio::sync::{Notify, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::counters::Counters;
use crate::spool::Spool;

/// TLS material and addresses for shipping.
#[derive(Clone)]
pub struct ShipConfig {
    pub collectors: Vec<String>,
    pub server_name: String,
    pub ca_pem: Vec<u8>,
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    pub max_in_flight: usize,
    /// Where the certificate and key live (rewritten on rotation).
    pub cert_path: std::path::PathBuf,
    pub key_path: std::path::PathBuf,
    /// Renew the certificate when it expires within this long.
    pub renew_before: Duration,
}

pub struct Shipper {
    pub config: ShipConfig,
    pub spool: Spool,
    pub spooled: Arc<Notify>,
    pub counters: Arc<Counters>,
}

#[derive(Debug, thiserror::Error)]
enum ShipError {
    #[error("connect: {0}")]
    Connect(#[from] tonic::transport::Error),
    #[error("rpc: {0}")]
    Rpc(#[from] tonic::Status),
    #[error(transparent)]
    Spool(#[from] crate::spool::SpoolError),
    #[error("collector closed the stream")]
    Closed,
    #[error("certificate rotation: {0}")]
    Rotation(String),
}

/// Seconds until the first certificate in `pem` expires (negative if expired).
pub fn seconds_until_expiry(pem: &[u8], now_unix: i64) -> Option<i64> {
    let der = shaobing_wire::tls::certs_from_pem(pem, "agent").ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.first()?).ok()?;
    Some(cert.validity().not_after.timestamp() - now_unix)
}

impl Shipper {
    /// Runs forever (until the task is aborted).
    pub async fn run(mut self) {
        let mut attempt: u32 = 0;
        let mut index = 0usize;
        loop {
            let url = self.config.collectors[index % self.config.collectors.len().max(1)].clone();
            match self.session(&url, &mut attempt).await {
                Ok(()) => {}
                Err(e) => {
                    self.counters.inc("ship.disconnects");
                    tracing::warn!(collector = %url, error = %e, "shipping interrupted");
                }
            }
            index += 1;
            attempt = attempt.saturating_add(1);
            let base = Duration::from_millis(200) * 2u32.saturating_pow(attempt.min(8));
            let capped = base.min(Duration::from_secs(30));
            let jitter = rand::rng().random_range(0.5..1.0);
            tokio::time::sleep(capped.mul_f64(jitter)).await;
        }
    }

    async fn connect(&self, url: &str) -> Result<Channel, ShipError> {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.config.ca_pem))
            .identity(Identity::from_pem(
                &self.config.cert_pem,
                &self.config.key_pem,
            ))
            .domain_name(self.config.server_name.clone());
        Ok(Channel::from_shared(url.to_string())
            .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?
            .tls_config(tls)?
            .connect_timeout(Duration::from_secs(5))
            .http2_keep_alive_interval(Duration::from_secs(20))
            .keep_alive_timeout(Duration::from_secs(20))
            .connect()
            .await?)
    }

    /// Renews the client certificate when it is close to expiry.
    async fn rotate_if_due(&mut self, channel: Channel) -> Result<(), ShipError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let Some(left) = seconds_until_expiry(&self.config.cert_pem, now) else {
            return Ok(());
        };
        if left > self.config.renew_before.as_secs() as i64 {
            return Ok(());
        }
        tracing::info!(
            seconds_left = left,
            "client certificate expires soon: renewing"
        );
        let rotation = |e: &dyn std::fmt::Display| ShipError::Rotation(e.to_string());
        let key = rcgen::KeyPair::generate().map_err(|e| rotation(&e))?;
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, crate::host::hostname());
        let csr_pem = params
            .serialize_request(&key)
            .and_then(|csr| csr.pem())
            .map_err(|e| rotation(&e))?;
        let response = IngestClient::new(channel)
            .renew(RenewRequest { csr_pem })
            .await?
            .into_inner();
        let key_pem = key.serialize_pem();
        crate::enroll::write_file(&self.config.key_path, key_pem.as_bytes(), true)
            .map_err(|e| rotation(&e))?;
        crate::enroll::write_file(
            &self.config.cert_path,
            response.certificate_pem.as_bytes(),
            false,
        )
        .map_err(|e| rotation(&e))?;
        self.config.cert_pem = response.certificate_pem.into_bytes();
        self.config.key_pem = key_pem.into_bytes();
        self.counters.inc("ship.certificate_renewals");
        tracing::info!("client certificate renewed");
        Ok(())
    }

    /// One connected session: returns when the stream breaks.
    async fn session(&mut self, url: &str, attempt: &mut u32) -> Result<(), ShipError> {
        let channel = self.connect(url).await?;
        self.rotate_if_due(channel.clone()).await?;
        let mut client = IngestClient::new(channel)
            .max_decoding_message_size(shaobing_wire::limits::MAX_MESSAGE_BYTES)
            .send_compressed(tonic::codec::CompressionEncoding::Gzip);
        let (tx, rx) = mpsc::channel::<Batch>(self.config.max_in_flight.max(1));
        let mut acks = client.publish(ReceiverStream::new(rx)).await?.into_inner();
        tracing::info!(collector = %url, "connected to collector");
        *attempt = 0;

        let mut in_flight: BTreeSet<u64> = BTreeSet::new();
        let mut last_sent = 0u64;
        loop {
            let room = self.config.max_in_flight.saturating_sub(in_flight.len());
            if room > 0 {
                for pending in self.spool.pending_after(last_sent, room).await? {
                    match Batch::decode(&pending.payload[..]) {
                        Ok(batch) => {
                            if tx.send(batch).await.is_err() {
                                return Err(ShipError::Closed);
                            }
                            in_flight.insert(pending.seq);
                        }
                        Err(e) => {
                            self.counters.inc("spool.corrupt_batches");
                            tracing::error!(seq = pending.seq, error = %e, "corrupt spooled batch dropped");
                            self.spool.reject(pending.seq).await?;
                        }
                    }
                    last_sent = pending.seq;
                }
            }
            let wait_for_more = in_flight.len() < self.config.max_in_flight;
            tokio::select! {
                ack = acks.message() => {
                    let Some(ack) = ack? else { return Err(ShipError::Closed) };
                    in_flight.remove(&ack.seq);
                    match AckStatus::try_from(ack.status).unwrap_or(AckStatus::Unspecified) {
                        AckStatus::Stored | AckStatus::Duplicate => self.spool.ack(ack.seq).await?,
                        _ => {
                            self.counters.inc("ship.rejected_batches");
                            tracing::error!(seq = ack.seq, error = %ack.error, "collector rejected batch");
                            self.spool.reject(ack.seq).await?;
                        }
                    }
                }
                _ = self.spooled.notified(), if wait_for_more => {}
                _ = tokio::time::sleep(Duration::from_secs(1)), if wait_for_more => {}
            }
        }
    }
}
