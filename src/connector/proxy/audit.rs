//! Sends the proxy's requests to the server's audit log in batches, off the request path: recording
//! is a channel send that never waits; a background task batches and retries.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::connector::server_api::ServerApi;
use crate::model::ProxiedRequest;

const CHANNEL: usize = 50_000;
const BATCH: usize = 1_000;
const LINGER: Duration = Duration::from_millis(500);
/// Events kept while the server is unreachable; older ones are dropped beyond this (with a warning).
const MAX_PENDING: usize = 100_000;

#[derive(Clone)]
pub struct AuditSink {
    tx: mpsc::Sender<ProxiedRequest>,
}

impl AuditSink {
    pub fn record(&self, event: ProxiedRequest) {
        if self.tx.try_send(event).is_err() {
            tracing::warn!("audit channel full: a proxied request was not recorded");
        }
    }
}

pub fn spawn(api: ServerApi, cluster: String) -> AuditSink {
    let (tx, mut rx) = mpsc::channel::<ProxiedRequest>(CHANNEL);
    tokio::spawn(async move {
        let mut pending: Vec<ProxiedRequest> = Vec::new();
        loop {
            if pending.is_empty() {
                // wait for the first event, then let a batch gather for the linger time: the task wakes
                // once per batch, not once per request
                if rx.recv_many(&mut pending, BATCH).await == 0 {
                    return;
                }
                if pending.len() < BATCH {
                    tokio::time::sleep(LINGER).await;
                }
            }
            // what else is queued, without waiting
            while pending.len() < BATCH {
                match rx.try_recv() {
                    Ok(e) => pending.push(e),
                    Err(_) => break,
                }
            }
            let take = pending.len().min(BATCH);
            match api.audit(&cluster, &pending[..take]).await {
                Ok(()) => {
                    pending.drain(..take);
                }
                Err(e) => {
                    tracing::warn!(error = %e, pending = pending.len(), "cannot send audit events; will retry");
                    if pending.len() > MAX_PENDING {
                        let drop = pending.len() - MAX_PENDING;
                        pending.drain(..drop);
                        tracing::warn!(dropped = drop, "dropped the oldest audit events");
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
    });
    AuditSink { tx }
}
