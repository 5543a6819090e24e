//! Building blocks shared by the console's pages.

use leptos::prelude::*;

use crate::model::{ClusterStatus, Millis, TypeaheadOption, TypeaheadSource};

pub const INPUT: &str = "block w-full rounded-md border border-slate-300 bg-white px-3 py-2 text-sm shadow-sm focus:border-indigo-500 focus:outline-none focus:ring-1 focus:ring-indigo-500";
pub const BUTTON: &str = "inline-flex items-center justify-center rounded-md bg-indigo-600 px-4 py-2 text-sm font-medium text-white shadow-sm hover:bg-indigo-500 disabled:opacity-50";
pub const BUTTON_QUIET: &str = "inline-flex items-center rounded-md border border-slate-300 bg-white px-3 py-1.5 text-sm text-slate-700 hover:bg-slate-50";
pub const BUTTON_DANGER: &str = "inline-flex items-center rounded-md border border-red-200 bg-white px-3 py-1.5 text-sm text-red-700 hover:bg-red-50";
pub const TABLE: &str = "min-w-full divide-y divide-slate-200 text-sm";
pub const TH: &str = "px-4 py-2 text-left text-xs font-semibold uppercase tracking-wide text-slate-500";
pub const TD: &str = "px-4 py-2 align-middle";
pub const CARD: &str = "rounded-lg border border-slate-200 bg-white shadow-sm";
pub const LABEL: &str = "block text-xs font-medium text-slate-600 mb-1";

#[component]
pub fn PageHeader(#[prop(into)] title: String, #[prop(into)] subtitle: String) -> impl IntoView {
    view! {
        <header class="mb-6">
            <h1 class="text-2xl font-semibold tracking-tight" data-testid="page-title">{title}</h1>
            <p class="mt-1 text-sm text-slate-600">{subtitle}</p>
        </header>
    }
}

/// A card only infra admins see, above a list: where things are added.
#[component]
pub fn AdminSection(title: &'static str, children: ChildrenFn) -> impl IntoView {
    let admin = super::pages::is_admin();
    view! {
        <Show when=admin>
            <section class=format!("{CARD} mb-6 p-5")>
                <h2 class="mb-3 text-sm font-semibold">{title}</h2>
                {children()}
            </section>
        </Show>
    }
}

#[component]
pub fn ErrorBox(#[prop(into)] message: String) -> impl IntoView {
    let message = message.trim_start_matches("error running server function: ").to_string();
    view! { <div role="alert" class="rounded-md border border-red-200 bg-red-50 px-4 py-2 text-sm text-red-800">{message}</div> }
}

#[component]
pub fn Notice(#[prop(into)] message: String) -> impl IntoView {
    view! { <div role="status" class="rounded-md border border-emerald-200 bg-emerald-50 px-4 py-2 text-sm text-emerald-800">{message}</div> }
}

/// Shows the outcome of the last run of a server action: its error, or nothing.
#[component]
pub fn ActionError<T: Clone + Send + Sync + 'static>(#[prop(into)] value: Signal<Option<Result<T, ServerFnError>>>) -> impl IntoView {
    move || match value.get() {
        Some(Err(e)) => Some(view! { <div class="mt-3"><ErrorBox message=e.to_string()/></div> }),
        _ => None,
    }
}

