//! sea-orm entities, one module per table of `migrations/` (as they stand after the last migration).
//! Relations are resolved in the services, which keeps the entities plain.

macro_rules! no_relations {
    () => {
        #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
        pub enum Relation {}
        impl ActiveModelBehavior for ActiveModel {}
    };
}

pub mod user {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "users")]
    pub struct Model {
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
    no_relations!();
}

pub mod group {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "groups")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub name: String,
        pub name_lc: String,
        pub source: String,
        pub created_at: i64,
        /// a provider group's key at its provider (see migrations/0009); empty for a local group
        pub external_id: String,
    }
    no_relations!();
}

pub mod group_member {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "group_members")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub group_id: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: i64,
        pub created_at: i64,
    }
    no_relations!();
}

pub mod destination {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "destinations")]
    pub struct Model {
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
    no_relations!();
}

pub mod grant {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "grants")]
    pub struct Model {
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
    no_relations!();
}

pub mod access_key {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "access_keys")]
    pub struct Model {
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
    no_relations!();
}

pub mod audit_event {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_events")]
    pub struct Model {
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
    no_relations!();
}

pub mod session {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sessions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id_hash: String,
        pub user_id: Option<i64>,
        pub data: String,
        pub expires_at: i64,
    }
    no_relations!();
}

pub mod setting {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "settings")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub value: String,
    }
    no_relations!();
}
