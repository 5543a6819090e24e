//! Settings of `infra server`: flags, each with an environment variable.

use std::path::PathBuf;

#[derive(Clone, Debug, clap::Args)]
pub struct ServerConfig {
    /// Where the server keeps its data (the SQLite database and the first admin's one-time password).
    #[arg(long, env = "INFRA_DATA_DIR", default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,

    /// Database URL: `sqlite://PATH` or `postgres://USER:PASSWORD@HOST/DB`. Default: SQLite in the data directory.
    #[arg(long, env = "INFRA_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Address to listen on. Default: `site-addr` in Leptos.toml (127.0.0.1:3000).
    #[arg(long, env = "INFRA_LISTEN")]
    pub listen: Option<std::net::SocketAddr>,

    /// The URL people use to reach the server (printed at start; https makes cookies Secure).
    #[arg(long, env = "INFRA_URL")]
    pub url: Option<String>,

    /// Email of the first admin, created with a one-time password when the database has no users.
    #[arg(long, env = "INFRA_ADMIN_EMAIL", default_value = "admin@infra.local")]
    pub admin_email: String,

    /// The Leptos site settings file (where the console's compiled assets are).
    #[arg(long, env = "INFRA_LEPTOS_CONFIG", default_value = "Leptos.toml")]
    pub leptos_config: PathBuf,

    /// PEM certificate chain to serve HTTPS with (needs --tls-key). Default: a certificate from the
    /// server's own CA, which is created in the data directory at first start.
    #[arg(long, env = "INFRA_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "INFRA_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Serve plain HTTP: only behind a load balancer or proxy that terminates TLS.
    #[arg(long, env = "INFRA_NO_TLS", conflicts_with_all = ["tls_cert", "tls_key"])]
    pub no_tls: bool,

    /// Seconds between checks of every identity-provider user with their provider (continuous
    /// verification: group changes and removals at the provider take effect within one interval).
    #[arg(long, env = "INFRA_VERIFY_INTERVAL_SECS", default_value_t = 300)]
    pub verify_interval_secs: u64,

    /// Load balancers or reverse proxies whose `X-Forwarded-For` names the client (addresses or networks,
    /// comma-separated, e.g. `10.0.0.0/8`). From anyone else the header is ignored, so a client cannot pick
    /// the address its sign-in attempts are counted against.
    #[arg(long = "trusted-proxy", env = "INFRA_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Hours a console session lasts at most from its sign-in, however active (besides the 12-hour idle timeout).
    #[arg(long, env = "INFRA_SESSION_MAX_AGE_HOURS", default_value_t = 168)]
    pub session_max_age_hours: u64,
    /// Seconds a provider user may stay unverifiable (the provider unreachable, answering 5xx or without
    /// an ID token) before being disabled. A definite refusal disables at once. Default: 24 hours.
    #[arg(long, env = "INFRA_VERIFY_GRACE_PERIOD_SECS", default_value_t = 86_400)]
    pub verify_grace_period_secs: u64,

    /// Mark session cookies Secure. Default: when --url is https.
    #[arg(long, env = "INFRA_SECURE_COOKIES")]
    pub secure_cookies: Option<bool>,
}

fn default_data_dir() -> PathBuf {
    match std::env::var_os("XDG_DATA_HOME") {
        Some(dir) => PathBuf::from(dir).join("infra"),
        None => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".local/share/infra"),
            None => PathBuf::from(".infra-data"),
        },
    }
}

impl ServerConfig {
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| format!("sqlite://{}?mode=rwc", self.data_dir.join("infra.db").display()))
    }

    pub fn secure_cookies(&self) -> bool {
        self.secure_cookies.unwrap_or_else(|| self.url.as_deref().is_some_and(|u| u.starts_with("https://")))
    }

    /// The `iss` of the tokens this server signs: its URL, which connectors learn from
    /// `/.well-known/openid-configuration`.
    pub fn issuer(&self) -> String {
        self.url.clone().unwrap_or_else(|| "infra".into()).trim_end_matches('/').to_string()
    }

    /// The key that encrypts signing keys at rest (unless `INFRA_MASTER_KEY` is set). Replicas must share it.
    pub fn master_key_file(&self) -> PathBuf {
        self.data_dir.join("master.key")
    }

    /// The server's own CA (certificate; the key is next to it), used when no --tls-cert is given.
    pub fn ca_file(&self) -> PathBuf {
        self.data_dir.join("server-ca.crt")
    }

    /// File holding the first admin's one-time password until it is changed.
    pub fn initial_password_file(&self) -> PathBuf {
        self.data_dir.join("initial-admin-password")
    }
}
