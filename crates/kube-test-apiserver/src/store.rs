//! The in-memory object store: one table per resource type, one global resourceVersion counter, and a
//! bounded event history so that watches can start from a resourceVersion, as with etcd.
//!
//! A std RwLock is enough: it is never held across an await, and every change is a short closure.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::Value;
use tokio::sync::broadcast;

use super::object::{meta_mut, meta_str};
use super::resources::RESOURCES;
use super::status::ApiError;

pub type Obj = Arc<Value>;

/// How many past events a watch can start from; older resourceVersions get 410 Gone.
const HISTORY: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

#[derive(Debug)]
pub struct Event {
    pub rid: usize,
    pub kind: EventType,
    pub object: Obj,
    /// The object before a modification: watches with a selector turn MODIFIED into ADDED or DELETED
    /// when an object starts or stops matching, as Kubernetes' watch cache does.
    pub prev: Option<Obj>,
    pub rv: u64,
}

/// What a change closure asks for.
pub enum Change {
    Put(Value),
    Delete,
    Keep,
}

pub enum Outcome {
    Created(Obj),
    Updated(Obj),
    Unchanged(Obj),
    Deleted(Obj),
    Missing,
}

type Key = (String, String);

struct Inner {
    rv: u64,
    tables: Vec<BTreeMap<Key, Obj>>,
    history: VecDeque<Arc<Event>>,
}

pub struct Store {
    inner: RwLock<Inner>,
    events: broadcast::Sender<Arc<Event>>,
    /// resourceVersion of the last change to an RBAC object, so the authorizer knows when to catch up.
    rbac_rv: AtomicU64,
}

/// Where a watch starts: the events to send first, then the live ones from `live`.
pub struct WatchStart {
    pub backlog: Vec<Arc<Event>>,
    pub live: broadcast::Receiver<Arc<Event>>,
    pub rv: u64,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            inner: RwLock::new(Inner { rv: 1, tables: RESOURCES.iter().map(|_| BTreeMap::new()).collect(), history: VecDeque::new() }),
            events: broadcast::channel(1024).0,
            rbac_rv: AtomicU64::new(0),
        }
    }
}

/// A watch asked to start from a resourceVersion the history no longer holds (410 Gone).
#[derive(Debug)]
pub struct TooOld;

impl Store {
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn rbac_rv(&self) -> u64 {
        self.rbac_rv.load(Ordering::Acquire)
    }

    /// The RBAC changes after `since` with the RBAC resourceVersion they reach, or None when the history
    /// no longer goes back that far.
    pub fn rbac_changes_since(&self, since: u64) -> Option<(Vec<Arc<Event>>, u64)> {
        let inner = self.read();
        let oldest = inner.history.front().map(|e| e.rv)?;
        if since.saturating_add(1) < oldest {
            return None;
        }
        let events = inner.history.iter().filter(|e| e.rv > since && RESOURCES[e.rid].is_rbac()).cloned().collect();
        Some((events, self.rbac_rv()))
    }

    /// Every RBAC object, and the RBAC resourceVersion of this snapshot.
    pub fn rbac_snapshot(&self) -> (Vec<(usize, Obj)>, u64) {
        let inner = self.read();
        let objects =
            (0..RESOURCES.len()).filter(|rid| RESOURCES[*rid].is_rbac()).flat_map(|rid| inner.tables[rid].values().map(move |o| (rid, o.clone()))).collect();
        (objects, self.rbac_rv())
    }

    pub fn resource_version(&self) -> u64 {
        self.read().rv
    }

    pub fn get(&self, rid: usize, namespace: &str, name: &str) -> Option<Obj> {
        self.read().tables[rid].get(&(namespace.to_string(), name.to_string())).cloned()
    }

    /// The objects of one namespace (or all), in name order, and the resourceVersion of this snapshot.
    pub fn list(&self, rid: usize, namespace: Option<&str>) -> (Vec<Obj>, u64) {
        let inner = self.read();
        let table = &inner.tables[rid];
        let items = match namespace {
            Some(ns) => table.range((ns.to_string(), String::new())..).take_while(|((n, _), _)| n == ns).map(|(_, v)| v.clone()).collect(),
            None => table.values().cloned().collect(),
        };
        (items, inner.rv)
    }

