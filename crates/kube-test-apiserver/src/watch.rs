//! Watches: a chunked stream of newline-delimited `WatchEvent`s (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR),
//! starting with ADDED events for what exists (no resourceVersion, `0`, or `sendInitialEvents=true`) or with
//! the changes after a given resourceVersion. The stream ends at `timeoutSeconds` or when the client leaves.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use super::handlers::{Ctx, stream_response};
use super::object;
use super::resources::ResourceDef;
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::{Event, EventType};
use super::table;

/// Kubernetes' default when the client sets no timeout is 30-60 minutes.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

struct Filter {
    rid: usize,
    def: &'static ResourceDef,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    table: bool,
}

impl Filter {
    fn matches(&self, obj: &Value) -> bool {
        self.namespace.as_deref().is_none_or(|ns| object::meta_str(obj, "namespace") == ns)
            && self.labels.matches(object::labels(obj))
            && self.fields.matches(obj)
    }

    /// The event as this watcher sees it: objects entering or leaving the selection are ADDED or DELETED.
    fn view(&self, event: &Event) -> Option<Bytes> {
        if event.rid != self.rid {
            return None;
        }
        let now = self.matches(&event.object);
        let kind = match event.kind {
            EventType::Added | EventType::Deleted => now.then_some(event.kind),
            EventType::Modified => match (event.prev.as_deref().is_some_and(|p| self.matches(p)), now) {
                (true, true) => Some(EventType::Modified),
                (false, true) => Some(EventType::Added),
                (true, false) => Some(EventType::Deleted),
                (false, false) => None,
            },
        }?;
        Some(self.encode(kind.as_str(), &event.object))
    }

    fn encode(&self, kind: &str, obj: &Value) -> Bytes {
        let line = if self.table {
            let meta = json!({ "resourceVersion": object::meta_str(obj, "resourceVersion") });
            json!({ "type": kind, "object": table::render(self.def, [obj], meta) }).to_string()
        } else {
            #[derive(serde::Serialize)]
            struct Wire<'a> {
                #[serde(rename = "type")]
                kind: &'a str,
                object: &'a Value,
            }
            serde_json::to_string(&Wire { kind, object: obj }).unwrap_or_default()
        };
        Bytes::from(line + "\n")
    }
}

pub fn serve(ctx: &Ctx) -> Result<Response, ApiError> {
    let (labels, mut fields) = ctx.selectors()?;
    if !ctx.name().is_empty() {
        fields = fields.and_equal("metadata.name", ctx.name());
    }
    let namespace = (ctx.def.namespaced && !ctx.ns.is_empty()).then(|| ctx.ns.clone());
    let filter = Filter { rid: ctx.rid, def: ctx.def, namespace, labels, fields, table: ctx.table };
    let initial_events = ctx.query.flag("sendInitialEvents");
    let since = match ctx.query.get("resourceVersion").filter(|v| !v.is_empty() && *v != "0") {
        Some(_) if initial_events => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {v:?}")))?),
        None => None,
    };
    let timeout = ctx.query.get("timeoutSeconds").and_then(|t| t.parse().ok()).map(Duration::from_secs).unwrap_or(DEFAULT_TIMEOUT);
    let content_type = if ctx.table { table::CONTENT_TYPE } else { "application/json" };

    let Ok(start) = ctx.app.store.watch(ctx.rid, since) else {
        // Like etcd after compaction: the client must list again.
        let status = ApiError::gone(format!("too old resource version: {} ({})", since.unwrap_or(0), ctx.app.store.resource_version()));
        let line = json!({ "type": "ERROR", "object": status.status_json() }).to_string() + "\n";
        return Ok(stream_response(content_type, Body::from(line)));
    };
    let mut backlog: VecDeque<Bytes> = start.backlog.iter().filter_map(|e| filter.view(e)).collect();
    if initial_events {
        let bookmark = json!({
            "type": "BOOKMARK",
            "object": {
                "kind": ctx.def.kind, "apiVersion": ctx.def.api_version(),
                "metadata": { "resourceVersion": start.rv.to_string(), "annotations": { "k8s.io/initial-events-end": "true" } },
            },
        });
        backlog.push_back(Bytes::from(bookmark.to_string() + "\n"));
    }
    let deadline = Instant::now() + timeout;
    let state = (backlog, start.live, filter);
    let stream = futures::stream::unfold(state, move |(mut backlog, mut live, filter)| async move {
        if let Some(line) = backlog.pop_front() {
            return Some((Ok::<_, Infallible>(line), (backlog, live, filter)));
        }
        loop {
            tokio::select! {
                received = live.recv() => match received {
                    Ok(event) => if let Some(line) = filter.view(&event) {
                        return Some((Ok(line), (backlog, live, filter)));
                    },
                    // A watcher too slow to keep up is closed; clients then watch again from their last version.
                    Err(RecvError::Lagged(_) | RecvError::Closed) => return None,
                },
                _ = tokio::time::sleep_until(deadline) => return None,
            }
        }
    });
    Ok(stream_response(content_type, Body::from_stream(stream)))
}
