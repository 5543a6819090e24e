//! The connector's calls to `infra server`: register and heartbeat, the bindings long poll, the JWKS,
//! and the audit batches, through the typed [`crate::client`]. Every call carries the connector key.

use std::time::Duration;

use reqwest::Method;

use crate::client::{Client, ClientError};
pub use crate::client::{Discovery, JwkSet};
use crate::model::{DesiredBindings, Destination, DestinationRegistration, ProxiedRequest};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("the server refused the connector key ({0}): create a new key for this cluster in the console")]
    KeyRefused(String),
    #[error(transparent)]
    Call(ClientError),
}

impl From<ClientError> for ServerError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::KeyRefused { message, .. } => ServerError::KeyRefused(message),
            other => ServerError::Call(other),
        }
    }
}

#[derive(Clone)]
pub struct ServerApi {
    client: Client,
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
        Ok(ServerApi { client: Client::new(base, Some(key), http) })
    }

    pub async fn discovery(&self) -> Result<Discovery, ServerError> {
        Ok(self.client.discovery().await?)
    }

    pub async fn jwks(&self) -> Result<JwkSet, ServerError> {
        Ok(self.client.jwks().await?)
    }

    /// Registers the cluster; also the heartbeat.
    pub async fn register(&self, registration: &DestinationRegistration) -> Result<Destination, ServerError> {
        Ok(self.client.post("/api/destinations/register", registration).await?)
    }

    /// Waits up to `wait` for the bindings to differ from `version`.
    pub async fn bindings(&self, cluster: &str, version: &str, wait: Duration) -> Result<DesiredBindings, ServerError> {
        let req = self
            .client
            .request(Method::GET, &format!("/api/destinations/{cluster}/bindings"))
            .query(&[("version", version), ("wait", &wait.as_secs().to_string())])
            .timeout(wait + Duration::from_secs(15));
        Ok(self.client.send(req).await?)
    }

    /// Answers a break-glass certificate request.
    pub async fn certificate(&self, cluster: &str, id: i64, answer: &crate::model::IssuedCertificate) -> Result<(), ServerError> {
        self.client.post::<serde_json::Value>(&format!("/api/destinations/{cluster}/certificates/{id}"), answer).await?;
        Ok(())
    }

    pub async fn audit(&self, cluster: &str, events: &[ProxiedRequest]) -> Result<(), ServerError> {
        let req = self.client.request(Method::POST, &format!("/api/destinations/{cluster}/audit")).json(events).timeout(Duration::from_secs(30));
        self.client.send::<serde_json::Value>(req).await?;
        Ok(())
    }
}
