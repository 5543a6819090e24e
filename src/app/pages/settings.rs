//! Settings: change your password; create and revoke your access keys.

use leptos::prelude::*;
use leptos_meta::Title;

use super::query_param;
use crate::app::api::{CreateKey, RevokeKey, list_keys};
use crate::app::components::*;

#[component]
pub fn SettingsPage() -> impl IntoView {
    let error = query_param("error");
    let create = ServerAction::<CreateKey>::new();
    let revoke = ServerAction::<RevokeKey>::new();
    let keys = Resource::new(move || (create.version().get(), revoke.version().get()), |_| list_keys());
    view! {
        <Title text="Settings · Infra"/>
        <PageHeader title="Settings" subtitle="Your password and your access keys"/>
        <div class="grid grid-cols-1 gap-6 lg:grid-cols-2">
            <section class=format!("{CARD} p-5")>
                <h2 class="mb-3 text-sm font-semibold">"Change password"</h2>
                {move || (!error().is_empty()).then(|| view! { <div class="mb-3"><ErrorBox message=error()/></div> })}
                <form method="post" action="/auth/password" class="space-y-3">
                    <input type="hidden" name="from" value="/settings"/>
                    <div><label class=LABEL for="current_password">"Current password"</label>
                        <input class=INPUT id="current_password" name="current_password" type="password" autocomplete="current-password" required/></div>
                    <div><label class=LABEL for="new_password">"New password (at least 8 characters)"</label>
                        <input class=INPUT id="new_password" name="new_password" type="password" autocomplete="new-password" minlength="8" required/></div>
                    <div><label class=LABEL for="confirm_password">"New password again"</label>
                        <input class=INPUT id="confirm_password" name="confirm_password" type="password" autocomplete="new-password" minlength="8" required/></div>
                    <button class=BUTTON type="submit">"Change password"</button>
                </form>
            </section>
            <section class=format!("{CARD} p-5")>
                <h2 class="mb-1 text-sm font-semibold">"Create an access key"</h2>
                <p class="mb-3 text-xs text-slate-600">"For the CLI and the REST API: send it as " <code>"Authorization: Bearer KEY"</code> "."</p>
                <ActionForm action=create attr:class="flex items-end gap-3">
                    <div class="flex-1"><label class=LABEL for="key-name">"Name"</label>
                        <input class=INPUT id="key-name" name="name" required placeholder="laptop"/></div>
                    <div class="w-28"><label class=LABEL for="key-ttl">"Days valid"</label>
                        <input class=INPUT id="key-ttl" name="ttl_days" type="number" min="1" max="365" value="30" required/></div>
                    <button class=BUTTON type="submit">"Create"</button>
                </ActionForm>
                {move || match create.value().get() {
                    Some(Ok(created)) => Some(view! {
                        <div class="mt-3 rounded-md border border-emerald-200 bg-emerald-50 p-3 text-sm text-emerald-900" role="status">
                            <p>"Your new key (shown once; copy it now):"</p>
                            <pre class="mt-1 overflow-x-auto rounded bg-white p-2 font-mono text-xs" data-testid="new-key">{created.access_key}</pre>
                        </div>
                    }.into_any()),
                    Some(Err(e)) => Some(view! { <div class="mt-3"><ErrorBox message=e.to_string()/></div> }.into_any()),
                    None => None,
                }}
            </section>
        </div>
        <h2 class="mb-2 mt-8 text-sm font-semibold">"Your access keys"</h2>
        <ActionError value=revoke.value()/>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match keys.await {
                    Err(e) => view! { <ErrorBox message=e.to_string()/> }.into_any(),
                    Ok(list) => {
                        let now = list.now;
                        view! {
                            <div class=CARD>
                                <table class=TABLE data-testid="keys">
                                    <thead class="bg-slate-50"><tr>
                                        <th class=TH>"Name"</th><th class=TH>"Key id"</th><th class=TH>"Created"</th>
                                        <th class=TH>"Expires"</th><th class=TH>"Last used"</th><th class=TH></th>
                                    </tr></thead>
                                    <tbody class="divide-y divide-slate-100">
                                        {list.data.into_iter().map(|k| view! {
                                            <tr>
                                                <td class=format!("{TD} font-medium")>{k.name}</td>
                                                <td class=format!("{TD} font-mono text-xs")>{k.key_id}</td>
                                                <td class=TD>{format_time(k.created_at)}</td>
                                                <td class=TD>{format_time(k.expires_at)}</td>
                                                <td class=TD>{relative_time(k.last_used_at, now)}</td>
                                                <td class=format!("{TD} text-right")>
                                                    <ActionForm action=revoke>
                                                        <input type="hidden" name="id" value=k.id/>
                                                        <button class=BUTTON_DANGER type="submit">"Revoke"</button>
                                                    </ActionForm>
                                                </td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}
