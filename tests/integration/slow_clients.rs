//! Clients that hold connections open without finishing a request (slowloris): the server drops one that
//! does not complete its TLS handshake, or its request's headers, within the timeouts, and so does the
//! connector's proxy, so a few slow sockets cannot pin their connections.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use test_harness::cluster::Infra;

/// Reads until the peer closes; `Err` with the time waited when it is still open after `limit`.
async fn closed_within(stream: &mut (impl AsyncReadExt + Unpin), limit: Duration) -> Result<Duration, Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit.saturating_sub(start.elapsed()), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(start.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return Err(start.elapsed()),
        }
    }
}

fn tls_connector(ca_pem: &str) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in infra::tls::certs_from_pem(ca_pem).unwrap() {
        roots.add(cert).unwrap();
    }
    let mut config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// A client that never starts its TLS handshake, and one that trickles its headers and never ends them,
/// are both dropped within the timeouts (and a margin) by the TLS server at `addr` (its CA in `ca_pem`).
async fn assert_slow_clients_dropped(addr: &str, ca_pem: &str) {
    let margin = Duration::from_secs(8);
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let waited = closed_within(&mut silent, infra::tls::HANDSHAKE_TIMEOUT + margin).await;
    assert!(waited.is_ok(), "a silent client still held its connection to {addr} after {:?}", waited.unwrap_err());

    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = tls_connector(ca_pem).connect(name, tcp).await.expect("TLS handshake");
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n").await.unwrap();
    let start = Instant::now();
    let mut held = true;
    while start.elapsed() < infra::tls::HEADER_READ_TIMEOUT + margin {
        if tls.write_all(b"X").await.is_err() || tls.flush().await.is_err() || closed_within(&mut tls, Duration::from_secs(1)).await.is_ok() {
            held = false;
            break;
        }
    }
    assert!(!held, "a client trickling its headers still held its connection to {addr} after {:?}", start.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_and_the_proxy_drop_clients_that_never_finish_a_request() {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let k8s = test_harness::cluster::test_api_server(&dir.path().join("k8s")).await;
    let infra = Infra::start(&dir.path().join("server")).await;
    let (connector, _, prod) = test_harness::cluster::connected_prod(&infra, &k8s, dir.path()).await;
    let server_ca = std::fs::read_to_string(&infra.ca_file).unwrap();
    let proxy = prod["endpoint"].as_str().unwrap().trim_start_matches("https://").to_string();
    let server = infra.url.trim_start_matches("https://").to_string();
    tokio::join!(assert_slow_clients_dropped(&server, &server_ca), assert_slow_clients_dropped(&proxy, prod["ca"].as_str().unwrap()));

    // ordinary clients are served as before
    let (status, _) = infra.get("/api/me", &infra.admin).await;
    assert_eq!(status, 200);
    connector.abort();
    k8s.shutdown().await;
}
