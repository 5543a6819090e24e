//! Clusters: status at a glance, connecting a new one, and each cluster's namespaces and access list.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

use super::access::GrantTable;
use super::{is_admin, page_param};
use crate::app::api::{AddGrant, ConnectCluster, RemoveGrant, get_cluster, list_clusters};
use crate::app::components::*;
use crate::model::TypeaheadSource;

#[component]
pub fn ClustersPage() -> impl IntoView {
    let connect = ServerAction::<ConnectCluster>::new();
    let clusters = Resource::new(move || connect.version().get(), |_| list_clusters());
    view! {
        <Title text="Clusters · Infra"/>
        <PageHeader title="Clusters" subtitle="Each cluster runs a connector that registers it here and keeps it up to date."/>
        <AdminSection title="Connect a cluster">
                <ActionForm action=connect attr:class="flex items-end gap-3">
                    <div class="w-80"><label class=LABEL for="cluster-name">"Name (lowercase, no dots)"</label>
                        <input class=INPUT id="cluster-name" name="name" required placeholder="production"/></div>
                    <button class=BUTTON type="submit">"Create connector key"</button>
                </ActionForm>
                {move || match connect.value().get() {
                    Some(Ok(created)) => Some(view! {
                        <div class="mt-3 space-y-2 rounded-md border border-emerald-200 bg-emerald-50 p-4 text-sm text-emerald-900" role="status">
                            <p>"Connector key (shown once):"</p>
                            <pre class="overflow-x-auto rounded bg-white p-2 font-mono text-xs" data-testid="connector-key">{created.access_key.clone()}</pre>
                            <p>"The cluster's connector registers with this key; the cluster shows as pending until it does."</p>
                        </div>
                    }.into_any()),
                    Some(Err(e)) => Some(view! { <div class="mt-3"><ErrorBox message=e.to_string()/></div> }.into_any()),
                    None => None,
                }}
        </AdminSection>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match clusters.await {
                    Err(e) => view! { <ErrorBox message=e.to_string()/> }.into_any(),
                    Ok(list) if list.data.is_empty() => view! {
                        <div class=format!("{CARD} p-8 text-center text-sm text-slate-600")>"No clusters yet."</div>
                    }.into_any(),
                    Ok(list) => {
                        let now = list.now;
                        view! {
                            <div class=CARD>
                                <table class=TABLE data-testid="clusters">
                                    <thead class="bg-slate-50"><tr>
                                        <th class=TH>"Name"</th><th class=TH>"Status"</th><th class=TH>"Last seen"</th>
                                        <th class=TH>"Kubernetes"</th><th class=TH>"Namespaces"</th>
                                    </tr></thead>
                                    <tbody class="divide-y divide-slate-100">
                                        {list.data.into_iter().map(|d| view! {
                                            <tr>
                                                <td class=TD><A href=format!("/clusters/{}", d.name) attr:class="font-medium text-indigo-700 hover:underline">{d.name.clone()}</A></td>
                                                <td class=TD><StatusBadge status=d.status/></td>
                                                <td class=format!("{TD} text-slate-600")>{relative_time(d.last_seen_at, now)}</td>
                                                <td class=TD>{d.kubernetes_version}</td>
                                                <td class=TD>{d.namespaces.len()}</td>
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

#[component]
pub fn ClusterPage() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.with(|p| p.get("name").unwrap_or_default());
    let admin = is_admin();
    let add = ServerAction::<AddGrant>::new();
    let remove = ServerAction::<RemoveGrant>::new();
    let page = page_param();
    let cluster = Resource::new(move || (name(), page(), add.version().get(), remove.version().get()), |(name, page, ..)| get_cluster(name, page));
    // The connector reports every few seconds: the status part of the page is refetched on its own,
    // so the grant form below is never re-rendered under the admin's fingers.
    let tick = RwSignal::new(0u64);
    let live = Resource::new(move || (name(), tick.get()), |(name, _)| get_cluster(name, 1));
    Effect::new(move |_| {
        let handle = set_interval_with_handle(move || tick.update(|t| *t += 1), std::time::Duration::from_secs(5));
        on_cleanup(move || {
            if let Ok(h) = handle {
                h.clear();
            }
        });
    });
    view! {
        <Title text="Cluster · Infra"/>
        <div class="mb-2 text-sm"><A href="/clusters" attr:class="text-indigo-700 hover:underline">"← Clusters"</A></div>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match live.await {
                    Err(e) => view! { <ErrorBox message=e.to_string()/> }.into_any(),
                    Ok(detail) => {
                        let now = detail.now;
                        let d = detail.data.destination;
                        view! {
                            <header class="mb-6 flex items-center gap-3">
                                <h1 class="text-2xl font-semibold tracking-tight" data-testid="page-title">{d.name.clone()}</h1>
                                <StatusBadge status=d.status/>
                            </header>
                            <dl class=format!("{CARD} mb-6 grid grid-cols-2 gap-4 p-5 text-sm md:grid-cols-4")>
                                <div><dt class="text-slate-500">"Last seen"</dt><dd class="font-medium" data-testid="last-seen">{relative_time(d.last_seen_at, now)}</dd></div>
                                <div><dt class="text-slate-500">"Kubernetes"</dt><dd class="font-medium">{or_dash(&d.kubernetes_version)}</dd></div>
                                <div><dt class="text-slate-500">"Connector"</dt><dd class="font-medium">{or_dash(&d.connector_version)}</dd></div>
                                <div><dt class="text-slate-500">"Proxy endpoint"</dt><dd class="truncate font-medium">{or_dash(&d.endpoint)}</dd></div>
                            </dl>
                            <section class="mb-6">
                                <h2 class="mb-2 text-sm font-semibold">"Namespaces"</h2>
                                <div class="flex flex-wrap gap-2" data-testid="namespaces">
                                    {if d.namespaces.is_empty() {
                                        view! { <span class="text-sm text-slate-500">"None reported yet."</span> }.into_any()
                                    } else {
                                        d.namespaces.iter().map(|n| view! {
                                            <span class="rounded-md border border-slate-200 bg-white px-2 py-1 font-mono text-xs">{n.clone()}</span>
                                        }).collect_view().into_any()
                                    }}
                                </div>
                            </section>
                            {(!d.problems.is_empty()).then(|| view! {
                                <section class="mb-6 rounded-lg border border-amber-300 bg-amber-50 p-4" data-testid="problems">
                                    <h2 class="mb-2 text-sm font-semibold text-amber-900">"Grants the connector cannot apply"</h2>
                                    <ul class="list-disc space-y-1 pl-5 text-sm text-amber-900">
                                        {d.problems.iter().map(|p| view! { <li>{p.clone()}</li> }).collect_view()}
                                    </ul>
                                </section>
                            })}
                        }.into_any()
                    }
                }
            })}
        </Transition>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match cluster.await {
                    Err(e) => view! { <ErrorBox message=e.to_string()/> }.into_any(),
                    Ok(detail) => {
                        let d = detail.data.destination;
                        let grants = detail.data.grants;
                        let cluster_name = StoredValue::new(d.name.clone());
                        let namespaces = StoredValue::new(d.namespaces.clone());
                        view! {
                            <section>
                                <h2 class="mb-2 text-sm font-semibold">"Access"</h2>
                                <Show when=admin>
                                    <div class=format!("{CARD} mb-4 p-5")>
                                        <ActionForm action=add attr:class="grid grid-cols-1 gap-3 md:grid-cols-4 md:items-end">
                                            <input type="hidden" name="cluster" value=cluster_name.get_value()/>
                                            <Typeahead id="subject" label="User or group" placeholder="Type a name or email" source=TypeaheadSource::Subjects/>
                                            <Typeahead id="role" label="Role" placeholder="edit" source=TypeaheadSource::Roles scope=cluster_name.get_value()/>
                                            <div>
                                                <label class=LABEL for="namespace">"Scope"</label>
                                                <select class=INPUT id="namespace" name="namespace">
                                                    <option value="">"Whole cluster"</option>
                                                    {namespaces.get_value().into_iter().map(|n| view! { <option value=n.clone()>{format!("Namespace {n}")}</option> }).collect_view()}
                                                </select>
                                            </div>
                                            <button class=BUTTON type="submit">"Grant access"</button>
                                        </ActionForm>
                                        <ActionError value=add.value()/>
                                    </div>
                                </Show>
                                <ActionError value=remove.value()/>
                                <GrantTable grants=grants remove=remove testid="cluster-access" resource_label="Scope"/>
                            </section>
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() { "–".into() } else { s.to_string() }
}
