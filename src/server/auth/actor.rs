//! Who is calling: the one place that turns a request (a session cookie, a user's access key, a
//! connector key) into an [`Actor`] with its scope. The REST API, the browser forms and the console's
//! server functions all use the extractors and helpers here; nothing else reads credentials.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::{header, request::Parts};
use tower_sessions::Session;

use crate::model::KeyText;
use crate::server::auth::{
    actor_for_user,
    session_store::{SIGNED_IN_AT_KEY, USER_ID_KEY},
};
use crate::server::error::AppError;
use crate::server::services::{Actor, audit, keys};
use crate::server::state::AppState;

/// The client's address: the connection's peer, or, when the peer is a trusted proxy (`--trusted-proxy`),
/// the right-most `X-Forwarded-For` entry that is not a trusted proxy itself (entries further left are
/// whatever the client chose to send). Unspecified when the server runs without connection info.
pub fn client_ip(parts: &Parts, trusted: &[ipnet::IpNet]) -> IpAddr {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip().to_canonical()).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded = parts.headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(",");
    let mut client = peer;
    for hop in forwarded.split(',').rev() {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip.to_canonical();
                if !is_trusted(&client) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

/// What a request may be resolved into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// A person (a session, or a user's access key), whose one-time password is already changed.
    Person,
    /// A person who may still have to change a one-time password (the password form, `me`).
    PersonPendingPassword,
    /// The caller of a cluster's connector endpoints: a connector key, or a person (the service decides
    /// with [`crate::server::services::Ctx::require_connector_for`] whether they may act for the cluster).
    Connector,
}

/// Resolves the caller of a request within `scope`. A connector key is refused outside its cluster's
/// connector endpoints (and the attempt audited); a user who still has to change a one-time password is
/// refused everything but [`Scope::PersonPendingPassword`].
pub async fn resolve(parts: &mut Parts, state: &AppState, scope: Scope) -> Result<Actor, AppError> {
    let actor = authenticate(parts, state).await?;
    if scope != Scope::Connector
        && let Some(cluster) = &actor.bound_destination
    {
        let what = format!("{} {}", parts.method, parts.uri.path());
        let why = format!("connector key of cluster {cluster} used outside its cluster's connector endpoints");
        audit::record(&state.db, &actor, "auth.key", &what, audit::Outcome::Denied, &why).await?;
        return Err(AppError::Forbidden("a connector key can only be used by its cluster's connector".into()));
    }
    if actor.must_change_password && scope != Scope::PersonPendingPassword {
        return Err(AppError::Forbidden("change your one-time password first".into()));
    }
    Ok(actor)
}

/// Who is calling, whatever the credential: an access key in `Authorization: Bearer`, or else the session.
async fn authenticate(parts: &mut Parts, state: &AppState) -> Result<Actor, AppError> {
    let ip = client_ip(parts, &state.config.trusted_proxies);
    let source = ip.to_string();
    if let Some(key) = bearer(parts) {
        let identity = match keys::authenticate(&state.db, key).await {
            Ok(identity) => identity,
            Err(e) => {
                let key_id = KeyText::claimed_id(key);
                state.unauthenticated.audit_refusal(&state.db, ip, "auth.key", &key_id, &e.to_string()).await?;
                return Err(e);
            }
        };
        let mut actor = actor_for_user(&state.db, identity.user_id, &source).await?;
        actor.bound_destination = identity.destination;
        actor.key_id = Some(identity.key_id);
        return Ok(actor);
    }
    let session = Session::from_request_parts(parts, state).await.map_err(|_| AppError::Unauthenticated)?;
    let user_id: Option<i64> = session.get(USER_ID_KEY).await.map_err(|e| AppError::Internal(e.to_string()))?;
    let user_id = user_id.ok_or(AppError::Unauthenticated)?;
    let signed_in_at: Option<i64> = session.get(SIGNED_IN_AT_KEY).await.map_err(|e| AppError::Internal(e.to_string()))?;
    let max_age_ms = state.config.session_max_age_hours.saturating_mul(3_600_000) as i64;
    if signed_in_at.is_none_or(|t| crate::server::now() - t > max_age_ms) {
        let _ = session.flush().await;
        return Err(AppError::Unauthenticated);
    }
    match actor_for_user(&state.db, user_id, &source).await {
        Ok(actor) => Ok(actor),
        Err(e) => {
            let _ = session.flush().await;
            Err(e)
        }
    }
}

/// A signed-in person (a session or a user's access key) whose one-time password is changed. The
/// rejection is the API's JSON error; browser forms take `Result<SignedIn, AppError>` and redirect.
pub struct SignedIn(pub Actor);

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        resolve(parts, state, Scope::Person).await.map(SignedIn)
    }
}

