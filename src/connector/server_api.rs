//! The connector's calls to `infra server`: register and heartbeat, the bindings long poll, the JWKS,
//! and the audit batches. Every call carries the connector key.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::model::{ApiError, DesiredBindings, Destination, DestinationRegistration, ProxiedRequest};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot reach the server at {url}: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("the server refused the connector key ({0}): create a new key for this cluster in the console")]
    KeyRefused(String),
    #[error("the server answered {status}: {message}")]
    Refused { status: StatusCode, message: String },
}

#[derive(Clone)]
pub struct ServerApi {
    base: String,
    key: String,
    http: reqwest::Client,
}

#[derive(Deserialize)]
pub struct Discovery {
    pub issuer: String,
}

#[derive(Deserialize)]
pub struct JwkSet {
    pub keys: Vec<jsonwebtoken::jwk::Jwk>,
}

impl ServerApi {
    /// `server_ca`: PEM of a CA to trust for the server's certificate, when it has its own CA.
    pub fn new(base: &str, key: &str, server_ca: Option<&[u8]>) -> Result<ServerApi, String> {
        crate::tls::install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("infra-connector/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = server_ca {
            let cert = reqwest::Certificate::from_pem(pem).map_err(|e| format!("the server CA is not a PEM certificate: {e}"))?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(ServerApi { base: base.trim_end_matches('/').to_string(), key: key.trim().to_string(), http })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T, ServerError> {
        let res = req.bearer_auth(&self.key).send().await.map_err(|source| ServerError::Unreachable { url: self.base.clone(), source })?;
        let status = res.status();
        if status.is_success() {
            return res.json().await.map_err(|source| ServerError::Unreachable { url: self.base.clone(), source });
        }
        let message = match res.json::<ApiError>().await {
            Ok(e) => e.message,
            Err(_) => status.canonical_reason().unwrap_or("error").to_string(),
        };
        if status == StatusCode::UNAUTHORIZED {
            return Err(ServerError::KeyRefused(message));
        }
        Err(ServerError::Refused { status, message })
    }

    pub async fn discovery(&self) -> Result<Discovery, ServerError> {
        self.send(self.http.get(self.url("/.well-known/openid-configuration"))).await
    }

    pub async fn jwks(&self) -> Result<JwkSet, ServerError> {
        self.send(self.http.get(self.url("/.well-known/jwks.json"))).await
    }

    /// Registers the cluster; also the heartbeat.
    pub async fn register(&self, registration: &DestinationRegistration) -> Result<Destination, ServerError> {
        self.send(self.http.post(self.url("/api/destinations/register")).json(registration)).await
    }

    /// Waits up to `wait` for the bindings to differ from `version`.
    pub async fn bindings(&self, cluster: &str, version: &str, wait: Duration) -> Result<DesiredBindings, ServerError> {
        let req = self
            .http
            .get(self.url(&format!("/api/destinations/{cluster}/bindings")))
            .query(&[("version", version), ("wait", &wait.as_secs().to_string())])
            .timeout(wait + Duration::from_secs(15));
        self.send(req).await
    }

    /// Answers a break-glass certificate request.
    pub async fn certificate(&self, cluster: &str, id: i64, answer: &crate::model::IssuedCertificate) -> Result<(), ServerError> {
        let req = self.http.post(self.url(&format!("/api/destinations/{cluster}/certificates/{id}"))).json(answer);
        self.send::<serde_json::Value>(req).await.map(|_| ())
    }

    pub async fn audit(&self, cluster: &str, events: &[ProxiedRequest]) -> Result<(), ServerError> {
        let req = self.http.post(self.url(&format!("/api/destinations/{cluster}/audit"))).json(events).timeout(Duration::from_secs(30));
        self.send::<serde_json::Value>(req).await.map(|_| ())
    }
}
