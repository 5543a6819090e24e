//! Kubeconfig: download a kubeconfig for the clusters you can reach. A plain form posted to
//! `/kubeconfig/download`, so it works without JavaScript; the file is built by the same service as
//! `infra login` writes.

use leptos::prelude::*;
use leptos_meta::Title;

use super::query_param;
use crate::app::api::{kubeconfig_choices, my_access};
use crate::app::components::*;
use crate::model::CredentialStyle;

#[component]
pub fn KubeconfigPage() -> impl IntoView {
    let error = query_param("error");
    let access = Resource::new(|| (), |_| my_access());
    let options = Resource::new(|| (), |_| kubeconfig_choices());
    view! {
        <Title text="Kubeconfig · Infra"/>
        <PageHeader title="Kubeconfig" subtitle="A kubectl configuration for the clusters you can reach"/>
        {move || (!error().is_empty()).then(|| view! { <div class="mb-4"><ErrorBox message=error()/></div> })}
        <div class=format!("{CARD} mb-6 p-5 text-sm text-slate-700") data-testid="kubeconfig-howto">
            <p>"Save the file, then run " <code>"export KUBECONFIG=~/Downloads/infra.kubeconfig"</code>
               " and " <code>"kubectl --context infra:<cluster> get pods"</code> "."</p>
            <p class="mt-1">"The default credential runs the infra CLI for a fresh 5-minute token: install it and run "
               <code>"infra login"</code> " once. Without the CLI, choose a token with a lifetime instead."</p>
        </div>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                let options = match options.await {
                    Ok(o) => o,
                    Err(e) => return view! { <ErrorBox message=e.to_string()/> }.into_any(),
                };
                let clusters: Vec<String> = match access.await {
                    Err(e) => return view! { <ErrorBox message=e.to_string()/> }.into_any(),
                    Ok(list) => {
                        let mut names: Vec<String> = list.data.iter()
                            .map(|e| e.resource.split('.').next().unwrap_or("").to_string())
                            .filter(|n| !n.is_empty() && n != crate::model::INFRA_RESOURCE)
                            .collect();
                        names.sort();
                        names.dedup();
                        names
                    }
                };
                if clusters.is_empty() {
                    return view! {
                        <div class=format!("{CARD} p-8 text-center text-sm text-slate-600")>
                            "You cannot reach any cluster yet. Ask an admin to grant you a role on one."
                        </div>
                    }.into_any();
                }
                view! {
                    <form method="post" action="/kubeconfig/download" class=format!("{CARD} space-y-5 p-5") data-testid="kubeconfig-form">
                        <fieldset>
                            <legend class="mb-2 text-sm font-semibold">"Clusters"</legend>
                            <div class="flex flex-wrap gap-4">
                                {clusters.into_iter().map(|c| view! {
                                    <label class="flex items-center gap-2 text-sm">
                                        <input type="checkbox" name=format!("cluster.{c}") checked/>
                                        <span>{c}</span>
                                    </label>
                                }).collect_view()}
                            </div>
                        </fieldset>
                        <fieldset class="space-y-2 text-sm">
                            <legend class="mb-2 text-sm font-semibold">"Credential"</legend>
                            <label class="flex items-start gap-2">
                                <input type="radio" name="style" value=CredentialStyle::Exec.as_str() checked/>
                                <span>"The infra CLI fetches a fresh 5-minute token whenever kubectl needs one (recommended)."</span>
                            </label>
                            <label class="flex items-start gap-2">
                                <input type="radio" name="style" value=CredentialStyle::Token.as_str()/>
                                <span>"A token in the file, for use without the CLI. It works until it expires; revoke it any time under Settings → Access keys."</span>
                            </label>
                            {options.can_break_glass.then(|| view! {
                                <label class="flex items-start gap-2" data-testid="break-glass">
                                    <input type="radio" name="style" value=CredentialStyle::Certificate.as_str()/>
                                    <span>"Break-glass (admins): a client certificate the cluster signs, for reaching its API server directly when Infra or the connector is down. "
                                        <strong class="text-amber-800">"It cannot be revoked: it works until it expires."</strong>
                                        " At least 10 minutes."</span>
                                </label>
                            })}
                            <div class="ml-6 w-56">
                                <label class=LABEL for="lifetime">"Lifetime of the token or certificate"</label>
                                <select class=INPUT id="lifetime" name="lifetime_secs">
                                    {lifetime_options(&options)}
                                </select>
                                <p class="mt-1 text-xs text-slate-500">
                                    {format!("Up to {}, the maximum an admin set.", crate::model::human_duration(options.max_lifetime_secs.max(0) as u64))}
                                </p>
                            </div>
                        </fieldset>
                        <button class=BUTTON type="submit">"Download kubeconfig"</button>
                    </form>
                }.into_any()
            })}
        </Transition>
    }
}

/// The lifetimes an admin allows; 8 hours is preselected when allowed, else the longest.
fn lifetime_options(options: &crate::model::KubeconfigOptions) -> impl IntoView {
    let list = options.lifetimes();
    let preferred = if list.contains(&28_800) { 28_800 } else { list.last().copied().unwrap_or(0) };
    list.into_iter()
        .map(|secs| {
            view! { <option value=secs.to_string() selected=secs == preferred>{crate::model::human_duration(secs as u64)}</option> }
        })
        .collect_view()
}
