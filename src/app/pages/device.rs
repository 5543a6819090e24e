//! Approving `infra login --web`: the person checks that the code matches what their terminal shows.

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
    let client = Resource::new(move || code(), device_pending);
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
                            match client.await {
                                Err(e) => view! { <ErrorBox message=e.to_string()/> }.into_any(),
                                Ok(name) => view! {
                                    <p>"Check that your terminal shows this code, then approve: " <span class="font-mono text-lg font-semibold">{code()}</span></p>
                                    <p class="mt-1 text-slate-600">{format!("It is for {name}, which will act as you until you revoke its key under Settings.")}</p>
                                    <form method="post" action="/device/approve" class="mt-4">
                                        <input type="hidden" name="code" value=code()/>
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
