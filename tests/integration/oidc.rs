//! Sign-in through an identity provider, against a real, certified OpenID Provider: the npm package
//! `oidc-provider`, run by `end2end/idp/idp.mjs` with a client and users carrying a groups claim.
//! The browser's part is played by an HTTP client with a cookie jar that follows each redirect by hand.

use test_harness::cluster as harness;
use test_harness::idp;
use test_harness::pg;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use harness::Infra;
use idp::Idp;
use serde_json::{Value, json};

fn users() -> Value {
    json!([
        {"sub": "alice", "email": "alice@example.com", "name": "Alice Example", "password": "alice-pw", "groups": ["dev", "sre"]},
        {"sub": "bob", "email": "bob@other.example", "name": "Bob Other", "password": "bob-pw", "groups": ["dev"]},
        {"sub": "carol", "email": "carol@example.com", "name": "Carol Local", "password": "carol-pw", "groups": []},
    ])
}

/// A browser: cookies kept, redirects followed by hand.
fn browser(infra: &Infra) -> reqwest::Client {
    infra.http_builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn location(res: &reqwest::Response) -> String {
    let loc = res.headers().get("location").unwrap_or_else(|| panic!("no redirect from {} ({})", res.url(), res.status())).to_str().unwrap();
    res.url().join(loc).unwrap().to_string()
}

/// Signs in through the provider with the IdP's login form; returns where the console sent the browser
/// at the end ("/" when signed in, "/login?error=..." when refused).
async fn sign_in(b: &reqwest::Client, infra: &Infra, provider: &str, email: &str, password: &str) -> String {
    let res = b.get(format!("{}/auth/oidc/{provider}", infra.url)).send().await.unwrap();
    let to_idp = location(&res);
    assert!(!to_idp.starts_with(&infra.url), "the console refused to start: {to_idp}");
    for p in ["code_challenge_method=S256", "state=", "nonce=", "scope=openid"] {
        assert!(to_idp.contains(p), "{p} in {to_idp}");
    }
    let res = b.get(&to_idp).send().await.unwrap();
    let interaction = location(&res);
    let res = b.post(format!("{interaction}/login")).form(&[("email", email), ("password", password)]).send().await.unwrap();
    if res.status() == 401 {
        return "(the identity provider refused the login)".into();
    }
    let resume = location(&res);
    let res = b.get(&resume).send().await.unwrap();
    let callback = location(&res);
    assert!(callback.starts_with(&format!("{}/auth/oidc/callback?", infra.url)), "{callback}");
    let res = b.get(&callback).send().await.unwrap();
    location(&res).trim_start_matches(&infra.url).to_string()
}

/// The person types the code their terminal shows on the approval page; returns the page it leads to.
async fn type_device_code(b: &reqwest::Client, infra: &Infra, code: &str) -> String {
    let res = b.post(format!("{}/device/confirm", infra.url)).header("origin", infra.url.clone()).form(&[("code", code)]).send().await.unwrap();
    let landing = location(&res).trim_start_matches(&infra.url).to_string();
    assert_eq!(landing, format!("/device?code={code}"), "{}", error_of(&landing));
    landing
}

fn error_of(landing: &str) -> String {
    let url = reqwest::Url::parse(&format!("https://x{landing}")).unwrap();
    url.query_pairs().find(|(k, _)| k == "error").map(|(_, v)| v.to_string()).unwrap_or_default()
}

/// Runs each scenario `async fn NAME(database_url: Option<String>)` as two tests, `NAME::sqlite` (the
/// server's default database) and `NAME::postgresql` (a throw-away PostgreSQL).
macro_rules! on_sqlite_and_postgresql {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(None).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgresql() {
                let pg = super::pg::TempPostgres::start();
                super::$name(Some(pg.new_database())).await
            }
        }
    )*};
}

on_sqlite_and_postgresql!(
    sign_in_with_an_openid_provider,
    verification_acts_only_on_a_definite_answer,
    one_verification_pass_at_a_time,
    upgrading_keys_existing_provider_groups,
);

