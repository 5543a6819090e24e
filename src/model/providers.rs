//! Identity providers.

use super::Millis;
use serde::{Deserialize, Serialize};

/// The kinds of identity provider, stored and shown as their lowercase names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// any OpenID Provider, found by discovery
    Oidc,
    Okta,
    /// Google Workspace
    Google,
    /// Azure AD (Microsoft Entra ID)
    Azure,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 4] = [ProviderKind::Oidc, ProviderKind::Okta, ProviderKind::Google, ProviderKind::Azure];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Oidc => "oidc",
            ProviderKind::Okta => "okta",
            ProviderKind::Google => "google",
            ProviderKind::Azure => "azure",
        }
    }

    /// A kind as typed (any case, spaces around) or stored.
    pub fn parse(text: &str) -> Option<ProviderKind> {
        let text = text.trim().to_lowercase();
        ProviderKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A list of email domains as people type it or as it is stored: separated by commas and/or whitespace,
/// empty entries dropped. The one parser of `allowed_domains` text (the console's forms, the database
/// column); the service then checks and normalises each domain.
pub fn parse_domain_list(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace()).filter(|d| !d.is_empty()).map(String::from).collect()
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

#[cfg(test)]
mod tests {
    use super::parse_domain_list;

    #[test]
    fn domain_lists_split_on_commas_and_whitespace() {
        assert_eq!(parse_domain_list(" example.com, corp.example\texample.org,,"), ["example.com", "corp.example", "example.org"]);
        assert!(parse_domain_list(" , ").is_empty());
    }
}
