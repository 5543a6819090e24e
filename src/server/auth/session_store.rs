//! tower-sessions' store on our own database connection (the published sqlx stores do not fit
//! tower-sessions 0.15 and sqlx 0.9). The cookie carries the session id; only its SHA-256 is stored, so a
//! copy of the database does not hold live session ids. Any server replica can serve any session.

use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, Set, sea_query::OnConflict};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

use crate::server::auth::password::sha256_hex;
use crate::server::db::entities::session;
use crate::server::error::AppResult;

/// The key under which a session holds the signed-in user's id.
pub const USER_ID_KEY: &str = "user_id";
/// When the session's sign-in was (ms): a session ends this long after it, however busy
/// (`--session-max-age-hours`), besides the idle timeout.
pub const SIGNED_IN_AT_KEY: &str = "signed_in_at";

/// The device code the person typed on the approval page (`infra login --web`).
pub const DEVICE_TYPED_KEY: &str = "device_code_typed";

/// Whether the person typed this code in this browser's session. Only such a code's details are shown and
/// only such a code is approved with a session: a link someone sends cannot approve their code in a click.
pub async fn device_code_typed(session: &tower_sessions::Session, code: &str) -> bool {
    let typed: Option<String> = session.get(DEVICE_TYPED_KEY).await.ok().flatten();
    let code = crate::server::services::device_login::normalize_code(code);
    typed.is_some_and(|t| !code.is_empty() && crate::server::auth::password::constant_time_eq(&t, &code))
}

/// Signs `user_id` in on this browser's session: a new session id (no fixation) that remembers when.
/// Used by every sign-in (password, identity provider) and after a password change.
pub async fn start(session: &tower_sessions::Session, user_id: i64) -> Result<(), tower_sessions::session::Error> {
    session.cycle_id().await?;
    session.insert(USER_ID_KEY, user_id).await?;
    session.insert(SIGNED_IN_AT_KEY, crate::server::now()).await
}

#[derive(Clone, Debug)]
pub struct DbSessionStore {
    db: DatabaseConnection,
}

impl DbSessionStore {
    pub fn new(db: DatabaseConnection) -> Self {
        DbSessionStore { db }
    }

    /// Deletes expired sessions; run now and then.
    pub async fn delete_expired(&self) -> AppResult<u64> {
        Ok(session::Entity::delete_many().filter(session::Column::ExpiresAt.lt(crate::server::now())).exec(&self.db).await?.rows_affected)
    }
}

fn id_hash(id: &Id) -> String {
    sha256_hex(id.to_string().as_bytes())
}

fn backend(e: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

/// Ends every session of a user (disabled, removed).
pub async fn delete_user_sessions(db: &impl ConnectionTrait, user_id: i64) -> AppResult<u64> {
    Ok(session::Entity::delete_many().filter(session::Column::UserId.eq(user_id)).exec(db).await?.rows_affected)
}

#[async_trait::async_trait]
impl SessionStore for DbSessionStore {
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let data = serde_json::to_string(&record.data).map_err(|e| session_store::Error::Encode(e.to_string()))?;
        let user_id = record.data.get(USER_ID_KEY).and_then(|v| v.as_i64());
        let expires_at = record.expiry_date.unix_timestamp() * 1000;
        let row = session::ActiveModel { id_hash: Set(id_hash(&record.id)), user_id: Set(user_id), data: Set(data), expires_at: Set(expires_at) };
        session::Entity::insert(row)
            .on_conflict(
                OnConflict::column(session::Column::IdHash)
                    .update_columns([session::Column::UserId, session::Column::Data, session::Column::ExpiresAt])
                    .to_owned(),
            )
            .exec(&self.db)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let Some(row) = session::Entity::find_by_id(id_hash(id)).one(&self.db).await.map_err(backend)? else {
            return Ok(None);
        };
        if row.expires_at < crate::server::now() {
            return Ok(None);
        }
        let data = serde_json::from_str(&row.data).map_err(|e| session_store::Error::Decode(e.to_string()))?;
        let expiry_date = time::OffsetDateTime::from_unix_timestamp(row.expires_at / 1000).map_err(backend)?;
        Ok(Some(Record { id: *id, data, expiry_date }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        session::Entity::delete_by_id(id_hash(id)).exec(&self.db).await.map_err(backend)?;
        Ok(())
    }
}
