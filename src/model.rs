//! Request and response types shared by the REST API, the server functions, the console and the CLI.
//! One definition each; the server maps its database rows into these.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch. Every timestamp the product stores or sends is one of these.
pub type Millis = i64;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub provider: String,
    pub disabled: bool,
    pub must_change_password: bool,
    pub last_seen_at: Option<Millis>,
    pub created_at: Millis,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub id: i64,
    /// for a provider group a label: its key is `external_id`
    pub name: String,
    /// `local`, or the identity provider's name
    pub source: String,
    /// a provider group's id at the provider (Azure AD object id, Google group email, groups claim
    /// value); empty for a local group, and for a provider group from before groups had keys
    #[serde(default)]
    pub external_id: String,
    pub member_count: i64,
    pub created_at: Millis,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupDetail {
    pub group: Group,
    pub members: Vec<User>,
}

/// Who a grant is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectKind {
    User,
    Group,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::User => "user",
            SubjectKind::Group => "group",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(SubjectKind::User),
            "group" => Some(SubjectKind::Group),
            _ => None,
        }
    }
}

/// A user or group as the typeahead shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    pub kind: SubjectKind,
    pub id: i64,
    /// email for a user, name for a group
    pub name: String,
    /// display name for a user; for a group the identity provider it comes from, empty for a local one
    pub detail: String,
}

impl Subject {
    /// "user", "group", or "group from corp": what the console shows next to the name.
    pub fn kind_label(&self) -> String {
        match self.kind {
            SubjectKind::Group if !self.detail.is_empty() => format!("group from {}", self.detail),
            kind => kind.as_str().to_string(),
        }
    }

    /// The form value a subject picker submits: `user:<email>` or `group:<name>`.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.name)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    pub id: i64,
    pub subject: Subject,
    pub role: String,
    /// `infra`, `cluster` or `cluster.namespace`
    pub resource: String,
    pub created_by: Option<String>,
    pub created_at: Millis,
    pub expires_at: Option<Millis>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewGrant {
    /// `user:<email>`, `group:<name>`, or a bare email or group name
    pub subject: String,
    pub role: String,
    pub resource: String,
    #[serde(default)]
    pub expires_at: Option<Millis>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterStatus {
    Connected,
    Disconnected,
    Pending,
}

impl ClusterStatus {
    pub fn label(self) -> &'static str {
        match self {
            ClusterStatus::Connected => "connected",
            ClusterStatus::Disconnected => "disconnected",
            ClusterStatus::Pending => "pending",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Destination {
    pub id: i64,
    pub name: String,
    pub unique_id: String,
    pub endpoint: String,
    pub ca: String,
    pub kubernetes_version: String,
    pub connector_version: String,
    pub namespaces: Vec<String>,
    pub roles: Vec<String>,
    pub status: ClusterStatus,
    pub last_seen_at: Option<Millis>,
    pub created_at: Millis,
    /// what the connector could not apply, in sentences (a grant to a missing namespace or role)
    #[serde(default)]
    pub problems: Vec<String>,
}

/// What a connector sends when it registers and on every heartbeat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DestinationRegistration {
    pub name: String,
    /// hash of the cluster CA
    pub unique_id: String,
    /// URL of the connector's authenticating proxy
    pub endpoint: String,
    /// PEM of the proxy's CA
    pub ca: String,
    pub kubernetes_version: String,
    #[serde(default)]
    pub connector_version: String,
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// grants the connector could not turn into bindings, in sentences; empty when all is well
    #[serde(default)]
    pub problems: Vec<String>,
}

/// What a cluster's connector should make true: one binding per role and scope, with its subjects.
/// `version` changes whenever the content does; the connector long-polls with the version it has.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredBindings {
    pub version: String,
    pub bindings: Vec<DesiredBinding>,
    /// credentials the proxy must refuse from now on, though their tokens have not expired
    #[serde(default)]
    pub revoked: Revoked,
    /// the current members (emails) of every group with a grant on this cluster: the proxy impersonates
    /// a user's groups from here, not from the token, so leaving a group takes effect within seconds
    #[serde(default)]
    pub members: std::collections::BTreeMap<String, Vec<String>>,
    /// break-glass client certificates the connector is to have the cluster sign
    #[serde(default)]
    pub certificates: Vec<CertificateRequest>,
}

/// A CSR (PEM) the cluster is to sign with `kubernetes.io/kube-apiserver-client`, and what it must
/// say: the connector signs it only if its subject is CN = `user`, O = `groups` (the user's groups
/// with a grant on the cluster, no `system:` group) and the lifetime is within Kubernetes' minimum and
/// `max_expiration_secs`, the admin's maximum.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRequest {
    pub id: i64,
    pub csr: String,
    pub expiration_secs: i64,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub max_expiration_secs: i64,
}

/// A Kubernetes name reserved for the cluster itself (`system:masters`, `system:nodes` ...): never a
/// user's or group's name in a client certificate infra has signed.
pub fn is_kubernetes_system_name(name: &str) -> bool {
    name.trim_start().get(..7).is_some_and(|p| p.eq_ignore_ascii_case("system:"))
}

/// The connector's answer to a [`CertificateRequest`]: the certificate and where users reach the API
/// server directly (its URL and CA, PEM; the CA is empty when a public authority signs it), or an error.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCertificate {
    #[serde(default)]
    pub certificate: String,
    #[serde(default)]
    pub api_server: String,
    #[serde(default)]
    pub api_server_ca: String,
    #[serde(default)]
    pub error: String,
}

