//! Infra: one place to manage who may reach which Kubernetes clusters and namespaces.
//!
//! - [`model`]: request and response types shared by the API, the console and the CLI
//! - [`app`]: the Leptos console (server-rendered, hydrated in the browser)
//! - [`server`]: everything server-only: database, services (the domain rules), auth, REST API
//! - [`client`]: the typed client of the REST API (the CLI and the connector use it)
//! - [`connector`]: `infra connector`: registration, RBAC reconcile, the authenticating proxy

pub mod app;
#[cfg(feature = "ssr")]
pub mod cli;
#[cfg(feature = "ssr")]
pub mod client;
#[cfg(feature = "ssr")]
pub mod connector;
#[cfg(feature = "ssr")]
pub mod files;
pub mod model;
#[cfg(feature = "ssr")]
pub mod server;
#[cfg(feature = "ssr")]
pub mod tls;

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
