//! The terminal client: `infra login`, `list`, `use`, `logout`, and `infra tokens`, the credential
//! plugin kubectl runs. Every failure is one sentence that says what to do (kubectl shows what a
//! credential plugin prints), never a stack trace.

/// `println!` for what the CLI prints: output into a pipe whose reader went away (`infra list | head -1`)
/// ends the command quietly instead of with a panic.
macro_rules! say {
    ($($arg:tt)*) => { $crate::cli::write_out(format!("{}\n", format_args!($($arg)*)).as_bytes()) };
}

pub mod admin;
pub mod complete;
pub mod config;
pub mod kubeconfig;
pub mod output;
pub mod trust;

use std::io::{BufRead, Write};

use serde_json::json;

use self::config::{CachedToken, CliConfig};
use self::trust::Trust;
use crate::client::{Client, ClientError};
use crate::model::{AccessEntry, CliLogin, CredentialStyle, DeviceStartRequest, KubeconfigRequest};

/// Writes to standard output. A closed pipe ends the process quietly (status 0: the reader has what it
/// wanted); any other failure to write ends it with a sentence.
pub fn write_out(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("infra: cannot write the output: {e}");
        std::process::exit(1);
    }
}

/// A cached token is used until this long before it expires.
const TOKEN_MARGIN_MS: i64 = 60_000;

#[derive(clap::Args)]
pub struct LoginArgs {
    /// The server's URL (default: $INFRA_SERVER, else the last one you logged in to)
    pub server: Option<String>,
    /// Log in with an access key instead of a password (also $INFRA_ACCESS_KEY)
    #[arg(long, env = "INFRA_ACCESS_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// Your email, for a password login (asked when missing)
    #[arg(long)]
    pub email: Option<String>,
    /// Trust the server's certificate if it (or a CA in its chain) has this SHA-256 fingerprint, as
    /// `infra server` prints it at start; for scripts, instead of the question
    #[arg(long, value_name = "FINGERPRINT")]
    pub tls_trusted_fingerprint: Option<String>,
    /// Sign in on the web console instead (with a password or an identity provider) and approve
    /// this CLI there; works where no browser can open, too
    #[arg(long, conflicts_with = "key")]
    pub web: bool,
    /// Do not check the server's certificate at all (insecure; for throw-away test setups)
    #[arg(long, conflicts_with = "tls_trusted_fingerprint")]
    pub skip_tls_verify: bool,
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// How to print the list
    #[arg(long, value_enum, default_value_t = output::Format::Table)]
    pub format: output::Format,
}

#[derive(clap::Args)]
pub struct TokensArgs {
    /// The cluster the token is for
    #[arg(long)]
    pub cluster: String,
}

#[derive(clap::Args)]
pub struct LogoutArgs {
    /// Also forget the server, not only the key
    #[arg(long)]
    pub clear: bool,
}

/// The server's URL as the user typed it, made whole: `https://` is assumed without a scheme.
pub fn normalize_server(server: &str) -> String {
    let s = server.trim().trim_end_matches('/');
    if s.starts_with("http://") || s.starts_with("https://") { s.to_string() } else { format!("https://{s}") }
}

/// The CLI's words for a failed call: a refused key means the login is over.
impl From<ClientError> for String {
    fn from(e: ClientError) -> String {
        match e {
            ClientError::KeyRefused { server, .. } => format!("your login to {server} has expired or was revoked: run infra login {server}"),
            other => other.to_string(),
        }
    }
}

/// A client for `server`, trusting what the login settled, calling with `key`.
pub fn client(server: &str, trust: &Trust, key: Option<&str>) -> Result<Client, String> {
    Ok(Client::new(server, key, trust.client()?))
}

pub(crate) fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// The stored login; or, for scripts, `$INFRA_SERVER` with `$INFRA_ACCESS_KEY` (trusting what a login to
/// that server settled, else the system's certificate authorities).
fn logged_in() -> Result<CliConfig, String> {
    let config = config::load()?;
    let env = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    if let (Some(server), Some(key)) = (env("INFRA_SERVER"), env("INFRA_ACCESS_KEY")) {
        let server = normalize_server(&server);
        let trust = if config.server == server { config.trust.clone() } else { Trust::default() };
        return Ok(CliConfig { server, access_key: key, user: String::new(), trust });
    }
    if config.server.is_empty() || config.access_key.is_empty() {
        let server = env("INFRA_SERVER").unwrap_or_else(|| "SERVER".into());
        return Err(format!("not logged in: run infra login {server}"));
    }
    Ok(config)
}

