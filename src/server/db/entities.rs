//! sea-orm entities, one module per table of `migrations/` (as they stand after the last migration).
//! Relations are resolved in the services, which keeps the entities plain.

/// `entity! { module, "table", fields }`: the module `module` with the entity of `table`, whose model has
/// these fields (attributes and doc comments included), and no relations.
macro_rules! entity {
    ($module:ident, $table:literal, $($fields:tt)*) => {
        pub mod $module {
            use sea_orm::entity::prelude::*;

            #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
            #[sea_orm(table_name = $table)]
            pub struct Model {
                $($fields)*
            }

            #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
            pub enum Relation {}

            impl ActiveModelBehavior for ActiveModel {}
        }
    };
}

entity! { user, "users",
    #[sea_orm(primary_key)]
    pub id: i64,
    pub kind: String,
    pub email: String,
    pub name: String,
    pub name_lc: String,
    pub password_hash: Option<String>,
    pub must_change_password: bool,
    pub provider: String,
    pub disabled: bool,
    pub failed_logins: i32,
    pub locked_until: Option<i64>,
    pub last_seen_at: Option<i64>,
    pub created_at: i64,
}

entity! { group, "groups",
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub name_lc: String,
    pub source: String,
    pub created_at: i64,
    /// a provider group's key at its provider (see migrations/0009); empty for a local group
    pub external_id: String,
}

entity! { group_member, "group_members",
    #[sea_orm(primary_key, auto_increment = false)]
    pub group_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i64,
    pub created_at: i64,
}

entity! { destination, "destinations",
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub unique_id: String,
    pub endpoint: String,
    pub ca: String,
    pub kubernetes_version: String,
    pub connector_version: String,
    pub namespaces: String,
    pub roles: String,
    pub last_seen_at: Option<i64>,
    pub created_at: i64,
    pub problems: String,
}

entity! { grant, "grants",
    #[sea_orm(primary_key)]
    pub id: i64,
    pub subject_kind: String,
    pub subject_id: i64,
    pub role: String,
    pub destination: String,
    pub namespace: String,
    pub created_by: Option<i64>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

entity! { access_key, "access_keys",
    #[sea_orm(primary_key)]
    pub id: i64,
    pub key_id: String,
    pub secret_hash: String,
    pub name: String,
    pub user_id: i64,
    pub destination: Option<String>,
    pub expires_at: i64,
    pub inactivity_timeout_secs: Option<i64>,
    pub last_used_at: Option<i64>,
    pub created_at: i64,
}

entity! { audit_event, "audit_events",
    #[sea_orm(primary_key)]
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub source: String,
    pub detail: String,
}

entity! { session, "sessions",
    #[sea_orm(primary_key, auto_increment = false)]
    pub id_hash: String,
    pub user_id: Option<i64>,
    pub data: String,
    pub expires_at: i64,
}

entity! { setting, "settings",
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub value: String,
}

entity! { signing_key, "signing_keys",
    #[sea_orm(primary_key)]
    pub id: i64,
    pub kid: String,
    pub algorithm: String,
    /// encrypted with the master key
    pub private_key: String,
    pub public_key: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    pub expires_at: Option<i64>,
}

entity! { revocation, "revocations",
    #[sea_orm(primary_key)]
    pub id: i64,
    pub kind: String,
    pub subject: String,
    pub until_at: i64,
    pub created_at: i64,
}

entity! { certificate_request, "certificate_requests",
    #[sea_orm(primary_key)]
    pub id: i64,
    pub destination: String,
    pub user_id: i64,
    pub csr: String,
    pub expiration_secs: i64,
    pub certificate: String,
    pub api_server: String,
    pub api_server_ca: String,
    pub error: String,
    pub created_at: i64,
}

entity! { provider, "providers",
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub issuer: String,
    pub client_id: String,
    /// encrypted
    pub client_secret: String,
    /// space-separated
    pub scopes: String,
    pub groups_claim: String,
    /// comma-separated email domains; empty: any
    pub allowed_domains: String,
    pub created_at: i64,
    pub directory_url: String,
    /// encrypted
    pub directory_secret: String,
    pub directory_admin: String,
}

entity! { provider_user, "provider_users",
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i64,
    pub provider_id: i64,
    pub subject: String,
    /// encrypted; empty when the IdP gave none
    pub refresh_token: String,
    pub verified_at: Option<i64>,
    pub verify_failing_since: Option<i64>,
    pub verify_failures: i64,
    pub verify_retry_at: Option<i64>,
    pub verify_error: String,
}

entity! { device_login, "device_logins",
    #[sea_orm(primary_key)]
    pub id: i64,
    /// SHA-256 of the device code, hex
    pub device_code: String,
    pub user_code: String,
    pub client_name: String,
    /// set when approved
    pub user_id: Option<i64>,
    pub expires_at: i64,
    pub created_at: i64,
    /// `INTEGER`: 32 bits on PostgreSQL
    pub redirect_port: Option<i32>,
    pub client_addr: String,
}

entity! { lease, "leases",
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub holder: String,
    pub expires_at: i64,
}
