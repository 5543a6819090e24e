//! JSON bodies and query strings whose rejections become the API's JSON errors. Who is calling is
//! decided in [`crate::server::auth::actor`].

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::server::error::AppError;

/// A JSON body; malformed input is a 400 with our error body.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;
    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        axum::Json::<T>::from_request(req, state).await.map(|axum::Json(v)| ApiJson(v)).map_err(|e| AppError::Invalid(e.body_text(), Vec::new()))
    }
}

/// A query string; malformed input is a 400 with our error body.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| ApiQuery(v))
            .map_err(|e| AppError::Invalid(e.body_text(), Vec::new()))
    }
}
