//! `infra`: one binary, several roles: `infra server`, `infra connector`; the CLI roles are subcommands too.

use clap::{CommandFactory, Parser, Subcommand};
use infra::cli::admin;
use infra::server::config::ServerConfig;

#[derive(Parser)]
#[command(name = "infra", version, about = "Manage who may reach which Kubernetes clusters and namespaces")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: the console, the REST API and the connector endpoints.
    Server(ServerConfig),
    /// Run the connector for one cluster: registration, RBAC bindings, the kubectl proxy.
    Connector(infra::connector::ConnectorConfig),
    /// Log in to a server (password, --key or $INFRA_ACCESS_KEY) and write kubectl contexts for every cluster you can reach.
    Login(infra::cli::LoginArgs),
    /// List the clusters and namespaces you can reach, and bring the kubectl contexts up to date.
    List(infra::cli::ListArgs),
    /// Switch kubectl to infra:<cluster>[.<namespace>].
    Use {
        /// cluster or cluster.namespace
        target: String,
    },
    /// Remove infra's kubectl contexts and the stored key (revoking it on the server).
    Logout(infra::cli::LogoutArgs),
    /// The kubectl credential plugin: print an ExecCredential with a short-lived token for a cluster.
    Tokens(infra::cli::TokensArgs),
    /// Grant and remove roles on clusters and namespaces, and list grants.
    #[command(subcommand)]
    Grants(admin::GrantsCommand),
    /// Manage local users.
    #[command(subcommand)]
    Users(admin::UsersCommand),
    /// Manage groups and their members.
    #[command(subcommand)]
    Groups(admin::GroupsCommand),
    /// Manage access keys (yours, everyone's, and connector keys).
    #[command(subcommand)]
    Keys(admin::KeysCommand),
    /// List and remove clusters.
    #[command(subcommand)]
    Destinations(admin::DestinationsCommand),
    /// Manage identity providers.
    #[command(subcommand)]
    Providers(admin::ProvidersCommand),
    /// Where the CLI points and as whom: server, version, user, groups, infra role.
    Info(infra::cli::output::FormatArg),
    /// Print a shell completion script (names of clusters, users and groups come from the server):
    /// source <(infra completion bash)
    Completion { shell: clap_complete::Shell },
    /// Print the version.
    Version,
}

fn main() {
    // the shell asking for completions (`COMPLETE=bash infra -- …`): answered here, before anything else
    clap_complete::CompleteEnv::with_factory(Cli::command).var(infra::cli::complete::VAR).complete();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("infra: cannot start: {e}");
            std::process::exit(1);
        }
    };
    runtime.block_on(run());
}

async fn run() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,sea_orm=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Version => {
            infra::cli::write_out(format!("infra {}\n", env!("CARGO_PKG_VERSION")).as_bytes());
            Ok(())
        }
        Command::Login(args) => infra::cli::login(args).await,
        Command::List(args) => infra::cli::list(args).await,
        Command::Use { target } => infra::cli::use_context(&target),
        Command::Logout(args) => infra::cli::logout(args).await,
        Command::Tokens(args) => infra::cli::tokens(args).await,
        Command::Grants(c) => admin::grants(c).await,
        Command::Users(c) => admin::users(c).await,
        Command::Groups(c) => admin::groups(c).await,
        Command::Keys(c) => admin::keys(c).await,
        Command::Destinations(c) => admin::destinations(c).await,
        Command::Providers(c) => admin::providers(c).await,
        Command::Info(f) => admin::info(f.format).await,
        Command::Completion { shell } => infra::cli::complete::registration(shell).map(|script| infra::cli::write_out(&script)),
        Command::Server(config) => run_server(config).await,
        Command::Connector(config) => infra::connector::run(config).await,
    };
    if let Err(message) = result {
        eprintln!("infra: {message}");
        std::process::exit(1);
    }
}

async fn run_server(config: ServerConfig) -> Result<(), String> {
    // Under cargo-leptos the LEPTOS_* variables say where the site is; otherwise Leptos.toml does.
    let path = config.leptos_config.to_string_lossy().to_string();
    let leptos = if std::env::var_os("LEPTOS_OUTPUT_NAME").is_none() && config.leptos_config.exists() {
        leptos::config::get_configuration(Some(&path))
    } else {
        leptos::config::get_configuration(None)
    }
    .map_err(|e| format!("cannot read the site settings {path}: {e}"))?;
    infra::server::web::serve(config, leptos.leptos_options).await
}
