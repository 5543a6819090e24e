//! The database: connecting (SQLite by default, PostgreSQL for several replicas), the migrations in
//! `migrations/`, and a helper for the few hand-written SQL statements.

pub mod entities;

use std::time::Duration;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, QueryResult,
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
    ("0009_verification_state", include_str!("../../../migrations/0009_verification_state.sql")),
];

pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_string());
    options.sqlx_logging(false);
    if url.starts_with("sqlite:") {
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

/// Starts a transaction that will write. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`),
/// waiting up to the busy timeout for another writer to finish. A deferred transaction that reads
/// first and writes later fails at once with "database is locked" when another connection wrote in
/// between, so every service that writes starts here. On PostgreSQL this is a plain `BEGIN`.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// Applies the migrations that have not run yet. Safe for several servers starting at once on PostgreSQL:
/// an advisory lock serialises them.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    db.execute_unprepared(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .await?;
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
        execute(
            &txn,
            "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
            [(*name).into(), crate::server::now().into()],
        )
        .await?;
    }
    txn.commit().await
}

fn render_migration(sql: &str, backend: DbBackend) -> String {
    let (pk, text) = match backend {
        DbBackend::Postgres => ("BIGSERIAL PRIMARY KEY", "TEXT COLLATE \"C\""),
        _ => ("INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT"),
    };
    sql.replace("{{PK}}", pk).replace("{{TEXT}}", text)
}

/// Builds a statement from SQL written with `?` placeholders, numbering them for PostgreSQL.
pub fn statement(backend: DbBackend, sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    let sql = if backend == DbBackend::Postgres {
        let mut out = String::with_capacity(sql.len() + 8);
        let mut n = 0;
        for c in sql.chars() {
            if c == '?' {
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

pub async fn query_all(
    db: &impl ConnectionTrait,
    sql: &str,
    values: impl IntoIterator<Item = Value>,
) -> Result<Vec<QueryResult>, DbErr> {
    db.query_all_raw(statement(db.get_database_backend(), sql, values)).await
}

pub async fn query_one(
    db: &impl ConnectionTrait,
    sql: &str,
    values: impl IntoIterator<Item = Value>,
) -> Result<Option<QueryResult>, DbErr> {
    db.query_one_raw(statement(db.get_database_backend(), sql, values)).await
}

pub async fn execute(db: &impl ConnectionTrait, sql: &str, values: impl IntoIterator<Item = Value>) -> Result<u64, DbErr> {
    Ok(db.execute_raw(statement(db.get_database_backend(), sql, values)).await?.rows_affected())
}

/// `SELECT COUNT(*) ...` as a number.
pub async fn count(db: &impl ConnectionTrait, sql: &str, values: impl IntoIterator<Item = Value>) -> Result<u64, DbErr> {
    let row = query_one(db, sql, values).await?;
    let n: i64 = match row {
        Some(row) => row.try_get_by_index(0)?,
        None => 0,
    };
    Ok(n.max(0) as u64)
}
