//! What the browser posts to or is sent through outside the console's server functions: the sign-in,
//! password and sign-out forms, the identity-provider sign-in, the device approval, and the kubeconfig
//! download. Each works without JavaScript and answers with a redirect (errors in `?error=`) or a file.

mod device;
mod kubeconfig;
mod oidc;
mod sign_in;

use axum::Router;
use axum::response::Redirect;

use crate::server::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().merge(sign_in::router()).merge(oidc::router()).merge(device::router()).merge(kubeconfig::router())
}

/// Back to `path` with the error shown there.
fn with_error(path: &str, message: &str) -> Redirect {
    let sep = if path.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{path}{sep}error={}", crate::app::components::encode(message)))
}

/// A path on this server the browser may be sent to; never another site (`//host` and `/\host` are read
/// by browsers as another host), so no form or remembered page becomes an open redirect.
fn local_path(path: &str) -> Option<&str> {
    let local = path.starts_with('/') && !path.starts_with("//") && !path.starts_with("/\\");
    local.then_some(path)
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_paths_on_this_server_are_redirect_targets() {
        for good in ["/", "/device", "/settings?x=1"] {
            assert_eq!(local_path(good), Some(good));
        }
        for bad in ["", "device", "//evil.example", "/\\evil.example", "https://evil.example/"] {
            assert_eq!(local_path(bad), None, "{bad:?}");
        }
    }
}
