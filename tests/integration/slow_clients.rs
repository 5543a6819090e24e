//! Clients that hold connections open without finishing a request (slowloris): the server drops one that
//! does not complete its TLS handshake, or its request's headers, within the timeouts, so a few slow
//! sockets cannot pin its connections.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::cluster::Infra;

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

fn tls_connector(ca_file: &std::path::Path) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read_to_string(ca_file).unwrap();
    for cert in infra::tls::certs_from_pem(&pem).unwrap() {
        roots.add(cert).unwrap();
    }
    let mut config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_drops_clients_that_never_finish_a_request() {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let infra = Infra::start(dir.path()).await;
    let addr = infra.url.trim_start_matches("https://").to_string();
    let margin = Duration::from_secs(8);

    // a client that connects and never starts its TLS handshake
    let mut silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let waited = closed_within(&mut silent, infra::tls::HANDSHAKE_TIMEOUT + margin).await;
    assert!(waited.is_ok(), "a silent client still held its connection after {:?}", waited.unwrap_err());

    // a client that completes the handshake, then sends its headers one byte at a time, never the end
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = tls_connector(&infra.ca_file).connect(name, tcp).await.expect("TLS handshake");
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n").await.unwrap();
    let start = Instant::now();
    let mut held = true;
    while start.elapsed() < infra::tls::HEADER_READ_TIMEOUT + margin {
        if tls.write_all(b"X").await.is_err() || tls.flush().await.is_err() {
            held = false;
            break;
        }
        if closed_within(&mut tls, Duration::from_secs(1)).await.is_ok() {
            held = false;
            break;
        }
    }
    assert!(!held, "a client trickling its headers still held its connection after {:?}", start.elapsed());

    // an ordinary client is served as before
    let (status, _) = infra.get("/api/me", &infra.admin).await;
    assert_eq!(status, 200);
}
