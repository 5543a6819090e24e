//! Access keys, cluster tokens, kubeconfigs and CLI logins.

use super::Millis;
use serde::{Deserialize, Serialize};

/// `POST /api/tokens`: a short-lived token for one cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenRequest {
    pub destination: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IssuedToken {
    pub token: String,
    pub expires_at: Millis,
}

/// The claims of a cluster token, signed by the server and checked by the connector's proxy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterClaims {
    pub iss: String,
    /// the cluster's name
    pub aud: String,
    /// the user's email: the Kubernetes user name
    pub sub: String,
    pub groups: Vec<String>,
    /// seconds since the epoch
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// the user's id: a disabled or deleted user's tokens are refused
    #[serde(default)]
    pub uid: i64,
    /// the access key the token was minted with, if any: revoking it refuses the token
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// the token is in a downloaded kubeconfig (`token` style), not from `infra tokens`: a refusal then
    /// says to download a new kubeconfig rather than to log in again
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub downloaded: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccessKey {
    pub id: i64,
    /// public half of the key, the part before the dot
    pub key_id: String,
    pub name: String,
    pub owner: String,
    pub expires_at: Millis,
    pub inactivity_timeout_secs: Option<i64>,
    pub last_used_at: Option<Millis>,
    pub created_at: Millis,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewAccessKey {
    pub name: String,
    /// lifetime in seconds; the server caps and defaults it
    #[serde(default)]
    pub ttl_secs: Option<i64>,
    /// revoke when unused for this many seconds
    #[serde(default)]
    pub inactivity_timeout_secs: Option<i64>,
}

/// The only time the secret is shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreatedAccessKey {
    pub key: AccessKey,
    /// `<key_id>.<secret>`: see [`KeyText`]
    pub access_key: String,
}

/// An access key as its holder presents it: `<key id>.<secret>`. The key id is public (it names the key
/// in lists and in the audit log); the server keeps only a hash of the secret. The one place that knows
/// the format: the server issues and checks keys with it, the CLI reads its own key's id with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyText<'a> {
    pub key_id: &'a str,
    pub secret: &'a str,
}

impl<'a> KeyText<'a> {
    /// The two parts of a presented key (surrounding whitespace ignored), or None when it is not of
    /// the form: both parts present, one dot.
    pub fn parse(text: &'a str) -> Option<KeyText<'a>> {
        let (key_id, secret) = text.trim().split_once('.')?;
        (!key_id.is_empty() && !secret.is_empty() && !secret.contains('.')).then_some(KeyText { key_id, secret })
    }

    pub fn render(key_id: &str, secret: &str) -> String {
        format!("{key_id}.{secret}")
    }

    /// The key id a presented text claims (before its first dot), at most 32 characters: what the audit
    /// log names when a malformed or unknown key is refused.
    pub fn claimed_id(text: &str) -> String {
        text.split('.').next().unwrap_or("").chars().take(32).collect()
    }
}

/// How the clusters in a kubeconfig authenticate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialStyle {
    /// kubectl runs `infra tokens` for a fresh 5-minute token (needs the CLI, logged in)
    #[default]
    Exec,
    /// a bearer token with a chosen lifetime, revocable (revoke its key under Settings → Access keys)
    Token,
    /// admins only, break-glass: a client certificate the cluster signs, used directly against the API
    /// server (not through the proxy); it cannot be revoked before it expires
    Certificate,
}

impl CredentialStyle {
    pub const ALL: [CredentialStyle; 3] = [CredentialStyle::Exec, CredentialStyle::Token, CredentialStyle::Certificate];