/// Revoked access keys (by key id, the `sid` claim) and disabled or deleted users (by id, the `uid`
/// claim). Tokens naming either are refused by the proxy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    pub keys: Vec<String>,
    pub users: Vec<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DesiredBinding {
    pub role: String,
    /// empty for a ClusterRoleBinding (the whole cluster)
    #[serde(default)]
    pub namespace: String,
    pub subjects: Vec<BindingSubject>,
}

/// A Kubernetes RBAC subject: `User` (named by email) or `Group` (named by group name).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BindingSubject {
    pub kind: String,
    pub name: String,
}

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
}

/// One request the proxy forwarded, reported to the server's audit log in batches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProxiedRequest {
    pub at: Millis,
    pub user: String,
    pub verb: String,
    pub resource: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub name: String,
    pub status: u16,
    #[serde(default)]
    pub source: String,
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
    /// `<key_id>.<secret>`
    pub access_key: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: i64,
    pub at: Millis,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub source: String,
    pub detail: String,
}

/// One page of a list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: u64,
    pub limit: u64,
    pub total: u64,
}

impl<T> Page<T> {
    pub fn pages(&self) -> u64 {
        self.total.div_ceil(self.limit.max(1)).max(1)
    }
}

/// One cluster (and namespace) the signed-in user can reach, and through which grants.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccessEntry {
    pub resource: String,
    pub role: String,
    /// `direct` or `group <name>`
    pub via: String,
    pub expires_at: Option<Millis>,
    pub cluster_status: Option<ClusterStatus>,
}

/// Who is signed in, as the console sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Me {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
    pub can_view: bool,
    pub must_change_password: bool,
}

/// The JSON body of every API error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldError>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Roles every Kubernetes cluster has; a cluster whose connector has not reported its roles yet offers these.
/// `logs`, `exec` and `port-forward` are ClusterRoles the connector installs and reports.
pub const BUILTIN_KUBERNETES_ROLES: [&str; 4] = ["cluster-admin", "admin", "edit", "view"];
/// The product's own roles on the `infra` resource.
pub const INFRA_ROLES: [&str; 3] = ["admin", "view", "connector"];
pub const INFRA_RESOURCE: &str = "infra";

/// Data together with the server's clock when it was read, so that relative times ("3 minutes ago")
/// render the same on the server and in the browser.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WithNow<T> {
    pub now: Millis,
    pub data: T,
}

