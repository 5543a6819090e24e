//! Typeahead suggestions: users, groups, and the roles a cluster offers.

use super::{Ctx, destinations, groups, users};
use crate::model::{INFRA_RESOURCE, INFRA_ROLES, Subject, TypeaheadOption, TypeaheadSource};
use crate::server::error::{AppError, AppResult};

/// How many suggestions a typeahead shows.
pub const SUGGESTIONS: u64 = 8;

fn user_option(s: Subject) -> TypeaheadOption {
    TypeaheadOption { value: s.name.clone(), label: s.name, detail: s.detail }
}

pub async fn typeahead(ctx: Ctx<'_>, source: TypeaheadSource, scope: &str, q: &str) -> AppResult<Vec<TypeaheadOption>> {
    ctx.require_view("search", source.as_str()).await?;
    match source {
        TypeaheadSource::Users => Ok(users::search(ctx.db, q, SUGGESTIONS).await?.into_iter().map(user_option).collect()),
        TypeaheadSource::Subjects => {
            let mut found = groups::search(ctx.db, q, SUGGESTIONS).await?;
            found.extend(users::search(ctx.db, q, SUGGESTIONS).await?.into_iter().map(user_option));
            // stable: two groups of one name stay in the order groups::search gave them
            found.sort_by_key(|o| o.label.to_lowercase());
            found.truncate(SUGGESTIONS as usize);
            Ok(found)
        }
        TypeaheadSource::Roles => {
            let roles: Vec<String> = if scope == INFRA_RESOURCE {
                INFRA_ROLES.iter().map(|r| r.to_string()).collect()
            } else {
                let d = destinations::find_by_name(ctx.db, scope).await?.ok_or_else(|| AppError::NotFound(format!("cluster {scope}")))?;
                destinations::offered_roles(&d)
            };
            let q = q.trim().to_lowercase();
            Ok(roles.into_iter().filter(|r| r.starts_with(&q)).map(|r| TypeaheadOption { value: r.clone(), label: r, detail: String::new() }).collect())
        }
    }
}
