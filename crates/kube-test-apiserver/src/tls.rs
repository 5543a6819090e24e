//! The HTTPS listener: rustls with the server's own certificate, optional client certificates verified
//! against the cluster CA, HTTP/1.1 and HTTP/2, and upgrades (websocket exec).

use std::sync::Arc;

use axum::Router;
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tower::ServiceExt;

use super::Error;
use super::certs::{self, Ca};
use super::identity::PeerIdentity;

/// `listen_ip` goes into the serving certificate besides the loopback names, for a non-loopback `--listen`.
pub fn server_config(ca: &Ca, listen_ip: std::net::IpAddr) -> Result<Arc<rustls::ServerConfig>, Error> {
    // Installing twice is harmless: the first provider stays (ring, the one this build has).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = RootCertStore::empty();
    roots.add(ca.cert_der.clone())?;
    // Clients without a certificate are welcome (they use tokens); those with one must chain to the CA.
    let verifier = WebPkiClientVerifier::builder(Arc::new(roots)).allow_unauthenticated().build()?;
    let (cert, key) = ca.serving_cert(listen_ip)?;
    let mut config = rustls::ServerConfig::builder().with_client_cert_verifier(verifier).with_single_cert(vec![cert], key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts connections until `shutdown` fires; then every open connection (watches, log follows) is dropped.
/// Each connection runs in a task of its own, without the product's slow-client limits: a test may hold
/// a connection as long as it needs (a TLS handshake may take up to [`HANDSHAKE_TIMEOUT`]).
pub async fn serve(listener: TcpListener, config: Arc<rustls::ServerConfig>, router: Router, mut shutdown: oneshot::Receiver<()>) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto;
    use hyper_util::service::TowerToHyperService;

    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    let (acceptor, router) = (acceptor.clone(), router.clone());
                    connections.spawn(async move {
                        let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await else {
                            tracing::debug!(%peer, "TLS handshake failed or timed out");
                            return;
                        };
                        let identity = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).and_then(|c| certs::identity_from_cert(c));
                        let peer_identity = PeerIdentity(identity);
                        let service = router.map_request(move |mut req: http::Request<hyper::body::Incoming>| {
                            req.extensions_mut().insert(peer_identity.clone());
                            req
                        });
                        let result = auto::Builder::new(TokioExecutor::new())
                            .serve_connection_with_upgrades(TokioIo::new(tls), TowerToHyperService::new(service))
                            .await;
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

/// How long a TLS handshake may take: long enough never to matter in a test.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);
