//! Groups from a provider's directory, for providers whose ID tokens do not carry them:
//! - Microsoft Graph (`GET /me/memberOf`, with the user's access token; the app needs the delegated
//!   permission `GroupMember.Read.All`). Only groups count: directory roles and administrative units are
//!   skipped. Pages are followed through `@odata.nextLink`.
//! - the Google Admin SDK Directory API (`GET /groups?userKey=`), with a service account that has
//!   domain-wide delegation for the read-only group scope and acts as a Workspace admin. Pages are
//!   followed through `nextPageToken`.
//!
//! Each group comes back with its stable key (Graph's object `id`, Google's group `email`) and its
//! display name as a label: display names are not unique, and in both directories ordinary users can
//! create groups by default, so a name never decides membership.
//! A user the directory does not know (404) is a definite answer, which continuous verification acts
//! on at once; any other trouble is not (see `providers::verify_pass`).

use serde_json::Value;

use crate::server::oidc::ProviderGroup;
/// Why the groups could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// the directory does not know the user (they were removed)
    #[error("{0}")]
    UserGone(String),
    #[error("{0}")]
    Failed(String),
}

impl From<String> for DirectoryError {
    fn from(why: String) -> Self {
        DirectoryError::Failed(why)
    }
}

impl From<&str> for DirectoryError {
    fn from(why: &str) -> Self {
        DirectoryError::Failed(why.into())
    }
}

pub const GRAPH: &str = "https://graph.microsoft.com/v1.0";

/// At most this many pages (of 100): a user in more than 10,000 groups is a configuration problem.
const MAX_PAGES: usize = 100;

/// Sorted by key, without duplicates.
fn finish(mut groups: Vec<ProviderGroup>) -> Vec<ProviderGroup> {
    groups.sort_by(|a, b| a.id.cmp(&b.id));
    groups.dedup_by(|a, b| a.id == b.id);
    groups
}

/// A group from a directory's item: its key (required) and its name (the key when there is none).
fn group_of(id: Option<&str>, name: Option<&str>) -> Option<ProviderGroup> {
    let id = id.map(str::trim).filter(|i| !i.is_empty())?;
    let name = name.map(str::trim).filter(|n| !n.is_empty()).unwrap_or(id);
    Some(ProviderGroup { id: id.to_string(), name: name.to_string() })
}

pub async fn azure_groups(http: &reqwest::Client, base: &str, access_token: &str) -> Result<Vec<ProviderGroup>, DirectoryError> {
    let mut url = format!("{}/me/memberOf?$select=id,displayName&$top=100", base.trim_end_matches('/'));
    let mut groups = Vec::new();
    for _ in 0..MAX_PAGES {
        let res = http.get(&url).bearer_auth(access_token).send().await.map_err(|e| format!("cannot reach Microsoft Graph: {e}"))?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            let why = body["error"]["message"].as_str().unwrap_or("access denied");
            return Err(format!("Microsoft Graph refused to list the user's groups ({why}): grant the app the GroupMember.Read.All permission").into());
        }
        if !status.is_success() {
            return Err(format!("Microsoft Graph answered {status}").into());
        }
        for item in body["value"].as_array().into_iter().flatten() {
            if item["@odata.type"] == "#microsoft.graph.group" {
                groups.extend(group_of(item["id"].as_str(), item["displayName"].as_str()));
            }
        }
        match body["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => return Ok(finish(groups)),
        }
    }
    Err("Microsoft Graph returned more than 10,000 groups for one user".into())
}

pub const GOOGLE_DIRECTORY: &str = "https://admin.googleapis.com/admin/directory/v1";
const GOOGLE_SCOPE: &str = "https://www.googleapis.com/auth/admin.directory.group.readonly";

/// The fields of a Google service account key (the JSON file the Cloud console downloads) that are used.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct ServiceAccount {
    pub client_email: String,
    pub private_key: String,
    #[serde(default)]
    pub private_key_id: String,
    #[serde(default = "google_token_uri")]
    pub token_uri: String,
}

fn google_token_uri() -> String {
    "https://oauth2.googleapis.com/token".into()
}

