//! The admin commands: grants, users, groups, keys, destinations, providers and info. Each is a thin
//! layer on the typed [`crate::client::Client`]: the server's services decide what is allowed, and its
//! refusals are printed as they come, one sentence each.

use clap_complete::engine::ArgValueCompleter;

use super::complete;
use super::output::{Format, FormatArg, Table, confirm, print, when};
use super::session;
use crate::client::Client;
use crate::model::*;

#[derive(clap::Subcommand)]
pub enum GrantsCommand {
    /// Grant a role on a cluster or namespace: infra grants add SUBJECT RESOURCE --role ROLE [-g]
    Add {
        #[command(flatten)]
        grant: GrantArgs,
        /// When the grant ends: a duration (8h, 30m, 7d) or a time (2026-12-31T18:00Z); default never
        #[arg(long)]
        expires: Option<String>,
    },
    /// Remove a grant: infra grants remove SUBJECT RESOURCE --role ROLE [-g]
    Remove {
        #[command(flatten)]
        grant: GrantArgs,
    },
    /// List grants, users' and groups' apart
    List {
        /// Only this user's grants
        #[arg(long, conflicts_with = "group", add = ArgValueCompleter::new(complete::users))]
        user: Option<String>,
        /// Only this group's grants
        #[arg(long, add = ArgValueCompleter::new(complete::groups))]
        group: Option<String>,
        /// Only grants on this cluster (and its namespaces)
        #[arg(long, add = ArgValueCompleter::new(complete::clusters))]
        cluster: Option<String>,
        /// Only this role
        #[arg(long)]
        role: Option<String>,
        /// With --user: also the grants the user holds through groups
        #[arg(long, requires = "user")]
        inherited: bool,
        #[command(flatten)]
        format: FormatArg,
    },
}

#[derive(clap::Args)]
pub struct GrantArgs {
    /// A user's email, or with -g a group's name
    #[arg(add = ArgValueCompleter::new(complete::subjects))]
    pub subject: String,
    /// cluster, or cluster.namespace (infra for infra's own roles)
    #[arg(add = ArgValueCompleter::new(complete::resources))]
    pub resource: String,
    /// The role, e.g. view, edit, admin, cluster-admin
    #[arg(long)]
    pub role: String,
    /// SUBJECT is a group
    #[arg(short = 'g', long)]
    pub group: bool,
}

impl GrantArgs {
    fn subject(&self) -> String {
        let kind = if self.group { SubjectKind::Group } else { SubjectKind::User };
        format!("{}:{}", kind.as_str(), self.subject.trim())
    }
}

