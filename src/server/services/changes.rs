//! Wakes the connectors' long polls when access changes in this process. Other replicas' changes are
//! found by the long poll re-reading the database every [`POLL_INTERVAL`], so replicas need no channel
//! of their own: the database is the one source of truth.

use std::sync::LazyLock;
use std::time::Duration;

use tokio::sync::watch;

/// How often a waiting long poll re-reads the database even without a local wake-up.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

static CHANGES: LazyLock<watch::Sender<u64>> = LazyLock::new(|| watch::channel(0).0);

/// Called after a committed change that can alter what a cluster should bind.
pub fn notify() {
    CHANGES.send_modify(|n| *n = n.wrapping_add(1));
}

pub fn subscribe() -> watch::Receiver<u64> {
    CHANGES.subscribe()
}
