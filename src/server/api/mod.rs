//! The REST API under `/api`, one module per resource, each with its `router()`. Handlers only parse,
//! call a service, and shape the answer; who is calling comes from [`crate::server::auth::actor`].

mod audit;
mod connector;
mod destinations;
mod extract;
mod grants;
mod groups;
mod keys;
mod login;
mod me;
mod providers;
mod settings;
mod tokens;
mod users;
pub mod well_known;

use axum::Router;
use serde::Deserialize;

use crate::server::error::AppError;
use crate::server::services::Paging;
use crate::server::state::AppState;

/// Every route under `/api`.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(me::router())
        .merge(users::router())
        .merge(groups::router())
        .merge(grants::router())
        .merge(destinations::router())
        .merge(connector::router())
        .merge(keys::router())
        .merge(tokens::router())
        .merge(login::router())
        .merge(providers::router())
        .merge(settings::router())
        .merge(audit::router())
        .fallback(|| async { AppError::NotFound("API route".into()) })
}

/// `?q=&page=&limit=` of the lists.
#[derive(Deserialize)]
struct ListQuery {
    q: Option<String>,
    page: Option<u64>,
    limit: Option<u64>,
}

impl ListQuery {
    fn paging(&self) -> Paging {
        Paging::new(self.page, self.limit)
    }
}
