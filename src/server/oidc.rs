//! The OpenID Connect client side (openidconnect crate): discovery, the authorization URL with PKCE
//! (S256), state and nonce, the code exchange with the ID token checked (signature, issuer, audience,
//! expiry, nonce), and the refresh token grant used by continuous verification. Claims other than the
//! standard ones (the configurable groups claim) are kept as JSON. When the ID token carries no email
//! or no groups claim (many providers put them only in userinfo), they are read from the userinfo
//! endpoint with the access token, for the same subject.

use std::collections::HashMap;
use std::time::Duration;

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreErrorResponseType, CoreGenderClaim,
    CoreGrantType, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm, CoreResponseMode,
    CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse, CoreSubjectIdentifierType, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthType, AuthorizationCode, ClaimsVerificationError, Client, ClientId, ClientSecret, CsrfToken, EmptyAdditionalProviderMetadata,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, HttpClientError, IdTokenFields, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata, RedirectUrl, RefreshToken, RequestTokenError, Scope, SignatureVerificationError,
    StandardErrorResponse, StandardTokenResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};

/// Every claim that is not a standard one, by name.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ExtraClaims(pub HashMap<String, serde_json::Value>);
impl AdditionalClaims for ExtraClaims {}

impl ExtraClaims {
    /// The groups in `claim`: an array of strings or one string; `None` when there is no such claim
    /// (not the same as no groups: the groups may then be in userinfo).
    pub fn groups(&self, claim: &str) -> Option<Vec<String>> {
        match self.0.get(claim) {
            Some(serde_json::Value::Array(v)) => Some(v.iter().filter_map(|g| g.as_str().map(str::to_owned)).collect()),
            Some(serde_json::Value::String(s)) => Some(vec![s.clone()]),
            _ => None,
        }
    }
}

type IdFields = IdTokenFields<ExtraClaims, EmptyExtraTokenFields, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;
pub type Tokens = StandardTokenResponse<IdFields, CoreTokenType>;
type Metadata = ProviderMetadata<
    EmptyAdditionalProviderMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;
pub type OidcClient = Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// What went wrong, as a sentence for the sign-in page or the admin's "Test connection".
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("cannot reach the identity provider: {0}")]
    Unreachable(String),
    #[error("the identity provider's discovery document is not usable: {0}")]
    Discovery(String),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Token(&'static str),
}

/// The HTTP client for the identity providers. Redirects are off, as the openidconnect crate requires.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default()
}

/// Fetches `<issuer>/.well-known/openid-configuration` and the signing keys.
pub async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Metadata, OidcError> {
    let issuer = IssuerUrl::new(issuer.to_string()).map_err(|e| OidcError::Discovery(format!("the issuer is not a URL: {e}")))?;
    Metadata::discover_async(issuer, http).await.map_err(|e| {
        let text = error_chain(&e);
        match e {
            openidconnect::DiscoveryError::Request(_) => OidcError::Unreachable(text),
            _ => OidcError::Discovery(text),
        }
    })
}

/// An error with its causes, in one line (the crate's errors say little at the top).
fn error_chain(e: &dyn std::error::Error) -> String {
    std::iter::successors(Some(e), |e| e.source()).map(|e| e.to_string()).collect::<Vec<_>>().join(": ")
}

pub fn client(meta: Metadata, client_id: &str, client_secret: &str, redirect_url: &str) -> Result<OidcClient, OidcError> {
    let post_only = meta
        .token_endpoint_auth_methods_supported()
        .is_some_and(|m| !m.contains(&CoreClientAuthMethod::ClientSecretBasic) && m.contains(&CoreClientAuthMethod::ClientSecretPost));
    let redirect = RedirectUrl::new(redirect_url.to_string()).map_err(|e| OidcError::Discovery(e.to_string()))?;
    let client = OidcClient::from_provider_metadata(meta, ClientId::new(client_id.to_string()), Some(ClientSecret::new(client_secret.to_string())))
        .set_redirect_uri(redirect);
    Ok(if post_only { client.set_auth_type(AuthType::RequestBody) } else { client })
}

/// A sign-in in progress, kept in the session until the callback (single use).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PendingLogin {
    pub provider: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// The URL to send the browser to, and what the callback must find in the session. `extra` are the
/// provider's own parameters (Google: `access_type=offline`, see `providers::authorization_params`).
pub fn authorization_url(client: &OidcClient, provider: &str, scopes: &[String], extra: &[(&str, &str)]) -> (String, PendingLogin) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scopes(scopes.iter().filter(|s| s.as_str() != "openid").map(|s| Scope::new(s.clone())))
        .set_pkce_challenge(challenge);
    for (name, value) in extra {
        request = request.add_extra_param(*name, *value);
    }
    let (url, state, nonce) = request.url();
    let pending =
        PendingLogin { provider: provider.to_string(), state: state.secret().clone(), nonce: nonce.secret().clone(), pkce_verifier: verifier.secret().clone() };
    (url.to_string(), pending)
}

