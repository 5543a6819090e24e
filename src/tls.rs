//! TLS for the parts that serve HTTPS with a CA of their own (the connector's proxy): a CA kept in a
//! directory, server certificates it issues, and rustls configurations. rustls uses the ring provider
//! only; [`install_crypto_provider`] makes that explicit for the whole process.

use std::path::Path;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// Installs ring as the process' rustls provider (once; later calls change nothing).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A certificate authority: its certificate (PEM) and key.
pub struct Ca {
    pub cert_pem: String,
    key: KeyPair,
}

/// A server certificate and its key, both PEM.
pub struct ServerCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Ca {
    /// Creates a self-signed CA named `common_name`.
    pub fn create(common_name: &str) -> Result<Ca, String> {
        let key = KeyPair::generate().map_err(|e| format!("cannot generate a key: {e}"))?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2044, 1, 1);
        let cert = params.self_signed(&key).map_err(|e| format!("cannot sign the CA: {e}"))?;
        Ok(Ca { cert_pem: cert.pem(), key })
    }

    /// Loads `<dir>/<stem>-ca.crt` and `-ca.key`, creating them (the key with mode 0600) if absent.
    pub fn load_or_create(dir: &Path, stem: &str, common_name: &str) -> Result<Ca, String> {
        let cert_path = dir.join(format!("{stem}-ca.crt"));
        let key_path = dir.join(format!("{stem}-ca.key"));
        if cert_path.exists() && key_path.exists() {
            let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
            let key = KeyPair::from_pem(&read(&key_path)?).map_err(|e| format!("{}: {e}", key_path.display()))?;
            return Ok(Ca { cert_pem: read(&cert_path)?, key });
        }
        let ca = Ca::create(common_name)?;
        crate::files::write_private(&key_path, &ca.key.serialize_pem())?;
        crate::files::write_private(&cert_path, &ca.cert_pem)?;
        Ok(ca)
    }

    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    fn issuer(&self) -> Result<Issuer<'static, &KeyPair>, String> {
        Issuer::from_ca_cert_pem(&self.cert_pem, &self.key).map_err(|e| format!("cannot use the CA: {e}"))
    }

    /// Issues a server certificate for the given DNS names and IP addresses.
    pub fn issue_server(&self, names: &[String]) -> Result<ServerCert, String> {
        let key = KeyPair::generate().map_err(|e| format!("cannot generate a key: {e}"))?;
        let mut params = CertificateParams::new(names.to_vec()).map_err(|e| format!("bad certificate name: {e}"))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, names.first().cloned().unwrap_or_default());
        params.distinguished_name = dn;
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2044, 1, 1);
        let cert = params.signed_by(&key, &self.issuer()?).map_err(|e| format!("cannot sign a certificate: {e}"))?;
        Ok(ServerCert { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }
}

/// SHA-256 of the first certificate in a PEM (or of the bytes when they are not PEM), hex.
pub fn fingerprint(pem_or_der: &[u8]) -> String {
    let der = rustls_pemfile::certs(&mut &pem_or_der[..]).next().and_then(|c| c.ok()).map(|c| c.to_vec()).unwrap_or_else(|| pem_or_der.to_vec());
    Sha256::digest(&der).iter().map(|b| format!("{b:02x}")).collect()
}