/// One suggestion of a typeahead: `value` is what the form submits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TypeaheadOption {
    pub value: String,
    pub label: String,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterDetail {
    pub destination: Destination,
    /// one page of the cluster's access list (empty for those who may not read it)
    pub grants: Page<Grant>,
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

/// Settings an admin changes in the console or with `PATCH /api/settings`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProductSettings {
    /// the longest lifetime a user may pick for a kubeconfig token
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_max_lifetime_secs: Option<i64>,
    /// the lifetime of the access key a CLI login (`infra login`, password or `--web`) receives
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cli_login_lifetime_secs: Option<i64>,
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

/// "1 hour", "30 days", "90 seconds".
pub fn human_duration(s: u64) -> String {
    let (n, unit) = if s.is_multiple_of(86_400) && s >= 86_400 {
        (s / 86_400, "day")
    } else if s.is_multiple_of(3600) && s >= 3600 {
        (s / 3600, "hour")
    } else if s.is_multiple_of(60) && s >= 60 {
        (s / 60, "minute")
    } else {
        (s, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// An identity provider as the API shows it (never its client secret).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Provider {
    pub id: i64,
    /// lowercase slug: the sign-in button says "Sign in with <name>", and its groups have this `source`
    pub name: String,
    /// `oidc`, `okta`, `google` or `azure`
    pub kind: String,
    pub issuer: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub groups_claim: String,
    /// email domains allowed to sign in; empty: any
    pub allowed_domains: Vec<String>,
    /// `azure`: the Microsoft Graph base URL the groups come from (empty: https://graph.microsoft.com/v1.0);
    /// `google`: the Directory API URL (empty: https://admin.googleapis.com/admin/directory/v1)
    #[serde(default)]
    pub directory_url: String,
    /// `google`: the Workspace admin the service account acts as (empty: groups are not read)
    #[serde(default)]
    pub directory_admin: String,
    pub user_count: i64,
    pub created_at: Millis,
    /// users whose last checks with the IdP had no definite answer
    #[serde(default)]
    pub unverified: Unverified,
}

/// A provider's users that continuous verification could not check lately (the IdP unreachable, 5xx,
/// timeouts, answers without an ID token). They keep their access until the grace period ends.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Unverified {
    /// enabled users whose last checks failed
    pub users: i64,
    /// when the first of their current failures began
    pub since: Option<Millis>,
    /// the latest failure, in words
    pub error: String,
}

impl Unverified {
    /// "could not verify 3 users since 2026-12-02 04:31 UTC" (with the console's time format), or
    /// `None` when the last checks all had an answer.
    pub fn summary(&self, format_time: impl Fn(Millis) -> String) -> Option<String> {
        let since = self.since.map(|at| format!(" since {}", format_time(at))).unwrap_or_default();
        (self.users > 0).then(|| format!("could not verify {} user{}{since}", self.users, if self.users == 1 { "" } else { "s" }))
    }
}

/// `POST /api/providers`. `issuer` is the issuer URL for `oidc`, the Okta domain for `okta`
/// (`example.okta.com`), the tenant id or domain for `azure`, and may be empty for `google`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NewProvider {
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// default `openid email profile groups offline_access` (Azure and Google: without `groups`)
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// default `groups`
    #[serde(default)]
    pub groups_claim: Option<String>,
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// `azure`: another Microsoft Graph base URL (national clouds); `google`: another Directory API URL
    #[serde(default)]
    pub directory_url: Option<String>,
    /// `google`: the service account key (JSON) with domain-wide delegation; encrypted, never shown again
    #[serde(default)]
    pub service_account_json: Option<String>,
    /// `google`: the Workspace admin the service account acts as
    #[serde(default)]
    pub directory_admin: Option<String>,
}

/// `PATCH /api/providers/{id}`: what is given changes; a missing client secret keeps the stored one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProviderUpdate {
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    pub groups_claim: Option<String>,
    #[serde(default)]
    pub allowed_domains: Option<Vec<String>>,
}

/// "Test connection": discovery fetched and checked, in words.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProviderCheck {
    pub ok: bool,
    pub message: String,
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

/// `POST /api/device`: the CLI starts a login it completes in the console.
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
