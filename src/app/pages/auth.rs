//! Sign-in and the (first) password change. Both are plain HTML forms handled by `/auth/*`, so they
//! work before (and without) the WebAssembly.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::Redirect;

use super::query_param;
use crate::app::api::get_me;
use crate::app::components::{BUTTON, ErrorBox, INPUT, LABEL};

#[component]
fn AuthCard(title: &'static str, subtitle: &'static str, children: Children) -> impl IntoView {
    view! {
        <div class="flex min-h-screen items-center justify-center px-4">
            <div class="w-full max-w-sm">
                <div class="mb-6 text-center">
                    <div class="text-3xl font-bold tracking-tight text-slate-900">"Infra"</div>
                    <h1 class="mt-4 text-lg font-semibold">{title}</h1>
                    <p class="mt-1 text-sm text-slate-600">{subtitle}</p>
                </div>
                <div class="rounded-lg border border-slate-200 bg-white p-6 shadow-sm">{children()}</div>
            </div>
        </div>
    }
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let error = query_param("error");
    let providers = Resource::new(|| (), |_| crate::app::api::sign_in_providers());
    view! {
        <Title text="Sign in · Infra"/>
        <AuthCard title="Sign in" subtitle="Kubernetes access for your team">
            {move || (!error().is_empty()).then(|| view! { <div class="mb-4"><ErrorBox message=error()/></div> })}
            <form method="post" action="/auth/login" class="space-y-4">
                <div>
                    <label class=LABEL for="email">"Email"</label>
                    <input class=INPUT id="email" name="email" type="email" autocomplete="username" required autofocus/>
                </div>
                <div>
                    <label class=LABEL for="password">"Password"</label>
                    <input class=INPUT id="password" name="password" type="password" autocomplete="current-password" required/>
                </div>
                <button class=format!("{BUTTON} w-full") type="submit">"Sign in"</button>
            </form>
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    let names = providers.await.unwrap_or_default();
                    (!names.is_empty()).then(|| view! {
                        <div class="mt-6 space-y-2 border-t border-slate-200 pt-6" data-testid="providers">
                            {names.into_iter().map(|name| view! {
                                // rel=external: a full navigation to the server, which sends the browser on to the provider
                                <a rel="external" href=format!("/auth/oidc/{name}")
                                   class="block w-full rounded-md border border-slate-300 px-4 py-2 text-center text-sm font-medium text-slate-700 hover:bg-slate-50">
                                    {format!("Sign in with {name}")}
                                </a>
                            }).collect_view()}
                        </div>
                    })
                })}
            </Suspense>
        </AuthCard>
    }
}

#[component]
pub fn ChangePasswordPage() -> impl IntoView {
    let error = query_param("error");
    let me = Resource::new(|| (), |_| get_me());
    view! {
        <Title text="Choose a password · Infra"/>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                match me.await {
                    Ok(Some(me)) => view! {
                        <AuthCard title="Choose a new password" subtitle="Replace the one-time password you signed in with">
                            <p class="mb-4 text-sm text-slate-600">"Signed in as " <span class="font-medium">{me.email}</span></p>
                            {move || (!error().is_empty()).then(|| view! { <div class="mb-4"><ErrorBox message=error()/></div> })}
                            <form method="post" action="/auth/password" class="space-y-4">
                                <div>
                                    <label class=LABEL for="current_password">"Current password"</label>
                                    <input class=INPUT id="current_password" name="current_password" type="password" autocomplete="current-password" required/>
                                </div>
                                <div>
                                    <label class=LABEL for="new_password">"New password (at least 8 characters)"</label>
                                    <input class=INPUT id="new_password" name="new_password" type="password" autocomplete="new-password" minlength="8" required/>
                                </div>
                                <div>
                                    <label class=LABEL for="confirm_password">"New password again"</label>
                                    <input class=INPUT id="confirm_password" name="confirm_password" type="password" autocomplete="new-password" minlength="8" required/>
                                </div>
                                <button class=format!("{BUTTON} w-full") type="submit">"Save password"</button>
                            </form>
                        </AuthCard>
                    }.into_any(),
                    _ => view! { <Redirect path="/login"/> }.into_any(),
                }
            })}
        </Suspense>
    }
}
