//! Checks the bearer tokens kubectl presents: EdDSA signatures by the server's keys (the JWKS, cached,
//! fetched again when a token names a key id not seen yet), the issuer the connector pinned at start,
//! the audience (this cluster) and the expiry. Verified tokens are remembered until they expire, so a
//! busy kubectl costs one signature check per token, not one per request.
//!
//! Revocations come from the server with the bindings (see `services::revocations`): a token minted
//! with a revoked access key, or held by a disabled or deleted user, is refused from the moment the
//! connector hears of it. Until the first list has arrived, every token is refused.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use sha2::{Digest, Sha256};

use crate::connector::server_api::ServerApi;
use crate::model::ClusterClaims;

/// The JWKS is fetched again at most this often, however many unknown key ids arrive.
const REFRESH_AT_MOST_EVERY: Duration = Duration::from_secs(2);
/// Clock skew allowed between the server and the connector, in seconds.
const LEEWAY_SECS: u64 = 5;
/// Verified tokens remembered at most; the cache is emptied when it is full.
const CACHE_LIMIT: usize = 100_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
    /// seconds since the epoch
    pub expires: i64,
    pub user_id: i64,
    /// the access key the token was minted with
    pub key_id: Option<String>,
    /// the token came in a downloaded kubeconfig (not from `infra tokens`)
    pub downloaded: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("no bearer token")]
    Missing,
    #[error("the token is malformed")]
    Malformed,
    #[error("the token is signed with an algorithm other than EdDSA")]
    Algorithm,
    #[error("the token is signed by an unknown key")]
    UnknownKey,
    #[error("the token is not valid here: {0}")]
    Invalid(String),
    #[error("the token has expired")]
    Expired { downloaded: bool },
    #[error("the token's key or user has been revoked")]
    Revoked { downloaded: bool },
    #[error("the connector has not yet heard which credentials are revoked")]
    NotReady,
}

impl Refusal {
    /// What kubectl shows in the parentheses of "You must be logged in to the server (…)": the cause
    /// and the command that mends it, `server` being the infra server the tokens come from.
    pub fn sentence(&self, server: &str) -> String {
        match self {
            Refusal::Missing => format!("no credentials: run infra login {server}, or download a kubeconfig from {server}"),
            Refusal::Revoked { downloaded: false } => {
                format!("your login to {server} was revoked, or your user disabled: run infra login {server}")
            }
            Refusal::Revoked { downloaded: true } => {
                format!("the token in this kubeconfig was revoked, or its user disabled: download a new kubeconfig from {server}")
            }
            Refusal::Expired { downloaded: false } => format!("your token has expired: run infra login {server}"),
            Refusal::Expired { downloaded: true } => format!("the token in this kubeconfig has expired: download a new kubeconfig from {server}"),
            Refusal::NotReady => "the connector is starting: try again in a moment".to_string(),
            other => format!("{other}: run infra login {server}, or download a new kubeconfig from {server}"),
        }
    }
}

/// What the proxy refuses, and who is in which granted group, as last heard from the server.
#[derive(Default)]
struct RevokedSets {
    loaded: bool,
    keys: HashSet<String>,
    users: HashSet<i64>,
    groups_of: HashMap<String, Vec<String>>,
}

pub struct Verifier {
    api: ServerApi,
    issuer: String,
    validation: Validation,
    keys: RwLock<HashMap<String, DecodingKey>>,
    /// when the JWKS was last fetched; held while fetching, so fetches never overlap
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    verified: Mutex<HashMap<[u8; 32], Arc<Identity>>>,
    revoked: RwLock<RevokedSets>,
}

impl Verifier {
    /// The infra server the tokens come from (their issuer).
    pub fn server(&self) -> &str {
        &self.issuer
    }

    pub fn new(api: ServerApi, issuer: &str, cluster: &str) -> Verifier {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[cluster]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        // the expiry is checked after the signature, in `verify`, to say which kind of token expired
        validation.validate_exp = false;
        Verifier {
            api,
            issuer: issuer.to_string(),
            validation,
            keys: RwLock::new(HashMap::new()),
            last_fetch: tokio::sync::Mutex::new(None),
            verified: Mutex::new(HashMap::new()),
            revoked: RwLock::new(RevokedSets::default()),
        }
    }

