//! Break-glass client certificates: the server hands the connector a CSR (CN = user, O = groups) in the
//! bindings long poll. The connector first checks the CSR against what the request says and what it
//! knows itself: CN is the request's user, O exactly the user's groups with a grant on this cluster
//! (from the same long poll's group members), no `system:` name anywhere, and a lifetime between
//! Kubernetes' 10 minutes and the admin's maximum; anything else is refused and reported back, and
//! reaches no cluster. Then it creates a CertificateSigningRequest for the signer
//! `kubernetes.io/kube-apiserver-client`, approves it, waits for the cluster to sign it and posts the
//! certificate back, with the API server's URL and CA so the kubeconfig can reach the cluster directly.
//! The connector's ServiceAccount needs `create` and `get` on certificatesigningrequests, `update` on
//! certificatesigningrequests/approval, and `approve` on that signer (docs/connector.md).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{CertificateSigningRequest, CertificateSigningRequestSpec};
use kube::Api;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;

use super::server_api::ServerApi;
use crate::model::{CertificateRequest, IssuedCertificate, is_kubernetes_system_name};

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
/// `members` are the current members of each group with a grant on the cluster.
pub async fn answer(
    client: kube::Client,
    api: ServerApi,
    cluster: String,
    direct: DirectAccess,
    request: CertificateRequest,
    members: BTreeMap<String, Vec<String>>,
) {
    let signed = match check(&request, &members) {
        Ok(()) => sign(&client, &cluster, &request).await,
        Err(refused) => Err(refused),
    };
    let answer = match signed {
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

/// Kubernetes signs no client certificate for less than 10 minutes.
const MIN_SECONDS: i64 = 600;

/// Whether the connector may have `request` signed: see the module's documentation.
pub fn check(request: &CertificateRequest, members: &BTreeMap<String, Vec<String>>) -> Result<(), String> {
    let (lifetime, max) = (request.expiration_secs, request.max_expiration_secs);
    if lifetime < MIN_SECONDS || lifetime > max {
        return Err(format!("refused: the requested lifetime of {lifetime} s is not between {MIN_SECONDS} s and the admin's maximum of {max} s"));
    }
    let (cn, mut o) = csr_subject(&request.csr)?;
    o.sort();
    let mut said = request.groups.clone();
    said.sort();
    // the groups the cluster binds for this user: O may name no other (BTreeMap: in order)
    let granted: Vec<String> =
        members.iter().filter(|(group, emails)| !is_kubernetes_system_name(group) && emails.contains(&request.user)).map(|(group, _)| group.clone()).collect();
    let system = is_kubernetes_system_name(&cn) || o.iter().any(|g| is_kubernetes_system_name(g));
    if request.user.is_empty() || system || cn != request.user || o != said || said != granted {
        return Err(format!(
            "refused: the CSR's subject (CN={cn}, O={o:?}) is not the request's (CN={}, O={granted:?}: the user's groups with a grant on this cluster)",
            request.user
        ));
    }
    Ok(())
}

/// CN and the O values of a PEM CSR whose signature holds; a subject with any other kind of
/// attribute, or with other than one CN, is refused.
fn csr_subject(pem: &str) -> Result<(String, Vec<String>), String> {
    use x509_parser::certification_request::X509CertificationRequest;
    use x509_parser::oid_registry::{OID_X509_COMMON_NAME, OID_X509_ORGANIZATION_NAME};
    use x509_parser::prelude::FromDer;
    let unreadable = |e: String| format!("refused: the CSR is unreadable: {e}");
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| unreadable(e.to_string()))?;
    if pem.label != "CERTIFICATE REQUEST" {
        return Err(unreadable(format!("a PEM {} block", pem.label)));
    }
    let (_, csr) = X509CertificationRequest::from_der(&pem.contents).map_err(|e| unreadable(e.to_string()))?;
    csr.verify_signature().map_err(|e| unreadable(format!("its signature does not verify ({e})")))?;
    let subject = &csr.certification_request_info.subject;
    let (mut cn, mut o) = (Vec::new(), Vec::new());
    for attribute in subject.iter_attributes() {
        let value = attribute.as_str().map_err(|_| "refused: the CSR's subject holds a value that is not text".to_string())?.to_string();
        match attribute.attr_type() {
            t if *t == OID_X509_COMMON_NAME => cn.push(value),
            t if *t == OID_X509_ORGANIZATION_NAME => o.push(value),
            t => return Err(format!("refused: the CSR's subject holds an attribute {t} besides CN and O")),
        }
    }
    match <[String; 1]>::try_from(cn) {
        Ok([cn]) => Ok((cn, o)),
        Err(cn) => Err(format!("refused: the CSR's subject has {} CNs, not one", cn.len())),
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
            expiration_seconds: Some(request.expiration_secs.clamp(MIN_SECONDS, i32::MAX as i64) as i32),
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
