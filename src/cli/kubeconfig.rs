//! Writes infra's entries into the user's kubeconfig: the first file in `KUBECONFIG`, else
//! `~/.kube/config`. Only entries named `infra:...` are added, replaced or removed, and of the server's
//! answer only such entries are taken, each user being this CLI's own credential plugin; every other
//! cluster, user and context is left as it was (comments in the file are not kept, as with kubectl).
//! The file is written atomically with mode 0600.

use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::server::services::is_dns_label;
use crate::server::services::kubeconfig::{PREFIX, exec_user};

const SECTIONS: [&str; 3] = ["clusters", "users", "contexts"];

pub fn path() -> Result<PathBuf, String> {
    if let Some(list) = std::env::var_os("KUBECONFIG")
        && let Some(first) = std::env::split_paths(&list).find(|p| !p.as_os_str().is_empty())
    {
        return Ok(first);
    }
    let home = std::env::var_os("HOME").ok_or("cannot find your home directory: set HOME or KUBECONFIG")?;
    Ok(PathBuf::from(home).join(".kube").join("config"))
}

fn read() -> Result<Map<String, Value>, String> {
    let path = path()?;
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    if text.trim().is_empty() {
        let mut m = Map::new();
        m.insert("apiVersion".into(), "v1".into());
        m.insert("kind".into(), "Config".into());
        return Ok(m);
    }
    match serde_saphyr::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(format!("{} is not a kubeconfig", path.display())),
        Err(e) => Err(format!("cannot parse {}: {e}; infra did not change it", path.display())),
    }
}

fn write(config: &Map<String, Value>) -> Result<(), String> {
    let text = serde_saphyr::to_string(&Value::Object(config.clone())).map_err(|e| format!("cannot write the kubeconfig: {e}"))?;
    crate::files::write_private(&path()?, text.trim_end())
}

fn is_ours(entry: &Value) -> bool {
    entry["name"].as_str().is_some_and(|n| n.starts_with(PREFIX))
}

/// Of a kubeconfig the server sent, what infra may write: clusters named `infra:<cluster>` with their
/// https address and CA only; for each, a user of the same name that runs the credential plugin
/// `command` (this CLI's own binary), made here whatever the server sent; contexts named `infra:…`
/// that use such a cluster with its own user (and a namespace). So the server can neither replace the
/// person's other entries, nor point an infra context at their other credentials, nor have kubectl
/// run a command of its choosing.
pub fn ours_only(fresh: &Value, command: &str, server_url: &str) -> Value {
    let mut clusters = Vec::new();
    let mut users = Vec::new();
    for entry in fresh["clusters"].as_array().into_iter().flatten() {
        let Some(name) = entry["name"].as_str() else { continue };
        let Some(cluster) = name.strip_prefix(PREFIX).filter(|c| is_dns_label(c)) else { continue };
        let Some(server) = entry["cluster"]["server"].as_str().filter(|s| s.starts_with("https://")) else { continue };
        if clusters.iter().any(|c: &Value| c["name"] == name) {
            continue;
        }
        let mut kept = Map::new();
        kept.insert("server".into(), server.into());
        if let Some(ca) = entry["cluster"]["certificate-authority-data"].as_str() {
            kept.insert("certificate-authority-data".into(), ca.into());
        }
        clusters.push(serde_json::json!({"name": name, "cluster": kept}));
        users.push(serde_json::json!({"name": name, "user": exec_user(command, cluster, server_url)}));
    }
    let mut contexts: Vec<Value> = Vec::new();
    for entry in fresh["contexts"].as_array().into_iter().flatten() {
        let Some(name) = entry["name"].as_str().filter(|n| n.starts_with(PREFIX)) else { continue };
        let context = &entry["context"];
        let Some(cluster) = context["cluster"].as_str().filter(|c| clusters.iter().any(|k| k["name"] == *c)) else { continue };
        if context["user"].as_str() != Some(cluster) || contexts.iter().any(|c| c["name"] == name) {
            continue;
        }
        let mut kept = Map::new();
        kept.insert("cluster".into(), cluster.into());
        kept.insert("user".into(), cluster.into());
        match context.get("namespace").map(|n| n.as_str().filter(|n| is_dns_label(n))) {
            None => {}
            Some(Some(namespace)) => {
                kept.insert("namespace".into(), namespace.into());
            }
            Some(None) => continue,
        }
        contexts.push(serde_json::json!({"name": name, "context": kept}));
    }
    serde_json::json!({"clusters": clusters, "users": users, "contexts": contexts})
}

/// The context names of a kubeconfig.
pub fn context_names(config: &Value) -> Vec<String> {
    config["contexts"].as_array().into_iter().flatten().filter_map(|c| c["name"].as_str().map(String::from)).collect()
}

/// Replaces infra's entries with those of `fresh` (made by [`ours_only`]). The current context
/// is kept unless it was one of infra's that no longer exists, or there was none.
pub fn merge(fresh: &Value) -> Result<(), String> {
    let mut config = read()?;
    for section in SECTIONS {
        let mut entries: Vec<Value> = config.get(section).and_then(Value::as_array).cloned().unwrap_or_default();
        entries.retain(|e| !is_ours(e));
        entries.extend(fresh[section].as_array().cloned().unwrap_or_default());
        config.insert(section.into(), Value::Array(entries));
    }
    let ours = context_names(fresh);
    let current = config.get("current-context").and_then(Value::as_str).unwrap_or("").to_string();
    if current.is_empty() || (current.starts_with(PREFIX) && !ours.contains(&current)) {
        match ours.first() {
            Some(first) => config.insert("current-context".into(), first.clone().into()),
            None => config.remove("current-context"),
        };
    }
    write(&config)
}

/// Removes every infra entry; unsets the current context if it was one of them.
pub fn remove_ours() -> Result<(), String> {
    let mut config = read()?;
    for section in SECTIONS {
        if let Some(Value::Array(entries)) = config.get_mut(section) {
            entries.retain(|e| !is_ours(e));
        }
    }
    if config.get("current-context").and_then(Value::as_str).is_some_and(|c| c.starts_with(PREFIX)) {
        config.remove("current-context");
    }
    write(&config)
}

/// infra's context names in the kubeconfig.
pub fn our_contexts() -> Result<Vec<String>, String> {
    let config = read()?;
    Ok(config
        .get("contexts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| is_ours(c))
        .filter_map(|c| c["name"].as_str().map(String::from))
        .collect())
}

pub fn use_context(name: &str) -> Result<(), String> {
    let mut config = read()?;
    config.insert("current-context".into(), name.into());
    write(&config)
}
