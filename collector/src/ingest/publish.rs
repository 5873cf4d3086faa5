//! `Ingest.Publish`: one long-lived stream per agent. Batches are handled in
//! order; each is acknowledged only after the pipeline has stored it durably.
//! A store failure ends the stream with `UNAVAILABLE`, so the agent keeps the
//! batch in its spool and resends it after reconnecting (back-pressure instead
//! of unbounded buffering here).

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use shaobing_wire::v1::{Ack, Batch, ingest_server::Ingest};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::AgentIdentity;
use crate::pipeline::Pipeline;

pub struct PublishService {
    pub pipeline: Arc<Pipeline>,
}

type AckStream = Pin<Box<dyn Stream<Item = Result<Ack, Status>> + Send>>;

#[tonic::async_trait]
impl Ingest for PublishService {
    type PublishStream = AckStream;

    async fn publish(
        &self,
        request: Request<Streaming<Batch>>,
    ) -> Result<Response<AckStream>, Status> {
        let identity = request
            .extensions()
            .get::<AgentIdentity>()
            .cloned()
            .ok_or_else(|| Status::unauthenticated("no connection identity"))?;
        let agent_id = identity
            .agent_id
            .clone()
            .ok_or_else(|| Status::unauthenticated("client certificate required"))?;
        let mut batches = request.into_inner();
        let pipeline = self.pipeline.clone();
        let (tx, rx) = mpsc::channel(32);
        tracing::info!(%agent_id, peer = %identity.peer, "agent connected");
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
                match pipeline
                    .handle_batch(&agent_id, &identity.peer, batch)
                    .await
                {
                    Ok(ack) => {
                        if tx.send(Ok(ack)).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(%agent_id, error = %e, "batch not stored; agent will resend");
                        let _ = tx.send(Err(Status::unavailable(e.to_string()))).await;
                        break;
                    }
                }
            }
            tracing::info!(%agent_id, "agent disconnected");
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