/// The client of the stored login (or of `$INFRA_SERVER` with `$INFRA_ACCESS_KEY`).
pub fn session() -> Result<Client, String> {
    let config = logged_in()?;
    client(&config.server, &config.trust, Some(&config.access_key))
}

pub(crate) fn prompt(question: &str) -> Result<String, String> {
    eprint!("{question}");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| e.to_string())?;
    Ok(line.trim().to_string())
}

/// A secret (a password, a client secret): on a terminal asked for without echo; from a pipe (scripts)
/// the first line.
pub(crate) fn secret(question: String) -> Result<String, String> {
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        rpassword::prompt_password(question).map_err(|e| format!("cannot read the secret: {e}"))
    } else {
        prompt("")
    }
}

pub async fn login(args: LoginArgs) -> Result<(), String> {
    let stored = config::load()?;
    let server = args
        .server
        .or_else(|| std::env::var("INFRA_SERVER").ok().filter(|s| !s.is_empty()))
        .or_else(|| (!stored.server.is_empty()).then(|| stored.server.clone()))
        .ok_or("which server? run infra login SERVER")?;
    let server = normalize_server(&server);
    let previous = if stored.server == server { stored.trust.clone() } else { Trust::default() };
    let asked = trust::Asked { fingerprint: args.tls_trusted_fingerprint.as_deref(), skip_verify: args.skip_tls_verify };
    let trust = trust::establish(&server, previous, asked).await?;
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "this computer".into());
    let on_terminal = std::io::IsTerminal::is_terminal(&std::io::stdin());
    // on a terminal, when the server has identity providers, offer them
    let anonymous = client(&server, &trust, None)?;
    let web = args.web
        || (args.key.is_none() && args.email.is_none() && on_terminal && {
            let names = anonymous.login_providers().await.unwrap_or_default();
            !names.is_empty() && {
                let answer = prompt(&format!("Sign in with a password, or with {} in the browser? [password/{}] ", names.join(" or "), names.join("/")))?;
                !answer.is_empty() && !"password".starts_with(&answer.to_lowercase())
            }
        });
    let key = match args.key.filter(|k| !k.trim().is_empty()) {
        Some(key) => key.trim().to_string(),
        None if web => web_login(&anonymous, &host).await?,
        None => {
            let email = match args.email {
                Some(e) => e,
                None => prompt("Email: ")?,
            };
            let password = secret("Password: ".into())?;
            anonymous.login(&CliLogin { email, password, name: Some(format!("infra CLI on {host}")) }).await?.access_key
        }
    };
    let me = anonymous.with_key(Some(&key)).me().await.map_err(|e| match e {
        ClientError::KeyRefused { .. } => "that access key is not valid (revoked, expired or mistyped)".to_string(),
        other => String::from(other),
    })?;
    let user = me.user.email;
    config::save(&CliConfig { server: server.clone(), access_key: key, user: user.clone(), trust })?;
    config::save_tokens(&Default::default())?;
    let contexts = refresh_kubeconfig().await?;
    say!("Logged in to {server} as {user}.");
    describe_contexts(&contexts)?;
    Ok(())
}

