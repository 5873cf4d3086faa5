//! `Enrollment.Enroll`: a one-time token buys a client certificate signed by the
//! fleet CA. The collector chooses the agent id; the agent's CSR only supplies
//! the public key.

use std::sync::Arc;

use shaobing_wire::v1::{EnrollRequest, EnrollResponse, enrollment_server::Enrollment};
use tonic::{Request, Response, Status};

use crate::metrics::Metrics;
use crate::pki::{Pki, TokenStore};

pub struct EnrollService {
    pub pki: Pki,
    pub tokens: Arc<TokenStore>,
    pub metrics: Arc<Metrics>,
}

#[tonic::async_trait]
impl Enrollment for EnrollService {
    async fn enroll(
        &self,
        request: Request<EnrollRequest>,
    ) -> Result<Response<EnrollResponse>, Status> {
        let req = request.into_inner();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        match self.tokens.consume(&req.token, now, &req.hostname) {
            Ok(Ok(())) => {}
            Ok(Err(refusal)) => {
                self.metrics.inc_reject("enroll_token");
                tracing::warn!(hostname = %req.hostname, reason = %refusal, "enrollment refused");
                return Err(Status::permission_denied(refusal.to_string()));
            }
            Err(e) => {
                tracing::error!(error = %e, "token store unavailable");
                return Err(Status::unavailable("token store unavailable"));
            }
        }
        let signed = self.pki.sign_agent_csr(&req.csr_pem).map_err(|e| {
            self.metrics.inc_reject("enroll_csr");
            Status::invalid_argument(e.to_string())
        })?;
        let ca_pem = self
            .pki
            .ca_pem()
            .map_err(|e| Status::internal(e.to_string()))?;
        tracing::info!(agent_id = %signed.agent_id, hostname = %req.hostname, "agent enrolled");
        Ok(Response::new(EnrollResponse {
            agent_id: signed.agent_id,
            certificate_pem: signed.certificate_pem,
            ca_pem,
        }))
    }
}