async fn me(b: &reqwest::Client, infra: &Infra) -> (u16, Value) {
    let res = b.get(format!("{}/api/me", infra.url)).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

async fn sign_in_with_an_openid_provider(database_url: Option<String>) {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let infra = Infra::start_on(&dir.path().join("server"), database_url).await;
    let idp = Idp::start(dir.path(), &format!("{}/auth/oidc/callback", infra.url), users(), json!({}));
    let (_, carol_key) = infra.user("carol@example.com").await;
    let provider = json!({"name": "corp", "kind": "oidc", "issuer": idp.issuer, "client_id": "infra", "client_secret": "infra-secret"});

    // admins only; bad input refused and nothing stored
    let (status, _) = infra.post("/api/providers", &carol_key, provider.clone()).await;
    assert_eq!(status, 403);
    for (field, bad) in [
        ("kind", json!("ldap")),
        ("issuer", json!("http://idp.example.com")),
        ("name", json!("Corp IdP")),
        ("name", json!("local")),
        ("client_secret", json!("")),
    ] {
        let mut body = provider.clone();
        body[field] = bad.clone();
        let (status, answer) = infra.post("/api/providers", &infra.admin, body).await;
        assert_eq!(status, 400, "{field} = {bad}: {answer}");
        assert!(answer.to_string().contains(field), "{answer}");
    }
    assert!(infra.get("/api/providers", &infra.admin).await.1.as_array().unwrap().is_empty());

    // added: the secret is never shown again and is encrypted at rest; test connection works
    let (status, created) = infra.post("/api/providers", &infra.admin, provider.clone()).await;
    assert_eq!(status, 201, "{created}");
    assert!(!created.to_string().contains("infra-secret"), "{created}");
    assert_eq!(created["scopes"], json!(["openid", "email", "profile", "groups", "offline_access"]));
    let id = created["id"].as_i64().unwrap();
    let stored = infra::server::db::query_one(&infra.state.db, "SELECT client_secret FROM providers", []).await.unwrap().unwrap();
    let stored: String = stored.try_get_by_index(0).unwrap();
    assert!(!stored.contains("infra-secret") && !stored.is_empty());
    let (_, check) = infra.post(&format!("/api/providers/{id}/test"), &infra.admin, json!({})).await;
    assert_eq!(check["ok"], true, "{check}");
    assert!(check["message"].as_str().unwrap().contains(&idp.issuer), "{check}");
    let (status, _) = infra.post(&format!("/api/providers/{id}/test"), &carol_key, json!({})).await;
    assert_eq!(status, 403);

    // the sign-in page offers it
    let b = browser(&infra);
    let (_, page) = (0, b.get(format!("{}/login", infra.url)).send().await.unwrap().text().await.unwrap());
    assert!(page.contains("Sign in with corp"), "the sign-in page lists the provider");

    // alice signs in: a user from the claims, her provider groups (read-only, source corp), a session
    let landing = sign_in(&b, &infra, "corp", "alice@example.com", "alice-pw").await;
    assert_eq!(landing, "/", "{}", error_of(&landing));
    let (status, alice) = me(&b, &infra).await;
    assert_eq!(status, 200, "{alice}");
    assert_eq!(alice["email"], "alice@example.com");
    let (_, groups) = infra.get("/api/groups?q=", &infra.admin).await;
    let corp: Vec<&Value> = groups["items"].as_array().unwrap().iter().filter(|g| g["source"] == "corp").collect();
    let mut names: Vec<&str> = corp.iter().map(|g| g["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["dev", "sre"], "{groups}");
    let alice_id = alice["id"].as_i64().unwrap();
    // provider groups are read-only here: their members come from the IdP
    let (status, body) = infra.post(&format!("/api/groups/{}/members", corp[0]["id"]), &infra.admin, json!({"user": "carol@example.com"})).await;
    assert!((400..500).contains(&status), "{status} {body}");

    // refusals, each with words on the sign-in page: a state that is not this sign-in's, an email
    // outside the allowed domains, an email that belongs to a local account
    let fresh = browser(&infra);
    fresh.get(format!("{}/auth/oidc/corp", infra.url)).send().await.unwrap();
    let res = fresh.get(format!("{}/auth/oidc/callback?code=x&state=forged", infra.url)).send().await.unwrap();
    assert!(error_of(location(&res).trim_start_matches(&infra.url)).contains("state mismatch"));
    let res = browser(&infra).get(format!("{}/auth/oidc/callback?code=x&state=y", infra.url)).send().await.unwrap();
    assert!(error_of(location(&res).trim_start_matches(&infra.url)).contains("not started here"));
    let (status, _) =
        infra.call(reqwest::Method::PATCH, &format!("/api/providers/{id}"), &infra.admin, Some(json!({"allowed_domains": ["example.com"]}))).await;
    assert_eq!(status, 200);
    let landing = sign_in(&browser(&infra), &infra, "corp", "bob@other.example", "bob-pw").await;
    assert!(error_of(&landing).contains("may not sign in here"), "{landing}");
    let landing = sign_in(&browser(&infra), &infra, "corp", "carol@example.com", "carol-pw").await;
    assert!(error_of(&landing).contains("already has an account"), "{landing}");
    let users = infra::server::db::query_one(&infra.state.db, "SELECT COUNT(*) FROM users WHERE email = 'bob@other.example'", []).await.unwrap().unwrap();
    assert_eq!(users.try_get_by_index::<i64>(0).unwrap(), 0, "a refused sign-in creates nobody");
    let (_, audit) = infra.get("/api/audit?action=auth.provider.login", &infra.admin).await;
    assert!(audit.to_string().contains("may not sign in here") && audit.to_string().contains("denied"), "{audit}");

    // continuous verification: groups follow the IdP; a user the IdP refuses is disabled and signed out
    let redirect = infra.state.oidc_redirect_url();
    let verify = || infra::server::services::providers::verify_all(&infra.state.db, &infra.state.master, &infra.state.oidc_http, &redirect, 4);
    idp.admin("/users/alice", json!({"groups": ["dev"]})).await;
    let report = verify().await.unwrap();
    assert_eq!((report.checked, report.updated, report.disabled), (1, 1, 0), "{report:?}");
    let groups = infra::server::services::groups::names_of_user(&infra.state.db, alice_id).await.unwrap();
    assert_eq!(groups, ["dev"]);
    assert_eq!(me(&b, &infra).await.0, 200);
    idp.admin("/users/alice", json!({"disabled": true})).await;
    let report = verify().await.unwrap();
    assert_eq!((report.checked, report.disabled), (1, 1), "{report:?}");
    assert_eq!(me(&b, &infra).await.0, 401, "her session ended");
    let landing = sign_in(&browser(&infra), &infra, "corp", "alice@example.com", "alice-pw").await;
    assert_eq!(landing, "(the identity provider refused the login)");
    let (_, audit) = infra.get("/api/audit?action=auth.provider", &infra.admin).await;
    assert!(audit.to_string().contains("auth.provider.removed"), "{audit}");
    assert!(audit.to_string().contains("checked 1, groups changed 0, disabled 1, unreachable 0"), "a summary per pass: {audit}");

    // removing the provider removes its groups
    let (status, _) = infra.call(reqwest::Method::DELETE, &format!("/api/providers/{id}"), &infra.admin, None).await;
    assert_eq!(status, 204);
    let (_, groups) = infra.get("/api/groups?q=", &infra.admin).await;
    assert!(!groups.to_string().contains("\"corp\""), "{groups}");
}

/// A provider whose issuer is not the one configured (it is reached as `localhost`, its discovery and
/// tokens say `127.0.0.1`): "Test connection" says so, and sign-in does not start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_answering_as_another_issuer_is_refused() {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let infra = Infra::start(&dir.path().join("server")).await;
    let idp = Idp::start(dir.path(), &format!("{}/auth/oidc/callback", infra.url), users(), json!({}));
    let other_name = idp.issuer.replace("127.0.0.1", "localhost");
    let body = json!({"name": "renamed", "kind": "oidc", "issuer": other_name, "client_id": "infra", "client_secret": "infra-secret"});
    let (status, created) = infra.post("/api/providers", &infra.admin, body).await;
    assert_eq!(status, 201, "{created}");
    let renamed = created["id"].as_i64().unwrap();

    // another issuer: "Test connection" says so, and sign-in does not start
    let (_, check) = infra.post(&format!("/api/providers/{renamed}/test"), &infra.admin, json!({})).await;
    assert_eq!(check["ok"], false, "{check}");
    assert!(check["message"].as_str().unwrap().contains("issuer"), "{check}");
    let res = browser(&infra).get(format!("{}/auth/oidc/renamed", infra.url)).send().await.unwrap();
    let landing = location(&res);
    assert!(error_of(landing.trim_start_matches(&infra.url)).contains("issuer"), "{landing}");
}

/// A stand-in OpenID Provider that answers the token request with the ID token a scenario crafts
/// (signed ES256 with its published key, or not signed at all): for the refusals a certified provider
/// never produces. Discovery, JWKS and token endpoint only; the browser's trip to it is skipped.
/// Each sign-in gets the refresh token `rt-<sub>`; refreshing it answers what `refresh` says for that
/// subject (a fresh ID token unless told otherwise), and is counted in `refreshes`.
mod standin {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use axum::response::IntoResponse;
    use axum::routing::{get, post};
    use axum::{Json, Router};
    use base64::Engine;
    use serde_json::{Value, json};

    pub struct StandIn {
        pub issuer: String,
        /// the claims of the next ID token, and whether to sign it
        pub next: Arc<Mutex<(Value, bool)>>,
        /// Graph's first page of `/me/memberOf` (the second always lists Oncall)
        pub graph: Arc<Mutex<Vec<Value>>>,
        /// the Directory API's groups of each user (`userKey`), one group a page; others are not found
        pub google: Arc<Mutex<HashMap<String, Vec<Value>>>>,
        /// how to answer a refresh, by subject (absent: a fresh ID token)
        pub refresh: Arc<Mutex<HashMap<String, Answer>>>,
        /// refresh requests received, by subject
        pub refreshes: Arc<Mutex<HashMap<String, usize>>>,
        /// `Answer::Gated` refreshes wait for a permit here
        pub gate: Arc<tokio::sync::Semaphore>,
    }

    /// An answer to a refresh token request.
    #[derive(Clone, Debug)]
    pub enum Answer {
        /// an OAuth error: status and `error`
        Error(u16, &'static str),
        /// a 502 page from a proxy in front of the IdP
        BadGateway,
        /// tokens, but no ID token
        NoIdToken,
        /// no answer at all (the client times out)
        Hang,
        /// a valid ID token for another subject
        OtherSubject,
        /// a fresh ID token once a permit is in `gate`
        Gated,
    }

    impl StandIn {
        pub fn answer(&self, sub: &str, answer: Answer) {
            self.refresh.lock().unwrap().insert(sub.to_string(), answer);
        }

        pub fn refreshes_of(&self, sub: &str) -> usize {
            self.refreshes.lock().unwrap().get(sub).copied().unwrap_or(0)
        }
    }

    pub async fn start() -> StandIn {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let pair = rcgen::KeyPair::generate().unwrap();
        let point = pair.public_key_raw().to_vec(); // 0x04 || x || y
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig", "x": b64(&point[1..33]), "y": b64(&point[33..65])});
        let key = jsonwebtoken::EncodingKey::from_ec_der(&pair.serialize_der());
        let next = Arc::new(Mutex::new((json!({}), true)));
        let discovery = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/auth"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        });
        let k = Arc::new(key);
        let n = next.clone();
        let refresh: Arc<Mutex<HashMap<String, Answer>>> = Arc::default();
        let refreshes: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let (refresh_answers, refresh_counts, gate_handle) = (refresh.clone(), refreshes.clone(), gate.clone());
        // the claims of each subject's sign-in, for the ID tokens of their refreshes
        let signed_in: Arc<Mutex<HashMap<String, Value>>> = Arc::default();
        // Microsoft Graph's `GET /me/memberOf`, as documented: two pages, a directory role among the
        // groups, and 401 for another token; `/graph-denied` answers 403 like an app without consent
        let page2 = format!("{issuer}/graph/page2");
        let graph_page1 = Arc::new(Mutex::new(vec![
            json!({"@odata.type": "#microsoft.graph.group", "id": "g1", "displayName": "Platform"}),
            json!({"@odata.type": "#microsoft.graph.directoryRole", "id": "r1", "displayName": "Global Reader"}),
        ]));
        let page1 = graph_page1.clone();
        let graph = move |headers: axum::http::HeaderMap| {
            let (page2, page1) = (page2.clone(), page1.lock().unwrap().clone());
            async move {
                if headers.get("authorization").and_then(|h| h.to_str().ok()) != Some("Bearer at") {
                    return (
                        axum::http::StatusCode::UNAUTHORIZED,
                        Json(json!({"error": {"code": "InvalidAuthenticationToken", "message": "Access token is empty."}})),
                    );
                }
                (
                    axum::http::StatusCode::OK,
                    Json(json!({
                        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects(id,displayName)",
                        "@odata.nextLink": page2,
                        "value": page1,
                    })),
                )
            }
        };
        let page_two = || async { Json(json!({"value": [{"@odata.type": "#microsoft.graph.group", "id": "g2", "displayName": "Oncall"}]})) };
        let denied = || async {
            (
                axum::http::StatusCode::FORBIDDEN,
                Json(json!({"error": {"code": "Authorization_RequestDenied", "message": "Insufficient privileges to complete the operation."}})),
            )
        };
        // Google's token endpoint for a service account (the JWT bearer grant) and the Admin SDK
        // Directory API's `groups?userKey=`, as documented: the assertion must be signed with the
        // service account's key, for the group scope, acting as the Workspace admin
        let token_uri = format!("{issuer}/google/token");
        let google_token = move |axum::Form(form): axum::Form<std::collections::HashMap<String, String>>| {
            let token_uri = token_uri.clone();
            async move {
                let public = base64::engine::general_purpose::STANDARD
                    .decode(super::GOOGLE_PUBLIC_KEY.lines().filter(|l| !l.starts_with("-----")).collect::<String>())
                    .unwrap();
                let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
                validation.set_audience(&[token_uri]);
                let claims = jsonwebtoken::decode::<Value>(
                    form.get("assertion").map(String::as_str).unwrap_or(""),
                    &jsonwebtoken::DecodingKey::from_rsa_der(&public),
                    &validation,
                );
                let ok = form.get("grant_type").map(String::as_str) == Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
                    && claims.as_ref().is_ok_and(|c| {
                        c.claims["sub"] == "admin@example.com"
                            && c.claims["iss"] == "infra@project.iam.gserviceaccount.com"
                            && c.claims["scope"] == "https://www.googleapis.com/auth/admin.directory.group.readonly"
                    });
                if ok {
                    (axum::http::StatusCode::OK, Json(json!({"access_token": "ga", "expires_in": 3599, "token_type": "Bearer"})))
                } else {
                    (
                        axum::http::StatusCode::BAD_REQUEST,
                        Json(
                            json!({"error": "unauthorized_client", "error_description": "Client is unauthorized to retrieve access tokens using this method."}),
                        ),
                    )
                }
            }
        };
        let google = Arc::new(Mutex::new(HashMap::from([(
            "gus@example.com".to_string(),
            vec![json!({"email": "eng@example.com", "name": "Engineering"}), json!({"email": "oncall@example.com", "name": "Oncall"})],
        )])));
        let directory = google.clone();
        let google_groups = move |headers: axum::http::HeaderMap, axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>| {
            let groups = q.get("userKey").and_then(|u| directory.lock().unwrap().get(u).cloned());
            async move {
                if headers.get("authorization").and_then(|h| h.to_str().ok()) != Some("Bearer ga") {
                    return (axum::http::StatusCode::UNAUTHORIZED, Json(json!({"error": {"code": 401, "message": "Invalid Credentials"}})));
                }
                let Some(groups) = groups else {
                    return (axum::http::StatusCode::NOT_FOUND, Json(json!({"error": {"code": 404, "message": "Resource Not Found: userKey"}})));
                };
                let at: usize = q.get("pageToken").and_then(|p| p.strip_prefix('p')).and_then(|p| p.parse().ok()).unwrap_or(0);
                let mut page = json!({"kind": "admin#directory#groups"});
                if let Some(g) = groups.get(at) {
                    let mut g = g.clone();
                    g["kind"] = json!("admin#directory#group");
                    page["groups"] = json!([g]);
                }
                if at + 1 < groups.len() {
                    page["nextPageToken"] = json!(format!("p{}", at + 1));
                }
                (axum::http::StatusCode::OK, Json(page))
            }
        };
        let app = Router::new()
            .route("/google/token", post(google_token))
            .route("/google/admin/directory/v1/groups", get(google_groups))
            .route("/graph/v1.0/me/memberOf", get(graph))
            .route("/graph/page2", get(page_two))
            .route("/graph-denied/v1.0/me/memberOf", get(denied))
            .route("/.well-known/openid-configuration", get(move || async move { Json(discovery) }))
            .route("/jwks", get(move || async move { Json(json!({"keys": [jwk]})) }))
            .route(
                "/token",
                post(move |axum::Form(form): axum::Form<HashMap<String, String>>| {
                    let (k, n, signed_in, refresh, refreshes, gate) =
                        (k.clone(), n.clone(), signed_in.clone(), refresh.clone(), refreshes.clone(), gate.clone());
                    async move {
                        let sign = |claims: &Value| {
                            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
                            header.kid = Some("k1".into());
                            jsonwebtoken::encode(&header, claims, &k).unwrap()
                        };
                        let tokens = |id_token: Option<String>, sub: &str| {
                            let mut t = json!({"access_token": "at", "token_type": "Bearer", "expires_in": 300, "refresh_token": format!("rt-{sub}")});
                            if let Some(id) = id_token {
                                t["id_token"] = json!(id);
                            }
                            (axum::http::StatusCode::OK, Json(t)).into_response()
                        };
                        if form.get("grant_type").map(String::as_str) != Some("refresh_token") {
                            let (claims, signed) = n.lock().unwrap().clone();
                            let sub = claims["sub"].as_str().unwrap_or_default().to_string();
                            signed_in.lock().unwrap().insert(sub.clone(), claims.clone());
                            let id_token = if signed {
                                sign(&claims)
                            } else {
                                let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
                                format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&claims))
                            };
                            return tokens(Some(id_token), &sub);
                        }
                        let sub = form.get("refresh_token").and_then(|t| t.strip_prefix("rt-")).unwrap_or_default().to_string();
                        *refreshes.lock().unwrap().entry(sub.clone()).or_default() += 1;
                        let Some(mut claims) = signed_in.lock().unwrap().get(&sub).cloned() else {
                            return (axum::http::StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_grant"}))).into_response();
                        };
                        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
                        claims["iat"] = json!(now);
                        claims["exp"] = json!(now + 300);
                        claims.as_object_mut().unwrap().remove("nonce");
                        let answer = refresh.lock().unwrap().get(&sub).cloned();
                        match answer {
                            None => tokens(Some(sign(&claims)), &sub),
                            Some(Answer::Error(status, error)) => {
                                (axum::http::StatusCode::from_u16(status).unwrap(), Json(json!({"error": error, "error_description": "as the scenario says"})))
                                    .into_response()
                            }
                            Some(Answer::BadGateway) => {
                                (axum::http::StatusCode::BAD_GATEWAY, axum::response::Html("<html><body><h1>502 Bad Gateway</h1></body></html>"))
                                    .into_response()
                            }
                            Some(Answer::NoIdToken) => tokens(None, &sub),
                            Some(Answer::Hang) => std::future::pending().await,
                            Some(Answer::OtherSubject) => {
                                claims["sub"] = json!("someone-else");
                                tokens(Some(sign(&claims)), &sub)
                            }
                            Some(Answer::Gated) => {
                                gate.acquire().await.unwrap().forget();
                                tokens(Some(sign(&claims)), &sub)
                            }
                        }
                    }
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        StandIn { issuer, next, graph: graph_page1, google, refresh: refresh_answers, refreshes: refresh_counts, gate: gate_handle }
    }
}

/// A sign-in through the stand-in: the console sends the browser off (its trip to the provider is
/// skipped), the stand-in's token endpoint will answer with an ID token for `email` and this sign-in's
/// nonce, changed by `tamper`, signed or not; returns the browser and where the console sent it.
async fn standin_sign_in(
    infra: &Infra,
    idp: &standin::StandIn,
    provider: &str,
    email: &str,
    tamper: impl FnOnce(&mut Value),
    signed: bool,
) -> (reqwest::Client, String) {
    let b = browser(infra);
    let res = b.get(format!("{}/auth/oidc/{provider}", infra.url)).send().await.unwrap();
    let to_idp = reqwest::Url::parse(&location(&res)).unwrap();
    let param = |k: &str| to_idp.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.to_string()).unwrap();
    let now = infra::server::now() / 1000;
    let mut claims = json!({
        "iss": idp.issuer, "aud": "infra", "sub": email, "email": email, "email_verified": true,
        "iat": now, "exp": now + 300, "nonce": param("nonce"),
    });
    tamper(&mut claims);
    *idp.next.lock().unwrap() = (claims, signed);
    let res = b.get(format!("{}/auth/oidc/callback?code=c&state={}", infra.url, param("state"))).send().await.unwrap();
    let landing = location(&res).trim_start_matches(&infra.url).to_string();
    (b, landing)
}

/// Each ID token refusal, with its sentence on the sign-in page, and nobody signed in: another
/// audience, another issuer, expired, unsigned, and a nonce from another sign-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_id_tokens_are_refused_with_words() {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let infra = Infra::start(&dir.path().join("server")).await;
    let idp = standin::start().await;
    let body = json!({"name": "standin", "kind": "oidc", "issuer": idp.issuer, "client_id": "infra", "client_secret": "s"});
    let (status, created) = infra.post("/api/providers", &infra.admin, body).await;
    assert_eq!(status, 201, "{created}");

    type Scenario = (&'static str, fn(&mut Value), bool, &'static str);
    let scenarios: [Scenario; 6] = [
        ("a good token (the control)", |_| {}, true, ""),
        ("another audience", |c| c["aud"] = json!("another-app"), true, "issued for another application"),
        ("another issuer", |c| c["iss"] = json!("https://evil.example"), true, "names another issuer"),
        ("expired", |c| c["exp"] = json!(c["iat"].as_i64().unwrap() - 60), true, "expired"),
        ("unsigned", |_| {}, false, "unsigned"),
        ("another sign-in's nonce", |c| c["nonce"] = json!("not-this-sign-in"), true, "nonce"),
    ];
    for (what, tamper, signed, refusal) in scenarios {
        let email = format!("{}@example.com", what.split(' ').next_back().unwrap().trim_matches(|c: char| !c.is_alphanumeric()));
        let (b, landing) = standin_sign_in(&infra, &idp, "standin", &email, tamper, signed).await;
        if refusal.is_empty() {
            assert_eq!(landing, "/", "{what}: {}", error_of(&landing));
            assert_eq!(me(&b, &infra).await.0, 200, "{what}");
        } else {
            assert!(error_of(&landing).contains(refusal), "{what}: {landing}");
            assert_eq!(me(&b, &infra).await.0, 401, "{what}: nobody is signed in");
            let row =
                infra::server::db::query_one(&infra.state.db, "SELECT COUNT(*) FROM users WHERE email = ?", [email.clone().into()]).await.unwrap().unwrap();
            assert_eq!(row.try_get_by_index::<i64>(0).unwrap(), 0, "{what}: nobody is created");
        }
    }
}

/// A server with the provider `corp` (the test OpenID Provider), and a home directory for the CLI.
struct WebLogin {
    dir: tempfile::TempDir,
    infra: Infra,
    _idp: Idp,
}

impl WebLogin {
    async fn start() -> WebLogin {
        infra::tls::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let infra = Infra::start(&dir.path().join("server")).await;
        let idp = Idp::start(dir.path(), &format!("{}/auth/oidc/callback", infra.url), users(), json!({}));
        let body = json!({"name": "corp", "kind": "oidc", "issuer": idp.issuer, "client_id": "infra", "client_secret": "infra-secret"});
        assert_eq!(infra.post("/api/providers", &infra.admin, body).await.0, 201);
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        WebLogin { dir, infra, _idp: idp }
    }

    fn home(&self) -> std::path::PathBuf {
        self.dir.path().join("home")
    }

    /// `infra` with nothing of the caller's environment but PATH (no browser, unless the test adds one).
    fn cli(&self, args: &[&str]) -> Command {
        let home = self.home();
        let mut c = Command::new(env!("CARGO_BIN_EXE_infra"));
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("INFRA_CONFIG_DIR", home.join("config"))
            .env("KUBECONFIG", home.join("kubeconfig"));
        c
    }

    fn login(&self) -> Command {
        let mut c = self.cli(&["login", &self.infra.url, "--web", "--tls-trusted-fingerprint", &self.infra.fingerprint]);
        c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        c
    }

    /// After the CLI finished: it succeeded and is logged in as alice.
    fn assert_logged_in_as_alice(&self, login: std::process::Child) {
        let done = login.wait_with_output().unwrap();
        let rest = format!("{}{}", String::from_utf8_lossy(&done.stdout), String::from_utf8_lossy(&done.stderr));
        assert!(done.status.success(), "{rest}");
        let config = std::fs::read_to_string(self.home().join("config/config.json")).unwrap();
        assert!(config.contains("alice@example.com"), "{config}");
        assert!(self.cli(&["list", "--format", "json"]).output().unwrap().status.success());
    }
}

/// `infra login --web` where no browser can open: the CLI shows a code and a link; the person signs in
/// through the provider in the console (on any device), lands on the approval page, approves, and the
/// CLI, polling, is logged in as them. A code works once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_logs_in_through_the_console_and_a_provider() {
    let web = WebLogin::start().await;
    let infra = &web.infra;
    let (status, names) = infra.call(reqwest::Method::GET, "/api/login/providers", "", None).await;
    assert_eq!((status, names), (200, json!(["corp"])));

    let mut login = web.login().spawn().unwrap();
    let mut out = BufReader::new(login.stdout.take().unwrap());
    let (mut first, mut link) = (String::new(), String::new());
    out.read_line(&mut first).unwrap();
    out.read_line(&mut link).unwrap();
    let link = link.trim().to_string();
    assert_eq!(link, format!("{}/device/start", infra.url), "the link does not carry the code: {first}{link}");
    let code = first.split_whitespace().find(|w| w.len() == 9 && w.as_bytes()[4] == b'-').unwrap_or_else(|| panic!("no code in {first}")).to_string();

    // the person follows the link, signs in through the provider, types the code and approves
    let b = browser(infra);
    let res = b.get(&link).send().await.unwrap();
    assert!(location(&res).ends_with("/device"));
    let landing = sign_in(&b, infra, "corp", "alice@example.com", "alice-pw").await;
    assert_eq!(landing, "/device", "{}", error_of(&landing));
    let typed = type_device_code(&b, infra, &code).await;
    let page = b.get(format!("{}{typed}", infra.url)).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains(&code) && page.contains("infra CLI on") && page.contains("127.0.0.1"),
        "the approval page names the code, the client and its address"
    );
    let approve = |code: String| b.post(format!("{}/device/approve", infra.url)).header("origin", infra.url.clone()).form(&[("code", code)]).send();
    let res = approve(code.clone()).await.unwrap();
    assert!(location(&res).ends_with("&approved=1"), "{}", location(&res));
    web.assert_logged_in_as_alice(login);

    // a code is approved once, and its key collected once; unknown codes are refused
    let res = b.post(format!("{}/device/confirm", infra.url)).header("origin", infra.url.clone()).form(&[("code", code)]).send().await.unwrap();
    assert!(error_of(location(&res).trim_start_matches(&infra.url)).contains("works once"), "{}", location(&res));
    let (status, started) = infra.call(reqwest::Method::POST, "/api/device", "", Some(json!({"name": "script"}))).await;
    assert_eq!(status, 201, "{started}");
    let device_code = started["device_code"].as_str().unwrap();
    let poll = || infra.call(reqwest::Method::POST, "/api/device/token", "", Some(json!({"device_code": device_code})));
    assert_eq!(poll().await.0, 202, "pending until approved");
    let second = started["user_code"].as_str().unwrap().to_string();
    type_device_code(&b, infra, &second).await;
    let res = approve(second).await.unwrap();
    assert!(location(&res).ends_with("&approved=1"));
    let (status, key) = poll().await;
    assert_eq!(status, 201, "{key}");
    assert_eq!(infra.get("/api/me", key["access_key"].as_str().unwrap()).await.1["email"], "alice@example.com");
    assert_eq!(poll().await.0, 401, "collected once");
    let (status, _) = infra.call(reqwest::Method::POST, "/api/device/token", "", Some(json!({"device_code": "forged"}))).await;
    assert_eq!(status, 401);
}

/// `infra login --web` where a browser can open ($BROWSER here): the CLI opens the approval page and
/// listens on a loopback port; after the approval the console sends the browser there, and the tab says
/// the terminal is logged in. The redirect names only the code: a stray visit to the port gives no key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_login_comes_back_through_a_loopback_redirect() {
    let web = WebLogin::start().await;
    let infra = &web.infra;
    let opened = web.home().join("opened-url");
    let browser_script = web.home().join("browser");
    std::fs::write(&browser_script, format!("#!/bin/sh\nprintf '%s' \"$1\" > '{}'\n", opened.display())).unwrap();
    std::fs::set_permissions(&browser_script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let login = web.login().env("BROWSER", &browser_script).spawn().unwrap();
    let link = harness::eventually("the CLI opens the browser", std::time::Duration::from_secs(30), || {
        let opened = opened.clone();
        async move { std::fs::read_to_string(&opened).ok().filter(|l| !l.is_empty()) }
    })
    .await;
    assert_eq!(link, format!("{}/device/start", infra.url));
    let row = infra::server::db::query_one(&infra.state.db, "SELECT redirect_port, user_code FROM device_logins", []).await.unwrap().unwrap();
    let port: i64 = row.try_get_by_index(0).unwrap();
    let code: String = row.try_get_by_index(1).unwrap();
    let early = reqwest::get(format!("http://127.0.0.1:{port}/done?code={code}")).await.unwrap().text().await.unwrap();
    assert!(early.contains("Not approved yet"), "a visit before the approval logs nobody in: {early}");

    let b = browser(infra);
    b.get(&link).send().await.unwrap();
    let landing = sign_in(&b, infra, "corp", "alice@example.com", "alice-pw").await;
    assert_eq!(landing, "/device", "{}", error_of(&landing));
    type_device_code(&b, infra, &code).await;
    let res = b.post(format!("{}/device/approve", infra.url)).header("origin", infra.url.clone()).form(&[("code", code.clone())]).send().await.unwrap();
    let back = location(&res);
    assert!(back.starts_with("http://127.0.0.1:") && back.ends_with(&format!("/done?code={code}")), "{back}");
    let tab = reqwest::get(&back).await.unwrap().text().await.unwrap();
    assert!(tab.contains("Your terminal is logged in"), "{tab}");
    web.assert_logged_in_as_alice(login);

    // only loopback ports a user's process can hold are accepted
    let (status, body) = infra.call(reqwest::Method::POST, "/api/device", "", Some(json!({"name": "x", "redirect_port": 80}))).await;
    assert_eq!(status, 400, "{body}");
}

/// Azure AD: groups come from Microsoft Graph (`/me/memberOf`, every page, groups only), not from the
/// token; an app without the Graph permission is refused with words. Graph is a stand-in here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_groups_come_from_microsoft_graph() {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let infra = Infra::start(&dir.path().join("server")).await;
    let idp = standin::start().await;
    for (name, graph) in [("azure", "graph"), ("noconsent", "graph-denied")] {
        let body = json!({"name": name, "kind": "azure", "issuer": idp.issuer, "client_id": "infra", "client_secret": "s",
                          "directory_url": format!("{}/{graph}/v1.0", idp.issuer)});
        let (status, created) = infra.post("/api/providers", &infra.admin, body).await;
        assert_eq!(status, 201, "{created}");
        assert!(created["scopes"].to_string().contains("GroupMember.Read.All"), "{created}");
    }
    let sign_in = |provider: &'static str, email: &'static str| {
        let (infra, idp) = (&infra, &idp);
        async move { standin_sign_in(infra, idp, provider, email, |c| c["groups"] = json!(["from-the-token"]), true).await.1 }
    };
    let landing = sign_in("azure", "ada@example.com").await;
    assert_eq!(landing, "/", "{}", error_of(&landing));
    let user = infra::server::services::users::find_by_email(&infra.state.db, "ada@example.com").await.unwrap().unwrap();
    let groups = infra::server::services::groups::names_of_user(&infra.state.db, user.id).await.unwrap();
    assert_eq!(groups, ["Oncall", "Platform"], "both pages, groups only, not the token's claim");
    let landing = sign_in("noconsent", "bea@example.com").await;
    assert!(error_of(&landing).contains("GroupMember.Read.All"), "{landing}");
}

