//! The database: connecting (SQLite by default, PostgreSQL for several replicas), the migrations in
//! `migrations/`, and a helper for the few hand-written SQL statements.

pub mod entities;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult, FromQueryResult, QueryResult,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait, Value,
};

/// The migrations, in order. Each runs once, inside a transaction, and is recorded in `schema_migrations`.
const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("../../../migrations/0001_init.sql")),
    ("0002_connector", include_str!("../../../migrations/0002_connector.sql")),
    ("0003_revocations", include_str!("../../../migrations/0003_revocations.sql")),
    ("0004_certificate_requests", include_str!("../../../migrations/0004_certificate_requests.sql")),
    ("0005_providers", include_str!("../../../migrations/0005_providers.sql")),
    ("0006_device_logins", include_str!("../../../migrations/0006_device_logins.sql")),
    ("0007_provider_directory", include_str!("../../../migrations/0007_provider_directory.sql")),
    ("0008_device_login_redirect", include_str!("../../../migrations/0008_device_login_redirect.sql")),
    ("0009_provider_group_ids", include_str!("../../../migrations/0009_provider_group_ids.sql")),
    ("0010_device_login_client", include_str!("../../../migrations/0010_device_login_client.sql")),
    ("0011_verification_state", include_str!("../../../migrations/0011_verification_state.sql")),
    ("0012_grants_by_cluster", include_str!("../../../migrations/0012_grants_by_cluster.sql")),
];

pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_string());
    options.sqlx_logging(false);
    if url.starts_with("sqlite:") {
        if let Some(path) = sqlite_file(url) {
            make_private(&path, url.contains("mode=rwc"));
        }
        // one writer at a time is what SQLite allows; WAL lets readers go on meanwhile. The pragmas are
        // connection settings, so they are set on every connection the pool opens.
        options.max_connections(8).min_connections(1);
        options.map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
        });
    } else {
        options.max_connections(16);
    }
    Database::connect(options).await
}

/// The file a `sqlite:` URL names (`sqlite://PATH?…` or `sqlite:PATH`); `None` for an in-memory database.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory = path.is_empty() || path.starts_with(":memory:") || query.split('&').any(|p| p == "mode=memory");
    (!in_memory).then(|| PathBuf::from(path))
}

/// The database holds password hashes and sealed secrets: its file is created with mode 0600 before
/// SQLite opens it (when the URL lets it be created), whatever the umask, and SQLite gives its WAL and
/// shared-memory files the database file's mode. Files left more open (by an older version, or made
/// by hand) are narrowed to 0600. A failure here is logged; opening the database reports the rest.
fn make_private(path: &Path, create: bool) {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if create
        && !path.exists()
        && let Err(e) = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
    {
        tracing::warn!(path = %path.display(), error = %e, "cannot create the database file");
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let file = PathBuf::from(file);
        let Ok(meta) = std::fs::metadata(&file) else { continue };
        if meta.permissions().mode() & 0o077 != 0
            && let Err(e) = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
        {
            tracing::warn!(path = %file.display(), error = %e, "cannot make the database file private (mode 0600)");
        }
    }
}

/// Starts a transaction that will write. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`),
/// waiting up to the busy timeout for another writer to finish. A deferred transaction that reads
/// first and writes later fails at once with "database is locked" when another connection wrote in
/// between, so every service that writes starts here. On PostgreSQL this is a plain `BEGIN`.
pub async fn begin_write(db: &DatabaseConnection) -> Result<WriteTxn, DbErr> {
    let txn = db.begin_with_options(TransactionOptions { sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate), ..Default::default() }).await?;
    Ok(WriteTxn(txn))
}

/// A transaction from [`begin_write`]: it is used as the transaction it wraps, and committing it also
/// wakes the connectors' long polls ([`changes::notify`](crate::server::services::changes::notify)), so
/// that no writer can forget to after changing grants, groups, users or clusters. A long poll woken by a
/// write that changed nothing it serves re-reads its bindings and goes on waiting. Dropped without
/// `commit`, it rolls back and wakes nobody.
pub struct WriteTxn(DatabaseTransaction);

impl WriteTxn {
    pub async fn commit(self) -> Result<(), DbErr> {
        self.0.commit().await?;
        crate::server::services::changes::notify();
        Ok(())
    }
}

impl std::ops::Deref for WriteTxn {
    type Target = DatabaseTransaction;
    fn deref(&self) -> &DatabaseTransaction {
        &self.0
    }
}

// so that `&txn` goes wherever a connection goes (`&impl ConnectionTrait`, `.insert(&txn)`, `.exec(&txn)`)
#[async_trait::async_trait]
impl ConnectionTrait for WriteTxn {
    fn get_database_backend(&self) -> DbBackend {
        self.0.get_database_backend()
    }
    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.0.execute_raw(stmt).await
    }
    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.0.execute_unprepared(sql).await
    }
    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.0.query_one_raw(stmt).await
    }
    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.0.query_all_raw(stmt).await
    }
    fn support_returning(&self) -> bool {
        self.0.support_returning()
    }
    fn is_mock_connection(&self) -> bool {
        self.0.is_mock_connection()
    }
}

