//! Kubeconfig: download a kubeconfig for the clusters you can reach. A plain form posted to
//! `/kubeconfig/download`, so it works without JavaScript; the file is built by the same service as
//! `infra login` writes.

use leptos::prelude::*;
use leptos_meta::Title;

use super::query_param;
use crate::app::api::my_access;
use crate::app::components::*;

#[component]
pub fn KubeconfigPage() -> impl IntoView {
    let error = query_param("error");
    let access = Resource::new(|| (), |_| my_access());
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
                let clusters: Vec<String> = match access.await {
                    Err(e) => return view! { <ErrorBox message=e.to_string()/> }.into_any(),
                    Ok(list) => {
                        let mut names: Vec<String> = list.data.iter()
                            .map(|e| e.resource.split('.').next().unwrap_or("").to_string())
                            .filter(|n| !n.is_empty() && n != crate::model::INFRA_RESOURCE)
                            .collect();
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
                                <input type="radio" name="style" value="exec" checked/>
                                <span>"The infra CLI fetches a fresh 5-minute token whenever kubectl needs one (recommended)."</span>
                            </label>
                            <label class="flex items-start gap-2">
                                <input type="radio" name="style" value="token"/>
                                <span>"A token in the file, for use without the CLI. It works until it expires; revoke it any time under Settings → Access keys."</span>
                            </label>
                            <div class="ml-6 w-48">
                                <label class=LABEL for="lifetime">"Token lifetime"</label>
                                <select class=INPUT id="lifetime" name="lifetime_secs">
                                    <option value="3600">"1 hour"</option>
                                    <option value="28800" selected>"8 hours"</option>
                                    <option value="86400">"1 day"</option>
                                    <option value="604800">"7 days"</option>
                                    <option value="2592000">"30 days"</option>
                                </select>
                            </div>
                        </fieldset>
                        <button class=BUTTON type="submit">"Download kubeconfig"</button>
                    </form>
                }.into_any()
            })}
        </Transition>
    }
}
