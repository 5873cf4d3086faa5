//! `Ingest.Publish`: one long-lived stream per agent. One task reads batches
//! and accepts them in order (dedup, detection, queue for the store); a second
//! task turns the store's answers into acks, in the same order. Each ack is
//! sent only after the batch is durably stored. A store failure ends the stream
//! with `UNAVAILABLE`, so the agent keeps the batch in its spool and resends it
//! after reconnecting; bounded queues give back-pressure instead of unbounded
//! buffering here.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use shaobing_wire::v1::{Ack, Batch, EnrollResponse, RenewRequest, ingest_server::Ingest};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::AgentIdentity;
use crate::pipeline::{Accepted, Pipeline};

pub struct PublishService {
    pub pipeline: Arc<Pipeline>,
    pub pki: crate::pki::Pki,
    pub revoked: Arc<crate::pki::RevocationList>,
}

fn authenticated_agent<T>(request: &Request<T>) -> Result<(String, AgentIdentity), Status> {
    let identity = request
        .extensions()
        .get::<AgentIdentity>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("no connection identity"))?;
    let agent_id = identity
        .agent_id
        .clone()
        .ok_or_else(|| Status::unauthenticated("client certificate required"))?;
    Ok((agent_id, identity))
}

type AckStream = Pin<Box<dyn Stream<Item = Result<Ack, Status>> + Send>>;

#[tonic::async_trait]
impl Ingest for PublishService {
    type PublishStream = AckStream;

    async fn publish(
        &self,
        request: Request<Streaming<Batch>>,
    ) -> Result<Response<AckStream>, Status> {
        let (agent_id, identity) = authenticated_agent(&request)?;
        let mut batches = request.into_inner();
        let pipeline = self.pipeline.clone();
        let revoked = self.revoked.clone();
        let (tx, rx) = mpsc::channel(64);
        // Receipts of batches being written, completed in order by a second task.
        let (in_flight_tx, mut in_flight_rx) = mpsc::channel::<Accepted>(64);
        tracing::info!(%agent_id, peer = %identity.peer, "agent connected");
        pipeline.stream_started(&agent_id).await;

        let acker = {
            let (pipeline, tx, agent_id, peer) = (
                pipeline.clone(),
                tx.clone(),
                agent_id.clone(),
                identity.peer,
            );
            tokio::spawn(async move {
                while let Some(accepted) = in_flight_rx.recv().await {
                    let answer = match accepted {
                        Accepted::Ack(ack) => Ok(ack),
                        Accepted::Writing(w) => pipeline.complete(&agent_id, &peer, w).await,
                    };
                    match answer {
                        Ok(ack) => {
                            if tx.send(Ok(ack)).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(%agent_id, error = %e, "batch not stored; agent will resend");
                            let _ = tx.send(Err(Status::unavailable(e.to_string()))).await;
                            return;
                        }
                    }
                }
            })
        };
        tokio::spawn(async move {
            while let Some(next) = batches.next().await {
                let batch = match next {
                    Ok(b) => b,
                    Err(status)
                        if matches!(
                            status.code(),
                            tonic::Code::Unknown | tonic::Code::Cancelled
                        ) =>
                    {
                        // The agent went away (restart, network cut): it resends what was not acked.
                        tracing::info!(%agent_id, error = %status, "agent stream closed");
                        break;
                    }
                    Err(status) => {
                        pipeline.metrics.inc_reject("malformed_frame");
                        tracing::warn!(%agent_id, error = %status, "stream error");
                        let _ = tx.send(Err(status)).await;
                        break;
                    }
                };
                if revoked.is_revoked(&agent_id) {
                    pipeline.metrics.inc_reject("revoked_certificate");
                    let denied = Status::permission_denied("agent certificate revoked");
                    let _ = tx.send(Err(denied)).await;
                    break;
                }
                if acker.is_finished() {
                    break;
                }
                match pipeline.accept(&agent_id, batch).await {
                    // Immediate acks queue behind writes in flight, so acks stay in order.
                    Ok(accepted) => {
                        if in_flight_tx.send(accepted).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(%agent_id, error = %e, "store unavailable; agent will resend");
                        let _ = tx.send(Err(Status::unavailable(e.to_string()))).await;
                        break;
                    }
                }
            }
            drop(in_flight_tx);
            tracing::info!(%agent_id, "agent disconnected");
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn renew(
        &self,
        request: Request<RenewRequest>,
    ) -> Result<Response<EnrollResponse>, Status> {
        let (agent_id, identity) = authenticated_agent(&request)?;
        let signed = self
            .pki
            .sign_csr_as(&request.into_inner().csr_pem, &agent_id)
            .map_err(|e| {
                self.pipeline.metrics.inc_reject("renew_csr");
                Status::invalid_argument(e.to_string())
            })?;
        let ca_pem = self
            .pki
            .ca_pem()
            .map_err(|e| Status::internal(e.to_string()))?;
        tracing::info!(%agent_id, peer = %identity.peer, "agent certificate renewed");
        Ok(Response::new(EnrollResponse {
            agent_id,
            certificate_pem: signed.certificate_pem,
            ca_pem,
        }))
    }
}
