//! Shell completion. `infra completion SHELL` prints a short script that asks this binary for the
//! completions as you type (`COMPLETE=SHELL infra -- <the words so far>`), so commands and flags come
//! from the binary itself and cluster, namespace, group and user names from the server, with the stored
//! login. Without a login, or with the server out of reach for 3 seconds, names are simply not offered.

use std::ffi::OsStr;
use std::time::Duration;

use clap_complete::engine::CompletionCandidate;
use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Zsh};

use super::session;

/// The environment variable the completion script sets when it asks.
pub const VAR: &str = "COMPLETE";

/// The script to source in `shell`'s start-up file.
pub fn registration(shell: clap_complete::Shell) -> Result<Vec<u8>, String> {
    let adapter: &dyn EnvCompleter = match shell {
        clap_complete::Shell::Bash => &Bash,
        clap_complete::Shell::Zsh => &Zsh,
        clap_complete::Shell::Fish => &Fish,
        clap_complete::Shell::Elvish => &Elvish,
        clap_complete::Shell::PowerShell => &Powershell,
        other => return Err(format!("no completion for {other}: use bash, zsh, fish, elvish or powershell")),
    };
    let mut script = Vec::new();
    adapter.write_registration(VAR, "infra", "infra", "infra", &mut script).map_err(|e| e.to_string())?;
    Ok(script)
}

enum Names {
    Clusters,
    Resources,
    Users,
    Groups,
    Subjects,
}

/// Names from the server that start with what is typed so far.
fn complete(current: &OsStr, names: Names) -> Vec<CompletionCandidate> {
    let typed = current.to_string_lossy().to_string();
    fetch(names).into_iter().filter(|n| n.starts_with(&typed)).map(CompletionCandidate::new).collect()
}

fn fetch(names: Names) -> Vec<String> {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return Vec::new() };
    runtime.block_on(async {
        let Ok(api) = session() else { return Vec::new() };
        let found = async {
            Some(match names {
                Names::Clusters => api.destinations().await.ok()?.into_iter().map(|d| d.name).collect(),
                Names::Resources => api
                    .destinations()
                    .await
                    .ok()?
                    .into_iter()
                    .flat_map(|d| std::iter::once(d.name.clone()).chain(d.namespaces.into_iter().map(move |ns| format!("{}.{ns}", d.name))))
                    .collect(),
                Names::Users => api.users().await.ok()?.into_iter().map(|u| u.email).collect(),
                Names::Groups => api.groups().await.ok()?.into_iter().map(|g| g.name).collect(),
                Names::Subjects => {
                    let mut all: Vec<String> = api.users().await.ok()?.into_iter().map(|u| u.email).collect();
                    all.extend(api.groups().await.ok()?.into_iter().map(|g| g.name));
                    all
                }
            })
        };
        tokio::time::timeout(Duration::from_secs(3), found).await.ok().flatten().unwrap_or_default()
    })
}

pub fn clusters(current: &OsStr) -> Vec<CompletionCandidate> {
    complete(current, Names::Clusters)
}

/// Clusters and their namespaces, `cluster.namespace`.
pub fn resources(current: &OsStr) -> Vec<CompletionCandidate> {
    complete(current, Names::Resources)
}

pub fn users(current: &OsStr) -> Vec<CompletionCandidate> {
    complete(current, Names::Users)
}

pub fn groups(current: &OsStr) -> Vec<CompletionCandidate> {
    complete(current, Names::Groups)
}

/// Users' emails and groups' names (a grant's subject is either, by `-g`).
pub fn subjects(current: &OsStr) -> Vec<CompletionCandidate> {
    complete(current, Names::Subjects)
}