/// A signed-in person, also while they still have to change a one-time password.
pub struct PendingPassword(pub Actor);

impl FromRequestParts<AppState> for PendingPassword {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        resolve(parts, state, Scope::PersonPendingPassword).await.map(PendingPassword)
    }
}

/// The caller of one of a cluster's connector endpoints (register, heartbeat, bindings, audit, certificates).
pub struct ConnectorCaller(pub Actor);

impl FromRequestParts<AppState> for ConnectorCaller {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        resolve(parts, state, Scope::Connector).await.map(ConnectorCaller)
    }
}

/// The client's address (unspecified when the server was not started with connection info).
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts, &state.config.trusted_proxies)))
    }
}

/// The console's server functions: the state and the request they run in, from leptos' context.
pub mod server_fn {
    use leptos::prelude::{ServerFnError, use_context};

    use super::{Scope, resolve};
    use crate::server::error::AppError;
    use crate::server::services::Actor;
    use crate::server::state::AppState;

    /// The app state, for the few server functions anyone may call.
    pub fn state() -> Result<AppState, ServerFnError> {
        use_context::<AppState>().ok_or_else(|| ServerFnError::new("server state missing"))
    }

    /// The session of the request a server function runs in, if it has one.
    pub fn session() -> Option<tower_sessions::Session> {
        let parts: http::request::Parts = use_context()?;
        parts.extensions.get::<tower_sessions::Session>().cloned()
    }

    async fn resolve_in(scope: Scope) -> Result<(AppState, Result<Actor, AppError>), ServerFnError> {
        let state = state()?;
        let mut parts: http::request::Parts = use_context().ok_or_else(|| ServerFnError::new("request missing"))?;
        let actor = resolve(&mut parts, &state, scope).await;
        Ok((state, actor))
    }

    /// The app state and the signed-in person, or an error the console shows.
    pub async fn actor() -> Result<(AppState, Actor), ServerFnError> {
        let (state, actor) = resolve_in(Scope::Person).await?;
        Ok((state, actor?))
    }

    /// Like [`actor`], but also for a user who still has to change a one-time password; `None` when
    /// nobody is signed in.
    pub async fn actor_pending_password() -> Result<Option<(AppState, Actor)>, ServerFnError> {
        match resolve_in(Scope::PersonPendingPassword).await? {
            (state, Ok(actor)) => Ok(Some((state, actor))),
            (_, Err(AppError::Unauthenticated)) => Ok(None),
            (_, Err(e)) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, SocketAddr};

    use axum::extract::ConnectInfo;
    use axum::http::Request;

    use super::client_ip;

    fn parts(peer: &str, forwarded: &[&str]) -> axum::http::request::Parts {
        let mut req = Request::builder().uri("/");
        for f in forwarded {
            req = req.header("x-forwarded-for", *f);
        }
        let (mut parts, ()) = req.body(()).expect("a request").into_parts();
        let peer: SocketAddr = peer.parse().expect("a socket address");
        parts.extensions.insert(ConnectInfo(peer));
        parts
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn the_client_is_the_peer_unless_the_peer_is_a_trusted_proxy() {
        let proxies: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().expect("a network")];
        // an untrusted peer's X-Forwarded-For is whatever it chose to send
        assert_eq!(client_ip(&parts("203.0.113.5:4000", &["198.51.100.1"]), &proxies), ip("203.0.113.5"));
        // through a trusted proxy: the right-most entry that is not a trusted proxy itself
        assert_eq!(client_ip(&parts("10.0.0.2:4000", &["198.51.100.1, 192.0.2.9, 10.1.1.1"]), &proxies), ip("192.0.2.9"));
        // several headers count as one list
        assert_eq!(client_ip(&parts("10.0.0.2:4000", &["198.51.100.1", "192.0.2.9"]), &proxies), ip("192.0.2.9"));
        // garbage ends the walk: the last address known good is the client
        assert_eq!(client_ip(&parts("10.0.0.2:4000", &["192.0.2.9, not-an-ip, 10.1.1.1"]), &proxies), ip("10.1.1.1"));
        // no proxies trusted: always the peer; IPv4-mapped IPv6 peers are their IPv4 address
        assert_eq!(client_ip(&parts("[::ffff:10.0.0.2]:4000", &["192.0.2.9"]), &[]), ip("10.0.0.2"));
        // no connection info (a server without it): unspecified
        let (bare, ()) = Request::builder().uri("/").body(()).expect("a request").into_parts();
        assert_eq!(client_ip(&bare, &proxies), ip("0.0.0.0"));
    }
}
