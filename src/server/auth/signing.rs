//! The keys that sign cluster tokens (EdDSA / Ed25519), their JWKS, and rotation.
//!
//! Private keys are stored in the database encrypted with the server's master key (XChaCha20-Poly1305,
//! the key id as associated data), so a copy of the database alone cannot mint tokens. Every replica
//! shares the database and must be given the same master key. A rotated key stops signing at once but
//! stays in the JWKS until every token it signed has expired, so rotation never breaks a token in use.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rand::RngCore;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::Serialize;

use crate::model::ClusterClaims;
use crate::server::db::entities::signing_key;
use crate::server::error::{AppError, AppResult};

/// A key signs for this long before a new one takes over (checked at start and on every reload).
pub const ROTATE_AFTER: Duration = Duration::from_secs(30 * 24 * 3600);
/// The longest a token signed by this server lives; a retired key is published this much longer.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Replicas pick up a key another replica rotated in at most this long.
const RELOAD_AFTER: Duration = Duration::from_secs(30);
const ALGORITHM: &str = "EdDSA";

/// The 32-byte key that encrypts the signing keys at rest.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl MasterKey {
    /// Reads the master key from `INFRA_MASTER_KEY` (base64) if set, else from `path`, creating that
    /// file (mode 0600) with a new random key on first start.
    pub fn load_or_create(path: &Path) -> Result<MasterKey, String> {
        let text = match std::env::var("INFRA_MASTER_KEY") {
            Ok(v) if !v.trim().is_empty() => v,
            _ if path.exists() => std::fs::read_to_string(path).map_err(|e| format!("cannot read the master key {}: {e}", path.display()))?,
            _ => {
                let mut key = [0u8; 32];
                rand::rng().fill_bytes(&mut key);
                let text = STANDARD.encode(key);
                crate::files::write_private(path, &text)?;
                return Ok(MasterKey(key));
            }
        };
        let bytes = STANDARD.decode(text.trim()).map_err(|_| "the master key is not base64".to_string())?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| "the master key must be 32 bytes (base64)".to_string())?;
        Ok(MasterKey(key))
    }

    pub fn encrypt(&self, plaintext: &[u8], aad: &str) -> AppResult<String> {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad: aad.as_bytes() })
            .map_err(|_| AppError::Internal("cannot encrypt a secret".into()))?;
        Ok(STANDARD.encode([nonce.as_slice(), &sealed].concat()))
    }

    pub fn decrypt(&self, stored: &str, aad: &str) -> Result<Vec<u8>, String> {
        let bytes = STANDARD.decode(stored).map_err(|_| "a stored secret is not base64".to_string())?;
        if bytes.len() < 24 {
            return Err("a stored secret is truncated".into());
        }
        let (nonce, sealed) = bytes.split_at(24);
        XChaCha20Poly1305::new((&self.0).into())
            .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad: aad.as_bytes() })
            .map_err(|_| "the master key does not open a stored secret (is INFRA_MASTER_KEY the one the other replicas use?)".into())
    }
}

/// A public key as published in the JWKS (RFC 8037 OKP key).
#[derive(Clone, Debug, Serialize)]
pub struct PublicJwk {
    pub kty: &'static str,
    pub crv: &'static str,
    pub alg: &'static str,
    #[serde(rename = "use")]
    pub use_: &'static str,
    pub kid: String,
    pub x: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Jwks {
    pub keys: Vec<PublicJwk>,
}

struct KeySet {
    kid: String,
    encoding: EncodingKey,
    published: Jwks,
    loaded: Instant,
}

/// The signing keys of this server, cached and reloaded from the database now and then.
#[derive(Clone)]
pub struct Signer {
    master: MasterKey,
    keys: Arc<RwLock<Arc<KeySet>>>,
}

impl Signer {
    /// Loads the keys, creating the first one (or rotating an old one) as needed.
    pub async fn start(db: &DatabaseConnection, master: MasterKey) -> Result<Signer, String> {
        let set = load(db, &master).await?;
        Ok(Signer { master, keys: Arc::new(RwLock::new(Arc::new(set))) })
    }

