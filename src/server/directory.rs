//! Groups from a provider's directory, for providers whose ID tokens do not carry them: Microsoft
//! Graph (`GET /me/memberOf`, with the user's access token; the app needs the delegated permission
//! `GroupMember.Read.All`). Only groups count: directory roles and administrative units are skipped.
//! Pages are followed through `@odata.nextLink`.

use serde_json::Value;

pub const GRAPH: &str = "https://graph.microsoft.com/v1.0";

/// At most this many pages (of 100): a user in more than 10,000 groups is a configuration problem.
const MAX_PAGES: usize = 100;

pub async fn azure_groups(http: &reqwest::Client, base: &str, access_token: &str) -> Result<Vec<String>, String> {
    let mut url = format!("{}/me/memberOf?$select=displayName&$top=100", base.trim_end_matches('/'));
    let mut groups = Vec::new();
    for _ in 0..MAX_PAGES {
        let res = http.get(&url).bearer_auth(access_token).send().await.map_err(|e| format!("cannot reach Microsoft Graph: {e}"))?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            let why = body["error"]["message"].as_str().unwrap_or("access denied");
            return Err(format!("Microsoft Graph refused to list the user's groups ({why}): grant the app the GroupMember.Read.All permission"));
        }
        if !status.is_success() {
            return Err(format!("Microsoft Graph answered {status}"));
        }
        for item in body["value"].as_array().into_iter().flatten() {
            if item["@odata.type"] == "#microsoft.graph.group" {
                if let Some(name) = item["displayName"].as_str() {
                    groups.push(name.to_string());
                }
            }
        }
        match body["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => {
                groups.sort();
                groups.dedup();
                return Ok(groups);
            }
        }
    }
    Err("Microsoft Graph returned more than 10,000 groups for one user".into())
}