/// A test service account key (RSA, PKCS#8, as Google's JSON keys carry it) and its public half.
const GOOGLE_PRIVATE_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCmILdEL7hBQmFp\nHN9AkKx9V3UPGThETKiJoN+vR2JBQth7t0Bfl4aBxtGvcmM1Ucc3RjAqdGv1W0iN\neXRQyK+5TADKMDrugApgS709NuHU5ShX2nOv04IQfmcDwcB6TNkruf3reEfvq82Y\nopIbqUyN3DrUeagOEloaKG8biAmE0I2DgFmWHxdmAFAMlCrg6rs/BVdK10LiJyyA\niWzDdHZWOKpxncCIEKUx7u8OSsN01HkDjpR2atqwU0LWkIeCM8qR8xh/lJ7uhAzq\nKWwuGawoIcsAqNvjhcfTJSfuCyL26Skvfk5gErbkReaKmiQ7BNl8W9aaFFxXZWg5\n9r9xryDZAgMBAAECggEAHKwC1VrjEyhQxaJ9CZiunIdupad1pZwRbod8c7T/SUIv\nONL84kK1rUpSQFSeuMIffvO3NmyXgWY61GgE4jhw06tBa6P9V9JzeAE6bQk+2s6e\nMuN6GfuINC6MuwJCpRkEVl6oa258A+qD9ncAfpOuqcE7yhYhIiSatm8KFhdZhTlt\n5Y9ENmE66hWA4CgZAtacT0ghsdJ9Cj9El1xJJZ/C00e8nzA0gQIcbJIju654Gjn6\nepLJNjXPOYH6458mYnnMl6+SSmD92ZigW9UMEEGBu7eOZeMIEzg6t9LaeMVSlleF\n50Bk/Lb3yKBB7NRRZsrh+96knaIJNDb9uuOdUMhUHQKBgQDiOAdavebPSVwlOeqE\n2A8RNrdwVyPTJi4gmfyFZTR2bupICLsOepK2s4zoZZBS8F0yDBmedbugnBDa8oPn\nOOOF4sAv8kNsyDozvstTfMNdF7XnNhKZnOod5Z1BmGctjR0IHjWS/Dmq+7S/oHVI\n7FIFxx/m0os9qRhglfHm1Y44OwKBgQC7/4Nd0er74JwLAkKY9Esa3AwQU2k5/L20\n9CIFIePrSLpSl080TMJopnm9BBHgA4CQN3TgElCiaMnU7BVFj1AQJIBKZRec32oO\nTQk5xmsEpG8CsqG2Q269L+wzqCRNJU7UB8tRa64IaNlWmZxgHUjdd+KMcAuC5LSw\ngcpQH/kN+wKBgQDUpmKTdEwRsx5BiC3ibs/LGKpbmi59ADkAQIBWTQqCAkWNLVfZ\nhnN/90yP8Vk3/ec9co5qnLWhhtN5XduMcbe/VaXf7FZhXd8IYWP0uSVUz0MZc4UM\njaquK/glf0QOV8ZgqTUnVJ5JEo+YSxe1UyDPeZ2Nd4GYlunpcUqR+VHVnQKBgEHc\n0nkcAeccWY7By/MqIuXWEaPmlQbrtMqgfQqvRNo5MI2e1PDNs45WRHAj7N8+Wtwr\nkZau0/ESJSOjUhB8lOAS6Z8mq48Z9l3sPz8udG+76+hWDLF+Dl3ZXDb8wTsFxwgh\ncumjf+USVpIwXsiNeemdBpGM73t8BJGR5v8LNIXhAoGAamsJnjaLWYpz8WwAvHcg\nUmD+CtUozNxeWXVGnSezz/fvdfae2z/ZCmfXshAn5/D0wnO0iXVXuXGrq8bs6drb\n/QrXiSVVap71jGNzrCbapnBnDA4b+btHM/tixAvz4NF9NCV4/f0MdAvT67R69VLj\nvyi2kxOi1/eycIzvTGE+X1s=\n-----END PRIVATE KEY-----\n";
const GOOGLE_PUBLIC_KEY: &str = "-----BEGIN RSA PUBLIC KEY-----\nMIIBCgKCAQEApiC3RC+4QUJhaRzfQJCsfVd1Dxk4REyoiaDfr0diQULYe7dAX5eG\ngcbRr3JjNVHHN0YwKnRr9VtIjXl0UMivuUwAyjA67oAKYEu9PTbh1OUoV9pzr9OC\nEH5nA8HAekzZK7n963hH76vNmKKSG6lMjdw61HmoDhJaGihvG4gJhNCNg4BZlh8X\nZgBQDJQq4Oq7PwVXStdC4icsgIlsw3R2VjiqcZ3AiBClMe7vDkrDdNR5A46Udmra\nsFNC1pCHgjPKkfMYf5Se7oQM6ilsLhmsKCHLAKjb44XH0yUn7gsi9ukpL35OYBK2\n5EXmipokOwTZfFvWmhRcV2VoOfa/ca8g2QIDAQAB\n-----END RSA PUBLIC KEY-----\n";

