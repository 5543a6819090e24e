//! Break-glass client certificates: the server hands the connector a CSR (CN = user, O = groups) in the
//! bindings long poll; the connector creates a CertificateSigningRequest for the signer
//! `kubernetes.io/kube-apiserver-client`, approves it, waits for the cluster to sign it and posts the
//! certificate back, with the API server's URL and CA so the kubeconfig can reach the cluster directly.
//! The connector's ServiceAccount needs `create` and `get` on certificatesigningrequests, `update` on
//! certificatesigningrequests/approval, and `approve` on that signer (docs/connector.md).

use std::time::Duration;

use k8s_openapi::api::certificates::v1::{CertificateSigningRequest, CertificateSigningRequestSpec};
use k8s_openapi::ByteString;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::json;

use super::server_api::ServerApi;
use crate::model::{CertificateRequest, IssuedCertificate};

const SIGNER: &str = "kubernetes.io/kube-apiserver-client";

/// Where users reach the API server directly: its URL and CA (PEM, empty for a public authority).
#[derive(Clone, Debug)]
pub struct DirectAccess {
    pub api_server: String,
    pub ca_pem: String,
}

impl DirectAccess {
    /// From the connector's own cluster configuration; `url` (`--api-server-url`) replaces the address
    /// when users reach the API server by another one than the connector does.
    pub fn new(config: &kube::Config, url: Option<&str>) -> DirectAccess {
        let api_server = url.map(str::to_string).unwrap_or_else(|| config.cluster_url.to_string()).trim_end_matches('/').to_string();
        let ca_pem = config.root_cert.iter().flatten().map(|der| crate::tls::pem("CERTIFICATE", der)).collect();
        DirectAccess { api_server, ca_pem }
    }
}

/// Has the cluster sign `request` and posts the answer (the certificate, or why not) to the server.
pub async fn answer(client: kube::Client, api: ServerApi, cluster: String, direct: DirectAccess, request: CertificateRequest) {
    let answer = match sign(&client, &cluster, &request).await {
        Ok(certificate) => {
            tracing::info!(id = request.id, "cluster signed a break-glass client certificate");
            IssuedCertificate { certificate, api_server: direct.api_server, api_server_ca: direct.ca_pem, error: String::new() }
        }
        Err(error) => {
            tracing::warn!(id = request.id, %error, "cannot have a break-glass certificate signed");
            IssuedCertificate { error, ..Default::default() }
        }
    };
    if let Err(e) = api.certificate(&cluster, request.id, &answer).await {
        tracing::warn!(id = request.id, error = %e, "cannot hand the certificate to the server");
    }
}

async fn sign(client: &kube::Client, cluster: &str, request: &CertificateRequest) -> Result<String, String> {
    let csrs: Api<CertificateSigningRequest> = Api::all(client.clone());
    let name = format!("infra-{cluster}-{}-{}", request.id, crate::server::now());
    let object = CertificateSigningRequest {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some([("app.kubernetes.io/managed-by".to_string(), "infra".to_string())].into()),
            ..Default::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(request.csr.as_bytes().to_vec()),
            signer_name: SIGNER.into(),
            expiration_seconds: Some(request.expiration_secs.clamp(600, i32::MAX as i64) as i32),
            usages: Some(vec!["client auth".into()]),
            ..Default::default()
        },
        status: None,
    };
    csrs.create(&PostParams::default(), &object).await.map_err(|e| format!("cannot create the CertificateSigningRequest: {e}"))?;
    let approval = json!({"status": {"conditions": [{
        "type": "Approved",
        "status": "True",
        "reason": "InfraBreakGlass",
        "message": "approved by the infra connector for a break-glass kubeconfig an admin downloaded",
    }]}});
    csrs.patch_approval(&name, &PatchParams::default(), &Patch::Merge(&approval))
        .await
        .map_err(|e| format!("cannot approve the CertificateSigningRequest {name}: {e}"))?;
    // the cluster's signer issues it moments after the approval
    for _ in 0..100 {
        let csr = csrs.get(&name).await.map_err(|e| format!("cannot read the CertificateSigningRequest {name}: {e}"))?;
        let status = csr.status.unwrap_or_default();
        if let Some(cert) = status.certificate.filter(|c| !c.0.is_empty()) {
            return String::from_utf8(cert.0).map_err(|_| "the cluster returned a certificate that is not PEM".to_string());
        }
        if let Some(failed) = status.conditions.iter().flatten().find(|c| c.type_ == "Failed" || c.type_ == "Denied") {
            return Err(format!("the cluster refused: {}", failed.message.clone().unwrap_or_else(|| failed.type_.clone())));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!("the cluster did not sign the CertificateSigningRequest {name} within 20 seconds"))
}