#[derive(clap::Subcommand)]
pub enum UsersCommand {
    /// Add a local user; prints the one-time password they sign in with
    Add {
        email: String,
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List users
    List(FormatArg),
    /// Set a new password (asked for, not echoed); the user must change it at their next sign-in
    Edit {
        #[arg(add = ArgValueCompleter::new(complete::users))]
        email: String,
        #[arg(long, required = true)]
        password: bool,
    },
    /// Disable a user: their sessions end and the clusters refuse their tokens
    Disable {
        #[arg(add = ArgValueCompleter::new(complete::users))]
        email: String,
    },
    /// Enable a disabled user
    Enable {
        #[arg(add = ArgValueCompleter::new(complete::users))]
        email: String,
    },
    /// Remove a user, their grants, memberships and keys
    Remove {
        #[arg(add = ArgValueCompleter::new(complete::users))]
        email: String,
        /// Do not ask
        #[arg(long)]
        force: bool,
    },
}

#[derive(clap::Subcommand)]
pub enum GroupsCommand {
    /// Add a local group
    Add { name: String },
    /// List groups with their member counts and first members
    List(FormatArg),
    /// Add a user to a local group
    Adduser {
        #[arg(add = ArgValueCompleter::new(complete::users))]
        email: String,
        #[arg(add = ArgValueCompleter::new(complete::groups))]
        group: String,
    },
    /// Remove a user from a local group
    Removeuser {
        #[arg(add = ArgValueCompleter::new(complete::users))]
        email: String,
        #[arg(add = ArgValueCompleter::new(complete::groups))]
        group: String,
    },
    /// Remove a group and its grants
    Remove {
        #[arg(add = ArgValueCompleter::new(complete::groups))]
        name: String,
        /// Do not ask
        #[arg(long)]
        force: bool,
    },
}

#[derive(clap::Subcommand)]
pub enum KeysCommand {
    /// Create an access key (shown once): for you, or with --connector for a cluster's connector
    Add {
        #[arg(long)]
        name: Option<String>,
        /// How long the key lives: 30d, 12h (default: the server's, 30 days)
        #[arg(long, conflicts_with = "connector")]
        expiry: Option<String>,
        /// Revoke the key when it is unused this long: 3d, 8h
        #[arg(long, conflicts_with = "connector")]
        inactivity_timeout: Option<String>,
        /// A key for this cluster's connector (the cluster is added as pending if it is new)
        #[arg(long, add = ArgValueCompleter::new(complete::clusters))]
        connector: Option<String>,
    },
    /// List your keys (--all: everyone's)
    List {
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Revoke a key, by name or id
    Remove { key: String },
}

#[derive(clap::Subcommand)]
pub enum DestinationsCommand {
    /// List clusters
    List(FormatArg),
    /// Remove a cluster and its grants
    Remove {
        #[arg(add = ArgValueCompleter::new(complete::clusters))]
        name: String,
        /// Do not ask
        #[arg(long)]
        force: bool,
    },
}

#[derive(clap::Args)]
pub struct ProviderFields {
    /// The issuer URL (oidc), Okta domain (okta), tenant id or domain (azure); empty for google
    #[arg(long, alias = "url")]
    pub issuer: Option<String>,
    #[arg(long)]
    pub client_id: Option<String>,
    /// Read the client secret from this file (otherwise it is asked for, not echoed)
    #[arg(long)]
    pub client_secret_file: Option<std::path::PathBuf>,
    /// Space- or comma-separated scopes
    #[arg(long)]
    pub scopes: Option<String>,
    #[arg(long)]
    pub groups_claim: Option<String>,
    /// Comma-separated email domains allowed to sign in (empty: any)
    #[arg(long)]
    pub allowed_domains: Option<String>,
}

#[derive(clap::Subcommand)]
pub enum ProvidersCommand {
    /// Add an identity provider
    Add {
        name: String,
        /// oidc, okta, google or azure
        #[arg(long)]
        kind: String,
        #[command(flatten)]
        fields: ProviderFields,
    },
    /// List identity providers
    List(FormatArg),
    /// Change a provider; what is not given stays (--client-secret-prompt asks for a new secret)
    Edit {
        name: String,
        #[command(flatten)]
        fields: ProviderFields,
        /// Ask for a new client secret
        #[arg(long, conflicts_with = "client_secret_file")]
        client_secret_prompt: bool,
    },
    /// Remove a provider, its users' sign-ins and its groups
    Remove {
        name: String,
        /// Do not ask
        #[arg(long)]
        force: bool,
    },
}

/// A duration as people write it: `90s`, `30m`, `8h`, `7d`, `2w`; in seconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let bad = || format!("{text:?} is not a duration: write e.g. 30m, 8h or 7d");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = text.split_at(split);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(unit).filter(|s| *s > 0).ok_or_else(bad)
}

/// When a grant ends: a duration from `now`, or an RFC 3339 time (seconds may be left out:
/// `2026-12-31T18:00Z`), or a date (midnight UTC).
pub fn parse_expiry(text: &str, now: Millis) -> Result<Millis, String> {
    if let Ok(secs) = parse_duration(text) {
        return Ok(now + secs * 1000);
    }
    use time::format_description::well_known::Rfc3339;
    let t = text.trim();
    let candidates = [t.to_string(), with_seconds(t), format!("{t}T00:00:00Z")];
    candidates
        .iter()
        .find_map(|c| time::OffsetDateTime::parse(c, &Rfc3339).ok())
        .map(|at| (at.unix_timestamp_nanos() / 1_000_000) as Millis)
        .ok_or_else(|| format!("--expires {t:?}: give a duration (8h, 7d) or a time such as 2026-12-31T18:00Z"))
}

/// `2026-12-31T18:00Z` → `2026-12-31T18:00:00Z` (RFC 3339 needs the seconds).
fn with_seconds(t: &str) -> String {
    let Some(at) = t.find('T') else { return t.to_string() };
    let zone = t[at..].find(['Z', 'z', '+', '-']).map_or(t.len(), |z| at + z);
    if t[at..zone].matches(':').count() == 1 { format!("{}:00{}", &t[..zone], &t[zone..]) } else { t.to_string() }
}

pub async fn grants(command: GrantsCommand) -> Result<(), String> {
    let api = session()?;
    match command {
        GrantsCommand::Add { grant, expires } => {
            let expires_at = expires.as_deref().map(|e| parse_expiry(e, crate::server::now())).transpose()?;
            let new = NewGrant { subject: grant.subject(), role: grant.role.clone(), resource: grant.resource.clone(), expires_at };
            api.add_grant(&new).await?;
            let until = expires_at.map(|at| format!(" until {}", when(Some(at)))).unwrap_or_default();
            say!("Granted {} to {} on {}{until}.", grant.role, grant.subject, grant.resource);
        }
        GrantsCommand::Remove { grant } => {
            let found = find_grant(&api, &grant).await?;
            api.remove_grant(found.id).await?;
            say!("Removed {} from {} on {}.", grant.role, grant.subject, grant.resource);
        }
        GrantsCommand::List { user, group, cluster, role, inherited, format } => {
            let subject = user.map(|u| format!("user:{u}")).or(group.map(|g| format!("group:{g}"))).unwrap_or_default();
            let inherited = inherited.to_string();
            let query = [
                ("subject", subject.as_str()),
                ("cluster", cluster.as_deref().unwrap_or("")),
                ("role", role.as_deref().unwrap_or("")),
                ("inherited", &inherited),
            ];
            let list = api.grants(&query).await?;
            print(format.format, &list, "No grants match.", || {
                let mut users = Table::new(&["USER", "ROLE", "RESOURCE", "EXPIRES"]);
                let mut groups = Table::new(&["GROUP", "ROLE", "RESOURCE", "EXPIRES"]);
                for g in &list {
                    let table = if g.subject.kind == SubjectKind::User { &mut users } else { &mut groups };
                    table.row(vec![g.subject.name.clone(), g.role.clone(), g.resource.clone(), g.expires_at.map_or("never".into(), |at| when(Some(at)))]);
                }
                vec![users, groups]
            })?;
        }
    }
    Ok(())
}

/// The one grant `remove` names: the subject's grant of that role on exactly that resource.
async fn find_grant(api: &Client, grant: &GrantArgs) -> Result<Grant, String> {
    let subject = grant.subject();
    let cluster = Resource::parse(&grant.resource).map_err(|e| format!("{}: {e}", grant.resource))?.destination;
    let list = api.grants(&[("subject", &subject), ("cluster", &cluster), ("role", &grant.role)]).await?;
    let resource = grant.resource.trim();
    list.into_iter()
        .find(|g| g.resource == resource)
        .ok_or_else(|| format!("{} has no {} grant on {resource}: see infra grants list", grant.subject, grant.role))
}

pub async fn users(command: UsersCommand) -> Result<(), String> {
    let api = session()?;
    match command {
        UsersCommand::Add { email, name } => {
            let created = api.create_user(&CreateUser { email, name, password: None }).await?;
            say!("Added {}.", created.user.email);
            if let Some(password) = created.one_time_password {
                say!("One-time password: {password}\n(they sign in with it once, then choose their own)");
            }
        }
        UsersCommand::List(format) => {
            let list = api.users().await?;
            print(format.format, &list, "No users.", || {
                let mut t = Table::new(&["USER", "NAME", "PROVIDER", "STATUS", "LAST SEEN"]);
                for u in &list {
                    let status = if u.disabled { "disabled" } else { "active" };
                    t.row(vec![u.email.clone(), u.name.clone(), u.provider.clone(), status.into(), when(u.last_seen_at)]);
                }
                vec![t]
            })?;
        }
        UsersCommand::Edit { email, password: _ } => {
            let user = api.user(&email).await?;
            let password = super::secret("New password for ".to_string() + &user.email + ": ")?;
            api.update_user(user.id, &UserUpdate { password: Some(password), disabled: None }).await?;
            say!("Changed the password of {}; they choose their own at their next sign-in.", user.email);
        }
        UsersCommand::Disable { email } => set_disabled(&api, &email, true).await?,
        UsersCommand::Enable { email } => set_disabled(&api, &email, false).await?,
        UsersCommand::Remove { email, force } => {
            let user = api.user(&email).await?;
            confirm(&format!("Remove {} with their grants, memberships and keys", user.email), force)?;
            api.delete_user(user.id).await?;
            say!("Removed {}.", user.email);
        }
    }
    Ok(())
}

async fn set_disabled(api: &Client, email: &str, disabled: bool) -> Result<(), String> {
    let user = api.user(email).await?;
    api.update_user(user.id, &UserUpdate { disabled: Some(disabled), password: None }).await?;
    if disabled {
        say!("Disabled {}: their sessions ended and the clusters refuse their tokens.", user.email);
    } else {
        say!("Enabled {}.", user.email);
    }
    Ok(())
}

/// How many members `groups list` names.
const FIRST_MEMBERS: usize = 3;

pub async fn groups(command: GroupsCommand) -> Result<(), String> {
    let api = session()?;
    match command {
        GroupsCommand::Add { name } => {
            let group = api.create_group(&name).await?;
            say!("Added the group {}.", group.name);
        }
        GroupsCommand::List(format) => {
            let list = api.groups().await?;
            let mut details = Vec::with_capacity(list.len());
            for group in &list {
                details.push(api.get::<GroupDetail>(&format!("/api/groups/{}", group.id)).await?);
            }
            print(format.format, &details, "No groups.", || {
                let mut t = Table::new(&["GROUP", "SOURCE", "MEMBERS", "FIRST MEMBERS"]);
                for d in &details {
                    let first: Vec<&str> = d.members.iter().take(FIRST_MEMBERS).map(|m| m.email.as_str()).collect();
                    let more = if d.members.len() > FIRST_MEMBERS { ", …" } else { "" };
                    t.row(vec![d.group.name.clone(), d.group.source.clone(), d.group.member_count.to_string(), format!("{}{more}", first.join(", "))]);
                }
                vec![t]
            })?;
        }
        GroupsCommand::Adduser { email, group } => {
            let found = api.group(&group).await?;
            api.add_member(found.group.id, &email).await?;
            say!("Added {email} to {}.", found.group.name);
        }
        GroupsCommand::Removeuser { email, group } => {
            let found = api.group(&group).await?;
            let member = found
                .members
                .iter()
                .find(|m| m.email.eq_ignore_ascii_case(email.trim()))
                .ok_or_else(|| format!("{email} is not a member of {}", found.group.name))?;
            api.remove_member(found.group.id, member.id).await?;
            say!("Removed {} from {}.", member.email, found.group.name);
        }
        GroupsCommand::Remove { name, force } => {
            let found = api.group(&name).await?;
            confirm(&format!("Remove the group {} ({} members) and its grants", found.group.name, found.group.member_count), force)?;
            api.delete_group(found.group.id).await?;
            say!("Removed the group {}.", found.group.name);
        }
    }
    Ok(())
}

pub async fn keys(command: KeysCommand) -> Result<(), String> {
    let api = session()?;
    match command {
        KeysCommand::Add { connector: Some(cluster), .. } => {
            let created = api.connector_key(&cluster).await?;
            say!("{}", created.access_key);
            eprintln!("A key for the connector of {cluster}, shown once; it expires {}.", when(Some(created.key.expires_at)));
        }
        KeysCommand::Add { name, expiry, inactivity_timeout, connector: None } => {
            let new = NewAccessKey {
                name: name.unwrap_or_default(),
                ttl_secs: expiry.as_deref().map(parse_duration).transpose()?,
                inactivity_timeout_secs: inactivity_timeout.as_deref().map(parse_duration).transpose()?,
            };
            let created = api.create_key(&new).await?;
            say!("{}", created.access_key);
            eprintln!("The key {:?}, shown once; it expires {}.", created.key.name, when(Some(created.key.expires_at)));
        }
        KeysCommand::List { all, format } => {
            let list = api.keys(all).await?;
            print(format.format, &list, "No access keys.", || {
                let mut t = Table::new(&["NAME", "ID", "OWNER", "EXPIRES", "LAST USED"]);
                for k in &list {
                    t.row(vec![k.name.clone(), k.id.to_string(), k.owner.clone(), when(Some(k.expires_at)), when(k.last_used_at)]);
                }
                vec![t]
            })?;
        }
        KeysCommand::Remove { key } => {
            // an admin may revoke anyone's key; anyone else sees only their own
            let list = match api.keys(true).await {
                Ok(list) => list,
                Err(_) => api.keys(false).await?,
            };
            let wanted = key.trim();
            let matching: Vec<&AccessKey> = list.iter().filter(|k| k.id.to_string() == wanted || k.key_id == wanted || k.name == wanted).collect();
            let found = match matching.as_slice() {
                [one] => *one,
                [] => return Err(format!("no access key {wanted:?}: see infra keys list")),
                _ => return Err(format!("several keys are named {wanted:?}: give the id (infra keys list)")),
            };
            api.revoke_key(found.id).await?;
            say!("Revoked the key {:?} ({}).", found.name, found.owner);
        }
    }
    Ok(())
}

pub async fn destinations(command: DestinationsCommand) -> Result<(), String> {
    let api = session()?;
    match command {
        DestinationsCommand::List(format) => {
            let list = api.destinations().await?;
            print(format.format, &list, "No clusters yet: connect one in the console, or with infra keys add --connector NAME.", || {
                let mut t = Table::new(&["NAME", "STATUS", "LAST SEEN", "KUBERNETES", "NAMESPACES"]);
                for d in &list {
                    let version = if d.kubernetes_version.is_empty() { "-".to_string() } else { d.kubernetes_version.clone() };
                    t.row(vec![d.name.clone(), d.status.label().into(), when(d.last_seen_at), version, d.namespaces.len().to_string()]);
                }
                vec![t]
            })?;
        }
        DestinationsCommand::Remove { name, force } => {
            confirm(&format!("Remove the cluster {name} and its grants"), force)?;
            api.delete_destination(&name).await?;
            say!("Removed the cluster {name}.");
        }
    }
    Ok(())
}

fn words(text: &str) -> Vec<String> {
    text.split([',', ' ']).map(str::trim).filter(|w| !w.is_empty()).map(String::from).collect()
}

/// The client secret: from `--client-secret-file`, else asked for (not echoed on a terminal).
fn client_secret(file: Option<&std::path::Path>) -> Result<String, String> {
    match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            Ok(text.trim().to_string())
        }
        None => super::secret("Client secret: ".to_string()),
    }
}