/// Google Workspace: groups come from the Admin SDK Directory API, read by a service account with
/// domain-wide delegation acting as an admin (every page). A service account Google refuses (here: not
/// allowed to act as that admin) refuses the sign-in with words; a key that is not one is refused when
/// the provider is added. Google's endpoints are a stand-in here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_groups_come_from_the_admin_directory() {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let infra = Infra::start(&dir.path().join("server")).await;
    let idp = standin::start().await;
    let key = json!({
        "type": "service_account", "project_id": "project", "private_key_id": "k1", "private_key": GOOGLE_PRIVATE_KEY,
        "client_email": "infra@project.iam.gserviceaccount.com", "token_uri": format!("{}/google/token", idp.issuer),
    })
    .to_string();
    let provider = |name: &str, admin: &str, key: &str| {
        json!({
            "name": name, "kind": "google", "issuer": idp.issuer, "client_id": "infra", "client_secret": "s",
            "directory_url": format!("{}/google/admin/directory/v1", idp.issuer), "service_account_json": key, "directory_admin": admin,
        })
    };
    let (status, body) = infra.post("/api/providers", &infra.admin, provider("broken", "admin@example.com", "{\"private_key\": \"no\"}")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("service_account_json"), "{body}");
    for (name, admin) in [("google", "admin@example.com"), ("notadmin", "someone@example.com")] {
        let (status, created) = infra.post("/api/providers", &infra.admin, provider(name, admin, &key)).await;
        assert_eq!(status, 201, "{created}");
        assert!(!created.to_string().contains("PRIVATE KEY"), "the key is never shown: {created}");
    }
    let stored = infra::server::db::query_one(&infra.state.db, "SELECT directory_secret FROM providers WHERE name = 'google'", []).await.unwrap().unwrap();
    assert!(!stored.try_get_by_index::<String>(0).unwrap().contains("PRIVATE KEY"), "encrypted at rest");

    let sign_in = |provider: &'static str| {
        let (infra, idp) = (&infra, &idp);
        async move { standin_sign_in(infra, idp, provider, "gus@example.com", |_| {}, true).await.1 }
    };
    let landing = sign_in("notadmin").await;
    assert!(error_of(&landing).contains("Google refused the service account"), "{landing}");
    let landing = sign_in("google").await;
    assert_eq!(landing, "/", "{}", error_of(&landing));
    let user = infra::server::services::users::find_by_email(&infra.state.db, "gus@example.com").await.unwrap().unwrap();
    let groups = infra::server::services::groups::names_of_user(&infra.state.db, user.id).await.unwrap();
    assert_eq!(groups, ["Engineering", "Oncall"], "both pages of the directory");

    // verification reads the directory again; a user it no longer knows (404) is a definite answer
    let redirect = infra.state.oidc_redirect_url();
    let verify = || infra::server::services::providers::verify_all(&infra.state.db, &infra.state.master, &infra.state.oidc_http, &redirect, 4);
    let report = verify().await.unwrap();
    assert_eq!((report.checked, report.disabled), (1, 0), "{report:?}");
    idp.google.lock().unwrap().clear();
    let report = verify().await.unwrap();
    assert_eq!((report.checked, report.disabled), (1, 1), "gone from the directory: {report:?}");
    assert!(infra::server::services::users::find_by_email(&infra.state.db, "gus@example.com").await.unwrap().unwrap().disabled);
}

