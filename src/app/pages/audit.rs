//! The audit log: every change and every refusal, newest first.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Form;

use super::{page_param, query_param};
use crate::app::api::list_audit;
use crate::app::components::*;

#[component]
pub fn AuditPage() -> impl IntoView {
    let actor = query_param("actor");
    let action = query_param("action");
    let outcome = query_param("outcome");
    let page = page_param();
    let events = Resource::new(move || (actor(), action(), outcome(), page()), |(a, b, c, p)| list_audit(a, b, c, p));
    view! {
        <Title text="Audit log · Infra"/>
        <PageHeader title="Audit log" subtitle="Every change and every refused request, newest first"/>
        <Form method="GET" action="" attr:class="mb-4 flex flex-wrap items-end gap-3">
            <div><label class=LABEL for="f-actor">"Actor"</label>
                <input class=INPUT id="f-actor" name="actor" prop:value=actor placeholder="admin@infra.local"/></div>
            <div><label class=LABEL for="f-action">"Action starts with"</label>
                <input class=INPUT id="f-action" name="action" prop:value=action placeholder="grants."/></div>
            <div><label class=LABEL for="f-outcome">"Outcome"</label>
                <select class=INPUT id="f-outcome" name="outcome" prop:value=outcome>
                    <option value="">"Any"</option>
                    <option value="success">"success"</option>
                    <option value="denied">"denied"</option>
                </select></div>
            <button class=BUTTON type="submit">"Filter"</button>
        </Form>
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                match events.await {
                    Err(e) => view! { <ErrorBox message=e.to_string()/> }.into_any(),
                    Ok(page) => {
                        let base = format!("actor={}&action={}&outcome={}", encode(&actor()), encode(&action()), encode(&outcome()));
                        view! {
                            <div class=format!("{CARD} overflow-x-auto")>
                                <table class=TABLE data-testid="audit">
                                    <thead class="bg-slate-50"><tr>
                                        <th class=TH>"Time"</th><th class=TH>"Actor"</th><th class=TH>"Action"</th>
                                        <th class=TH>"Target"</th><th class=TH>"Outcome"</th><th class=TH>"Detail"</th><th class=TH>"Source"</th>
                                    </tr></thead>
                                    <tbody class="divide-y divide-slate-100">
                                        {page.items.clone().into_iter().map(|e| view! {
                                            <tr>
                                                <td class=format!("{TD} whitespace-nowrap text-slate-600")>{format_time(e.at)}</td>
                                                <td class=TD>{e.actor}</td>
                                                <td class=format!("{TD} font-mono text-xs")>{e.action}</td>
                                                <td class=TD>{e.target}</td>
                                                <td class=TD>{if e.outcome == "success" {
                                                    view! { <span class="text-emerald-700">{e.outcome}</span> }.into_any()
                                                } else {
                                                    view! { <span class="font-medium text-red-700">{e.outcome}</span> }.into_any()
                                                }}</td>
                                                <td class=format!("{TD} text-slate-600")>{e.detail}</td>
                                                <td class=format!("{TD} text-slate-500")>{e.source}</td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                                <Pager page=page.page pages=page.pages() total=page.total base_query=base/>
                            </div>
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}
