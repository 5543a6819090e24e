//! Kubeconfig files for the server: cluster `test` with the CA embedded, and one user.

use base64::Engine;

/// How the kubeconfig's user authenticates.
pub enum Credentials<'a> {
    Token(&'a str),
    /// PEM certificate and key (a break-glass certificate signed by the cluster CA).
    ClientCertificate {
        cert_pem: &'a str,
        key_pem: &'a str,
    },
}

/// A kubeconfig (YAML) for `server` trusting `ca_pem`, with one user and one context, both named `test`
/// for the cluster and `user` for the user.
pub fn render(server: &str, ca_pem: &str, user: &str, credentials: Credentials) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let user_fields = match credentials {
        Credentials::Token(token) => format!("    token: {token:?}\n"),
        Credentials::ClientCertificate { cert_pem, key_pem } => {
            format!("    client-certificate-data: {}\n    client-key-data: {}\n", b64(cert_pem), b64(key_pem))
        }
    };
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {server:?}\n    \
         certificate-authority-data: {ca}\nusers:\n- name: {user:?}\n  user:\n{user_fields}contexts:\n- name: test\n  \
         context:\n    cluster: test\n    user: {user:?}\ncurrent-context: test\npreferences: {{}}\n",
        ca = b64(ca_pem),
    )
}