/// `infra login --web`: a code the person approves in the console, signed in there however they sign
/// in (password or identity provider). Where a browser can open, it opens on the approval page and comes
/// back to a loopback port of this process once approved (the key is collected then, and the tab says
/// so); elsewhere the person opens the printed link on any device and this process polls.
async fn web_login(anonymous: &Client, host: &str) -> Result<String, String> {
    let browser = browser_command();
    let listener = match browser {
        Some(_) => tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.ok(),
        None => None,
    };
    let port = listener.as_ref().and_then(|l| l.local_addr().ok()).map(|a| a.port());
    let started = anonymous.device_start(&DeviceStartRequest { name: Some(format!("infra CLI on {host}")), redirect_port: port }).await?;
    say!("Open this page, sign in, type the code {} and approve:\n  {}", started.user_code, started.verification_uri);
    std::io::stdout().flush().ok();
    let opened = browser.as_ref().is_some_and(|(program, args)| {
        std::process::Command::new(program)
            .args(args)
            .arg(&started.verification_uri)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .is_ok()
    });
    if opened {
        say!("(opened in your browser; this terminal continues once you approve)");
        std::io::stdout().flush().ok();
    }
    // with a loopback redirect to come, polling is only the fallback (another browser, a blocked redirect)
    let interval = std::time::Duration::from_secs(started.interval.max(1) as u64 * if opened && listener.is_some() { 5 } else { 1 });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(started.expires_in.max(1) as u64);
    while std::time::Instant::now() < deadline {
        let redirected = tokio::select! {
            _ = tokio::time::sleep(interval) => None,
            Some(stream) = accept(listener.as_ref()) => Some(stream),
        };
        let answer = anonymous.device_token(&started.device_code).await;
        let key = answer.as_ref().ok().and_then(|a| a.as_ref()).map(|created| created.access_key.clone());
        let was_redirected = redirected.is_some();
        if let Some(stream) = redirected {
            let page = match (&key, &answer) {
                (Some(_), _) => LOGGED_IN_PAGE.to_string(),
                (None, Ok(_)) => "Not approved yet: approve the code on the console page, and this terminal continues.".to_string(),
                (None, Err(e)) => format!("The login failed: {e}"),
            };
            loopback_answer(stream, &page).await;
        }
        if let Some(key) = key {
            // the poll won the race against the redirect: answer the tab that is on its way
            if !was_redirected
                && listener.is_some()
                && let Some(stream) = tokio::time::timeout(std::time::Duration::from_secs(2), accept(listener.as_ref())).await.ok().flatten()
            {
                loopback_answer(stream, LOGGED_IN_PAGE).await;
            }
            return Ok(key);
        }
        answer.map_err(String::from)?;
    }
    Err("the code was not approved within 10 minutes: run infra login again".into())
}

/// What the browser tab says once the CLI holds its key.
const LOGGED_IN_PAGE: &str = "Your terminal is logged in. You can close this tab.";

/// How to open a page in the person's browser: `$BROWSER`, else the desktop's opener; `None` where no
/// browser can open (a remote shell, a container).
fn browser_command() -> Option<(String, Vec<String>)> {
    if let Some(b) = std::env::var("BROWSER").ok().filter(|b| !b.trim().is_empty()) {
        let mut words = b.split_whitespace().map(String::from);
        return words.next().map(|program| (program, words.collect()));
    }
    if cfg!(target_os = "macos") {
        return Some(("open".into(), vec![]));
    }
    let desktop = std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    desktop.then(|| ("xdg-open".into(), vec![]))
}

async fn accept(listener: Option<&tokio::net::TcpListener>) -> Option<tokio::net::TcpStream> {
    match listener {
        Some(l) => l.accept().await.ok().map(|(stream, _)| stream),
        None => std::future::pending().await,
    }
}

/// Answers the browser that the console sent to the loopback port with a one-line page.
async fn loopback_answer(mut stream: tokio::net::TcpStream, message: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // the request itself says nothing the CLI needs; read it so the browser sees a proper answer
    let mut request = [0u8; 4096];
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), stream.read(&mut request)).await;
    let escaped = message.replace('&', "&amp;").replace('<', "&lt;");
    let body = format!("<!doctype html><meta charset=utf-8><title>infra login</title><p style=\"font:16px system-ui;margin:3em\">{escaped}</p>");
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn describe_contexts(contexts: &[String]) -> Result<(), String> {
    let path = kubeconfig::path()?;
    if contexts.is_empty() {
        say!("You cannot reach any cluster yet: ask an admin for a grant, then run infra list.");
    } else {
        say!("kubectl contexts in {}: {}", path.display(), contexts.join(", "));
        say!("Switch with: infra use <cluster>[.<namespace>]");
    }
    Ok(())
}