/// A rustls server configuration for HTTP/2 and HTTP/1.1.
pub fn server_config(cert: &ServerCert) -> Result<Arc<rustls::ServerConfig>, String> {
    install_crypto_provider();
    let certs = rustls_pemfile::certs(&mut cert.cert_pem.as_bytes())
        .collect::<Result<Vec<CertificateDer<'static>>, _>>()
        .map_err(|e| format!("bad certificate: {e}"))?;
    let key: PrivateKeyDer<'static> =
        rustls_pemfile::private_key(&mut cert.key_pem.as_bytes()).map_err(|e| format!("bad key: {e}"))?.ok_or("no private key in the PEM")?;
    let mut config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key).map_err(|e| format!("bad certificate or key: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// How long a client may take to complete its TLS handshake, and to send a request's headers (HTTP/1.1):
/// a slow or silent client (slowloris) holds a connection no longer than this.
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Serves `service` over HTTPS (HTTP/1.1 and HTTP/2, with upgrades) until `shutdown` completes; then
/// every open connection is dropped. `per_connection` makes each connection's service from its TLS
/// session (the client certificate, if any) and the peer address. A slow or failed handshake holds up
/// nobody: each connection runs in a task of its own, under the timeouts above.
pub async fn serve_https<F, S>(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    shutdown: impl std::future::Future<Output = ()>,
    per_connection: F,
) where
    F: Fn(&rustls::ServerConnection, std::net::SocketAddr) -> S + Clone + Send + 'static,
    S: tower::Service<http::Request<hyper::body::Incoming>, Response = axum::response::Response, Error = std::convert::Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto;
    use hyper_util::service::TowerToHyperService;

    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    let (acceptor, per_connection) = (acceptor.clone(), per_connection.clone());
                    connections.spawn(async move {
                        let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                            Ok(Ok(tls)) => tls,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                        let service = per_connection(tls.get_ref().1, peer);
                        let mut builder = auto::Builder::new(TokioExecutor::new());
                        // also closes a keep-alive connection idle for this long (hyper times the next request's head)
                        builder.http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
                        let result = builder.serve_connection_with_upgrades(TokioIo::new(tls), TowerToHyperService::new(service)).await;
                        if let Err(e) = result {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = &mut shutdown => break,
        }
    }
    connections.shutdown().await;
}

/// The certificates in a PEM file, in order.
pub fn certs_from_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    rustls_pemfile::certs(&mut pem.as_bytes()).collect::<Result<Vec<_>, _>>().map_err(|e| format!("bad certificate: {e}"))
}

/// A certificate's SHA-256 fingerprint as people compare it: `AB:CD:...`.
pub fn display_fingerprint(der: &[u8]) -> String {
    Sha256::digest(der).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// A fingerprint as typed (any case, with or without colons or spaces), for comparison.
pub fn normalize_fingerprint(text: &str) -> String {
    text.chars().filter(|c| c.is_ascii_hexdigit()).map(|c| c.to_ascii_uppercase()).collect()
}

/// DER bytes as PEM with the given label ("CERTIFICATE", "CERTIFICATE REQUEST").
pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// A new ECDSA P-256 key and a PKCS#10 request for a Kubernetes client certificate: CN = `user` and one
/// O per group, as the API server reads them. (rcgen keeps one value per attribute type, so the request
/// is written here.) Returns the CSR and the key, both PEM.
pub fn client_csr(user: &str, groups: &[String]) -> Result<(String, String), String> {
    use rcgen::{PublicKeyData, SigningKey};
    use yasna::models::ObjectIdentifier;
    const COMMON_NAME: &[u64] = &[2, 5, 4, 3];
    const ORGANIZATION: &[u64] = &[2, 5, 4, 10];
    const ECDSA_WITH_SHA256: &[u64] = &[1, 2, 840, 10045, 4, 3, 2];
    let key = KeyPair::generate().map_err(|e| format!("cannot generate a key: {e}"))?;
    let attribute = |w: yasna::DERWriter, oid: &[u64], value: &str| {
        w.write_set(|w| {
            w.next().write_sequence(|w| {
                w.next().write_oid(&ObjectIdentifier::from_slice(oid));
                w.next().write_utf8_string(value);
            })
        })
    };
    let info = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_u8(0);
            w.next().write_sequence(|w| {
                for group in groups {
                    attribute(w.next(), ORGANIZATION, group);
                }
                attribute(w.next(), COMMON_NAME, user);
            });
            w.next().write_der(&key.subject_public_key_info());
            w.next().write_tagged_implicit(yasna::Tag::context(0), |w| w.write_set(|_| {}));
        })
    });
    let signature = key.sign(&info).map_err(|e| format!("cannot sign the request: {e}"))?;
    let csr = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_der(&info);
            w.next().write_sequence(|w| w.next().write_oid(&ObjectIdentifier::from_slice(ECDSA_WITH_SHA256)));
            w.next().write_bitvec_bytes(&signature, signature.len() * 8);
        })
    });
    Ok((pem("CERTIFICATE REQUEST", &csr), key.serialize_pem()))
}
