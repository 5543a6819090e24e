//! The typed client of the REST API, used by the CLI and by the connector: requests and answers are the
//! `model` types, and every failure is one [`ClientError`] whose text is a sentence a person can act on.

use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::model::*;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach {server}: {cause}")]
    Unreachable { server: String, cause: String },
    /// 401 to a call made with a key: the key is unknown, expired, idle, revoked or mistyped
    #[error("{server} refused the access key: {message}")]
    KeyRefused { server: String, message: String },
    /// any other answer that is not a success: the server's error, as a sentence
    #[error("{}", refusal(.server, *.status, .error))]
    Refused { server: String, status: StatusCode, error: ApiError },
    #[error("unexpected answer from {server}: {cause}")]
    Unexpected { server: String, cause: String },
}

impl ClientError {
    /// The HTTP status of a refusal, if the server answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::KeyRefused { .. } => Some(StatusCode::UNAUTHORIZED),
            ClientError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The server's refusal as a sentence: its own words where it gave some (they say what to do: "no access
/// to staging: ask an admin for a grant"), prefixed with the server where they would read oddly alone.
fn refusal(server: &str, status: StatusCode, error: &ApiError) -> String {
    let sentence = error.sentence();
    match status.as_u16() {
        _ if sentence.is_empty() => format!("{server} answered {status}"),
        400 | 401 | 403 | 404 | 409 | 423 | 429 => sentence,
        _ => format!("{server} refused: {sentence}"),
    }
}

/// Where the connector finds the server's signing keys.
#[derive(serde::Deserialize)]
pub struct Discovery {
    pub issuer: String,
}

#[derive(serde::Deserialize)]
pub struct JwkSet {
    pub keys: Vec<jsonwebtoken::jwk::Jwk>,
}

/// A server and the key to call it with.
#[derive(Clone)]
pub struct Client {
    server: String,
    key: Option<String>,
    http: reqwest::Client,
}

/// A list's entries, all pages of them.
const PAGE_LIMIT: u64 = 200;

impl Client {
    pub fn new(server: &str, key: Option<&str>, http: reqwest::Client) -> Client {
        Client { server: server.trim_end_matches('/').to_string(), key: key.map(|k| k.trim().to_string()).filter(|k| !k.is_empty()), http }
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// The same server, with another key (or none).
    pub fn with_key(&self, key: Option<&str>) -> Client {
        Client::new(&self.server, key, self.http.clone())
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.server));
        match &self.key {
            Some(key) => req.bearer_auth(key),
            None => req,
        }
    }

    /// Sends a request and reads the answer; an empty answer (204) reads as JSON `null`.
    pub async fn send<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<T, ClientError> {
        let server = || self.server.clone();
        let res = req.send().await.map_err(|e| ClientError::Unreachable { server: server(), cause: crate::cli::root_cause(&e) })?;
        let status = res.status();
        let bytes = res.bytes().await.map_err(|e| ClientError::Unreachable { server: server(), cause: crate::cli::root_cause(&e) })?;
        if status.is_success() {
            let bytes: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
            return serde_json::from_slice(bytes).map_err(|e| ClientError::Unexpected { server: server(), cause: e.to_string() });
        }
        let error = serde_json::from_slice::<ApiError>(&bytes).unwrap_or_else(|_| ApiError {
            code: String::new(),
            message: String::from_utf8_lossy(&bytes).trim().chars().take(200).collect(),
            fields: vec![],
        });
        if status == StatusCode::UNAUTHORIZED && self.key.is_some() {
            return Err(ClientError::KeyRefused { server: server(), message: error.sentence() });
        }
        Err(ClientError::Refused { server: server(), status, error })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(self.request(Method::GET, path)).await
    }