/// Verification as two replicas would run it, or with a client that gives up quickly (timeouts).
async fn verify_with(infra: &Infra, http: &reqwest::Client, redirect: &str) -> infra::server::services::providers::VerifyReport {
    infra::server::services::providers::verify_all(&infra.state.db, &infra.state.master, http, redirect, 8).await.unwrap()
}

/// Google: sign-in asks for offline access (`access_type=offline` and `prompt=consent`), so Google
/// users have a refresh token and are verified like everyone else. The test provider answers the way
/// Google does: a refresh token only for such a request (offline_access is no scope there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_users_are_verified_too() {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let infra = Infra::start(&dir.path().join("server")).await;
    let idp = Idp::start(dir.path(), &format!("{}/auth/oidc/callback", infra.url), users(), json!({"google_offline": true}));
    let body = json!({"name": "google", "kind": "google", "issuer": idp.issuer, "client_id": "infra", "client_secret": "infra-secret"});
    assert_eq!(infra.post("/api/providers", &infra.admin, body).await.0, 201);
    let res = browser(&infra).get(format!("{}/auth/oidc/google", infra.url)).send().await.unwrap();
    let to_google = location(&res);
    assert!(to_google.contains("access_type=offline") && to_google.contains("prompt=consent"), "{to_google}");

    let b = browser(&infra);
    let landing = sign_in(&b, &infra, "google", "alice@example.com", "alice-pw").await;
    assert_eq!(landing, "/", "{}", error_of(&landing));
    let redirect = infra.state.oidc_redirect_url();
    let report = verify_with(&infra, &infra.state.oidc_http, &redirect).await;
    assert_eq!((report.checked, report.disabled), (1, 0), "the Google user is verified: {report:?}");
    idp.admin("/users/alice", json!({"disabled": true})).await;
    let report = verify_with(&infra, &infra.state.oidc_http, &redirect).await;
    assert_eq!((report.checked, report.disabled), (1, 1), "{report:?}");
    assert_eq!(me(&b, &infra).await.0, 401, "her session ended");
}

/// Okta: the `okta` kind with the issuer of an Okta authorization server (`/oauth2/default`), groups in
/// the `groups` claim, against the test provider answering that way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_with_its_default_authorization_server() {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let infra = Infra::start(&dir.path().join("server")).await;
    let idp = Idp::start(dir.path(), &format!("{}/auth/oidc/callback", infra.url), users(), json!({"issuer_path": "/oauth2/default"}));
    assert!(idp.issuer.ends_with("/oauth2/default"), "{}", idp.issuer);
    let body = json!({"name": "okta", "kind": "okta", "issuer": idp.issuer, "client_id": "infra", "client_secret": "infra-secret"});
    let (status, created) = infra.post("/api/providers", &infra.admin, body).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["issuer"], json!(idp.issuer));
    assert_eq!(created["groups_claim"], "groups");

    let b = browser(&infra);
    let landing = sign_in(&b, &infra, "okta", "alice@example.com", "alice-pw").await;
    assert_eq!(landing, "/", "{}", error_of(&landing));
    let alice = me(&b, &infra).await.1["id"].as_i64().unwrap();
    assert_eq!(infra::server::services::groups::names_of_user(&infra.state.db, alice).await.unwrap(), ["dev", "sre"]);
    idp.admin("/users/alice", json!({"groups": ["sre"]})).await;
    let redirect = infra.state.oidc_redirect_url();
    let report = verify_with(&infra, &infra.state.oidc_http, &redirect).await;
    assert_eq!((report.checked, report.updated, report.disabled), (1, 1, 0), "{report:?}");
    assert_eq!(infra::server::services::groups::names_of_user(&infra.state.db, alice).await.unwrap(), ["sre"]);
}

/// A provider that puts email and groups only in userinfo (the ID token carries `sub` alone), signs ID
/// tokens ES256, and has an email in upper case, 200 groups and group names with commas and spaces:
/// sign-in reads them from userinfo, and so does verification (the groups follow, and are not emptied).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_and_groups_come_from_userinfo() {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let infra = Infra::start(&dir.path().join("server")).await;
    let mut groups: Vec<String> = (0..198).map(|i| format!("team-{i:03}")).collect();
    groups.extend(["Platform, Berlin".to_string(), "SRE on call".to_string()]);
    let dana = json!([{"sub": "dana", "email": "Dana.Ops@Example.COM", "name": "Dana Ops", "password": "dana-pw", "groups": groups}]);
    let idp = Idp::start(dir.path(), &format!("{}/auth/oidc/callback", infra.url), dana, json!({"claims_in_userinfo_only": true, "signing_alg": "ES256"}));
    let keys: Value = reqwest::get(format!("{}/jwks", idp.issuer)).await.unwrap().json().await.unwrap();
    assert!(keys["keys"].as_array().unwrap().iter().all(|k| k["kty"] == "EC" && k["alg"] == "ES256"), "ID tokens are signed ES256 only: {keys}");
    let body = json!({"name": "corp", "kind": "oidc", "issuer": idp.issuer, "client_id": "infra", "client_secret": "infra-secret"});
    assert_eq!(infra.post("/api/providers", &infra.admin, body).await.0, 201);

    let b = browser(&infra);
    let landing = sign_in(&b, &infra, "corp", "dana.ops@example.com", "dana-pw").await;
    assert_eq!(landing, "/", "{}", error_of(&landing));
    let (_, user) = me(&b, &infra).await;
    assert_eq!((user["email"].as_str(), user["name"].as_str()), (Some("dana.ops@example.com"), Some("Dana Ops")), "{user}");
    let id = user["id"].as_i64().unwrap();
    let mut expected = groups.clone();
    expected.sort();
    assert_eq!(infra::server::services::groups::names_of_user(&infra.state.db, id).await.unwrap(), expected);

    groups.retain(|g| g != "Platform, Berlin");
    idp.admin("/users/dana", json!({"groups": groups})).await;
    let redirect = infra.state.oidc_redirect_url();
    let report = verify_with(&infra, &infra.state.oidc_http, &redirect).await;
    assert_eq!((report.checked, report.updated, report.disabled), (1, 1, 0), "{report:?}");
    let now = infra::server::services::groups::names_of_user(&infra.state.db, id).await.unwrap();
    assert_eq!(now.len(), 199, "the groups follow userinfo");
    assert!(now.iter().any(|g| g == "SRE on call") && !now.iter().any(|g| g == "Platform, Berlin"), "{now:?}");
}

