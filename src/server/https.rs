//! HTTPS for `infra server`: the operator's certificate (`--tls-cert`, `--tls-key`), or else one
//! issued at every start by the server's own CA, which is created in the data directory at first start
//! and whose fingerprint is printed, so that people can check it (the CLI asks them to, once).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::ConnectInfo;
use tower::ServiceExt;

use crate::server::config::ServerConfig;
use crate::server::web::StartResult;
use crate::tls::{self, Ca};

pub struct Https {
    pub rustls: Arc<rustls::ServerConfig>,
    /// SHA-256 of the top certificate of the chain served (the server's own CA by default)
    pub fingerprint: String,
    /// the server's own CA, when it serves a certificate from it
    pub ca_file: Option<PathBuf>,
}

/// The HTTPS settings for `config`, or `None` under `--no-tls`. `addr` is where the server listens:
/// its IP goes into the certificate from the server's own CA, with the loopback names and --url's host.
pub fn setup(config: &ServerConfig, addr: SocketAddr) -> StartResult<Option<Https>> {
    if config.no_tls {
        return Ok(None);
    }
    let (chain_pem, key_pem, ca_file) = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => (read(cert)?, read(key)?, None),
        _ => {
            let ca = Ca::load_or_create(&config.data_dir, "server", "Infra server CA")?;
            let leaf = ca.issue_server(&names(config, addr))?;
            (format!("{}{}", leaf.cert_pem, ca.cert_pem), leaf.key_pem, Some(config.ca_file()))
        }
    };
    let certs = tls::certs_from_pem(&chain_pem)?;
    let top = certs.last().ok_or("the TLS certificate file holds no certificate")?;
    let fingerprint = tls::display_fingerprint(top.as_ref());
    let rustls = tls::server_config(&tls::ServerCert { cert_pem: chain_pem, key_pem })?;
    Ok(Some(Https { rustls, fingerprint, ca_file }))
}

fn read(path: &Path) -> StartResult<String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn names(config: &ServerConfig, addr: SocketAddr) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if !addr.ip().is_unspecified() {
        names.push(addr.ip().to_string());
    }
    let host = config.url.as_deref().and_then(|u| reqwest::Url::parse(u).ok()).and_then(|u| u.host_str().map(str::to_string));
    if let Some(host) = host {
        names.push(host.trim_start_matches('[').trim_end_matches(']').to_string());
    }
    names.sort();
    names.dedup();
    names
}

/// Serves the app on `listener`, over HTTPS unless `https` is `None`, until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    https: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> StartResult<()> {
    match https {
        Some(config) => {
            tls::serve_https(listener, config, shutdown, move |_, peer| {
                app.clone().map_request(move |mut req: http::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    req
                })
            })
            .await;
            Ok(())
        }
        None => {
            axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).with_graceful_shutdown(shutdown).await.map_err(|e| e.to_string())
        }
    }
}
