//! The one error type of the server, and its single mapping to HTTP responses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::model::{ApiError, FieldError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Invalid(String, Vec<FieldError>),
    #[error("sign in first")]
    Unauthenticated,
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// a name (or email) that must be unique is taken: 409, saying which field
    #[error("{}: {}", .0.field, .0.message)]
    Taken(FieldError),
    #[error("too many failed sign-ins: try again in {0} seconds")]
    Locked(i64),
    /// a part this request needs (a cluster's connector) did not answer
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Database(#[from] sea_orm::DbErr),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    /// A bad request with one field error.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        AppError::Invalid(format!("{field}: {message}"), vec![FieldError { field: field.to_string(), message }])
    }

    /// A unique name (or email) is taken, by an existing row or by a concurrent create.
    pub fn taken(field: &str, message: impl Into<String>) -> Self {
        AppError::Taken(FieldError { field: field.to_string(), message: message.into() })
    }

    /// For the INSERT or UPDATE that is itself the uniqueness check (no check-then-insert, which two
    /// concurrent creates both pass): its unique violation becomes [`AppError::taken`], any other error stays
    /// a database error. `.map_err(AppError::or_taken("name", "a group with this name already exists"))`
    pub fn or_taken(field: &'static str, message: &'static str) -> impl FnOnce(sea_orm::DbErr) -> AppError {
        move |e| if crate::server::db::unique_violation(&e) { AppError::taken(field, message) } else { AppError::Database(e) }
    }

    pub fn forbidden() -> Self {
        AppError::Forbidden("you do not have permission to do that: ask an infra admin".into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Invalid(..) => StatusCode::BAD_REQUEST,
            AppError::Unauthenticated | AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) | AppError::Taken(_) => StatusCode::CONFLICT,
            AppError::Locked(_) => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Database(_) | AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AppError::Invalid(..) => "invalid",
            AppError::Unauthenticated => "unauthenticated",
            AppError::Unauthorized(_) => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::Conflict(_) | AppError::Taken(_) => "conflict",
            AppError::Locked(_) => "locked",
            AppError::Unavailable(_) => "unavailable",
            AppError::Database(_) | AppError::Internal(_) => "internal",
        }
    }

    pub fn body(&self) -> ApiError {
        if let AppError::Database(e) = self {
            tracing::error!(error = %e, "database error");
        }
        if let AppError::Internal(e) = self {
            tracing::error!(error = %e, "internal error");
        }
        let message = match self {
            // never leak internals to the caller; they are in the log
            AppError::Database(_) | AppError::Internal(_) => "internal error".to_string(),
            other => other.to_string(),
        };
        let fields = match self {
            AppError::Invalid(_, fields) => fields.clone(),
            AppError::Taken(field) => vec![field.clone()],
            _ => Vec::new(),
        };
        ApiError { code: self.code().to_string(), message, fields }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        (self.status(), axum::Json(self.body())).into_response()
    }
}
// Server functions turn an AppError into a ServerFnError through leptos' blanket `From<E: Error>`,
// which carries the same message as `AppError`'s Display (never internals).