pub async fn providers(command: ProvidersCommand) -> Result<(), String> {
    let api = session()?;
    match command {
        ProvidersCommand::Add { name, kind, fields } => {
            let new = NewProvider {
                name,
                kind,
                issuer: fields.issuer.unwrap_or_default(),
                client_id: fields.client_id.ok_or("--client-id is required")?,
                client_secret: client_secret(fields.client_secret_file.as_deref())?,
                scopes: fields.scopes.as_deref().map(words),
                groups_claim: fields.groups_claim,
                allowed_domains: fields.allowed_domains.as_deref().map(parse_domain_list).unwrap_or_default(),
                ..Default::default()
            };
            let created = api.create_provider(&new).await?;
            say!("Added the identity provider {} ({}).", created.name, created.kind);
        }
        ProvidersCommand::List(format) => {
            let list = api.providers().await?;
            print(format.format, &list, "No identity providers: people sign in with local accounts.", || {
                let mut t = Table::new(&["PROVIDER", "KIND", "ISSUER", "CLIENT ID", "USERS"]);
                for p in &list {
                    t.row(vec![p.name.clone(), p.kind.clone(), p.issuer.clone(), p.client_id.clone(), p.user_count.to_string()]);
                }
                vec![t]
            })?;
        }
        ProvidersCommand::Edit { name, fields, client_secret_prompt } => {
            let found = api.provider(&name).await?;
            let secret = match (&fields.client_secret_file, client_secret_prompt) {
                (Some(file), _) => Some(client_secret(Some(file))?),
                (None, true) => Some(client_secret(None)?),
                (None, false) => None,
            };
            let change = ProviderUpdate {
                issuer: fields.issuer,
                client_id: fields.client_id,
                client_secret: secret,
                scopes: fields.scopes.as_deref().map(words),
                groups_claim: fields.groups_claim,
                allowed_domains: fields.allowed_domains.as_deref().map(parse_domain_list),
            };
            api.update_provider(found.id, &change).await?;
            say!("Changed the identity provider {}.", found.name);
        }
        ProvidersCommand::Remove { name, force } => {
            let found = api.provider(&name).await?;
            confirm(&format!("Remove the identity provider {} and sign out its {} users", found.name, found.user_count), force)?;
            api.delete_provider(found.id).await?;
            say!("Removed the identity provider {}.", found.name);
        }
    }
    Ok(())
}

