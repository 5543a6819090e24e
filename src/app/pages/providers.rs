//! Identity providers (admins): add, change, test and remove them; the groups they bring are read-only.
//! A provider whose users could not be verified lately says so ("could not verify N users since …").

use leptos::prelude::*;
use leptos_meta::Title;

use super::is_admin;
use crate::app::api::{CreateProvider, DeleteProvider, TestProvider, UpdateProvider, list_providers};
use crate::app::components::*;
use crate::model::Provider;

#[component]
pub fn ProvidersPage() -> impl IntoView {
    let admin = is_admin();
    let create = ServerAction::<CreateProvider>::new();
    let delete = ServerAction::<DeleteProvider>::new();
    let test = ServerAction::<TestProvider>::new();
    let update = ServerAction::<UpdateProvider>::new();
    // the provider whose settings are open for a change
    let editing = RwSignal::new(None::<Provider>);
    // once added, the form is empty again (it held a secret)
    let add_form = NodeRef::<leptos::html::Form>::new();
    Effect::new(move |_| {
        if matches!(create.value().get(), Some(Ok(_)))
            && let Some(form) = add_form.get()
        {
            form.reset();
        }
    });
    Effect::new(move |_| {
        if matches!(update.value().get(), Some(Ok(_))) {
            editing.set(None);
        }
    });
    let providers = Resource::new(move || (create.version().get(), delete.version().get(), update.version().get()), |_| list_providers());
    view! {
        <Title text="Identity providers · Infra"/>
        <PageHeader title="Identity providers" subtitle="People sign in through them; their groups come along, and leaving them ends access."/>
        <AdminSection title="Add a provider">
                <ActionForm action=create node_ref=add_form attr:class="grid grid-cols-2 gap-3" attr:data-testid="provider-form">
                    <div><label class=LABEL for="provider-name">"Name (shown as “Sign in with …”)"</label>
                        <input class=INPUT id="provider-name" name="name" required placeholder="corp"/></div>
                    <div><label class=LABEL for="provider-kind">"Kind"</label>
                        <select class=INPUT id="provider-kind" name="kind">
                            <option value="oidc">"OpenID Connect (any provider, by discovery)"</option>
                            <option value="okta">"Okta"</option>
                            <option value="google">"Google Workspace"</option>
                            <option value="azure">"Azure AD"</option>
                        </select></div>
                    <div><label class=LABEL for="provider-issuer">"Issuer URL, Okta domain or Azure tenant"</label>
                        <input class=INPUT id="provider-issuer" name="issuer" placeholder="https://idp.example.com"/></div>
                    <div><label class=LABEL for="provider-domains">"Allowed email domains (empty: any)"</label>
                        <input class=INPUT id="provider-domains" name="allowed_domains" placeholder="example.com"/></div>
                    <div><label class=LABEL for="provider-client-id">"Client id"</label>
                        <input class=INPUT id="provider-client-id" name="client_id" required/></div>
                    <div><label class=LABEL for="provider-client-secret">"Client secret (stored encrypted, never shown again)"</label>
                        <input class=INPUT id="provider-client-secret" name="client_secret" type="password" autocomplete="off" required/></div>
                    <div><label class=LABEL for="provider-groups-claim">"Groups claim"</label>
                        <input class=INPUT id="provider-groups-claim" name="groups_claim" value="groups"/></div>
                    <div class="flex items-end"><button class=BUTTON type="submit">"Add provider"</button></div>
                </ActionForm>
                <ActionError value=create.value()/>
        </AdminSection>
        {move || editing.get().map(|p| view! { <EditProvider provider=p update editing/> })}
        {move || test.value().get().map(|r| match r {
            Ok(check) => view! {
                <div class=format!("mb-4 rounded-md p-3 text-sm {}", if check.ok { "bg-emerald-50 text-emerald-800" } else { "bg-red-50 text-red-800" })
                     data-testid="provider-check">{check.message}</div>
            }.into_any(),
            Err(e) => view! { <div class="mb-4"><ErrorBox message=e.to_string()/></div> }.into_any(),
        })}
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match providers.await {
                    Err(e) => view! { <ErrorBox message=e.to_string()/> }.into_any(),
                    Ok((list, callback)) => view! {
                        <p class="mb-3 text-sm text-slate-600">"Register this redirect URI at the provider: " <code>{callback}</code></p>
                        <div class=CARD>
                            <table class=TABLE data-testid="providers">
                                <thead class="bg-slate-50"><tr>
                                    <th class=TH>"Name"</th><th class=TH>"Kind"</th><th class=TH>"Issuer"</th><th class=TH>"Domains"</th>
                                    <th class=TH>"Users"</th><th class=TH></th>
                                </tr></thead>
                                <tbody class="divide-y divide-slate-100">
                                    {list.is_empty().then(|| view! {
                                        <tr><td class=format!("{TD} text-slate-500") colspan="6">"No identity provider yet: people sign in with a password."</td></tr>
                                    })}
                                    {list.into_iter().map(|p| {
                                        let unverified = p.unverified.summary(format_time).map(|summary| (summary, p.unverified.error.clone()));
                                        view! {
                                        <tr>
                                            <td class=format!("{TD} font-medium")>{p.name.clone()}</td>
                                            <td class=TD>{p.kind.clone()}</td>
                                            <td class=format!("{TD} text-slate-600")>{p.issuer.clone()}</td>
                                            <td class=TD>{if p.allowed_domains.is_empty() { "any".to_string() } else { p.allowed_domains.join(", ") }}</td>
                                            <td class=TD>
                                                {p.user_count}
                                                {unverified.map(|(summary, error)| view! {
                                                    <div class="mt-1 text-xs font-medium text-amber-700" data-testid="provider-unverified">{summary}</div>
                                                    <div class="max-w-xs truncate text-xs text-slate-500" title=error.clone()>{error.clone()}</div>
                                                })}
                                            </td>
                                            <td class=format!("{TD} text-right")>
                                                <Show when=admin>
                                                    <button class=format!("{BUTTON_QUIET} mr-2") on:click={
                                                        let p = p.clone();
                                                        move |_| { update.value().set(None); editing.set(Some(p.clone())); }
                                                    }>"Edit"</button>
                                                    <button class=BUTTON_QUIET on:click=move |_| { test.dispatch(TestProvider { id: p.id }); }>"Test connection"</button>
                                                    <button class=format!("{BUTTON_QUIET} ml-2 text-red-700") on:click=move |_| { delete.dispatch(DeleteProvider { id: p.id }); }>"Remove"</button>
                                                </Show>
                                            </td>
                                        </tr>
                                    }}).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

/// The settings of one provider, to change; its name and kind stay (its groups carry the name).
#[component]
fn EditProvider(provider: Provider, update: ServerAction<UpdateProvider>, editing: RwSignal<Option<Provider>>) -> impl IntoView {
    view! {
        <section class=format!("{CARD} mb-6 p-5") data-testid="provider-edit">
            <h2 class="mb-3 text-sm font-semibold">{format!("Change {} ({})", provider.name, provider.kind)}</h2>
            <ActionForm action=update attr:class="grid grid-cols-2 gap-3">
                <input type="hidden" name="id" value=provider.id/>
                <div><label class=LABEL for="edit-issuer">"Issuer URL, Okta domain or Azure tenant"</label>
                    <input class=INPUT id="edit-issuer" name="issuer" value=provider.issuer.clone()/></div>
                <div><label class=LABEL for="edit-domains">"Allowed email domains (empty: any)"</label>
                    <input class=INPUT id="edit-domains" name="allowed_domains" value=provider.allowed_domains.join(", ")/></div>
                <div><label class=LABEL for="edit-client-id">"Client id"</label>
                    <input class=INPUT id="edit-client-id" name="client_id" required value=provider.client_id.clone()/></div>
                <div><label class=LABEL for="edit-client-secret">"New client secret (empty: keep the stored one)"</label>
                    <input class=INPUT id="edit-client-secret" name="client_secret" type="password" autocomplete="off"/></div>
                <div><label class=LABEL for="edit-scopes">"Scopes"</label>
                    <input class=INPUT id="edit-scopes" name="scopes" value=provider.scopes.join(" ")/></div>
                <div><label class=LABEL for="edit-groups-claim">"Groups claim"</label>
                    <input class=INPUT id="edit-groups-claim" name="groups_claim" value=provider.groups_claim.clone()/></div>
                <div class="col-span-2 flex gap-2">
                    <button class=BUTTON type="submit">"Save changes"</button>
                    <button class=BUTTON_QUIET type="button" on:click=move |_| editing.set(None)>"Cancel"</button>
                </div>
            </ActionForm>
            <ActionError value=update.value()/>
        </section>
    }
}