/// Asks the server for the user's kubeconfig and merges infra's entries of it into the local one, each
/// user running this very binary as its credential plugin whatever the server wrote
/// ([`kubeconfig::ours_only`]). Returns infra's context names.
pub async fn refresh_kubeconfig() -> Result<Vec<String>, String> {
    let api = session()?;
    let command = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "infra".into());
    let request = KubeconfigRequest { clusters: vec![], style: CredentialStyle::Exec, lifetime_secs: None, command: None };
    let file = api.kubeconfig(&request).await?;
    let ours = kubeconfig::ours_only(&file.kubeconfig, &command, api.server());
    kubeconfig::merge(&ours)?;
    Ok(kubeconfig::context_names(&ours))
}

pub async fn list(args: ListArgs) -> Result<(), String> {
    let entries = session()?.my_access().await?;
    let entries: Vec<&AccessEntry> = entries.iter().filter(|e| e.resource != crate::model::INFRA_RESOURCE).collect();
    // the kubeconfig follows access: new clusters appear, removed ones go
    refresh_kubeconfig().await?;
    output::print(args.format, &entries, "You cannot reach any cluster yet: ask an admin for a grant.", || {
        let mut t = output::Table::new(&["CLUSTER[.NAMESPACE]", "ROLE", "VIA", "CONTEXT"]);
        for e in &entries {
            t.row(vec![e.resource.clone(), e.role.clone(), e.via.clone(), format!("infra:{}", e.resource)]);
        }
        vec![t]
    })
}

pub fn use_context(target: &str) -> Result<(), String> {
    let name = format!("{}{}", crate::server::services::kubeconfig::PREFIX, target.trim().trim_start_matches("infra:"));
    let ours = kubeconfig::our_contexts()?;
    if !ours.contains(&name) {
        return Err(format!("no context {name}: run infra list to see what you can reach"));
    }
    kubeconfig::use_context(&name)?;
    say!("Switched to {name}.");
    Ok(())
}

pub async fn logout(args: LogoutArgs) -> Result<(), String> {
    let config = config::load()?;
    if !config.access_key.is_empty() {
        // revoke the key on the server too, so that a copy of it is worthless; offline, it expires anyway
        let api = client(&config.server, &config.trust, Some(&config.access_key))?;
        if let Ok(keys) = api.keys(false).await {
            let key_id = crate::model::KeyText::parse(&config.access_key).map_or("", |k| k.key_id);
            if let Some(key) = keys.iter().find(|k| k.key_id == key_id) {
                let _ = api.revoke_key(key.id).await;
            }
        }
    }
    kubeconfig::remove_ours()?;
    config::clear()?;
    if !args.clear && !config.server.is_empty() {
        config::save(&CliConfig { server: config.server.clone(), trust: config.trust.clone(), ..Default::default() })?;
    }
    say!("Logged out. infra's kubectl contexts are removed.");
    Ok(())
}

/// `infra tokens`: prints an ExecCredential for kubectl, reusing a cached token while it has more
/// than a minute left.
pub async fn tokens(args: TokensArgs) -> Result<(), String> {
    let config = logged_in()?;
    let cache_key = format!("{}|{}", config.server, args.cluster);
    let mut cache = config::cached_tokens().unwrap_or_default();
    let now = crate::server::now();
    let token = match cache.get(&cache_key).filter(|t| t.expires_at - now > TOKEN_MARGIN_MS) {
        Some(t) => t.clone(),
        None => {
            let issued = client(&config.server, &config.trust, Some(&config.access_key))?.token(&args.cluster).await?;
            let t = CachedToken { token: issued.token, expires_at: issued.expires_at };
            cache.retain(|_, t| t.expires_at > now);
            cache.insert(cache_key, t.clone());
            config::save_tokens(&cache)?;
            t
        }
    };
    say!("{}", exec_credential(&token.token, token.expires_at)?);
    Ok(())
}

/// The `client.authentication.k8s.io/v1` ExecCredential kubectl reads from a credential plugin.
pub fn exec_credential(token: &str, expires_at_ms: i64) -> Result<String, String> {
    let at = time::OffsetDateTime::from_unix_timestamp(expires_at_ms / 1000).map_err(|e| e.to_string())?;
    let stamp = at.format(&time::format_description::well_known::Rfc3339).map_err(|e| e.to_string())?;
    Ok(json!({
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": token, "expirationTimestamp": stamp},
    })
    .to_string())
}