/// `infra info`: where the CLI points and as whom.
pub async fn info(format: Format) -> Result<(), String> {
    let api = session()?;
    let me = api.me().await?;
    let info = serde_json::json!({
        "server": api.server(),
        "client_version": env!("CARGO_PKG_VERSION"),
        "user": me.user.email,
        "name": me.user.name,
        "groups": me.groups,
        "infra_role": me.infra_role,
    });
    if format != Format::Table {
        return print(format, &info, "", Vec::new);
    }
    let none = |v: String| if v.is_empty() { "none".to_string() } else { v };
    say!("server:      {}", api.server());
    say!("version:     {}", env!("CARGO_PKG_VERSION"));
    say!("user:        {}", me.user.email);
    say!("groups:      {}", none(me.groups.join(", ")));
    say!("infra role:  {}", none(me.infra_role));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_expiry_times() {
        assert_eq!(parse_duration("8h"), Ok(8 * 3600));
        assert_eq!(parse_duration("30d"), Ok(30 * 86_400));
        assert!(parse_duration("8").is_err() && parse_duration("h").is_err() && parse_duration("0m").is_err() && parse_duration("3y").is_err());
        assert_eq!(parse_expiry("2h", 1_000), Ok(1_000 + 7_200_000));
        let at = 1_798_740_000_000; // 2026-12-31T18:00:00Z
        assert_eq!(parse_expiry("2026-12-31T18:00Z", 0), Ok(at));
        assert_eq!(parse_expiry("2026-12-31T18:00:00Z", 0), Ok(at));
        assert_eq!(parse_expiry("2026-12-31T19:00+01:00", 0), Ok(at));
        assert_eq!(parse_expiry("2026-12-31", 0), Ok(at - 18 * 3_600_000));
        assert!(parse_expiry("tomorrow", 0).is_err());
    }
}
