//! The long-lived requests open through the proxy (exec, attach, port-forward, watches, `logs -f`), each
//! with the identity it was opened with, so that access that ends also ends the streams it allowed: a
//! stream is closed when its token expires, when its key or user is revoked (on the bindings long poll's
//! answer), and when a re-check after a grant change finds that Kubernetes RBAC no longer allows it.
//! Kubernetes itself authorizes a request once, when it starts, so without this a stream outlives
//! every revocation.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::sync::watch;

use super::verify::{Identity, Verifier};
use super::{Attributes, BoxError};

/// Why a stream was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// the token it was opened with expired
    Expired,
    /// its access key or user was revoked, or RBAC no longer allows it
    Revoked,
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Ended::Expired => "the token the stream was opened with has expired",
            Ended::Revoked => "the access the stream was opened with has ended",
        })
    }
}

impl std::error::Error for Ended {}

struct Open {
    identity: Arc<Identity>,
    attributes: Attributes,
    close: watch::Sender<bool>,
}

/// The open streams, by a number of their own.
#[derive(Default)]
pub struct Streams {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Open>>,
}

/// One open stream's place in the registry; leaves it when dropped.
pub struct Guard {
    id: u64,
    streams: Arc<Streams>,
    closed: watch::Receiver<bool>,
    /// seconds since the epoch
    expires: i64,
}

/// A snapshot of one open stream, for the re-check.
pub struct Snapshot {
    pub id: u64,
    pub identity: Arc<Identity>,
    pub attributes: Attributes,
}

impl Streams {
    /// Registers a stream before its request goes upstream (so that a re-check running meanwhile
    /// sees it), closed at once if its identity was revoked since the token was checked.
    pub fn open(self: &Arc<Self>, identity: Arc<Identity>, attributes: Attributes, verifier: &Verifier) -> Guard {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (close, closed) = watch::channel(false);
        let expires = identity.expires;
        let revoked = verifier.is_revoked(&identity);
        if let Ok(mut open) = self.open.lock() {
            open.insert(id, Open { identity, attributes, close });
        }
        let guard = Guard { id, streams: self.clone(), closed, expires };
        if revoked {
            self.close(&[id]);
        }
        guard
    }

    pub fn len(&self) -> usize {
        self.open.lock().map(|o| o.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn snapshot(&self) -> Vec<Snapshot> {
        let Ok(open) = self.open.lock() else { return Vec::new() };
        open.iter().map(|(id, o)| Snapshot { id: *id, identity: o.identity.clone(), attributes: o.attributes.clone() }).collect()
    }

    /// Closes the streams whose key or user the verifier now knows to be revoked.
    pub fn close_revoked(&self, verifier: &Verifier) {
        let revoked: Vec<u64> = self.snapshot().into_iter().filter(|s| verifier.is_revoked(&s.identity)).map(|s| s.id).collect();
        self.close(&revoked);
    }

    pub fn close(&self, ids: &[u64]) {
        let Ok(open) = self.open.lock() else { return };
        for id in ids {
            if let Some(stream) = open.get(id) {
                tracing::info!(user = %stream.identity.user, verb = %stream.attributes.verb, resource = %stream.attributes.resource, namespace = %stream.attributes.namespace, name = %stream.attributes.name, "closing a stream whose access has ended");
                let _ = stream.close.send(true);
            }
        }
    }
}

impl Guard {
    /// Resolves when the stream must end: closed by the registry, or the token's expiry.
    pub async fn ended(mut self) -> Ended {
        let left_ms = (self.expires * 1000 - crate::server::now()).max(0) as u64;
        tokio::select! {
            _ = self.closed.wait_for(|closed| *closed) => Ended::Revoked,
            _ = tokio::time::sleep(Duration::from_millis(left_ms)) => Ended::Expired,
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(mut open) = self.streams.open.lock() {
            open.remove(&self.id);
        }
    }
}

type EndFuture = Pin<Box<dyn Future<Output = Ended> + Send>>;

/// A response body that ends with an error (so the client sees the stream cut, not finished) when its
/// guard says the stream must end.
pub struct Guarded<B> {
    inner: B,
    // a Mutex only to be Sync, as boxed bodies must be; polled through `get_mut`, never locked
    ended: Mutex<Option<EndFuture>>,
}

impl<B> Guarded<B> {
    pub fn new(inner: B, guard: Guard) -> Self {
        Guarded { inner, ended: Mutex::new(Some(Box::pin(guard.ended()))) }
    }
}

impl<B> HttpBody for Guarded<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let slot = this.ended.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(ended) = slot.as_mut() {
            if let Poll::Ready(why) = ended.as_mut().poll(cx) {
                *slot = None;
                return Poll::Ready(Some(Err(Box::new(why))));
            }
        } else {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
            Poll::Ready(None) => {
                // finished by itself: leave the registry now
                *slot = None;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
