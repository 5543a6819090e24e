//! Leases in the database (table `leases`): work that must run on one replica at a time, such as a
//! continuous verification pass (refresh tokens that rotate are single-use, so two replicas refreshing
//! the same user at once would make the IdP revoke the grant). A lease is taken with one conditional
//! `UPDATE`, which both SQLite and PostgreSQL apply atomically; it expires on its own, so a replica that
//! dies while holding it does not block the others for longer than its time to live. While held, it is
//! renewed in the background; should a renewal find it taken over, `held()` turns false.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sea_orm::DatabaseConnection;

use crate::server::db;
use crate::server::error::AppResult;

/// A lease this process holds; renewed until released or dropped.
pub struct Lease {
    db: DatabaseConnection,
    name: &'static str,
    holder: String,
    lost: Arc<AtomicBool>,
    keeper: tokio::task::JoinHandle<()>,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Lease {
    /// Takes the lease `name` for `ttl` (renewed every third of it), or `None` while another holds it.
    pub async fn acquire(db: &DatabaseConnection, name: &'static str, ttl: Duration) -> AppResult<Option<Lease>> {
        let holder = crate::server::auth::password::random_token(16);
        let now = crate::server::now();
        // raw: lease acquisition, one conditional UPDATE, so that two replicas cannot both take it
        let taken = db::execute(
            db,
            "UPDATE leases SET holder = ?, expires_at = ? WHERE name = ? AND expires_at <= ?",
            [holder.clone().into(), now.saturating_add(millis(ttl)).into(), name.into(), now.into()],
        )
        .await?;
        if taken != 1 {
            return Ok(None);
        }
        let lost = Arc::new(AtomicBool::new(false));
        let keeper = {
            let (db, holder, lost) = (db.clone(), holder.clone(), lost.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(ttl / 3).await;
                    // raw: lease renewal, conditional on still being the holder, in one statement
                    let renewed = db::execute(
                        &db,
                        "UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ?",
                        [crate::server::now().saturating_add(millis(ttl)).into(), name.into(), holder.clone().into()],
                    )
                    .await;
                    match renewed {
                        Ok(1) => {}
                        // taken over (we were too slow) or the database is gone: stop working under it
                        Ok(_) | Err(_) => {
                            tracing::warn!(lease = name, "lost the lease");
                            lost.store(true, Ordering::SeqCst);
                            return;
                        }
                    }
                }
            })
        };
        Ok(Some(Lease { db: db.clone(), name, holder, lost, keeper }))
    }

    /// False once a renewal failed: stop the work (another replica may have started it).
    pub fn held(&self) -> bool {
        !self.lost.load(Ordering::SeqCst)
    }

    /// Gives the lease up, keeping it taken for `hold_for` more (zero: free at once), so that work that
    /// should run once per interval does not run again on another replica's timer meanwhile.
    pub async fn release(self, hold_for: Duration) -> AppResult<()> {
        self.keeper.abort();
        // raw: lease release, conditional on still being the holder, in one statement
        db::execute(
            &self.db,
            "UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ?",
            [crate::server::now().saturating_add(millis(hold_for)).into(), self.name.into(), self.holder.clone().into()],
        )
        .await?;
        Ok(())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // dropped without release (an error ended the work): it expires after its time to live
        self.keeper.abort();
    }
}
