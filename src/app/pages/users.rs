//! Users: search, add, disable, remove, last seen.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;

use super::{is_admin, page_param, query_param};
use crate::app::api::{CreateUser, DeleteUser, SetUserDisabled, list_users};
use crate::app::components::*;

#[component]
pub fn UsersPage() -> impl IntoView {
    let q = query_param("q");
    let page = page_param();
    let admin = is_admin();
    let create = ServerAction::<CreateUser>::new();
    let toggle = ServerAction::<SetUserDisabled>::new();
    let remove = ServerAction::<DeleteUser>::new();
    let users =
        Resource::new(move || (q(), page(), create.version().get(), toggle.version().get(), remove.version().get()), |(q, page, ..)| list_users(q, page));
    view! {
        <Title text="Users · Infra"/>
        <PageHeader title="Users" subtitle="People who can sign in. Grant them access directly or through groups."/>
        <AdminSection title="Add a user">
                <ActionForm action=create attr:class="grid grid-cols-1 gap-3 md:grid-cols-4 md:items-end">
                    <div><label class=LABEL for="new-email">"Email"</label>
                        <input class=INPUT id="new-email" name="email" type="email" required placeholder="alice@example.com"/></div>
                    <div><label class=LABEL for="new-name">"Name"</label>
                        <input class=INPUT id="new-name" name="name" placeholder="Alice Example"/></div>
                    <div><label class=LABEL for="new-password">"Password (blank: one-time)"</label>
                        <input class=INPUT id="new-password" name="password" type="password" autocomplete="new-password"/></div>
                    <button class=BUTTON type="submit">"Add user"</button>
                </ActionForm>
                {move || match create.value().get() {
                    Some(Ok(Some(one_time))) => Some(view! {
                        <div class="mt-3"><Notice message=format!(
                            "User added. One-time password: {one_time} (shown once; they choose a new one at first sign-in)"
                        )/></div>
                    }.into_any()),
                    Some(Ok(None)) => Some(view! { <div class="mt-3"><Notice message="User added."/></div> }.into_any()),
                    Some(Err(e)) => Some(view! { <div class="mt-3"><ErrorBox message=e.to_string()/></div> }.into_any()),
                    None => None,
                }}
        </AdminSection>
        <ActionError value=toggle.value()/>
        <ActionError value=remove.value()/>
        <Form method="GET" action="" attr:class="mb-4 flex items-end gap-3">
            <div class="w-80"><label class=LABEL for="user-search">"Search by email or name"</label>
                <input class=INPUT id="user-search" name="q" type="search" prop:value=q placeholder="ali"/></div>
            <button class=BUTTON_QUIET type="submit">"Search"</button>
        </Form>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match users.await {
                    Err(e) => view! { <ErrorBox message=e.to_string()/> }.into_any(),
                    Ok(list) => {
                        let now = list.now;
                        let page = list.data;
                        view! {
                            <div class=CARD>
                                <table class=TABLE data-testid="users">
                                    <thead class="bg-slate-50"><tr>
                                        <th class=TH>"Email"</th><th class=TH>"Name"</th><th class=TH>"Status"</th>
                                        <th class=TH>"Last seen"</th><th class=TH></th>
                                    </tr></thead>
                                    <tbody class="divide-y divide-slate-100">
                                        {page.items.clone().into_iter().map(|u| view! {
                                            <tr>
                                                <td class=format!("{TD} font-medium")>{u.email.clone()}</td>
                                                <td class=TD>{u.name.clone()}</td>
                                                <td class=TD>{if u.disabled {
                                                    view! { <span class="rounded-full bg-red-100 px-2 py-0.5 text-xs text-red-800">"disabled"</span> }.into_any()
                                                } else {
                                                    view! { <span class="rounded-full bg-emerald-100 px-2 py-0.5 text-xs text-emerald-800">"active"</span> }.into_any()
                                                }}</td>
                                                <td class=format!("{TD} text-slate-600")>{relative_time(u.last_seen_at, now)}</td>
                                                <td class=format!("{TD} text-right")>
                                                    <Show when=admin>
                                                        <div class="flex justify-end gap-2">
                                                            <ActionForm action=toggle>
                                                                <input type="hidden" name="id" value=u.id/>
                                                                <input type="hidden" name="disabled" value=(!u.disabled).to_string()/>
                                                                <button class=BUTTON_QUIET type="submit">{if u.disabled { "Enable" } else { "Disable" }}</button>
                                                            </ActionForm>
                                                            <ActionForm action=remove>
                                                                <input type="hidden" name="id" value=u.id/>
                                                                <button class=BUTTON_DANGER type="submit">"Remove"</button>
                                                            </ActionForm>
                                                        </div>
                                                    </Show>
                                                </td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                                <Pager page=page.page pages=page.pages() total=page.total base_query=format!("q={}", encode(&q()))/>
                            </div>
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}