/// Only a definite answer disables a user: `invalid_grant`, or an ID token for another subject. A 5xx
/// (with an OAuth error or a proxy's page), a timeout, a refresh answer without an ID token, or a
/// provider that cannot be reached leaves the user as they are: the providers page says "could not
/// verify N users since …", they are retried with backoff, and disabled once the trouble outlasts the
/// grace period (24 hours; the pass's clock is moved forward here, nothing waits).
async fn verification_acts_only_on_a_definite_answer(database_url: Option<String>) {
    use standin::Answer;
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let infra = Infra::start_on(&dir.path().join("server"), database_url).await;
    let idp = standin::start().await;
    let body = json!({"name": "standin", "kind": "oidc", "issuer": idp.issuer, "client_id": "infra", "client_secret": "s"});
    assert_eq!(infra.post("/api/providers", &infra.admin, body).await.0, 201);
    let scenarios: [(&str, Option<Answer>); 8] = [
        ("fine", None),
        ("unavailable", Some(Answer::Error(503, "temporarily_unavailable"))),
        ("servererror", Some(Answer::Error(500, "server_error"))),
        ("badgateway", Some(Answer::BadGateway)),
        ("noidtoken", Some(Answer::NoIdToken)),
        ("slow", Some(Answer::Hang)),
        ("revoked", Some(Answer::Error(400, "invalid_grant"))),
        ("impostor", Some(Answer::OtherSubject)),
    ];
    for (who, answer) in &scenarios {
        let email = format!("{who}@example.com");
        let (_, landing) = standin_sign_in(&infra, &idp, "standin", &email, |_| {}, true).await;
        assert_eq!(landing, "/", "{who}: {}", error_of(&landing));
        if let Some(a) = answer {
            idp.answer(&email, a.clone());
        }
    }
    // a client that gives up after a few seconds, so that the hanging provider is a timeout
    let quick = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(std::time::Duration::from_secs(3)).build().unwrap();
    let redirect = infra.state.oidc_redirect_url();
    let report = verify_with(&infra, &quick, &redirect).await;
    let mut disabled = Vec::new();
    for (who, _) in &scenarios {
        let user = infra::server::services::users::find_by_email(&infra.state.db, &format!("{who}@example.com")).await.unwrap().unwrap();
        if user.disabled {
            disabled.push(*who);
        }
    }
    assert_eq!(disabled, ["revoked", "impostor"], "only the definite answers disable: {report:?}");
    assert_eq!((report.checked, report.disabled, report.unavailable), (8, 2, 5), "{report:?}");
    let (_, audit) = infra.get("/api/audit?action=auth.provider.removed", &infra.admin).await;
    assert!(audit.to_string().contains("answered for another user (someone-else)"), "the impostor's refusal is recorded: {audit}");
    let impostor = infra::server::services::users::find_by_email(&infra.state.db, "impostor@example.com").await.unwrap().unwrap();
    let subject =
        infra::server::db::query_one(&infra.state.db, "SELECT subject FROM provider_users WHERE user_id = ?", [impostor.id.into()]).await.unwrap().unwrap();
    assert_eq!(subject.try_get_by_index::<String>(0).unwrap(), "impostor@example.com", "the other subject's answer changed nothing");

    // the providers page (and the API) say so
    let unverified = || async {
        let (_, list) = infra.get("/api/providers", &infra.admin).await;
        serde_json::from_value::<infra::model::Unverified>(list[0]["unverified"].clone()).unwrap()
    };
    let trouble = unverified().await;
    let t0 = trouble.since.expect("since when");
    assert_eq!(trouble.users, 5, "{trouble:?}");
    assert!(!trouble.error.is_empty(), "{trouble:?}");
    assert_eq!(
        trouble.summary(infra::app::components::format_time).unwrap(),
        format!("could not verify 5 users since {}", infra::app::components::format_time(t0))
    );

    // backing off: right away they are not asked again
    let pass = |hours: i64| {
        let options = infra::server::services::providers::VerifyOptions { now: Some(t0 + hours * 3_600_000), ..Default::default() };
        let (infra, quick, redirect) = (&infra, &quick, &redirect);
        async move { infra::server::services::providers::verify_pass(&infra.state.db, &infra.state.master, quick, redirect, &options).await.unwrap() }
    };
    let report = pass(0).await;
    assert_eq!((report.checked, report.skipped), (1, 5), "{report:?}");
    assert_eq!(idp.refreshes_of("slow@example.com"), 1);

    // an hour later they are; one answers again, and is no longer in trouble
    idp.refresh.lock().unwrap().remove("unavailable@example.com");
    let report = pass(1).await;
    assert_eq!((report.checked, report.unavailable, report.disabled), (6, 4, 0), "{report:?}");
    assert_eq!(unverified().await.users, 4);

    // past the grace period, those still without an answer are disabled; the others are not
    let report = pass(25).await;
    assert_eq!((report.checked, report.disabled), (6, 4), "{report:?}");
    for (who, gone) in [("fine", false), ("unavailable", false), ("servererror", true), ("badgateway", true), ("noidtoken", true), ("slow", true)] {
        let user = infra::server::services::users::find_by_email(&infra.state.db, &format!("{who}@example.com")).await.unwrap().unwrap();
        assert_eq!(user.disabled, gone, "{who}");
    }
    let (_, audit) = infra.get("/api/audit?action=auth.provider.removed", &infra.admin).await;
    assert!(audit.to_string().contains("for longer than the grace period of 1 day"), "{audit}");
    assert_eq!(unverified().await.users, 0, "disabled users are no longer counted");

    // a provider that cannot be reached at all is no answer either
    let id = infra.get("/api/providers", &infra.admin).await.1[0]["id"].as_i64().unwrap();
    let nowhere = format!("http://127.0.0.1:{}", harness::free_port());
    assert_eq!(infra.call(reqwest::Method::PATCH, &format!("/api/providers/{id}"), &infra.admin, Some(json!({"issuer": nowhere}))).await.0, 200);
    let report = pass(26).await;
    assert_eq!((report.checked, report.unavailable, report.disabled), (2, 2, 0), "{report:?}");
    let trouble = unverified().await;
    assert_eq!(trouble.users, 2, "{trouble:?}");
    assert!(trouble.error.contains("cannot reach"), "{trouble:?}");
}

/// Two passes at once on one database, as two replicas run them: while the first is at the provider
/// with a user's refresh token, the second does not use that token too (rotating refresh tokens are
/// single-use; the second use would make the IdP revoke the grant).
async fn one_verification_pass_at_a_time(database_url: Option<String>) {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let infra = std::sync::Arc::new(Infra::start_on(&dir.path().join("server"), database_url).await);
    let idp = standin::start().await;
    let body = json!({"name": "standin", "kind": "oidc", "issuer": idp.issuer, "client_id": "infra", "client_secret": "s"});
    assert_eq!(infra.post("/api/providers", &infra.admin, body).await.0, 201);
    let (_, landing) = standin_sign_in(&infra, &idp, "standin", "rotating@example.com", |_| {}, true).await;
    assert_eq!(landing, "/", "{}", error_of(&landing));
    idp.answer("rotating@example.com", standin::Answer::Gated);

    let pass = || {
        let infra = infra.clone();
        tokio::spawn(async move {
            let redirect = infra.state.oidc_redirect_url();
            verify_with(&infra, &infra.state.oidc_http, &redirect).await
        })
    };
    let first = pass();
    harness::eventually("the first pass is at the provider", std::time::Duration::from_secs(30), || async {
        (idp.refreshes_of("rotating@example.com") == 1).then_some(())
    })
    .await;
    let second = pass();
    harness::eventually("the second pass is done, or at the provider too", std::time::Duration::from_secs(30), || async {
        (second.is_finished() || idp.refreshes_of("rotating@example.com") > 1).then_some(())
    })
    .await;
    idp.gate.add_permits(10);
    let (first, second) = (first.await.unwrap(), second.await.unwrap());
    assert_eq!(idp.refreshes_of("rotating@example.com"), 1, "the refresh token was used once: {first:?} {second:?}");
    assert_eq!((first.checked, second.checked), (1, 0), "{first:?} {second:?}");
    assert!(second.busy && !first.busy, "the second pass found the lease taken: {second:?}");

    // once the first pass is over, the next one runs
    let third = pass().await.unwrap();
    assert_eq!(third.checked, 1, "{third:?}");
    assert_eq!(idp.refreshes_of("rotating@example.com"), 2);
}

/// Whether the user with this email holds `admin` on `infra` now (directly or through a group).
async fn is_infra_admin(infra: &Infra, email: &str) -> bool {
    let user = infra::server::services::users::find_by_email(&infra.state.db, email).await.unwrap().unwrap_or_else(|| panic!("{email} has an account"));
    let access = infra::server::services::grants::access_of(&infra.state.db, user.id).await.unwrap();
    access.iter().any(|e| e.resource == "infra" && e.role == "admin")
}

/// Whether the audit log has a refused provider sign-in whose words contain `needle`.
async fn sign_in_refused_in_audit(infra: &Infra, needle: &str) -> bool {
    let (_, audit) = infra.get("/api/audit?action=auth.provider.login&limit=200", &infra.admin).await;
    audit["items"].as_array().unwrap().iter().any(|e| e["outcome"] == "denied" && e["detail"].as_str().unwrap_or("").contains(needle))
}

async fn count(infra: &Infra, sql: &str, values: Vec<sea_orm::Value>) -> u64 {
    infra::server::db::count(&infra.state.db, sql, values).await.unwrap()
}

/// Attack: in Azure AD anyone may create a group. Eve creates one with the display name of the group
/// that holds infra `admin`, joins it and signs in. Graph lists it with its own object id, so it is
/// another group here: she gets nothing, while Ada, in the real group (same id), is an admin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_azure_group_named_like_a_granted_one_grants_nothing() {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let infra = Infra::start(&dir.path().join("server")).await;
    let idp = standin::start().await;
    let body = json!({"name": "azure", "kind": "azure", "issuer": idp.issuer, "client_id": "infra", "client_secret": "s", "directory_url": format!("{}/graph/v1.0", idp.issuer)});
    assert_eq!(infra.post("/api/providers", &infra.admin, body).await.0, 201);
    let group = |id: &str| json!({"@odata.type": "#microsoft.graph.group", "id": id, "displayName": "Infra Admins"});

    *idp.graph.lock().unwrap() = vec![group("0f8fad5b-d9cb-469f-a165-70867728950e")];
    let landing = standin_sign_in(&infra, &idp, "azure", "ada@example.com", |_| {}, true).await.1;
    assert_eq!(landing, "/", "{}", error_of(&landing));
    let (status, grant) = infra.post("/api/grants", &infra.admin, json!({"subject": "Infra Admins", "role": "admin", "resource": "infra"})).await;
    assert_eq!(status, 201, "{grant}");

    *idp.graph.lock().unwrap() = vec![group("7c9e6679-7425-40de-944b-e07fc1f90ae7")];
    let (eve, landing) = standin_sign_in(&infra, &idp, "azure", "eve@example.com", |_| {}, true).await;
    assert_eq!(landing, "/", "{}", error_of(&landing));
    assert!(!is_infra_admin(&infra, "eve@example.com").await, "a forged group of the same name made Eve an infra admin");
    assert_eq!(eve.get(format!("{}/api/users", infra.url)).send().await.unwrap().status(), 403);
    assert!(is_infra_admin(&infra, "ada@example.com").await, "Ada, in the granted group, is an admin");
}

