//! `kube-test-apiserver`: runs the Kubernetes API test double until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use kube_test_apiserver::{Options, TestApiServer};

/// A Kubernetes API TEST DOUBLE, not Kubernetes: an in-memory HTTPS server that speaks enough of the
/// Kubernetes API (discovery, namespaces, pods with log and exec, RBAC with impersonation, whoami/can-i,
/// CertificateSigningRequests) for kubectl and kube-rs, for tests and local runs where no real cluster
/// exists. Nothing is persisted except its CA in --dir. See docs/kube-test-apiserver.md.
#[derive(Parser)]
#[command(name = "kube-test-apiserver", version)]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Directory for ca.crt, ca.key, connector.kubeconfig and admin.kubeconfig (the CA is reused if present).
    #[arg(long, default_value = "kube-test-apiserver")]
    dir: PathBuf,
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let server = match TestApiServer::start(Options { listen: args.listen, dir: args.dir }).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("kube-test-apiserver: {e}");
            std::process::exit(1);
        }
    };
    println!("kube-test-apiserver (a Kubernetes API test double, not Kubernetes) is serving at {}", server.url);
    println!("  connector kubeconfig: {}", server.connector_kubeconfig().display());
    println!("  admin kubeconfig:     {}", server.admin_kubeconfig().display());
    println!("  CA certificate:       {}", server.ca_path().display());
    println!("Try: kubectl --kubeconfig {} get namespaces", server.admin_kubeconfig().display());
    wait_for_signal().await;
    server.shutdown().await;
}

async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kube-test-apiserver: cannot listen for SIGTERM ({e}); stop with Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