    /// The server's current revocations and group members; takes effect on the next request.
    pub fn set_access(&self, desired: &crate::model::DesiredBindings) {
        let mut groups_of: HashMap<String, Vec<String>> = HashMap::new();
        for (group, members) in &desired.members {
            for member in members {
                groups_of.entry(member.clone()).or_default().push(group.clone());
            }
        }
        if let Ok(mut sets) = self.revoked.write() {
            *sets = RevokedSets {
                loaded: true,
                keys: desired.revoked.keys.iter().cloned().collect(),
                users: desired.revoked.users.iter().copied().collect(),
                groups_of,
            };
        }
    }

    /// The user's groups now (those with a grant on this cluster), whatever their token says.
    pub fn current_groups(&self, user: &str) -> Vec<String> {
        self.revoked.read().ok().and_then(|s| s.groups_of.get(user).cloned()).unwrap_or_default()
    }

    /// Whether the identity's key or user is known to be revoked now (for streams opened before).
    pub fn is_revoked(&self, identity: &Identity) -> bool {
        matches!(self.check_revoked(identity), Err(Refusal::Revoked { .. }))
    }

    fn check_revoked(&self, identity: &Identity) -> Result<(), Refusal> {
        let sets = self.revoked.read().map_err(|_| Refusal::NotReady)?;
        if !sets.loaded {
            return Err(Refusal::NotReady);
        }
        if sets.users.contains(&identity.user_id) || identity.key_id.as_ref().is_some_and(|k| sets.keys.contains(k)) {
            return Err(Refusal::Revoked { downloaded: identity.downloaded });
        }
        Ok(())
    }

    pub async fn verify(&self, token: &str) -> Result<Arc<Identity>, Refusal> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = crate::server::now() / 1000;
        if let Some(hit) = self.verified.lock().ok().and_then(|c| c.get(&digest).cloned())
            && hit.expires > now
        {
            self.check_revoked(&hit)?;
            return Ok(hit);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| Refusal::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(Refusal::Algorithm);
        }
        let kid = header.kid.ok_or(Refusal::UnknownKey)?;
        let key = match self.key(&kid) {
            Some(key) => key,
            None => {
                // a key the server rotated in: fetch the JWKS (waiting out the rate limit rather than
                // refusing a good token; a token naming a key that never appears waits at most 5 s)
                let _ = tokio::time::timeout(Duration::from_secs(5), self.refresh_for(&kid)).await;
                self.key(&kid).ok_or(Refusal::UnknownKey)?
            }
        };
        let claims = jsonwebtoken::decode::<ClusterClaims>(token, &key, &self.validation).map_err(|e| Refusal::Invalid(e.to_string()))?.claims;
        if claims.exp + (LEEWAY_SECS as i64) < now {
            return Err(Refusal::Expired { downloaded: claims.downloaded });
        }
        let identity = Arc::new(Identity {
            user: claims.sub,
            groups: claims.groups,
            expires: claims.exp,
            user_id: claims.uid,
            key_id: claims.sid,
            downloaded: claims.downloaded,
        });
        self.check_revoked(&identity)?;
        if let Ok(mut cache) = self.verified.lock() {
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(digest, identity.clone());
        }
        Ok(identity)
    }

    fn key(&self, kid: &str) -> Option<DecodingKey> {
        self.keys.read().ok()?.get(kid).cloned()
    }

    /// Fetches the JWKS now (at start).
    pub async fn refresh(&self) {
        let mut last = self.last_fetch.lock().await;
        self.fetch().await;
        *last = Some(Instant::now());
    }

    /// Fetches the JWKS for a key id not known yet, at most once every `REFRESH_AT_MOST_EVERY`: when the
    /// last fetch was a moment ago, it waits out the rest of the interval (a fetch by a request ahead in
    /// line may have brought the key meanwhile).
    async fn refresh_for(&self, kid: &str) {
        let mut last = self.last_fetch.lock().await;
        if self.key(kid).is_some() {
            return;
        }
        if let Some(t) = *last {
            let since = t.elapsed();
            if since < REFRESH_AT_MOST_EVERY {
                tokio::time::sleep(REFRESH_AT_MOST_EVERY - since).await;
            }
        }
        self.fetch().await;
        *last = Some(Instant::now());
    }

    async fn fetch(&self) {
        match self.api.jwks().await {
            Ok(set) => {
                let keys: HashMap<String, DecodingKey> =
                    set.keys.iter().filter_map(|jwk| Some((jwk.common.key_id.clone()?, DecodingKey::from_jwk(jwk).ok()?))).collect();
                tracing::debug!(keys = keys.len(), "fetched the server's signing keys");
                if let Ok(mut current) = self.keys.write() {
                    *current = keys;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot fetch the server's signing keys"),
        }
    }
}
