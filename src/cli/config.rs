//! The CLI's state: which server, the access key, and cached cluster tokens. Kept in the user's config
//! directory (`$INFRA_CONFIG_DIR`, else `$XDG_CONFIG_HOME/infra`, else `~/.config/infra`) in files
//! with mode 0600, written atomically.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CliConfig {
    pub server: String,
    pub access_key: String,
    /// the email the key belongs to
    #[serde(default)]
    pub user: String,
    /// which certificate is trusted for the server
    #[serde(flatten)]
    pub trust: super::trust::Trust,
}

/// A cluster token kept until shortly before it expires, so that kubectl's many calls to
/// `infra tokens` cost one request to the server per token lifetime.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CachedToken {
    pub token: String,
    /// milliseconds since the epoch
    pub expires_at: i64,
}

pub fn dir() -> Result<PathBuf, String> {
    if let Some(d) = std::env::var_os("INFRA_CONFIG_DIR") {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("infra"));
    }
    let home = std::env::var_os("HOME").ok_or("cannot find your home directory: set HOME or INFRA_CONFIG_DIR")?;
    Ok(PathBuf::from(home).join(".config").join("infra"))
}

fn read<T: for<'de> Deserialize<'de> + Default>(name: &str) -> Result<T, String> {
    let path = dir()?.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| format!("{} is damaged ({e}): delete it and run infra login", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn write<T: Serialize>(name: &str, value: &T) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    crate::files::write_private(&dir()?.join(name), &text)
}

pub fn load() -> Result<CliConfig, String> {
    read("config.json")
}

pub fn save(config: &CliConfig) -> Result<(), String> {
    write("config.json", config)
}

/// Removes the stored key and the cached tokens.
pub fn clear() -> Result<(), String> {
    for name in ["config.json", "tokens.json"] {
        match std::fs::remove_file(dir()?.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove {name}: {e}")),
        }
    }
    Ok(())
}

pub fn cached_tokens() -> Result<BTreeMap<String, CachedToken>, String> {
    read("tokens.json")
}

pub fn save_tokens(tokens: &BTreeMap<String, CachedToken>) -> Result<(), String> {
    write("tokens.json", tokens)
}