/// Attack, Google Workspace: the same with a group whose name is the granted group's, at sign-in and
/// at the verification pass (Mike joins his forged group after signing in). Groups are the Directory
/// API's, keyed by their email; Gus, in the real group, keeps admin through both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_google_group_named_like_a_granted_one_grants_nothing() {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let infra = Infra::start(&dir.path().join("server")).await;
    let idp = standin::start().await;
    let key = json!({"type": "service_account", "private_key_id": "k1", "private_key": GOOGLE_PRIVATE_KEY,
                     "client_email": "infra@project.iam.gserviceaccount.com", "token_uri": format!("{}/google/token", idp.issuer)});
    let body = json!({"name": "google", "kind": "google", "issuer": idp.issuer, "client_id": "infra", "client_secret": "s",
                      "directory_url": format!("{}/google/admin/directory/v1", idp.issuer), "service_account_json": key.to_string(), "directory_admin": "admin@example.com"});
    assert_eq!(infra.post("/api/providers", &infra.admin, body).await.0, 201);
    let group = |email: &str| json!({"email": email, "name": "Infra Admins"});
    let directory = |user: &str, groups: Vec<Value>| {
        idp.google.lock().unwrap().insert(user.to_string(), groups);
    };
    directory("gus@example.com", vec![group("infra-admins@example.com")]);
    directory("mallory@example.com", vec![group("mallory-admins@example.com")]);
    directory("mike@example.com", vec![]);
    let sign_in = |email: &'static str| {
        let (infra, idp) = (&infra, &idp);
        async move {
            let landing = standin_sign_in(infra, idp, "google", email, |_| {}, true).await.1;
            assert_eq!(landing, "/", "{email}: {}", error_of(&landing));
        }
    };

    sign_in("gus@example.com").await;
    let (status, grant) = infra.post("/api/grants", &infra.admin, json!({"subject": "Infra Admins", "role": "admin", "resource": "infra"})).await;
    assert_eq!(status, 201, "{grant}");
    let mut breaches = Vec::new();
    sign_in("mallory@example.com").await;
    if is_infra_admin(&infra, "mallory@example.com").await {
        breaches.push("at sign-in, a forged group of the same name made Mallory an infra admin");
    }
    sign_in("mike@example.com").await;
    assert!(!is_infra_admin(&infra, "mike@example.com").await);

    // Mike joins his forged group at the directory; the verification pass reads the directory again
    directory("mike@example.com", vec![group("mike-admins@example.com")]);
    let redirect = infra.state.oidc_redirect_url();
    let report = infra::server::services::providers::verify_all(&infra.state.db, &infra.state.master, &infra.state.oidc_http, &redirect, 4).await.unwrap();
    assert_eq!((report.checked, report.disabled, report.unavailable), (3, 0, 0), "{report:?}");
    if is_infra_admin(&infra, "mike@example.com").await {
        breaches.push("at the verification pass, a forged group of the same name made Mike an infra admin");
    }
    assert!(breaches.is_empty(), "{breaches:?}");
    assert!(!is_infra_admin(&infra, "mallory@example.com").await);
    assert!(is_infra_admin(&infra, "gus@example.com").await, "Gus, in the granted group, is an admin");
}

/// A provider's groups are its own: a claimed group named like a local group, or like another
/// provider's, is another group (the local group's grant reaches no provider user). A grant by a name
/// that several groups share is refused with their unique forms; the typeahead shows each group's
/// source and offers those forms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_groups_never_merge_by_name() {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let infra = Infra::start(&dir.path().join("server")).await;
    let users = json!([
        {"sub": "alice", "email": "alice@example.com", "name": "Alice", "password": "alice-pw", "groups": ["ops", "dev"]},
        {"sub": "bob", "email": "bob@example.com", "name": "Bob", "password": "bob-pw", "groups": ["dev"]},
    ]);
    let idp = Idp::start(dir.path(), &format!("{}/auth/oidc/callback", infra.url), users, json!({}));
    for name in ["corp", "corp2"] {
        let body = json!({"name": name, "kind": "oidc", "issuer": idp.issuer, "client_id": "infra", "client_secret": "infra-secret"});
        assert_eq!(infra.post("/api/providers", &infra.admin, body).await.0, 201);
    }
    let (status, ops) = infra.post("/api/groups", &infra.admin, json!({"name": "ops"})).await;
    assert_eq!(status, 201, "{ops}");
    let (status, grant) = infra.post("/api/grants", &infra.admin, json!({"subject": "ops", "role": "admin", "resource": "infra"})).await;
    assert_eq!(status, 201, "{grant}");

    let landing = sign_in(&browser(&infra), &infra, "corp", "alice@example.com", "alice-pw").await;
    assert_eq!(landing, "/", "{}", error_of(&landing));
    let landing = sign_in(&browser(&infra), &infra, "corp2", "bob@example.com", "bob-pw").await;
    assert_eq!(landing, "/", "{}", error_of(&landing));
    assert!(!is_infra_admin(&infra, "alice@example.com").await, "corp's `ops` merged into the local group `ops`");
    assert_eq!(count(&infra, "SELECT COUNT(*) FROM group_members WHERE group_id = ?", vec![ops["id"].as_i64().unwrap().into()]).await, 0);
    let (_, groups) = infra.get("/api/groups?q=", &infra.admin).await;
    let mut listed: Vec<String> = groups["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| format!("{} {} {}", g["name"].as_str().unwrap(), g["source"].as_str().unwrap(), g["member_count"]))
        .collect();
    listed.sort();
    assert_eq!(listed, ["dev corp 1", "dev corp2 1", "ops corp 1", "ops local 0"], "each provider's groups apart: {groups}");

    // by the shared name: refused, naming the unique forms; by a unique form: that group only
    let (status, refused) = infra.post("/api/grants", &infra.admin, json!({"subject": "dev", "role": "view", "resource": "infra"})).await;
    assert_eq!(status, 400, "a grant by a shared name must not pick one of the groups: {refused}");
    assert!(refused.to_string().contains("group:corp:dev") && refused.to_string().contains("group:corp2:dev"), "{refused}");
    let (status, grant) = infra.post("/api/grants", &infra.admin, json!({"subject": "group:corp2:dev", "role": "view", "resource": "infra"})).await;
    assert_eq!(status, 201, "{grant}");
    assert_eq!(grant["subject"]["detail"], "corp2", "{grant}");
    let viewers = |email: &'static str| {
        let infra = &infra;
        async move {
            let user = infra::server::services::users::find_by_email(&infra.state.db, email).await.unwrap().unwrap();
            infra::server::services::grants::access_of(&infra.state.db, user.id).await.unwrap().iter().any(|e| e.resource == "infra" && e.role == "view")
        }
    };
    assert!(viewers("bob@example.com").await && !viewers("alice@example.com").await);

    let admin = infra::server::services::users::find_by_email(&infra.state.db, "admin@infra.local").await.unwrap().unwrap();
    let actor = infra::server::auth::actor_for_user(&infra.state.db, admin.id, "test").await.unwrap();
    let options = infra::server::services::search::typeahead(
        infra::server::services::Ctx::new(&infra.state.db, &actor),
        infra::model::TypeaheadSource::Subjects,
        "",
        "dev",
    )
    .await
    .unwrap();
    let shown: Vec<(String, String)> = options.into_iter().map(|o| (o.value, o.detail)).collect();
    assert_eq!(shown, [("group:corp:dev".to_string(), "group from corp".to_string()), ("group:corp2:dev".to_string(), "group from corp2".to_string())]);
}

/// Attack: emails from an identity provider become cluster user names. `system:kube-controller-manager`
/// (and any `system:` name), a value without `@`, and `Connector` (the connector's machine identity,
/// whatever the case) are refused: no account, no link, and an audit event; an email in capitals is
/// normalised like a local one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_emails_are_checked_like_local_ones() {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let infra = Infra::start(&dir.path().join("server")).await;
    let refused = ["system:kube-controller-manager", "system:masters@example.com", "nobody.example.com", "Connector"];
    let mut users: Vec<Value> =
        refused.iter().enumerate().map(|(i, email)| json!({"sub": format!("u{i}"), "email": email, "name": "X", "password": "pw"})).collect();
    users.push(json!({"sub": "dora", "email": "Dora@Example.COM", "name": "Dora", "password": "pw"}));
    let idp = Idp::start(dir.path(), &format!("{}/auth/oidc/callback", infra.url), Value::Array(users), json!({}));
    let body = json!({"name": "corp", "kind": "oidc", "issuer": idp.issuer, "client_id": "infra", "client_secret": "infra-secret"});
    assert_eq!(infra.post("/api/providers", &infra.admin, body).await.0, 201);
    let (status, _) = infra.post("/api/destinations/prod/connector-key", &infra.admin, json!({})).await;
    assert_eq!(status, 201, "the connector's machine identity exists");
    let users_before = count(&infra, "SELECT COUNT(*) FROM users", vec![]).await;

    let mut signed_in = Vec::new();
    for email in refused {
        let landing = sign_in(&browser(&infra), &infra, "corp", email, "pw").await;
        if !landing.starts_with("/login?error=") {
            signed_in.push(email);
        } else {
            assert!(sign_in_refused_in_audit(&infra, &email.to_lowercase()).await, "{email}: the refusal is audited");
        }
    }
    assert!(signed_in.is_empty(), "signed in with unusable emails: {signed_in:?}");
    assert_eq!(count(&infra, "SELECT COUNT(*) FROM users", vec![]).await, users_before, "a refused email creates nobody");
    assert_eq!(count(&infra, "SELECT COUNT(*) FROM provider_users", vec![]).await, 0, "and links nobody");

    let b = browser(&infra);
    let landing = sign_in(&b, &infra, "corp", "Dora@Example.COM", "pw").await;
    assert_eq!(landing, "/", "{}", error_of(&landing));
    assert_eq!(me(&b, &infra).await.1["email"], "dora@example.com");
}

