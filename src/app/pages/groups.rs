//! Groups: list, create, and a detail page where members are added through a typeahead.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::{A, Form};
use leptos_router::hooks::{use_navigate, use_params_map};

use super::{is_admin, page_param, query_param};
use crate::app::api::{AddMember, CreateGroup, DeleteGroup, RemoveMember, get_group, list_groups};
use crate::app::components::*;
use crate::model::TypeaheadSource;

#[component]
pub fn GroupsPage() -> impl IntoView {
    let q = query_param("q");
    let page = page_param();
    let create = ServerAction::<CreateGroup>::new();
    let groups = Resource::new(move || (q(), page(), create.version().get()), |(q, page, _)| list_groups(q, page));
    view! {
        <Title text="Groups · Infra"/>
        <PageHeader title="Groups" subtitle="Grant access to a group and every member has it."/>
        <AdminSection title="Create a group">
                <ActionForm action=create attr:class="flex items-end gap-3">
                    <div class="w-80"><label class=LABEL for="group-name">"Name"</label>
                        <input class=INPUT id="group-name" name="name" required placeholder="Engineering"/></div>
                    <button class=BUTTON type="submit">"Create group"</button>
                </ActionForm>
                <ActionError value=create.value()/>
        </AdminSection>
        <Form method="GET" action="" attr:class="mb-4 flex items-end gap-3">
            <div class="w-80"><label class=LABEL for="group-search">"Search by name"</label>
                <input class=INPUT id="group-search" name="q" type="search" prop:value=q/></div>
            <button class=BUTTON_QUIET type="submit">"Search"</button>
        </Form>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match groups.await {
                    Err(e) => view! { <ErrorBox message=e.to_string()/> }.into_any(),
                    Ok(page) => view! {
                        <div class=CARD>
                            <table class=TABLE data-testid="groups">
                                <thead class="bg-slate-50"><tr>
                                    <th class=TH>"Name"</th><th class=TH>"Members"</th><th class=TH>"Source"</th><th class=TH>"Created"</th>
                                </tr></thead>
                                <tbody class="divide-y divide-slate-100">
                                    {page.items.clone().into_iter().map(|g| { let source = format!("{}{}", g.source, source_key(&g)); view! {
                                        <tr>
                                            <td class=TD><A href=format!("/groups/{}", g.id) attr:class="font-medium text-indigo-700 hover:underline">{g.name}</A></td>
                                            <td class=TD>{g.member_count}</td>
                                            <td class=TD>{source}</td>
                                            <td class=format!("{TD} text-slate-600")>{format_time(g.created_at)}</td>
                                        </tr>
                                    } }).collect_view()}
                                </tbody>
                            </table>
                            <Pager page=page.page pages=page.pages() total=page.total base_query=format!("q={}", encode(&q()))/>
                        </div>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
pub fn GroupPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").and_then(|s| s.parse::<i64>().ok()).unwrap_or(0));
    let admin = is_admin();
    let add = ServerAction::<AddMember>::new();
    let remove = ServerAction::<RemoveMember>::new();
    let delete = ServerAction::<DeleteGroup>::new();
    let group = Resource::new(move || (id(), add.version().get(), remove.version().get()), |(id, ..)| get_group(id));
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(())) = delete.value().get() {
            navigate("/groups", Default::default());
        }
    });
    view! {
        <Title text="Group · Infra"/>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match group.await {
                    Err(e) => view! { <ErrorBox message=e.to_string()/> }.into_any(),
                    Ok(detail) => {
                        let g = detail.group.clone();
                        let local = g.source == "local";
                        view! {
                            <div class="mb-2 text-sm"><A href="/groups" attr:class="text-indigo-700 hover:underline">"← Groups"</A></div>
                            <PageHeader title=g.name.clone() subtitle=format!("Group · {} member{} · source {}{}", g.member_count, if g.member_count == 1 { "" } else { "s" }, g.source, source_key(&g))/>
                            <Show when=move || admin() && local>
                                <section class=format!("{CARD} mb-6 p-5")>
                                    <h3 class="mb-3 text-sm font-semibold">"Add a member"</h3>
                                    <ActionForm action=add attr:class="flex items-end gap-3">
                                        <input type="hidden" name="group_id" value=g.id/>
                                        <div class="w-96">
                                            <Typeahead id="member" label="User" placeholder="Type an email or name" source=TypeaheadSource::Users/>
                                        </div>
                                        <button class=BUTTON type="submit">"Add member"</button>
                                    </ActionForm>
                                    <ActionError value=add.value()/>
                                </section>
                            </Show>
                            <ActionError value=remove.value()/>
                            <div class=CARD>
                                <table class=TABLE data-testid="members">
                                    <thead class="bg-slate-50"><tr><th class=TH>"Member"</th><th class=TH>"Name"</th><th class=TH></th></tr></thead>
                                    <tbody class="divide-y divide-slate-100">
                                        {detail.members.into_iter().map(|u| view! {
                                            <tr>
                                                <td class=format!("{TD} font-medium")>{u.email}</td>
                                                <td class=TD>{u.name}</td>
                                                <td class=format!("{TD} text-right")>
                                                    <Show when=move || admin() && local>
                                                        <ActionForm action=remove>
                                                            <input type="hidden" name="group_id" value=g.id/>
                                                            <input type="hidden" name="user_id" value=u.id/>
                                                            <button class=BUTTON_DANGER type="submit">"Remove"</button>
                                                        </ActionForm>
                                                    </Show>
                                                </td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                            <Show when=move || admin() && local>
                                <ActionForm action=delete attr:class="mt-6">
                                    <input type="hidden" name="id" value=g.id/>
                                    <button class=BUTTON_DANGER type="submit">"Delete group"</button>
                                </ActionForm>
                                <ActionError value=delete.value()/>
                            </Show>
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

/// A provider group's key, where it says more than the name: two groups of one name differ here.
fn source_key(g: &crate::model::Group) -> String {
    match g.source.as_str() {
        "local" => String::new(),
        _ if g.external_id.is_empty() => " · by name, from before groups had ids: no members".into(),
        _ if g.external_id == g.name => String::new(),
        _ => format!(" · id {}", g.external_id),
    }
}