/// A group at an identity provider: `id` is what identifies it there for good (the Azure AD object id,
/// the Google group email, a groups claim's value), `name` what people see. Only `id` decides who is in
/// which group; display names are not unique and, in Azure AD and Google, anyone can create a group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProviderGroup {
    pub id: String,
    pub name: String,
}

impl ProviderGroup {
    /// A group of a groups claim: its value is both the key and the label.
    pub fn from_claim(value: &str) -> ProviderGroup {
        ProviderGroup { id: value.to_string(), name: value.to_string() }
    }
}

/// Who signed in, from the verified ID token.
#[derive(Clone, Debug, Default)]
pub struct Identity {
    pub subject: String,
    /// lowercased; checked by the caller (`providers::sign_in`) before it names anyone
    pub email: String,
    pub email_verified: Option<bool>,
    pub name: String,
    pub groups: Vec<ProviderGroup>,
    pub refresh_token: Option<String>,
    /// for the provider's directory (Microsoft Graph), when groups come from there
    pub access_token: String,
}

/// Exchanges the code (with the PKCE verifier) and checks the ID token: signature, issuer, audience,
/// expiry and nonce. The state was compared by the caller.
pub async fn finish(client: &OidcClient, http: &reqwest::Client, pending: &PendingLogin, code: &str, groups_claim: &str) -> Result<Identity, OidcError> {
    let request = client.exchange_code(AuthorizationCode::new(code.to_string())).map_err(|e| OidcError::Discovery(e.to_string()))?;
    let tokens = request.set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone())).request_async(http).await.map_err(token_error)?;
    let (who, complete) = identity(client, &tokens, Some(&Nonce::new(pending.nonce.clone())), groups_claim)?;
    if complete {
        return Ok(who);
    }
    with_userinfo(client, http, &tokens, who, groups_claim).await
}

/// The outcome of a refresh: a refreshed identity, a definite refusal (the user lost access at the
/// IdP: disable them), or no definite answer (unreachable, 5xx, a timeout, no usable ID token: the user
/// stays as is and is tried again; see `providers::verify_pass`).
pub enum Refresh {
    Refreshed(Identity),
    Denied(String),
    Unavailable(String),
}

/// The refresh token grant for the user whose ID tokens name `subject`. Only `invalid_grant` and an
/// ID token for another subject are definite; every other trouble is `Unavailable`.
pub async fn refresh(client: &OidcClient, http: &reqwest::Client, refresh_token: &str, subject: &str, groups_claim: &str) -> Refresh {
    let token = RefreshToken::new(refresh_token.to_string());
    let request = match client.exchange_refresh_token(&token) {
        Ok(r) => r,
        Err(e) => return Refresh::Unavailable(e.to_string()),
    };
    let tokens = match request.request_async(http).await {
        Ok(tokens) => tokens,
        Err(RequestTokenError::ServerResponse(err)) if *err.error() == CoreErrorResponseType::InvalidGrant => return Refresh::Denied(err.to_string()),
        Err(RequestTokenError::ServerResponse(err)) if *err.error() == CoreErrorResponseType::InvalidClient => {
            return Refresh::Unavailable(format!("the identity provider refused this server's client credentials: {err}"));
        }
        // server_error, temporarily_unavailable (a 5xx with an OAuth body), and the rest
        Err(RequestTokenError::ServerResponse(err)) => return Refresh::Unavailable(format!("the identity provider answered: {err}")),
        Err(e) => return Refresh::Unavailable(token_error(e).to_string()),
    };
    let (mut who, complete) = match identity(client, &tokens, None, groups_claim) {
        Ok(found) => found,
        Err(e) => return Refresh::Unavailable(e.to_string()),
    };
    if who.subject != subject {
        return Refresh::Denied(format!("the identity provider answered for another user ({})", who.subject));
    }
    if !complete {
        who = match with_userinfo(client, http, &tokens, who, groups_claim).await {
            Ok(who) => who,
            Err(e) => return Refresh::Unavailable(e.to_string()),
        };
    }
    // a provider that does not rotate refresh tokens sends none back: keep the old one
    who.refresh_token = who.refresh_token.or(Some(refresh_token.to_string()));
    Refresh::Refreshed(who)
}

