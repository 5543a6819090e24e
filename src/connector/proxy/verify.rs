//! Checks the bearer tokens kubectl presents: EdDSA signatures by the server's keys (the JWKS, cached,
//! fetched again when a token names a key id not seen yet), the issuer the connector pinned at start,
//! the audience (this cluster) and the expiry. Verified tokens are remembered until they expire, so a
//! busy kubectl costs one signature check per token, not one per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use sha2::{Digest, Sha256};

use crate::connector::server_api::ServerApi;
use crate::model::ClusterClaims;

/// The JWKS is fetched again at most this often, however many unknown key ids arrive.
const REFRESH_AT_MOST_EVERY: Duration = Duration::from_secs(2);
/// Verified tokens remembered at most; the cache is emptied when it is full.
const CACHE_LIMIT: usize = 100_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
    /// seconds since the epoch
    pub expires: i64,
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
}

pub struct Verifier {
    api: ServerApi,
    validation: Validation,
    keys: RwLock<HashMap<String, DecodingKey>>,
    last_fetch: Mutex<Option<Instant>>,
    verified: Mutex<HashMap<[u8; 32], Arc<Identity>>>,
}

impl Verifier {
    pub fn new(api: ServerApi, issuer: &str, cluster: &str) -> Verifier {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[cluster]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Verifier {
            api,
            validation,
            keys: RwLock::new(HashMap::new()),
            last_fetch: Mutex::new(None),
            verified: Mutex::new(HashMap::new()),
        }
    }

    pub async fn verify(&self, token: &str) -> Result<Arc<Identity>, Refusal> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = crate::server::now() / 1000;
        if let Some(hit) = self.verified.lock().ok().and_then(|c| c.get(&digest).cloned()) {
            if hit.expires > now {
                return Ok(hit);
            }
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| Refusal::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(Refusal::Algorithm);
        }
        let kid = header.kid.ok_or(Refusal::UnknownKey)?;
        let key = match self.key(&kid) {
            Some(key) => key,
            None => {
                self.refresh().await;
                self.key(&kid).ok_or(Refusal::UnknownKey)?
            }
        };
        let claims = jsonwebtoken::decode::<ClusterClaims>(token, &key, &self.validation)
            .map_err(|e| Refusal::Invalid(e.to_string()))?
            .claims;
        let identity = Arc::new(Identity { user: claims.sub, groups: claims.groups, expires: claims.exp });
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

    /// Fetches the JWKS again (unless it was fetched a moment ago).
    pub async fn refresh(&self) {
        {
            let Ok(mut last) = self.last_fetch.lock() else { return };
            if last.is_some_and(|t| t.elapsed() < REFRESH_AT_MOST_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        match self.api.jwks().await {
            Ok(set) => {
                let keys: HashMap<String, DecodingKey> = set
                    .keys
                    .iter()
                    .filter_map(|jwk| Some((jwk.common.key_id.clone()?, DecodingKey::from_jwk(jwk).ok()?)))
                    .collect();
                tracing::debug!(keys = keys.len(), "fetched the server's signing keys");
                if let Ok(mut current) = self.keys.write() {
                    *current = keys;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot fetch the server's signing keys"),
        }
    }
}