impl ServiceAccount {
    pub fn parse(json: &str) -> Result<ServiceAccount, String> {
        let sa: ServiceAccount = serde_json::from_str(json).map_err(|e| format!("not a service account key (JSON): {e}"))?;
        pkcs1_of(&sa.private_key)?;
        Ok(sa)
    }
}

/// The PKCS#1 form of the PKCS#8 RSA key in a service account key (what the RS256 signer reads).
fn pkcs1_of(pem: &str) -> Result<Vec<u8>, String> {
    let key = rustls_pemfile::private_key(&mut pem.as_bytes()).ok().flatten().ok_or("the service account's private_key is not a PEM key")?;
    match key {
        rustls::pki_types::PrivateKeyDer::Pkcs1(k) => Ok(k.secret_pkcs1_der().to_vec()),
        rustls::pki_types::PrivateKeyDer::Pkcs8(k) => yasna::parse_der(k.secret_pkcs8_der(), |r| {
            r.read_sequence(|r| {
                r.next().read_u8()?;
                r.next().read_sequence(|r| {
                    r.next().read_oid()?;
                    r.read_optional(|r| r.read_null())?;
                    Ok(())
                })?;
                r.next().read_bytes()
            })
        })
        .map_err(|_| "the service account's private_key is not an RSA key".to_string()),
        _ => Err("the service account's private_key is not an RSA key".into()),
    }
}

/// Groups from the Google Admin SDK Directory API: the service account, with domain-wide delegation,
/// acts as `admin` (an administrator of the Workspace) and lists the groups of `user_email`.
pub async fn google_groups(
    http: &reqwest::Client,
    base: &str,
    sa: &ServiceAccount,
    admin: &str,
    user_email: &str,
) -> Result<Vec<ProviderGroup>, DirectoryError> {
    let now = crate::server::now() / 1000;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    if !sa.private_key_id.is_empty() {
        header.kid = Some(sa.private_key_id.clone());
    }
    let claims = serde_json::json!({"iss": sa.client_email, "scope": GOOGLE_SCOPE, "aud": sa.token_uri, "sub": admin, "iat": now, "exp": now + 3600});
    let key = jsonwebtoken::EncodingKey::from_rsa_der(&pkcs1_of(&sa.private_key)?);
    let assertion = jsonwebtoken::encode(&header, &claims, &key).map_err(|e| format!("cannot sign the service account assertion: {e}"))?;
    let res = http
        .post(&sa.token_uri)
        .form(&[("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", assertion.as_str())])
        .send()
        .await
        .map_err(|e| format!("cannot reach Google's token endpoint: {e}"))?;
    let status = res.status();
    let token: Value = res.json().await.unwrap_or(Value::Null);
    let Some(access_token) = token["access_token"].as_str().filter(|_| status.is_success()) else {
        let why = token["error_description"].as_str().or(token["error"].as_str()).unwrap_or("refused");
        return Err(format!("Google refused the service account ({why}): check its domain-wide delegation for {GOOGLE_SCOPE} and the admin email").into());
    };
    let mut groups = Vec::new();
    let mut page_token = String::new();
    for _ in 0..MAX_PAGES {
        let mut query = vec![("userKey", user_email), ("maxResults", "200")];
        if !page_token.is_empty() {
            query.push(("pageToken", page_token.as_str()));
        }
        let res = http
            .get(format!("{}/groups", base.trim_end_matches('/')))
            .query(&query)
            .bearer_auth(access_token)
            .send()
            .await
            .map_err(|e| format!("cannot reach the Google Directory API: {e}"))?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let why = body["error"]["message"].as_str().unwrap_or("refused");
            let text = format!("the Google Directory API refused to list the groups of {user_email} ({why})");
            return Err(if status == reqwest::StatusCode::NOT_FOUND { DirectoryError::UserGone(text) } else { DirectoryError::Failed(text) });
        }
        for g in body["groups"].as_array().into_iter().flatten() {
            // a group email is unique in the Workspace and compared without regard to case
            let email = g["email"].as_str().map(str::to_lowercase);
            groups.extend(group_of(email.as_deref(), g["name"].as_str()));
        }
        match body["nextPageToken"].as_str() {
            Some(next) if !next.is_empty() => page_token = next.to_string(),
            _ => return Ok(finish(groups)),
        }
    }
    Err("the Google Directory API returned more than 20,000 groups for one user".into())
}
