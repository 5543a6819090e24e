//! Which certificate the CLI trusts for its server. A certificate from a public authority (in the
//! system's store) needs nothing. Otherwise, at `infra login`, trust on first use: the CLI shows the
//! SHA-256 fingerprint of the top certificate the server presents (the one `infra server` prints at
//! start) and asks; `--tls-trusted-fingerprint` answers for scripts, `--skip-tls-verify` turns checking
//! off. The trusted certificate is stored with the login and used as the only extra root afterwards,
//! so a changed certificate is noticed and asked about again.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::{Deserialize, Serialize};

use crate::tls::{display_fingerprint, normalize_fingerprint};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Trust {
    /// PEM of a certificate trusted for the server (on first use, or by its fingerprint)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_ca: Option<String>,
    /// `--skip-tls-verify`: the server's certificate is not checked at all
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_tls_verify: bool,
}

impl Trust {
    pub fn client(&self) -> Result<reqwest::Client, String> {
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(30));
        if let Some(pem) = &self.server_ca {
            let cert =
                reqwest::Certificate::from_pem(pem.as_bytes()).map_err(|e| format!("the stored server certificate is damaged ({e}): run infra login again"))?;
            builder = builder.add_root_certificate(cert);
        }
        if self.skip_tls_verify {
            builder = builder.danger_accept_invalid_certs(true);
        }
        builder.build().map_err(|e| format!("cannot set up HTTPS: {e}"))
    }
}

/// What `infra login` was told about trust.
pub struct Asked<'a> {
    pub fingerprint: Option<&'a str>,
    pub skip_verify: bool,
}

/// Settles which certificate to trust for `server`, asking the user when it is unknown. `previous`
/// is what the last login to the same server trusted.
pub async fn establish(server: &str, previous: Trust, asked: Asked<'_>) -> Result<Trust, String> {
    if asked.skip_verify {
        eprintln!("Warning: --skip-tls-verify: the server's certificate is not checked; anyone on the network path could read your key.");
        return Ok(Trust { server_ca: None, skip_tls_verify: true });
    }
    if server.starts_with("http://") {
        return Ok(Trust::default());
    }
    let previous = Trust { skip_tls_verify: false, ..previous };
    let first_error = match asked.fingerprint {
        Some(_) => None,
        None => match reachable(server, &previous).await {
            Ok(()) => return Ok(previous),
            Err(e) => Some(e),
        },
    };
    let chain = match presented_chain(server).await {
        Ok(chain) => chain,
        Err(e) => return Err(first_error.unwrap_or(e)),
    };
    let top = chain.last().ok_or_else(|| format!("{server} presented no certificate"))?;
    let shown = display_fingerprint(top);
    let chosen = match asked.fingerprint {
        Some(given) => {
            let given = normalize_fingerprint(given);
            chain
                .iter()
                .find(|c| normalize_fingerprint(&display_fingerprint(c)) == given)
                .ok_or_else(|| format!("the certificate of {server} does not match --tls-trusted-fingerprint: it presents {shown}. Nothing was saved."))?
        }
        None => {
            if !std::io::stdin().is_terminal() {
                return Err(format!(
                    "{server} presents a certificate from an authority this computer does not trust. Its SHA-256 fingerprint is {shown}. \
                     If that is the fingerprint `infra server` printed, run infra login again with --tls-trusted-fingerprint {shown}"
                ));
            }
            if previous.server_ca.is_some() {
                eprintln!("WARNING: the certificate of {server} has changed since you last trusted it.");
            }
            eprintln!("The certificate of {server} is not signed by an authority this computer trusts.");
            eprintln!("Its SHA-256 fingerprint is:\n  {shown}");
            eprintln!("Compare it with the fingerprint `infra server` printed when it started (ask your admin).");
            let answer = super::prompt("Trust this certificate? [y/N] ")?;
            if !matches!(answer.to_ascii_lowercase().as_str(), "y" | "yes") {
                return Err("the certificate was not trusted; nothing was saved".into());
            }
            top
        }
    };
    let trust = Trust { server_ca: Some(crate::tls::pem("CERTIFICATE", chosen)), skip_tls_verify: false };
    reachable(server, &trust).await.map_err(|e| format!("{e} (with the certificate {shown} trusted)"))?;
    Ok(trust)
}

/// `GET /healthz` with the given trust.
async fn reachable(server: &str, trust: &Trust) -> Result<(), String> {
    let res = trust.client()?.get(format!("{server}/healthz")).send().await;
    res.map(|_| ()).map_err(|e| format!("cannot reach {server}: {}", super::root_cause(&e)))
}

/// The certificate chain the server presents, read without trusting it (nothing is sent but the
/// TLS handshake).
async fn presented_chain(server: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    crate::tls::install_crypto_provider();
    let url = reqwest::Url::parse(server).map_err(|e| format!("{server} is not a URL: {e}"))?;
    let host = url.host_str().ok_or_else(|| format!("{server} has no host"))?.trim_start_matches('[').trim_end_matches(']').to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let unreachable = |e: String| format!("cannot reach {server}: {e}");
    let tcp = tokio::time::timeout(Duration::from_secs(10), tokio::net::TcpStream::connect((host.as_str(), port)))
        .await
        .map_err(|_| unreachable("no answer within 10 s".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ReadOnly(provider)))
        .with_no_client_auth();
    let name = ServerName::try_from(host).map_err(|e| unreachable(e.to_string()))?;
    let tls = tokio::time::timeout(Duration::from_secs(10), tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp))
        .await
        .map_err(|_| unreachable("no TLS handshake within 10 s".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    Ok(tls.get_ref().1.peer_certificates().unwrap_or_default().iter().map(|c| c.clone().into_owned()).collect())
}

/// Accepts any certificate (checking only the handshake's signatures): used solely to read the chain
/// that is then shown to the user or compared with a fingerprint.
#[derive(Debug)]
struct ReadOnly(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for ReadOnly {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
