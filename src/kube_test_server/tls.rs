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
pub async fn serve(listener: TcpListener, config: Arc<rustls::ServerConfig>, router: Router, shutdown: oneshot::Receiver<()>) {
    let shutdown = async move {
        let _ = shutdown.await;
    };
    crate::tls::serve_https(listener, config, shutdown, false, move |tls, _peer| {
        let identity = tls.peer_certificates().and_then(|c| c.first()).and_then(|c| certs::identity_from_cert(c));
        let peer_identity = PeerIdentity(identity);
        router.clone().map_request(move |mut req: http::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(peer_identity.clone());
            req
        })
    })
    .await;
}