/// Attack: someone gets an IdP account (a new subject) with the email of an account linked to another
/// subject, say after the first was deleted there. Signing in does not take the account over; its
/// owner (the old subject) still signs in to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_subject_does_not_take_over_an_account() {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let infra = Infra::start(&dir.path().join("server")).await;
    let idp = Idp::start(dir.path(), &format!("{}/auth/oidc/callback", infra.url), users(), json!({}));
    let body = json!({"name": "corp", "kind": "oidc", "issuer": idp.issuer, "client_id": "infra", "client_secret": "infra-secret"});
    assert_eq!(infra.post("/api/providers", &infra.admin, body).await.0, 201);
    let b = browser(&infra);
    assert_eq!(sign_in(&b, &infra, "corp", "alice@example.com", "alice-pw").await, "/");
    let alice = me(&b, &infra).await.1["id"].as_i64().unwrap();

    idp.admin("/users/alice", json!({"email": "alice.old@example.com"})).await;
    idp.admin("/users/mallory", json!({"email": "alice@example.com", "name": "Mallory", "password": "mallory-pw", "groups": ["sre"]})).await;
    let b = browser(&infra);
    let landing = sign_in(&b, &infra, "corp", "alice@example.com", "mallory-pw").await;
    assert!(error_of(&landing).contains("does not take it over"), "a new subject took the account over: {landing}");
    assert_eq!(me(&b, &infra).await.0, 401);
    let link = infra::server::db::query_one(&infra.state.db, "SELECT subject FROM provider_users WHERE user_id = ?", [alice.into()]).await.unwrap().unwrap();
    assert_eq!(link.try_get_by_index::<String>(0).unwrap(), "alice", "the account stays linked to its subject");
    assert!(sign_in_refused_in_audit(&infra, "does not take it over").await);

    let b = browser(&infra);
    assert_eq!(sign_in(&b, &infra, "corp", "alice.old@example.com", "alice-pw").await, "/");
    assert_eq!(me(&b, &infra).await.1["id"].as_i64(), Some(alice), "the old subject still signs in to the account");
}

/// An email the IdP does not say is verified (`email_verified` absent here) does not link an existing
/// account: here one whose link went with its provider (removed, added again, the user enabled again).
/// It does make a new account; a verified email links the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unverified_email_does_not_link_an_existing_account() {
    infra::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let infra = Infra::start(&dir.path().join("server")).await;
    let idp = standin::start().await;
    let body = json!({"name": "standin", "kind": "oidc", "issuer": idp.issuer, "client_id": "infra", "client_secret": "s"});
    let (_, created) = infra.post("/api/providers", &infra.admin, body.clone()).await;
    assert_eq!(standin_sign_in(&infra, &idp, "standin", "vera@example.com", |_| {}, true).await.1, "/");
    let vera = infra::server::services::users::find_by_email(&infra.state.db, "vera@example.com").await.unwrap().unwrap().id;
    let (status, _) = infra.call(reqwest::Method::DELETE, &format!("/api/providers/{}", created["id"]), &infra.admin, None).await;
    assert_eq!(status, 204);
    assert_eq!(infra.post("/api/providers", &infra.admin, body).await.0, 201);
    let (status, _) = infra.call(reqwest::Method::PATCH, &format!("/api/users/{vera}"), &infra.admin, Some(json!({"disabled": false}))).await;
    assert_eq!(status, 200);

    let unverified = |c: &mut Value| {
        c.as_object_mut().unwrap().remove("email_verified");
    };
    let (b, landing) = standin_sign_in(&infra, &idp, "standin", "vera@example.com", unverified, true).await;
    assert!(error_of(&landing).contains("verified"), "an unverified email linked an existing account: {landing}");
    assert_eq!(me(&b, &infra).await.0, 401);
    assert_eq!(count(&infra, "SELECT COUNT(*) FROM provider_users WHERE user_id = ?", vec![vera.into()]).await, 0, "not linked");
    assert!(sign_in_refused_in_audit(&infra, "vera@example.com").await);

    let (_, landing) = standin_sign_in(&infra, &idp, "standin", "newbie@example.com", unverified, true).await;
    assert_eq!(landing, "/", "a new account needs no verified email: {}", error_of(&landing));
    let (b, landing) = standin_sign_in(&infra, &idp, "standin", "vera@example.com", |_| {}, true).await;
    assert_eq!(landing, "/", "{}", error_of(&landing));
    assert_eq!(me(&b, &infra).await.1["id"].as_i64(), Some(vera));
}

/// A database from before provider groups had keys (migrations 0001 to 0008) with groups, members and
/// grants, upgraded: claim groups (oidc) are keyed by their name and keep their members; Azure AD and
/// Google directory groups, named by display name, keep their grants but lose their members; local
/// groups stay as they were, names still unique among them; ids go on from where they were.
async fn upgrading_keys_existing_provider_groups(database_url: Option<String>) {
    use infra::server::db;
    use sea_orm::ConnectionTrait;
    let dir = tempfile::tempdir().unwrap();
    let url = database_url.unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.path().join("infra.db").display()));
    let url = url.as_str();
    let conn = db::connect(url).await.unwrap();
    let pg = url.starts_with("postgres");
    let before: [(&str, &str); 8] = [
        ("0001_init", include_str!("../../migrations/0001_init.sql")),
        ("0002_connector", include_str!("../../migrations/0002_connector.sql")),
        ("0003_revocations", include_str!("../../migrations/0003_revocations.sql")),
        ("0004_certificate_requests", include_str!("../../migrations/0004_certificate_requests.sql")),
        ("0005_providers", include_str!("../../migrations/0005_providers.sql")),
        ("0006_device_logins", include_str!("../../migrations/0006_device_logins.sql")),
        ("0007_provider_directory", include_str!("../../migrations/0007_provider_directory.sql")),
        ("0008_device_login_redirect", include_str!("../../migrations/0008_device_login_redirect.sql")),
    ];
    conn.execute_unprepared("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)").await.unwrap();
    for (name, sql) in before {
        let (pk, text) = if pg { ("BIGSERIAL PRIMARY KEY", "TEXT COLLATE \"C\"") } else { ("INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT") };
        conn.execute_unprepared(&sql.replace("{{PK}}", pk).replace("{{TEXT}}", text)).await.unwrap();
        db::execute(&conn, "INSERT INTO schema_migrations (name, applied_at) VALUES (?, 0)", [name.into()]).await.unwrap();
    }
    for (name, kind, admin) in [("corp", "oidc", ""), ("az", "azure", ""), ("gg", "google", "admin@example.com")] {
        db::execute(&conn, "INSERT INTO providers (name, kind, issuer, client_id, client_secret, scopes, groups_claim, directory_admin, created_at) VALUES (?, ?, 'https://idp', 'c', 's', 'openid', 'groups', ?, 0)", [name.into(), kind.into(), admin.into()]).await.unwrap();
    }
    db::execute(&conn, "INSERT INTO users (email, name, name_lc, provider, created_at) VALUES ('u@example.com', 'U', 'u', 'corp', 0)", []).await.unwrap();
    let id_of = |sql: &'static str| {
        let conn = &conn;
        async move { db::query_one(conn, sql, []).await.unwrap().unwrap().try_get_by_index::<i64>(0).unwrap() }
    };
    let user = id_of("SELECT id FROM users").await;
    for (name, source) in [("ops", "local"), ("dev", "corp"), ("Infra Admins", "az"), ("Eng", "gg"), ("gone", "local")] {
        db::execute(
            &conn,
            "INSERT INTO groups (name, name_lc, source, created_at) VALUES (?, ?, ?, 0)",
            [name.into(), name.to_lowercase().into(), source.into()],
        )
        .await
        .unwrap();
        db::execute(&conn, "INSERT INTO group_members (group_id, user_id, created_at) SELECT id, ?, 0 FROM groups WHERE name = ?", [user.into(), name.into()])
            .await
            .unwrap();
        db::execute(
            &conn,
            "INSERT INTO grants (subject_kind, subject_id, role, destination, created_at) SELECT 'group', id, 'view', 'infra', 0 FROM groups WHERE name = ?",
            [name.into()],
        )
        .await
        .unwrap();
    }
    let gone = id_of("SELECT id FROM groups WHERE name = 'gone'").await;
    db::execute(&conn, "DELETE FROM grants WHERE subject_id = ?", [gone.into()]).await.unwrap();
    db::execute(&conn, "DELETE FROM groups WHERE id = ?", [gone.into()]).await.unwrap();

    db::migrate(&conn).await.unwrap();
    let rows = db::query_all(&conn, "SELECT g.name, g.source, g.external_id, (SELECT COUNT(*) FROM group_members m WHERE m.group_id = g.id), (SELECT COUNT(*) FROM grants r WHERE r.subject_id = g.id) FROM groups g ORDER BY g.name", []).await.unwrap();
    let groups: Vec<(String, String, String, i64, i64)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get_by_index(0).unwrap(),
                r.try_get_by_index(1).unwrap(),
                r.try_get_by_index(2).unwrap(),
                r.try_get_by_index(3).unwrap(),
                r.try_get_by_index(4).unwrap(),
            )
        })
        .collect();
    let expected = [("Eng", "gg", "", 0, 1), ("Infra Admins", "az", "", 0, 1), ("dev", "corp", "dev", 1, 1), ("ops", "local", "", 1, 1)];
    let expected: Vec<(String, String, String, i64, i64)> =
        expected.iter().map(|(a, b, c, d, e)| (a.to_string(), b.to_string(), c.to_string(), *d, *e)).collect();
    assert_eq!(groups, expected);

    // local names unique among local groups; a provider's group may share one; ids go on
    let local = db::execute(&conn, "INSERT INTO groups (name, name_lc, source, created_at) VALUES ('OPS', 'ops', 'local', 0)", []).await;
    assert!(local.is_err(), "two local groups named ops");
    db::execute(&conn, "INSERT INTO groups (name, name_lc, source, external_id, created_at) VALUES ('ops', 'ops', 'corp', 'ops', 0)", []).await.unwrap();
    assert!(id_of("SELECT MAX(id) FROM groups").await > gone, "the id of a removed group is not given again");
    let twice = db::execute(&conn, "INSERT INTO groups (name, name_lc, source, external_id, created_at) VALUES ('ops2', 'ops2', 'corp', 'ops', 0)", []).await;
    assert!(twice.is_err(), "one group per provider and key");
    let delete = db::execute(&conn, "DELETE FROM users", []).await.unwrap();
    assert_eq!(delete, 1);
    assert_eq!(db::count(&conn, "SELECT COUNT(*) FROM group_members", []).await.unwrap(), 0, "memberships still go with their user");
}