/// Whether `e` is a unique-constraint violation (on either database): the name or key is taken.
pub fn unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}

/// Applies the migrations that have not run yet. Safe for several servers starting at once on PostgreSQL:
/// an advisory lock serialises them.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    db.execute_unprepared("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)").await?;
    let txn = begin_write(db).await?;
    if backend == DbBackend::Postgres {
        txn.execute_unprepared("SELECT pg_advisory_xact_lock(7243001)").await?;
    }
    for (name, sql) in MIGRATIONS {
        let done = query_one(&txn, "SELECT name FROM schema_migrations WHERE name = ?", [(*name).into()]).await?;
        if done.is_some() {
            continue;
        }
        tracing::info!(migration = name, "applying migration");
        txn.execute_unprepared(&render_migration(sql, backend)).await?;
        execute(&txn, "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)", [(*name).into(), crate::server::now().into()]).await?;
    }
    txn.commit().await
}

/// A migration for `backend`: the tokens replaced, and only the lines meant for it. A line
/// `--- postgres` or `--- sqlite` starts lines for that database only (where the two cannot share a
/// statement, such as dropping a constraint), `--- both` ends them.
fn render_migration(sql: &str, backend: DbBackend) -> String {
    let (pk, text, this) = match backend {
        DbBackend::Postgres => ("BIGSERIAL PRIMARY KEY", "TEXT COLLATE \"C\"", "postgres"),
        _ => ("INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT", "sqlite"),
    };
    let mut keep = true;
    let mut out = String::with_capacity(sql.len());
    for line in sql.lines() {
        if let Some(section) = line.strip_prefix("--- ") {
            keep = section.trim() == "both" || section.trim() == this;
            continue;
        }
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.replace("{{PK}}", pk).replace("{{TEXT}}", text)
}

/// Builds a statement from SQL written with `?` placeholders, numbering them for PostgreSQL. A `?` inside
/// a string literal (`'...'`, where `''` is a quote) is text, not a placeholder.
pub fn statement(backend: DbBackend, sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    let sql = if backend == DbBackend::Postgres {
        let mut out = String::with_capacity(sql.len() + 8);
        let mut n = 0;
        let mut in_literal = false;
        for c in sql.chars() {
            if c == '\'' {
                // `''` inside a literal toggles twice: still inside
                in_literal = !in_literal;
                out.push(c);
            } else if c == '?' && !in_literal {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        out
    } else {
        sql.to_string()
    };
    Statement::from_sql_and_values(backend, sql, values)
}

pub async fn query_all(db: &impl ConnectionTrait, sql: &str, values: impl IntoIterator<Item = Value>) -> Result<Vec<QueryResult>, DbErr> {
    db.query_all_raw(statement(db.get_database_backend(), sql, values)).await
}

pub async fn query_one(db: &impl ConnectionTrait, sql: &str, values: impl IntoIterator<Item = Value>) -> Result<Option<QueryResult>, DbErr> {
    db.query_one_raw(statement(db.get_database_backend(), sql, values)).await
}

pub async fn execute(db: &impl ConnectionTrait, sql: &str, values: impl IntoIterator<Item = Value>) -> Result<u64, DbErr> {
    Ok(db.execute_raw(statement(db.get_database_backend(), sql, values)).await?.rows_affected())
}

/// Rows of hand-written SQL decoded by column name (`SELECT x AS name ...`) into `T`.
pub fn decode<T: FromQueryResult>(rows: &[QueryResult]) -> Result<Vec<T>, DbErr> {
    rows.iter().map(|row| T::from_query_result(row, "")).collect()
}

/// `SELECT COUNT(*) ...` as a number.
pub async fn count(db: &impl ConnectionTrait, sql: &str, values: impl IntoIterator<Item = Value>) -> Result<u64, DbErr> {
    let row = query_one(db, sql, values).await?;
    let n: i64 = match row {
        // the one column of a COUNT(*), whatever the database names it
        Some(row) => row.try_get_by_index(0)?,
        None => 0,
    };
    Ok(n.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::statement;
    use sea_orm::DbBackend;

    #[test]
    fn placeholders_are_numbered_for_postgres_but_not_inside_string_literals() {
        let sql = |s: &str| statement(DbBackend::Postgres, s, []).sql;
        assert_eq!(sql("SELECT a FROM t WHERE b = ? AND c = ?"), "SELECT a FROM t WHERE b = $1 AND c = $2");
        assert_eq!(sql("SELECT '?' || x FROM t WHERE y = ?"), "SELECT '?' || x FROM t WHERE y = $1");
        assert_eq!(sql("SELECT 'it''s ?' FROM t WHERE y = ? AND z = '?'"), "SELECT 'it''s ?' FROM t WHERE y = $1 AND z = '?'");
        assert_eq!(statement(DbBackend::Sqlite, "SELECT '?', ?", []).sql, "SELECT '?', ?");
    }
}
