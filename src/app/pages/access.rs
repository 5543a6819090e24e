//! What the signed-in user can reach, and (for admins and viewers) every grant.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;

use super::{is_admin, page_param, query_param};
use crate::app::api::{RemoveGrant, list_grants, my_access};
use crate::app::components::*;
use crate::model::{Grant, Page};

#[component]
pub fn MyAccessPage() -> impl IntoView {
    let changed = query_param("password");
    let access = Resource::new(|| (), |_| my_access());
    view! {
        <Title text="My access · Infra"/>
        <PageHeader title="My access" subtitle="The clusters and namespaces you can reach, and through which grant"/>
        {move || (changed() == "changed").then(|| view! { <div class="mb-4"><Notice message="Your password was changed."/></div> })}
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match access.await {
                    Err(e) => view! { <ErrorBox message=e.to_string()/> }.into_any(),
                    Ok(list) if list.data.is_empty() => view! {
                        <div class=format!("{CARD} p-8 text-center text-sm text-slate-600")>
                            "You have no access yet. Ask an admin to grant you a role on a cluster."
                        </div>
                    }.into_any(),
                    Ok(list) => view! {
                        <div class=CARD>
                            <table class=TABLE data-testid="my-access">
                                <thead class="bg-slate-50"><tr>
                                    <th class=TH>"Resource"</th><th class=TH>"Role"</th><th class=TH>"Through"</th>
                                    <th class=TH>"Cluster"</th><th class=TH>"Expires"</th>
                                </tr></thead>
                                <tbody class="divide-y divide-slate-100">
                                    {list.data.into_iter().map(|e| view! {
                                        <tr>
                                            <td class=format!("{TD} font-medium")>{e.resource}</td>
                                            <td class=TD>{e.role}</td>
                                            <td class=TD>{e.via}</td>
                                            <td class=TD>{e.cluster_status.map(|s| view! { <StatusBadge status=s/> })}</td>
                                            <td class=TD>{e.expires_at.map(format_time).unwrap_or_else(|| "never".into())}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
pub fn AccessPage() -> impl IntoView {
    let subject = query_param("subject");
    let cluster = query_param("cluster");
    let role = query_param("role");
    let page = page_param();
    let remove = ServerAction::<RemoveGrant>::new();
    let grants = Resource::new(move || (subject(), cluster(), role(), page(), remove.version().get()), |(s, c, r, p, _)| list_grants(s, c, r, p));
    view! {
        <Title text="Access · Infra"/>
        <PageHeader title="Access" subtitle="Every grant: who has which role where. Newest first."/>
        <Form method="GET" action="" attr:class="mb-4 flex flex-wrap items-end gap-3">
            <div><label class=LABEL for="f-subject">"User or group"</label>
                <input class=INPUT id="f-subject" name="subject" prop:value=subject placeholder="alice@example.com or Engineering"/></div>
            <div><label class=LABEL for="f-cluster">"Cluster"</label>
                <input class=INPUT id="f-cluster" name="cluster" prop:value=cluster placeholder="production"/></div>
            <div><label class=LABEL for="f-role">"Role"</label>
                <input class=INPUT id="f-role" name="role" prop:value=role placeholder="edit"/></div>
            <button class=BUTTON type="submit">"Filter"</button>
        </Form>
        <ActionError value=remove.value()/>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match grants.await {
                    Err(e) => view! { <ErrorBox message=e.to_string()/> }.into_any(),
                    Ok(page) => {
                        let base = format!("subject={}&cluster={}&role={}", encode(&subject()), encode(&cluster()), encode(&role()));
                        view! {
                            <GrantTable grants=page remove=remove testid="grants" resource_label="Resource" show_granted=true base_query=base/>
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

/// One page of grants as a table, with a Remove button for admins: the Access page's and a cluster's.
#[component]
pub fn GrantTable(
    grants: Page<Grant>,
    remove: ServerAction<RemoveGrant>,
    testid: &'static str,
    /// the heading of the resource column
    resource_label: &'static str,
    /// with the "Granted" column (when and by whom)
    #[prop(default = false)]
    show_granted: bool,
    /// the query the pager keeps (the list's filters)
    #[prop(into, default = String::new())]
    base_query: String,
) -> impl IntoView {
    let admin = is_admin();
    view! {
        <div class=CARD>
            <table class=TABLE data-testid=testid>
                <thead class="bg-slate-50"><tr>
                    <th class=TH>"Who"</th><th class=TH>"Role"</th><th class=TH>{resource_label}</th>
                    {show_granted.then(|| view! { <th class=TH>"Granted"</th> })}
                    <th class=TH>"Expires"</th><th class=TH></th>
                </tr></thead>
                <tbody class="divide-y divide-slate-100">
                    {grants.items.clone().into_iter().map(|g| view! {
                        <tr>
                            <td class=TD><span class="font-medium">{g.subject.name.clone()}</span>
                                <span class="ml-2 text-xs text-slate-500">{g.subject.kind_label()}</span></td>
                            <td class=TD>{g.role.clone()}</td>
                            <td class=TD>{g.resource.clone()}</td>
                            {show_granted.then(|| view! {
                                <td class=format!("{TD} text-slate-600")>{format_time(g.created_at)}
                                    {g.created_by.clone().map(|b| format!(" by {b}"))}</td>
                            })}
                            <td class=TD>{g.expires_at.map(format_time).unwrap_or_else(|| "never".into())}</td>
                            <td class=format!("{TD} text-right")>
                                <Show when=admin>
                                    <ActionForm action=remove>
                                        <input type="hidden" name="id" value=g.id/>
                                        <button class=BUTTON_DANGER type="submit">"Remove"</button>
                                    </ActionForm>
                                </Show>
                            </td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
            <Pager page=grants.page pages=grants.pages() total=grants.total base_query=base_query/>
        </div>
    }
}
