//! The HTTPS listener: rustls with the server's own certificate, optional client certificates verified
//! against the cluster CA, HTTP/1.1 and HTTP/2, and upgrades (websocket exec).

use std::sync::Arc;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
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
    let mut config =
        rustls::ServerConfig::builder().with_client_cert_verifier(verifier).with_single_cert(vec![cert], key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts connections until `shutdown` fires; then every open connection (watches, log follows) is dropped.
pub async fn serve(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    router: Router,
    mut shutdown: oneshot::Receiver<()>,
) {
    let acceptor = TlsAcceptor::from(config);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    connections.spawn(connection(acceptor.clone(), tcp, router.clone(), peer));
                }
                Err(e) => tracing::warn!(error = %e, "kube-test-apiserver: accept failed"),
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = &mut shutdown => break,
        }
    }
    connections.shutdown().await;
}

async fn connection(acceptor: TlsAcceptor, tcp: tokio::net::TcpStream, router: Router, peer: std::net::SocketAddr) {
    let tls = match acceptor.accept(tcp).await {
        Ok(tls) => tls,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "kube-test-apiserver: TLS handshake failed");
            return;
        }
    };
    let identity =
        tls.get_ref().1.peer_certificates().and_then(|c| c.first()).and_then(|c| certs::identity_from_cert(c));
    let peer_identity = PeerIdentity(identity);
    let service = router.map_request(move |mut req: http::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(peer_identity.clone());
        req
    });
    let result = auto::Builder::new(TokioExecutor::new())
        .serve_connection_with_upgrades(TokioIo::new(tls), TowerToHyperService::new(service))
        .await;
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "kube-test-apiserver: connection ended with an error");
    }
}