/// "3 minutes ago", from the server's clock at the time the data was read.
pub fn relative_time(at: Option<Millis>, now: Millis) -> String {
    let Some(at) = at else { return "never".into() };
    let secs = (now - at).max(0) / 1000;
    let (n, unit) = match secs {
        0..=9 => return "just now".into(),
        10..=59 => (secs, "second"),
        60..=3599 => (secs / 60, "minute"),
        3600..=86_399 => (secs / 3600, "hour"),
        _ => (secs / 86_400, "day"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

/// A date as `YYYY-MM-DD HH:MM UTC`, the same on server and browser.
pub fn format_time(at: Millis) -> String {
    let secs = at.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // civil-from-days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rem / 3600, (rem % 3600) / 60)
}

#[component]
pub fn StatusBadge(status: ClusterStatus) -> impl IntoView {
    let class = match status {
        ClusterStatus::Connected => "bg-emerald-100 text-emerald-800",
        ClusterStatus::Disconnected => "bg-amber-100 text-amber-800",
        ClusterStatus::Pending => "bg-slate-200 text-slate-700",
    };
    view! {
        <span class=format!("inline-flex items-center rounded-full px-2 py-0.5 text-xs font-medium {class}") data-status=status.label()>
            {status.label()}
        </span>
    }
}

/// Previous / next links that keep the other query parameters; plain links, so they work before hydration.
#[component]
pub fn Pager(page: u64, pages: u64, total: u64, #[prop(into)] base_query: String) -> impl IntoView {
    let href = move |p: u64| {
        if base_query.is_empty() { format!("?page={p}") } else { format!("?{base_query}&page={p}") }
    };
    view! {
        <div class="flex items-center justify-between px-4 py-3 text-sm text-slate-600">
            <span>{format!("{total} in all, page {page} of {pages}")}</span>
            <div class="space-x-2">
                {(page > 1).then(|| view! { <a class=BUTTON_QUIET href=href(page - 1)>"Previous"</a> })}
                {(page < pages).then(|| view! { <a class=BUTTON_QUIET href=href(page + 1)>"Next"</a> })}
            </div>
        </div>
    }
}

/// Percent-encodes a query parameter value.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A text field that suggests values from the server as you type: debounced, keyboard-driven (arrows,
/// Enter, Escape), with the ARIA combobox pattern. Before hydration it is a plain text field, and the
/// server accepts what was typed.
#[component]
pub fn Typeahead(
    /// unique on the page; also the field's `name`
    id: &'static str,
    label: &'static str,
    placeholder: &'static str,
    source: TypeaheadSource,
    /// for `roles`: the cluster
    #[prop(into, default = String::new())]
    scope: String,
) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let options = RwSignal::new(Vec::<TypeaheadOption>::new());
    let open = RwSignal::new(false);
    let active = RwSignal::new(None::<usize>);
    let generation = StoredValue::new(0u64);
    let listbox_id = format!("{id}-listbox");
    let option_id = move |i: usize| format!("{id}-option-{i}");

    let search = move |q: String| {
        generation.update_value(|g| *g += 1);
        let mine = generation.get_value();
        let scope = scope.clone();
        set_timeout(
            move || {
                if generation.get_value() != mine {
                    return; // a newer keystroke came in: this search is stale
                }
                leptos::task::spawn_local(async move {
                    let found = super::api::typeahead(source, scope, q).await.unwrap_or_default();
                    if generation.get_value() == mine {
                        active.set(if found.is_empty() { None } else { Some(0) });
                        open.set(!found.is_empty());
                        options.set(found);
                    }
                });
            },
            std::time::Duration::from_millis(150),
        );
    };
    let choose = move |i: usize| {
        if let Some(option) = options.with(|o| o.get(i).cloned()) {
            text.set(option.value);
            open.set(false);
            active.set(None);
        }
    };
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| {
        let count = options.with(Vec::len);
        match ev.key().as_str() {
            "ArrowDown" if count > 0 => {
                ev.prevent_default();
                open.set(true);
                active.update(|a| *a = Some(a.map_or(0, |i| (i + 1) % count)));
            }
            "ArrowUp" if count > 0 => {
                ev.prevent_default();
                open.set(true);
                active.update(|a| *a = Some(a.map_or(count - 1, |i| (i + count - 1) % count)));
            }
            "Enter" if open.get() => {
                if let Some(i) = active.get() {
                    ev.prevent_default();
                    choose(i);
                }
            }
            "Escape" => {
                open.set(false);
                active.set(None);
            }
            _ => {}
        }
    };
    view! {
        <div class="relative">
            <label class=LABEL for=id>{label}</label>
            <input
                id=id
                name=id
                type="text"
                autocomplete="off"
                class=INPUT
                placeholder=placeholder
                role="combobox"
                aria-autocomplete="list"
                aria-controls=listbox_id.clone()
                aria-expanded=move || if open.get() { "true" } else { "false" }
                aria-activedescendant=move || active.get().filter(|_| open.get()).map(option_id)
                prop:value=move || text.get()
                on:input=move |ev| {
                    let q = event_target_value(&ev);
                    text.set(q.clone());
                    search(q);
                }
                on:keydown=on_keydown
                on:blur=move |_| open.set(false)
            />
            <ul
                id=listbox_id
                role="listbox"
                class=move || if open.get() {
                    "absolute z-10 mt-1 max-h-64 w-full overflow-auto rounded-md border border-slate-200 bg-white py-1 text-sm shadow-lg"
                } else { "hidden" }
            >
                {move || options.get().into_iter().enumerate().map(|(i, o)| {
                    let selected = move || active.get() == Some(i);
                    view! {
                        <li
                            id=option_id(i)
                            role="option"
                            aria-selected=move || if selected() { "true" } else { "false" }
                            class=move || if selected() { "cursor-pointer bg-indigo-600 px-3 py-1.5 text-white" } else { "cursor-pointer px-3 py-1.5 hover:bg-slate-100" }
                            on:mousedown=move |ev| { ev.prevent_default(); choose(i); }
                        >
                            <span class="font-medium">{o.label}</span>
                            {(!o.detail.is_empty()).then(|| view! { <span class="ml-2 opacity-70">{o.detail}</span> })}
                        </li>
                    }
                }).collect_view()}
            </ul>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::{format_time, relative_time};

    #[test]
    fn relative_times_round_down_to_the_largest_unit() {
        let now = 1_000_000_000_000;
        assert_eq!(relative_time(None, now), "never");
        assert_eq!(relative_time(Some(now), now), "just now");
        assert_eq!(relative_time(Some(now - 9_999), now), "just now");
        assert_eq!(relative_time(Some(now - 10_000), now), "10 seconds ago");
        assert_eq!(relative_time(Some(now - 60_000), now), "1 minute ago");
        assert_eq!(relative_time(Some(now - 3_599_000), now), "59 minutes ago");
        assert_eq!(relative_time(Some(now - 7_200_000), now), "2 hours ago");
        assert_eq!(relative_time(Some(now - 86_400_000), now), "1 day ago");
        // a clock a little ahead of the server's is not "in the future"
        assert_eq!(relative_time(Some(now + 5_000), now), "just now");
    }

    #[test]
    fn times_are_calendar_dates_in_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_time(951_782_400_000), "2000-02-29 00:00 UTC");
        assert_eq!(format_time(1_798_761_599_000), "2026-12-31 23:59 UTC");
        assert_eq!(format_time(-1), "1969-12-31 23:59 UTC");
    }
}
