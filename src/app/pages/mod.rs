//! One module per area of the console.

mod access;
mod audit;
mod auth;
mod clusters;
mod device;
mod groups;
mod kubeconfig;
mod providers;
mod settings;
mod users;

pub use access::{AccessPage, MyAccessPage};
pub use audit::AuditPage;
pub use auth::{ChangePasswordPage, LoginPage};
pub use clusters::{ClusterPage, ClustersPage};
pub use device::DevicePage;
pub use groups::{GroupPage, GroupsPage};
pub use kubeconfig::KubeconfigPage;
pub use providers::ProvidersPage;
pub use settings::SettingsPage;
pub use users::UsersPage;

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use leptos_router::params::ParamsMap;

use super::CurrentUser;

/// A query parameter, or "".
pub fn query_param(name: &'static str) -> impl Fn() -> String + Copy + Send + Sync + 'static {
    let query = use_query_map();
    move || query.with(|q: &ParamsMap| q.get(name).unwrap_or_default())
}

/// The `page` query parameter, 1 when absent or bad.
pub fn page_param() -> impl Fn() -> u64 + Copy + Send + Sync + 'static {
    let page = query_param("page");
    move || page().parse().unwrap_or(1).max(1)
}

/// Whether the signed-in user is an infra admin (the server checks again on every call).
pub fn is_admin() -> impl Fn() -> bool + Copy + Send + Sync + 'static {
    let me = expect_context::<CurrentUser>().0;
    move || me.get().and_then(|r| r.ok()).flatten().is_some_and(|m| m.is_admin)
}
