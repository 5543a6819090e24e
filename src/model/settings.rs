//! Settings an admin changes.

use serde::{Deserialize, Serialize};

/// Settings an admin changes in the console or with `PATCH /api/settings`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProductSettings {
    /// the longest lifetime a user may pick for a kubeconfig token
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_max_lifetime_secs: Option<i64>,
    /// the lifetime of the access key a CLI login (`infra login`, password or `--web`) receives
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cli_login_lifetime_secs: Option<i64>,
}