    /// Reads the current object and applies the closure's change under one write lock, so that
    /// resourceVersion preconditions and AlreadyExists checks cannot race.
    pub fn mutate<F>(&self, rid: usize, namespace: &str, name: &str, change: F) -> Result<Outcome, ApiError>
    where
        F: FnOnce(Option<&Obj>) -> Result<Change, ApiError>,
    {
        let key = (namespace.to_string(), name.to_string());
        let mut inner = self.write();
        let current = inner.tables[rid].get(&key).cloned();
        let outcome = match (change(current.as_ref())?, current) {
            (Change::Keep, Some(cur)) => return Ok(Outcome::Unchanged(cur)),
            (Change::Keep | Change::Delete, None) => return Ok(Outcome::Missing),
            (Change::Put(mut next), cur) => {
                let meta = meta_mut(&mut next).ok_or_else(|| ApiError::bad_request("the object is not a JSON object"))?;
                if let Some(cur) = &cur {
                    // A no-op update keeps the resourceVersion and sends no event, as in Kubernetes.
                    meta.insert("resourceVersion".into(), meta_str(cur, "resourceVersion").into());
                    if next == **cur {
                        return Ok(Outcome::Unchanged(cur.clone()));
                    }
                }
                inner.rv += 1;
                let rv = inner.rv;
                if let Some(meta) = meta_mut(&mut next) {
                    meta.insert("resourceVersion".into(), rv.to_string().into());
                }
                let next = Arc::new(next);
                inner.tables[rid].insert(key, next.clone());
                let kind = if cur.is_some() { EventType::Modified } else { EventType::Added };
                publish(&mut inner, &self.events, Event { rid, kind, object: next.clone(), prev: cur.clone(), rv });
                if cur.is_some() { Outcome::Updated(next) } else { Outcome::Created(next) }
            }
            (Change::Delete, Some(cur)) => {
                inner.tables[rid].remove(&key);
                inner.rv += 1;
                let rv = inner.rv;
                // The DELETED event carries the last state with the deletion's resourceVersion.
                let mut last = (*cur).clone();
                if let Some(meta) = meta_mut(&mut last) {
                    meta.insert("resourceVersion".into(), rv.to_string().into());
                }
                let last = Arc::new(last);
                publish(&mut inner, &self.events, Event { rid, kind: EventType::Deleted, object: last.clone(), prev: Some(cur), rv });
                Outcome::Deleted(last)
            }
        };
        if RESOURCES[rid].is_rbac() {
            // Still under the write lock: readers of the history see this event and this version together.
            self.rbac_rv.store(inner.rv, Ordering::Release);
        }
        Ok(outcome)
    }

    /// Starts a watch: from `since` (events after that resourceVersion), or with synthetic ADDED events
    /// for every current object when `since` is None. [`TooOld`] when `since` is older than the history.
    pub fn watch(&self, rid: usize, since: Option<u64>) -> Result<WatchStart, TooOld> {
        // Subscribing under the lock that publishing also takes means no event is missed or sent twice.
        let inner = self.read();
        let live = self.events.subscribe();
        let backlog = match since {
            None => inner.tables[rid]
                .values()
                .map(|o| {
                    let rv = meta_str(o, "resourceVersion").parse().unwrap_or(0);
                    Arc::new(Event { rid, kind: EventType::Added, object: o.clone(), prev: None, rv })
                })
                .collect(),
            Some(since) => {
                let oldest = inner.history.front().map(|e| e.rv).unwrap_or(inner.rv + 1);
                if since.saturating_add(1) < oldest && since < inner.rv {
                    return Err(TooOld);
                }
                inner.history.iter().filter(|e| e.rid == rid && e.rv > since).cloned().collect()
            }
        };
        Ok(WatchStart { backlog, live, rv: inner.rv })
    }
}

fn publish(inner: &mut Inner, events: &broadcast::Sender<Arc<Event>>, event: Event) {
    let event = Arc::new(event);
    if inner.history.len() == HISTORY {
        inner.history.pop_front();
    }
    inner.history.push_back(event.clone());
    // No receivers is fine: nobody is watching.
    let _ = events.send(event);
}