    pub async fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T, ClientError> {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    pub async fn patch<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T, ClientError> {
        self.send(self.request(Method::PATCH, path).json(body)).await
    }

    pub async fn delete(&self, path: &str) -> Result<(), ClientError> {
        self.send::<serde_json::Value>(self.request(Method::DELETE, path)).await.map(|_| ())
    }

    /// Every entry of a paginated list, `query` being the filter (without `page` and `limit`).
    pub async fn all<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<Vec<T>, ClientError> {
        let mut items = Vec::new();
        for page in 1u64.. {
            let req = self.request(Method::GET, path).query(query).query(&[("page", page), ("limit", PAGE_LIMIT)]);
            let answer: Page<T> = self.send(req).await?;
            let last = page >= answer.pages() || answer.items.is_empty();
            items.extend(answer.items);
            if last {
                break;
            }
        }
        Ok(items)
    }

    // who is calling

    pub async fn me(&self) -> Result<Whoami, ClientError> {
        self.get("/api/me").await
    }

    pub async fn my_access(&self) -> Result<Vec<AccessEntry>, ClientError> {
        self.get("/api/me/access").await
    }

    // logins

    pub async fn login_providers(&self) -> Result<Vec<String>, ClientError> {
        self.get("/api/login/providers").await
    }

    pub async fn login(&self, login: &CliLogin) -> Result<CreatedAccessKey, ClientError> {
        self.post("/api/login", login).await
    }

    pub async fn device_start(&self, start: &DeviceStartRequest) -> Result<DeviceStart, ClientError> {
        self.post("/api/device", start).await
    }

    /// The key once the login is approved; `None` while it waits.
    pub async fn device_token(&self, device_code: &str) -> Result<Option<CreatedAccessKey>, ClientError> {
        let answer: serde_json::Value = self.post("/api/device/token", &DeviceTokenRequest { device_code: device_code.to_string() }).await?;
        if answer.get("access_key").is_none() {
            return Ok(None);
        }
        serde_json::from_value(answer).map(Some).map_err(|e| ClientError::Unexpected { server: self.server.clone(), cause: e.to_string() })
    }

    // credentials

    pub async fn kubeconfig(&self, request: &KubeconfigRequest) -> Result<KubeconfigFile, ClientError> {
        self.post("/api/kubeconfig", request).await
    }

    pub async fn token(&self, cluster: &str) -> Result<IssuedToken, ClientError> {
        self.post("/api/tokens", &TokenRequest { destination: cluster.to_string() }).await
    }

    pub async fn keys(&self, everyone: bool) -> Result<Vec<AccessKey>, ClientError> {
        self.get(if everyone { "/api/keys?all=true" } else { "/api/keys" }).await
    }

    pub async fn create_key(&self, key: &NewAccessKey) -> Result<CreatedAccessKey, ClientError> {
        self.post("/api/keys", key).await
    }

    pub async fn connector_key(&self, cluster: &str) -> Result<CreatedAccessKey, ClientError> {
        self.post(&format!("/api/destinations/{}/connector-key", segment(cluster)), &serde_json::json!({})).await
    }

    pub async fn revoke_key(&self, id: i64) -> Result<(), ClientError> {
        self.delete(&format!("/api/keys/{id}")).await
    }

    // users and groups

    pub async fn users(&self) -> Result<Vec<User>, ClientError> {
        self.all("/api/users", &[]).await
    }

    /// The user with this email (case does not matter).
    pub async fn user(&self, email: &str) -> Result<User, ClientError> {
        let found: Vec<User> = self.all("/api/users", &[("q", email)]).await?;
        found.into_iter().find(|u| u.email.eq_ignore_ascii_case(email.trim())).ok_or_else(|| self.not_found(format!("no user {email}")))
    }

    pub async fn create_user(&self, user: &CreateUser) -> Result<CreatedUser, ClientError> {
        self.post("/api/users", user).await
    }

    pub async fn update_user(&self, id: i64, change: &UserUpdate) -> Result<User, ClientError> {
        self.patch(&format!("/api/users/{id}"), change).await
    }

    pub async fn delete_user(&self, id: i64) -> Result<(), ClientError> {
        self.delete(&format!("/api/users/{id}")).await
    }

    pub async fn groups(&self) -> Result<Vec<Group>, ClientError> {
        self.all("/api/groups", &[]).await
    }

    /// The group with this name; a name several groups share (from different providers) is refused.
    pub async fn group(&self, name: &str) -> Result<GroupDetail, ClientError> {
        let found: Vec<Group> = self.all("/api/groups", &[("q", name)]).await?;
        let mut named = found.into_iter().filter(|g| g.name.eq_ignore_ascii_case(name.trim()));
        let group = named.next().ok_or_else(|| self.not_found(format!("no group {name}")))?;
        if named.next().is_some() {
            return Err(self.not_found(format!("several groups are named {name}: use the console or the API with the group's id")));
        }
        self.get(&format!("/api/groups/{}", group.id)).await
    }

    pub async fn create_group(&self, name: &str) -> Result<Group, ClientError> {
        self.post("/api/groups", &Named { name: name.to_string() }).await
    }

    pub async fn delete_group(&self, id: i64) -> Result<(), ClientError> {
        self.delete(&format!("/api/groups/{id}")).await
    }

    pub async fn add_member(&self, group: i64, user: &str) -> Result<GroupDetail, ClientError> {
        self.post(&format!("/api/groups/{group}/members"), &NewMember { user: user.to_string() }).await
    }

    pub async fn remove_member(&self, group: i64, user: i64) -> Result<(), ClientError> {
        self.delete(&format!("/api/groups/{group}/members/{user}")).await
    }

    // grants

    pub async fn grants(&self, query: &[(&str, &str)]) -> Result<Vec<Grant>, ClientError> {
        self.all("/api/grants", query).await
    }

    /// The grant and whether it is new (an existing equal grant is answered with 200).
    pub async fn add_grant(&self, grant: &NewGrant) -> Result<Grant, ClientError> {
        self.post("/api/grants", grant).await
    }

    pub async fn remove_grant(&self, id: i64) -> Result<(), ClientError> {
        self.delete(&format!("/api/grants/{id}")).await
    }

    // clusters

    pub async fn destinations(&self) -> Result<Vec<Destination>, ClientError> {
        self.get("/api/destinations").await
    }

    pub async fn delete_destination(&self, name: &str) -> Result<(), ClientError> {
        self.delete(&format!("/api/destinations/{}", segment(name))).await
    }

    // identity providers

    pub async fn providers(&self) -> Result<Vec<Provider>, ClientError> {
        self.get("/api/providers").await
    }

    pub async fn provider(&self, name: &str) -> Result<Provider, ClientError> {
        let all = self.providers().await?;
        all.into_iter().find(|p| p.name.eq_ignore_ascii_case(name.trim())).ok_or_else(|| self.not_found(format!("no identity provider {name}")))
    }

    pub async fn create_provider(&self, provider: &NewProvider) -> Result<Provider, ClientError> {
        self.post("/api/providers", provider).await
    }

    pub async fn update_provider(&self, id: i64, change: &ProviderUpdate) -> Result<Provider, ClientError> {
        self.patch(&format!("/api/providers/{id}"), change).await
    }

    pub async fn delete_provider(&self, id: i64) -> Result<(), ClientError> {
        self.delete(&format!("/api/providers/{id}")).await
    }

    // the connector's calls: it authenticates with its connector key

    pub async fn discovery(&self) -> Result<Discovery, ClientError> {
        self.get("/.well-known/openid-configuration").await
    }

    pub async fn jwks(&self) -> Result<JwkSet, ClientError> {
        self.get("/.well-known/jwks.json").await
    }

    fn not_found(&self, message: String) -> ClientError {
        ClientError::Refused {
            server: self.server.clone(),
            status: StatusCode::NOT_FOUND,
            error: ApiError { code: "not_found".into(), message, fields: vec![] },
        }
    }
}

/// A name as one path segment: percent-encoded, so that no name reaches another route.
fn segment(name: &str) -> String {
    name.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}
