//! Users and groups, and how the typeahead shows them.

use super::Millis;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub provider: String,
    pub disabled: bool,
    pub must_change_password: bool,
    pub last_seen_at: Option<Millis>,
    pub created_at: Millis,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub id: i64,
    /// for a provider group a label: its key is `external_id`
    pub name: String,
    /// `local`, or the identity provider's name
    pub source: String,
    /// a provider group's id at the provider (Azure AD object id, Google group email, groups claim
    /// value); empty for a local group, and for a provider group from before groups had keys
    #[serde(default)]
    pub external_id: String,
    pub member_count: i64,
    pub created_at: Millis,
}

/// `GET /api/me`: the caller, their groups and their role on infra itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Whoami {
    #[serde(flatten)]
    pub user: User,
    /// the groups the caller belongs to, by name
    #[serde(default)]
    pub groups: Vec<String>,
    /// `admin`, `view`, or empty: the caller's role on the `infra` resource
    #[serde(default)]
    pub infra_role: String,
}

/// `POST /api/users`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreateUser {
    pub email: String,
    #[serde(default)]
    pub name: String,
    /// none: the server makes a one-time password
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// The answer to `POST /api/users`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreatedUser {
    pub user: User,
    /// when no password was given: the one to sign in with once (then it must be changed)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_time_password: Option<String>,
}

/// A name: `POST /api/groups`, `PATCH /api/groups/{id}`, `POST /api/destinations`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Named {
    pub name: String,
}

/// `POST /api/groups/{id}/members`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewMember {
    /// a user id or email
    pub user: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupDetail {
    pub group: Group,
    pub members: Vec<User>,
}

/// Who a grant is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectKind {
    User,
    Group,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::User => "user",
            SubjectKind::Group => "group",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(SubjectKind::User),
            "group" => Some(SubjectKind::Group),
            _ => None,
        }
    }
}

/// A user or group as the typeahead shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    pub kind: SubjectKind,
    pub id: i64,
    /// email for a user, name for a group
    pub name: String,
    /// display name for a user; for a group the identity provider it comes from, empty for a local one
    pub detail: String,
}

impl Subject {
    /// "user", "group", or "group from corp": what the console shows next to the name.
    pub fn kind_label(&self) -> String {
        match self.kind {
            SubjectKind::Group if !self.detail.is_empty() => format!("group from {}", self.detail),
            kind => kind.as_str().to_string(),
        }
    }

    /// The form value a subject picker submits: `user:<email>` or `group:<name>`.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.name)
    }
}

/// One suggestion of a typeahead: `value` is what the form submits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TypeaheadOption {
    pub value: String,
    pub label: String,
    pub detail: String,
}

/// Where a typeahead's suggestions come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TypeaheadSource {
    /// users and groups (whom a grant is for)
    Subjects,
    Users,
    /// the roles a cluster offers (the typeahead's scope names the cluster), or infra's own
    Roles,
}

impl TypeaheadSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TypeaheadSource::Subjects => "subjects",
            TypeaheadSource::Users => "users",
            TypeaheadSource::Roles => "roles",
        }
    }
}

/// `PATCH /api/users/{id}`: what an admin may change about a user; absent fields stay as they are.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// a new password, which the user must change at their next sign-in
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}