/// Fills in the email and groups the ID token left out from the userinfo endpoint (same subject).
/// A provider without a userinfo endpoint leaves them as they are.
async fn with_userinfo(client: &OidcClient, http: &reqwest::Client, tokens: &Tokens, mut who: Identity, groups_claim: &str) -> Result<Identity, OidcError> {
    let subject = openidconnect::SubjectIdentifier::new(who.subject.clone());
    let Ok(request) = client.user_info(tokens.access_token().clone(), Some(subject)) else {
        return Ok(who);
    };
    let info: openidconnect::UserInfoClaims<ExtraClaims, CoreGenderClaim> = request.request_async(http).await.map_err(|e| {
        let text = error_chain(&e);
        match e {
            openidconnect::UserInfoError::Request(_) => OidcError::Unreachable(format!("userinfo: {text}")),
            _ => OidcError::Refused(format!("the identity provider's userinfo answer is not usable: {text}")),
        }
    })?;
    if who.email.is_empty() {
        who.email = info.standard_claims().email().map(|e| e.as_str().to_lowercase()).unwrap_or_default();
        who.email_verified = info.standard_claims().email_verified();
    }
    if who.name.is_empty() {
        who.name = info.standard_claims().name().and_then(|n| n.get(None)).map(|n| n.as_str().to_string()).unwrap_or_default();
    }
    if let Some(groups) = info.additional_claims().groups(groups_claim) {
        who.groups = groups.iter().map(|g| ProviderGroup::from_claim(g)).collect();
    }
    Ok(who)
}

fn token_error(e: RequestTokenError<HttpClientError<reqwest::Error>, StandardErrorResponse<CoreErrorResponseType>>) -> OidcError {
    match e {
        RequestTokenError::ServerResponse(r) => OidcError::Refused(format!("the identity provider refused the sign-in: {r}")),
        RequestTokenError::Request(e) => OidcError::Unreachable(e.to_string()),
        RequestTokenError::Parse(e, _) => OidcError::Refused(format!("the identity provider's answer is not usable (at `{}`)", e.path())),
        RequestTokenError::Other(m) => OidcError::Refused(m),
    }
}

/// The identity in the ID token, and whether it carries both the email and the groups claim.
fn identity(client: &OidcClient, tokens: &Tokens, nonce: Option<&Nonce>, groups_claim: &str) -> Result<(Identity, bool), OidcError> {
    let id_token = tokens.id_token().ok_or(OidcError::Token("the identity provider sent no ID token"))?;
    let verifier = client.id_token_verifier();
    // a refreshed ID token repeats the original nonce (or none): only a sign-in checks it
    let any_nonce = |_: Option<&Nonce>| -> Result<(), String> { Ok(()) };
    let claims = match nonce {
        Some(n) => id_token.claims(&verifier, n),
        None => id_token.claims(&verifier, any_nonce),
    }
    .map_err(|e| OidcError::Token(claims_error(&e)))?;
    let groups = claims.additional_claims().groups(groups_claim);
    let complete = claims.email().is_some() && groups.is_some();
    let who = Identity {
        subject: claims.subject().as_str().to_string(),
        email: claims.email().map(|e| e.as_str().to_lowercase()).unwrap_or_default(),
        email_verified: claims.email_verified(),
        name: claims.name().and_then(|n| n.get(None)).map(|n| n.as_str().to_string()).unwrap_or_default(),
        groups: groups.unwrap_or_default().iter().map(|g| ProviderGroup::from_claim(g)).collect(),
        refresh_token: tokens.refresh_token().map(|t| t.secret().clone()),
        access_token: tokens.access_token().secret().clone(),
    };
    Ok((who, complete))
}

/// One sentence for the sign-in page.
fn claims_error(e: &ClaimsVerificationError) -> &'static str {
    use SignatureVerificationError as S;
    match e {
        ClaimsVerificationError::InvalidIssuer(_) => "the sign-in token names another issuer than the one configured",
        ClaimsVerificationError::InvalidAudience(_) => "the sign-in token was issued for another application (client id)",
        ClaimsVerificationError::Expired(_) => "the sign-in token has expired; check this server's clock and sign in again",
        ClaimsVerificationError::InvalidNonce(_) => "the sign-in token does not belong to this sign-in (nonce mismatch); start again",
        ClaimsVerificationError::SignatureVerification(S::NoSignature) => "the identity provider sent an unsigned token, which is refused",
        ClaimsVerificationError::SignatureVerification(S::NoMatchingKey) => "the sign-in token is signed with a key the identity provider does not publish",
        ClaimsVerificationError::SignatureVerification(S::DisallowedAlg(_) | S::UnsupportedAlg(_)) => {
            "the sign-in token is signed with an algorithm that is not accepted"
        }
        ClaimsVerificationError::SignatureVerification(_) => "the sign-in token's signature is not valid",
        _ => "the sign-in token was refused",
    }
}

/// Whether a discovered provider offers what sign-in needs, in words ("Test connection").
pub fn describe(meta: &Metadata) -> String {
    let keys = meta.jwks().keys().len();
    let token = meta.token_endpoint().map(|u| u.as_str().to_string()).unwrap_or_else(|| "none".into());
    format!(
        "issuer {}; authorization {}; token {token}; {keys} signing key{}",
        meta.issuer().as_str(),
        meta.authorization_endpoint().as_str(),
        if keys == 1 { "" } else { "s" }
    )
}