    async fn current(&self, db: &DatabaseConnection) -> AppResult<Arc<KeySet>> {
        let set = self.keys.read().map_err(|_| poisoned())?.clone();
        if set.loaded.elapsed() < RELOAD_AFTER {
            return Ok(set);
        }
        let fresh = Arc::new(load(db, &self.master).await.map_err(AppError::Internal)?);
        *self.keys.write().map_err(|_| poisoned())? = fresh.clone();
        Ok(fresh)
    }

    pub async fn sign(&self, db: &DatabaseConnection, claims: &ClusterClaims) -> AppResult<String> {
        let set = self.current(db).await?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(set.kid.clone());
        jsonwebtoken::encode(&header, claims, &set.encoding).map_err(|e| AppError::Internal(format!("cannot sign a token: {e}")))
    }

    pub async fn jwks(&self, db: &DatabaseConnection) -> AppResult<Jwks> {
        Ok(self.current(db).await?.published.clone())
    }

    /// Starts signing with a new key now. The old one stays published until its tokens have expired.
    pub async fn rotate(&self, db: &DatabaseConnection) -> AppResult<String> {
        let kid = create_key(db, &self.master).await?;
        let fresh = Arc::new(load(db, &self.master).await.map_err(AppError::Internal)?);
        *self.keys.write().map_err(|_| poisoned())? = fresh;
        Ok(kid)
    }
}

fn poisoned() -> AppError {
    AppError::Internal("the signing key cache is poisoned".into())
}

/// Creates a key and retires the others (they stay published for [`MAX_TOKEN_LIFETIME`]).
async fn create_key(db: &impl ConnectionTrait, master: &MasterKey) -> AppResult<String> {
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
    let der = signing.to_pkcs8_der().map_err(|e| AppError::Internal(format!("cannot encode a signing key: {e}")))?;
    let public = URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes());
    let kid = crate::server::auth::password::random_token(16);
    let now = crate::server::now();
    signing_key::Entity::update_many()
        .col_expr(signing_key::Column::RetiredAt, Expr::value(now))
        .col_expr(signing_key::Column::ExpiresAt, Expr::value(now + MAX_TOKEN_LIFETIME.as_millis() as i64))
        .filter(signing_key::Column::RetiredAt.is_null())
        .exec(db)
        .await?;
    signing_key::ActiveModel {
        kid: Set(kid.clone()),
        algorithm: Set(ALGORITHM.into()),
        private_key: Set(master.encrypt(der.as_bytes(), &kid)?),
        public_key: Set(public),
        created_at: Set(now),
        retired_at: Set(None),
        expires_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    tracing::info!(kid, "new token signing key");
    Ok(kid)
}

async fn load(db: &DatabaseConnection, master: &MasterKey) -> Result<KeySet, String> {
    let now = crate::server::now();
    let active =
        |db| async move { signing_key::Entity::find().filter(signing_key::Column::RetiredAt.is_null()).order_by_desc(signing_key::Column::Id).one(db).await };
    let mut row = active(db).await.map_err(|e| e.to_string())?;
    let stale = match &row {
        None => true,
        Some(k) => k.created_at + (ROTATE_AFTER.as_millis() as i64) < now,
    };
    if stale {
        create_key(db, master).await.map_err(|e| e.to_string())?;
        row = active(db).await.map_err(|e| e.to_string())?;
    }
    let signing_key::Model { kid, private_key: sealed, .. } = row.ok_or("no active signing key")?;
    let der = master.decrypt(&sealed, &kid)?;
    let published = signing_key::Entity::find()
        .filter(Condition::any().add(signing_key::Column::ExpiresAt.is_null()).add(signing_key::Column::ExpiresAt.gt(now)))
        .order_by_desc(signing_key::Column::Id)
        .all(db)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|k| PublicJwk { kty: "OKP", crv: "Ed25519", alg: ALGORITHM, use_: "sig", kid: k.kid, x: k.public_key })
        .collect();
    Ok(KeySet { kid, encoding: EncodingKey::from_ed_der(&der), published: Jwks { keys: published }, loaded: Instant::now() })
}