    /// The name the API, the forms and the CLI use.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialStyle::Exec => "exec",
            CredentialStyle::Token => "token",
            CredentialStyle::Certificate => "certificate",
        }
    }

    pub fn parse(name: &str) -> Option<CredentialStyle> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// `POST /api/kubeconfig`: a kubeconfig for the signed-in user.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KubeconfigRequest {
    /// clusters to include; empty: every cluster the user can reach
    #[serde(default)]
    pub clusters: Vec<String>,
    #[serde(default)]
    pub style: CredentialStyle,
    /// for `token`: how long the tokens live, at most the admin-set maximum
    #[serde(default)]
    pub lifetime_secs: Option<i64>,
    /// for `exec`: the command kubectl runs (default `infra`; the CLI puts its own path here)
    #[serde(default)]
    pub command: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KubeconfigFile {
    /// a file name to save it under
    pub filename: String,
    /// the context names, `infra:<cluster>` and `infra:<cluster>.<namespace>`
    pub contexts: Vec<String>,
    /// the kubeconfig itself (a JSON object; the console saves it as YAML)
    pub kubeconfig: serde_json::Value,
    /// for `token`: when the tokens expire
    pub expires_at: Option<Millis>,
}

/// `POST /api/login`: the CLI exchanges an email and password for an access key of its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CliLogin {
    pub email: String,
    pub password: String,
    /// the key's name, e.g. "infra CLI on laptop"
    #[serde(default)]
    pub name: Option<String>,
}

/// What the Kubeconfig page may offer the signed-in user.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KubeconfigOptions {
    /// the longest token (or certificate) lifetime an admin allows
    pub max_lifetime_secs: i64,
    /// admins may download break-glass client certificates
    pub can_break_glass: bool,
}

impl KubeconfigOptions {
    /// The lifetimes to offer, in seconds, none above the maximum (which is offered itself); the
    /// shortest is the 10 minutes Kubernetes requires of a certificate.
    pub fn lifetimes(&self) -> Vec<i64> {
        let mut list: Vec<i64> = [600, 3600, 8 * 3600, 86_400, 7 * 86_400, 30 * 86_400].into_iter().filter(|s| *s <= self.max_lifetime_secs).collect();
        if !list.contains(&self.max_lifetime_secs) && self.max_lifetime_secs >= 60 {
            list.push(self.max_lifetime_secs);
        }
        list
    }
}

/// A CLI login waiting for approval, as the approval page shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DevicePending {
    pub user_code: String,
    /// the name the CLI gave, e.g. "infra CLI on laptop"
    pub client_name: String,
    /// the address the login was started from
    pub client_addr: String,
    pub created_at: Millis,
}

/// `POST /api/device`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceStartRequest {
    /// the key's name, e.g. "infra CLI on laptop"
    #[serde(default)]
    pub name: Option<String>,
    /// the CLI's loopback port, where the browser goes after the approval
    #[serde(default)]
    pub redirect_port: Option<u16>,
}

/// `POST /api/device/token`: the CLI polls with the secret device code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceTokenRequest {
    pub device_code: String,
}

/// The answer to `POST /api/device`: the CLI starts a login it completes in the console.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceStart {
    /// secret: the CLI polls with it
    pub device_code: String,
    /// shown to the person, who confirms it in the console
    pub user_code: String,
    /// open this and type the user code there (the link does not carry it: a link someone else sends
    /// must not approve their code in one click)
    pub verification_uri: String,
    pub expires_in: i64,
    pub interval: i64,
}

#[cfg(test)]
mod tests {
    use super::KeyText;

    #[test]
    fn a_key_is_its_id_a_dot_and_its_secret() {
        let text = KeyText::render("k1AbC", "s3cr3t");
        assert_eq!(text, "k1AbC.s3cr3t");
        assert_eq!(KeyText::parse(&text), Some(KeyText { key_id: "k1AbC", secret: "s3cr3t" }));
        assert_eq!(KeyText::parse("  k1AbC.s3cr3t\n").map(|k| k.key_id), Some("k1AbC"));
    }

    #[test]
    fn anything_else_is_not_a_key() {
        for bad in ["", ".", "k1AbC", "k1AbC.", ".s3cr3t", "a.b.c", "Bearer"] {
            assert_eq!(KeyText::parse(bad), None, "{bad:?}");
        }
    }
}
