//! The console: Leptos components rendered on the server and hydrated in the browser.

pub mod api;
pub mod components;
pub mod pages;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{A, Outlet, ParentRoute, Redirect, Route, Router, Routes};
use leptos_router::{SsrMode, path};

use crate::model::Me;
use pages::*;

pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body class="bg-slate-50 text-slate-900 antialiased">
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Browser-only: tells tests (and anyone curious) that the page is interactive now.
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    view! {
        <Stylesheet id="leptos" href="/pkg/infra.css"/>
        <Title text="Infra"/>
        <Router>
            <Routes fallback=|| view! { <NotFound/> }>
                <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async/>
                <Route path=path!("/change-password") view=ChangePasswordPage ssr=SsrMode::Async/>
                <ParentRoute path=path!("") view=SignedIn ssr=SsrMode::Async>
                    <Route path=path!("") view=MyAccessPage/>
                    <Route path=path!("users") view=UsersPage/>
                    <Route path=path!("groups") view=GroupsPage/>
                    <Route path=path!("groups/:id") view=GroupPage/>
                    <Route path=path!("clusters") view=ClustersPage/>
                    <Route path=path!("clusters/:name") view=ClusterPage/>
                    <Route path=path!("access") view=AccessPage/>
                    <Route path=path!("audit") view=AuditPage/>
                    <Route path=path!("kubeconfig") view=KubeconfigPage/>
                    <Route path=path!("providers") view=ProvidersPage/>
                    <Route path=path!("device") view=DevicePage/>
                    <Route path=path!("settings") view=SettingsPage/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// The signed-in user, for every page under the signed-in layout.
#[derive(Clone, Copy)]
pub struct CurrentUser(pub Resource<Result<Option<Me>, ServerFnError>>);

/// The layout of every signed-in page; sends everyone else to the sign-in page.
#[component]
fn SignedIn() -> impl IntoView {
    let me = Resource::new(|| (), |_| api::get_me());
    provide_context(CurrentUser(me));
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match me.await {
                    Ok(Some(me)) if me.must_change_password => view! { <Redirect path="/change-password"/> }.into_any(),
                    Ok(Some(me)) => view! {
                        <div class="flex min-h-screen">
                            <Nav me=me/>
                            <main class="flex-1 min-w-0 px-10 py-8"><Outlet/></main>
                        </div>
                    }.into_any(),
                    Ok(None) => view! { <Redirect path="/login"/> }.into_any(),
                    Err(e) => view! { <components::ErrorBox message=e.to_string()/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Nav(me: Me) -> impl IntoView {
    let link = |href: &'static str, label: &'static str| {
        view! {
            <A href=href exact=true attr:class="block rounded-md px-3 py-2 text-sm text-slate-300 hover:bg-slate-800 hover:text-white aria-[current=page]:bg-slate-800 aria-[current=page]:text-white">
                {label}
            </A>
        }
    };
    let can_view = me.can_view;
    view! {
        <nav class="w-60 shrink-0 bg-slate-900 text-white flex flex-col">
            <div class="px-5 py-5 text-lg font-semibold tracking-tight">"Infra"</div>
            <div class="flex-1 space-y-1 px-3">
                {link("/", "My access")}
                <Show when=move || can_view>
                    {link("/users", "Users")}
                    {link("/groups", "Groups")}
                </Show>
                {link("/clusters", "Clusters")}
                {link("/kubeconfig", "Kubeconfig")}
                <Show when=move || can_view>
                    {link("/access", "Access")}
                    {link("/providers", "Identity providers")}
                    {link("/audit", "Audit log")}
                </Show>
                {link("/settings", "Settings")}
            </div>
            <div class="border-t border-slate-800 px-5 py-4 text-sm">
                <div class="truncate text-slate-300" data-testid="signed-in-as">{me.email.clone()}</div>
                <form method="post" action="/auth/logout" class="mt-2">
                    <button class="text-slate-400 hover:text-white" type="submit">"Sign out"</button>
                </form>
            </div>
        </nav>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
            resp.set_status(http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <div class="mx-auto max-w-md py-24 text-center">
            <h1 class="text-2xl font-semibold">"Page not found"</h1>
            <p class="mt-2 text-slate-600"><a class="text-indigo-600 hover:underline" href="/">"Back to the console"</a></p>
        </div>
    }
}
