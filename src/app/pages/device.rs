//! Approving `infra login --web`: the person types the code their terminal shows, sees which client asked
//! (its name, address and time), and approves. A link cannot carry the code into an approval: a code
//! someone else sends (device-code phishing) would otherwise be approved in one click.

use leptos::prelude::*;
use leptos_meta::Title;

use super::query_param;
use crate::app::api::device_pending;
use crate::app::components::*;

#[component]
pub fn DevicePage() -> impl IntoView {
    let code = query_param("code");
    let approved = query_param("approved");
    let error = query_param("error");
    let pending = Resource::new(code, |code| async move { if code.is_empty() { Ok(None) } else { device_pending(code).await } });
    view! {
        <Title text="Approve a CLI login · Infra"/>
        <PageHeader title="Approve a CLI login" subtitle="infra login --web waits for you here"/>
        {move || (!error().is_empty()).then(|| view! { <div class="mb-4"><ErrorBox message=error()/></div> })}
        <div class=format!("{CARD} p-5 text-sm") data-testid="device">
            {move || if approved() == "1" {
                view! { <p class="text-emerald-800">"Approved. Your terminal is logged in; you can close this page."</p> }.into_any()
            } else {
                view! {
                    <Transition fallback=|| ()>
                        {move || Suspend::new(async move {
                            match pending.await {
                                Err(e) => view! { <ErrorBox message=e.to_string()/> }.into_any(),
                                Ok(None) => view! { <TypeTheCode/> }.into_any(),
                                Ok(Some(p)) => view! {
                                    <p>"Approve this login only if you started it yourself, just now, and your terminal shows "
                                        <span class="font-mono text-lg font-semibold" data-testid="device-code">{p.user_code.clone()}</span>"."</p>
                                    <dl class="mt-3 grid grid-cols-[auto_1fr] gap-x-4 gap-y-1">
                                        <dt class="text-slate-500">"Client"</dt><dd>{p.client_name.clone()}</dd>
                                        <dt class="text-slate-500">"From address"</dt><dd class="font-mono" data-testid="device-addr">{p.client_addr.clone()}</dd>
                                        <dt class="text-slate-500">"Asked at"</dt><dd>{format_time(p.created_at)}</dd>
                                    </dl>
                                    <p class="mt-3 text-slate-600">"It will act as you until its key expires or you revoke it under Settings."</p>
                                    <form method="post" action="/device/approve" class="mt-4">
                                        <input type="hidden" name="code" value=p.user_code.clone()/>
                                        <button class=BUTTON type="submit">"Approve"</button>
                                    </form>
                                }.into_any(),
                            }
                        })}
                    </Transition>
                }.into_any()
            }}
        </div>
    }
}

/// The code field: what the person reads off their own terminal.
#[component]
fn TypeTheCode() -> impl IntoView {
    view! {
        <form method="post" action="/device/confirm" class="max-w-sm">
            <label class=LABEL for="device-code-input">"Type the code your terminal shows"</label>
            <input id="device-code-input" class=format!("{INPUT} font-mono uppercase") name="code" placeholder="XXXX-XXXX"
                autocomplete="off" autocapitalize="characters" spellcheck="false" required/>
            <button class=format!("{BUTTON} mt-3") type="submit">"Continue"</button>
        </form>
    }
}
