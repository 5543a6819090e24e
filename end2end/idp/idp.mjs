// Test-only OpenID Provider built on `oidc-provider` (panva).
//
//   node idp.mjs config.json            (or IDP_CONFIG=config.json node idp.mjs)
//   IDP_PORT=0 (default) picks a free port; IDP_HOST defaults to 127.0.0.1.
//
// Prints exactly one line to stdout when ready:  {"issuer":"http://127.0.0.1:PORT","port":PORT}
// Everything else (oidc-provider notices, logs) goes to stderr.
//
// To answer the way particular providers do (config keys):
//   issuer_path: "/oauth2/default"   the issuer has this path (Okta's default authorization server);
//                                    every endpoint, /admin included, is under it
//   signing_alg: "ES256"             ID tokens signed ES256 with a P-256 key (default RS256)
//   claims_in_userinfo_only: true    email, name and groups only from userinfo, the ID token has `sub`
//   google_offline: true             like Google: a refresh token only when the authorization request
//                                    has access_type=offline and prompt=consent (offline_access is not
//                                    a scope there)
//
// NOT FOR PRODUCTION: plain HTTP, in-memory storage, unauthenticated /admin API.

// oidc-provider prints its NOTICEs with console.info (stdout). Keep stdout clean for the
// ready line by sending console.log/info to stderr *before* importing the library
// (hence the dynamic import below; static imports would be evaluated first).
console.log = (...a) => console.error(...a);
console.info = (...a) => console.error(...a);

const { readFileSync } = await import('node:fs');
const http = await import('node:http');
const crypto = await import('node:crypto');
const { default: Provider, interactionPolicy } = await import('oidc-provider');

// ---------------------------------------------------------------- config
const configPath = process.argv[2] || process.env.IDP_CONFIG;
if (!configPath) {
  console.error('usage: node idp.mjs <config.json>   (or set IDP_CONFIG)');
  process.exit(2);
}
const cfg = JSON.parse(readFileSync(configPath, 'utf8'));
const HOST = process.env.IDP_HOST || cfg.host || '127.0.0.1';
const PORT = Number(process.env.IDP_PORT ?? cfg.port ?? 0);
const DEBUG = !!process.env.IDP_DEBUG;

// users: Map sub -> user; user = {sub, email, name, password, groups, disabled, email_verified, ...}
const users = new Map();
for (const u of cfg.users || []) {
  if (!u.sub) throw new Error('every user needs a "sub"');
  users.set(String(u.sub), { groups: [], disabled: false, ...u, sub: String(u.sub) });
}
const userByEmail = (email) => {
  const e = String(email || '').trim().toLowerCase();
  for (const u of users.values()) if (String(u.email || '').toLowerCase() === e) return u;
  return undefined;
};

// grantIds we created per account, so /admin can revoke everything of a disabled user
const grantsByAccount = new Map();
const rememberGrant = (sub, grantId) => {
  if (!grantsByAccount.has(sub)) grantsByAccount.set(sub, new Set());
  grantsByAccount.get(sub).add(grantId);
};

let latencyMs = Number(cfg.latency_ms || 0);
const deviceInterval = Number(cfg.device_poll_interval ?? 1);
const refreshPolicy = cfg.refresh_token_policy || 'offline_access'; // or "always"
const pkceRequired = cfg.pkce_required ?? true;
// oidc-provider silently DROPS offline_access from the authorization request unless prompt
// contains "consent" (see lib/actions/authorization/scopes.js). Since consent is automatic here,
// we add prompt=consent ourselves to GET /auth requests asking for offline_access, so an RP only
// has to request scope=offline_access (like with Google/Keycloak/Dex) to get a refresh token.
const googleOffline = !!cfg.google_offline;
const autoConsentPrompt = !googleOffline && (cfg.auto_prompt_consent_for_offline_access ?? true);
const issuerPath = String(cfg.issuer_path || '').replace(/\/+$/, '');
// Google: offline access is asked for with parameters, not the offline_access scope
function googleOfflineScope(url) {
  const p = url.searchParams;
  const scopes = new Set((p.get('scope') || '').split(' ').filter(Boolean));
  const prompts = new Set((p.get('prompt') || '').split(' ').filter(Boolean));
  if (p.get('access_type') === 'offline' && prompts.has('consent')) scopes.add('offline_access');
  else scopes.delete('offline_access');
  p.set('scope', [...scopes].join(' '));
  return `${url.pathname}?${p}`;
}
function addConsentPrompt(url) {
  const p = url.searchParams;
  const scopes = (p.get('scope') || '').split(' ');
  if (!scopes.includes('offline_access')) return url.pathname + url.search;
  const prompts = new Set((p.get('prompt') || '').split(' ').filter(Boolean));
  if (prompts.has('none') || prompts.has('consent')) return url.pathname + url.search; // none can't be combined
  prompts.add('consent');
  p.set('prompt', [...prompts].join(' '));
  return `${url.pathname}?${p}`;
}

function normalizeClient(c) {
  const out = { ...c };
  out.grant_types ||= ['authorization_code', 'refresh_token'];
  out.response_types ||= ['code'];
  if (!out.token_endpoint_auth_method) {
    out.token_endpoint_auth_method = out.client_secret ? 'client_secret_basic' : 'none';
  }
  // device-only clients have no redirect_uris
  if (!out.redirect_uris && !out.grant_types.includes('authorization_code')) {
    out.redirect_uris = [];
    out.response_types = [];
  }
  return out;
}

// ---------------------------------------------------------------- accounts
async function findAccount(ctx, sub /* , token */) {
  const u = users.get(String(sub));
  if (!u || u.disabled) return undefined; // => invalid_grant on code/refresh/device, invalid_token on userinfo
  return {
    accountId: u.sub,
    async claims(/* use, scope, claims, rejected */) {
      // oidc-provider filters this down to what the granted scopes/claims allow
      const c = {
        sub: u.sub,
        email: u.email,
        email_verified: u.email_verified ?? true,
        name: u.name,
        preferred_username: u.preferred_username ?? u.email,
        groups: Array.isArray(u.groups) ? [...u.groups] : [],
      };
      return { ...(u.extra_claims || {}), ...c };
    },
  };
}

// ---------------------------------------------------------------- interaction policy
// If the browser still has a session for an account that was disabled meanwhile, force login.
const policy = interactionPolicy.base();
policy.get('login').checks.push(new interactionPolicy.Check(
  'account_unavailable',
  'the session account is disabled or unknown',
  'login_required',
  (ctx) => !!(ctx.oidc.session.accountId && !ctx.oidc.account),
));

// ---------------------------------------------------------------- provider config
const signingAlg = cfg.signing_alg || 'RS256';
const { privateKey } = signingAlg === 'ES256'
  ? crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
  : crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid: `idp-${signingAlg.toLowerCase()}`, use: 'sig', alg: signingAlg };

const ttl = {
  AccessToken: 300, // 5 min
  AuthorizationCode: 60,
  IdToken: 3600, // 1 h
  RefreshToken: 14 * 24 * 3600,
  DeviceCode: 600,
  Interaction: 3600,
  Session: 14 * 24 * 3600,
  Grant: 14 * 24 * 3600,
  ClientCredentials: 300,
  ...(cfg.ttl || {}),
};

// Storage: an unbounded Map with expiry. oidc-provider's built-in development adapter is an LRU of
// 1,000 entries, which silently drops grants and refresh tokens once a few hundred users have signed in
// (a benchmark signs in thousands).
const store = new Map(); // key -> { payload, expiresAt }
const grantMembers = new Map(); // grantId -> Set of keys
class MapAdapter {
  constructor(name) { this.name = name; }
  key(id) { return `${this.name}:${id}`; }
  static read(key) {
    const entry = store.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) { store.delete(key); return undefined; }
    return entry.payload;
  }
  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    store.set(key, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
    if (payload.grantId) {
      if (!grantMembers.has(payload.grantId)) grantMembers.set(payload.grantId, new Set());
      grantMembers.get(payload.grantId).add(key);
    }
    if (payload.userCode) store.set(`userCode:${payload.userCode}`, { payload: id, expiresAt: Infinity });
    if (payload.uid) store.set(`sessionUid:${payload.uid}`, { payload: id, expiresAt: Infinity });
  }
  async find(id) { return MapAdapter.read(this.key(id)); }
  async findByUserCode(userCode) { const id = MapAdapter.read(`userCode:${userCode}`); return id ? this.find(id) : undefined; }
  async findByUid(uid) { const id = MapAdapter.read(`sessionUid:${uid}`); return id ? this.find(id) : undefined; }
  async consume(id) { const p = MapAdapter.read(this.key(id)); if (p) p.consumed = Math.floor(Date.now() / 1000); }
  async destroy(id) { store.delete(this.key(id)); }
  async revokeByGrantId(grantId) {
    for (const key of grantMembers.get(grantId) ?? []) store.delete(key);
    grantMembers.delete(grantId);
  }
}

const configuration = {
  adapter: MapAdapter,
  clients: (cfg.clients || []).map(normalizeClient),
  findAccount,
  jwks: { keys: [signingJwk] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
  // Put scope-derived claims (email, name, groups) into the ID Token even when an access token
  // is also issued (code flow). Default `true` would put them only into /userinfo.
  conformIdTokenClaims: !!cfg.claims_in_userinfo_only,
  clientDefaults: { grant_types: ['authorization_code'], id_token_signed_response_alg: signingAlg, response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' },
  responseTypes: ['code', 'none'], // code flow only (no implicit/hybrid)
  pkce: { required: () => pkceRequired }, // only S256 exists in v9
  features: {
    devInteractions: { enabled: false }, // we provide our own /interaction pages
    deviceFlow: {
      enabled: true,
      // plain pages (the defaults @import Google Fonts, which hangs/fails offline in a test browser)
      userCodeInputSource: async (ctx, form, out, err) => {
        let msg = '<p>Enter the code displayed on your device</p>';
        if (err && (err.userCode || err.name === 'NoCodeError')) msg = '<p id="error" style="color:#c00">The code you entered is incorrect. Try again</p>';
        else if (err && err.name === 'AbortedError') msg = '<p id="error" style="color:#c00">The Sign-in request was interrupted</p>';
        else if (err) msg = '<p id="error" style="color:#c00">There was an error processing your request</p>';
        ctx.body = page('Device sign-in', `<h1>Device sign-in</h1>${msg}${form}<button type="submit" form="op.deviceInputForm">Continue</button>`);
      },
      userCodeConfirmSource: async (ctx, form, client, deviceInfo, userCode) => {
        ctx.body = page('Confirm device', `<h1>Confirm device</h1><p>Client <code>${esc(client.clientName || client.clientId)}</code> shows code <code id="user_code">${esc(userCode)}</code></p>${form}
<button type="submit" form="op.deviceConfirmForm">Continue</button>
<button type="submit" form="op.deviceConfirmForm" value="yes" name="abort">Abort</button>`);
      },
      successSource: async (ctx) => {
        ctx.body = page('Device sign-in complete', '<h1 id="device-success">Sign-in Success</h1><p>Your device is now signed in. You can close this window.</p>');
      },
    },
    userinfo: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
    claimsParameter: { enabled: true },
    // on by default in v9; with no getResourceServerInfo configured any `resource` parameter fails
    // with invalid_target. Off => `resource` is ignored and access tokens stay opaque + userinfo-usable.
    resourceIndicators: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      logoutSource: async (ctx, form) => {
        ctx.body = page('Sign out', `<h1>Sign out from ${esc(ctx.host)}?</h1>${form}
<button type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button type="submit" form="op.logoutForm">No, stay signed in</button>`);
      },
      postLogoutSuccessSource: async (ctx) => {
        ctx.body = page('Signed out', '<h1 id="logout-success">Sign-out Success</h1>');
      },
    },
  },
  interactions: {
    policy,
    url: (ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  issueRefreshToken: async (ctx, client, code) => {
    if (!client.grantTypeAllowed('refresh_token')) return false;
    return refreshPolicy === 'always' || code.scopes.has('offline_access');
  },
  // refresh tokens outlive the browser session when offline_access was granted (default rule);
  // with policy "always" they never depend on the session
  expiresWithSession: async (ctx, code) => (refreshPolicy === 'always' ? false : !code.scopes.has('offline_access')),
  ttl: Object.fromEntries(Object.entries(ttl).map(([k, v]) => [k, typeof v === 'number' ? () => v : v])),
  renderError: async (ctx, out /* , error */) => {
    ctx.type = 'html';
    ctx.body = page('IdP error', `<h1>IdP error</h1>${
      Object.entries(out).map(([k, v]) => `<pre><strong>${esc(k)}</strong>: ${esc(v)}</pre>`).join('')}`);
  },
  ...(cfg.provider_overrides || {}),
};

// ---------------------------------------------------------------- helpers
function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[ch]));
}
function page(title, body) {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head><body>${body}</body></html>`;
}
async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}
function sendJson(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
function sendHtml(res, status, html) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(html) });
  res.end(html);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function loginPage({ uid, clientId, email = '', error }) {
  return page('Sign in', `<h1>Sign in</h1>
<p>to <code>${esc(clientId)}</code></p>
${error ? `<p id="error" class="error" style="color:#c00">${esc(error)}</p>` : ''}
<form id="login" method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
  <label>Email <input type="email" name="email" value="${esc(email)}" required autofocus></label><br>
  <label>Password <input type="password" name="password" required></label><br>
  <button type="submit">Sign in</button>
</form>
<form id="abort" method="post" action="/interaction/${esc(uid)}/abort">
  <button type="submit">Cancel</button>
</form>`);
}

// Build (or extend) a Grant covering everything the authorization request asked for.
async function grantFor(provider, details, accountId) {
  const { params, prompt } = details;
  let grant;
  if (details.grantId) {
    const existing = await provider.Grant.find(details.grantId);
    if (existing && existing.accountId === accountId && existing.clientId === params.client_id) grant = existing;
  }
  grant ||= new provider.Grant({ accountId, clientId: params.client_id });

  if (params.scope) grant.addOIDCScope(params.scope);
  const d = prompt?.details || {};
  if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
  if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
  if (d.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  if (params.claims) { // claims request parameter: grant every requested claim
    try {
      const c = JSON.parse(params.claims);
      const names = [...Object.keys(c.userinfo || {}), ...Object.keys(c.id_token || {})];
      if (names.length) grant.addOIDCClaims(names);
    } catch { /* invalid claims param is rejected by oidc-provider before we get here */ }
  }
  const grantId = await grant.save();
  rememberGrant(accountId, grantId);
  return grantId;
}

async function revokeAllFor(provider, sub) {
  const ids = grantsByAccount.get(sub) || new Set();
  for (const grantId of ids) {
    await Promise.all([
      provider.AccessToken.revokeByGrantId(grantId),
      provider.RefreshToken.revokeByGrantId(grantId),
      provider.AuthorizationCode.revokeByGrantId(grantId),
      provider.DeviceCode.revokeByGrantId(grantId),
      provider.Grant.adapter.destroy(grantId),
    ]);
  }
  const n = ids.size;
  grantsByAccount.delete(sub);
  return n;
}

// ---------------------------------------------------------------- routes
async function handleInteraction(provider, req, res, url) {
  const m = url.pathname.match(/^\/interaction\/([^/]+)(?:\/(login|abort))?\/?$/);
  if (!m) return sendHtml(res, 404, 'not found');
  const [, uid, action] = m;

  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch (err) {
    // typically SessionNotFound: the _interaction cookie is missing/expired
    return sendHtml(res, 400, `<h1>Interaction error</h1><pre>${esc(err.name)}: ${esc(err.error_description || err.message)}</pre>`);
  }
  if (details.uid !== uid) return sendHtml(res, 400, '<h1>interaction uid mismatch</h1>');
  const { prompt, params } = details;

  if (req.method === 'GET' && !action) {
    if (prompt.name === 'login') {
      return sendHtml(res, 200, loginPage({ uid, clientId: params.client_id, email: params.login_hint }));
    }
    if (prompt.name === 'consent') { // auto-consent, no click needed
      const grantId = await grantFor(provider, details, details.session.accountId);
      return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    }
    return sendHtml(res, 400, `<h1>unsupported prompt ${esc(prompt.name)}</h1>`);
  }

  if (req.method === 'POST' && action === 'abort') {
    await readBody(req);
    return provider.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
  }

  if (req.method === 'POST' && action === 'login') {
    const form = new URLSearchParams(await readBody(req));
    const email = form.get('email') || '';
    const password = form.get('password') || '';
    const u = userByEmail(email);
    let error;
    if (!u || u.password !== password) error = 'Invalid email or password.';
    else if (u.disabled) error = 'Account disabled.';
    if (error) {
      return sendHtml(res, 401, loginPage({ uid, clientId: params.client_id, email, error }));
    }
    // login + consent in one step: the policy re-check finds all scopes granted => no consent page
    const grantId = await grantFor(provider, details, u.sub);
    return provider.interactionFinished(req, res, {
      login: { accountId: u.sub, amr: ['pwd'] },
      consent: { grantId },
    }, { mergeWithLastSubmission: false });
  }

  return sendHtml(res, 405, 'method not allowed');
}

async function handleAdmin(provider, req, res, url) {
  const raw = await readBody(req);
  let body = {};
  if (raw) {
    try { body = JSON.parse(raw); } catch { return sendJson(res, 400, { error: 'invalid JSON body' }); }
  }
  const path = url.pathname.replace(/\/+$/, '');

  if (req.method === 'GET' && path === '/admin/users') {
    return sendJson(res, 200, [...users.values()]);
  }
  let m = path.match(/^\/admin\/users\/([^/]+)$/);
  if (m) {
    const sub = decodeURIComponent(m[1]);
    if (req.method === 'GET') {
      return users.has(sub) ? sendJson(res, 200, users.get(sub)) : sendJson(res, 404, { error: 'no such user' });
    }
    if (req.method === 'POST') {
      let u = users.get(sub);
      if (!u) { // create
        u = { sub, groups: [], disabled: false };
        users.set(sub, u);
      }
      for (const k of ['groups', 'disabled', 'email', 'name', 'password', 'email_verified', 'preferred_username', 'extra_claims']) {
        if (k in body) u[k] = body[k];
      }
      let revokedGrants = 0;
      if (body.disabled === true && body.revoke !== false) revokedGrants = await revokeAllFor(provider, sub);
      if (body.revoke === true && body.disabled !== true) revokedGrants = await revokeAllFor(provider, sub);
      return sendJson(res, 200, { ...u, revoked_grants: revokedGrants });
    }
  }
  m = path.match(/^\/admin\/users\/([^/]+)\/revoke$/);
  if (m && req.method === 'POST') {
    return sendJson(res, 200, { revoked_grants: await revokeAllFor(provider, decodeURIComponent(m[1])) });
  }
  if (path === '/admin/latency') {
    if (req.method === 'POST') latencyMs = Math.max(0, Number(body.ms) || 0);
    return sendJson(res, 200, { ms: latencyMs });
  }
  if (path === '/admin/clients' && req.method === 'POST') {
    // register/replace a client at runtime (e.g. redirect_uri with a port only known at test time)
    const meta = normalizeClient(body);
    try {
      await provider.Client.validate(meta);
    } catch (err) {
      return sendJson(res, 400, { error: 'invalid_client_metadata', error_description: err.error_description || err.message });
    }
    await provider.Client.adapter.upsert(meta.client_id, meta);
    return sendJson(res, 200, meta);
  }
  if (path === '/admin/health') return sendJson(res, 200, { ok: true });
  return sendJson(res, 404, { error: 'unknown admin route' });
}

// ---------------------------------------------------------------- server
let provider;
let providerCallback;
const server = http.createServer(async (req, res) => {
  // an issuer with a path: the provider is mounted there (it finds its mount path from originalUrl)
  const mounted = issuerPath && (req.url === issuerPath || req.url.startsWith(`${issuerPath}/`) || req.url.startsWith(`${issuerPath}?`));
  if (mounted) {
    req.url = req.url.slice(issuerPath.length) || '/';
    if (req.url.startsWith('?')) req.url = `/${req.url}`;
  }
  const url = new URL(req.url, 'http://x');
  if (DEBUG) console.error(`[idp] ${req.method} ${url.pathname}`);
  try {
    if (url.pathname === '/admin' || url.pathname.startsWith('/admin/')) return await handleAdmin(provider, req, res, url);
    if (url.pathname.startsWith('/interaction/')) return await handleInteraction(provider, req, res, url);
    if (latencyMs > 0 && (url.pathname === '/token' || url.pathname === '/me')) await sleep(latencyMs);
    if (autoConsentPrompt && req.method === 'GET' && url.pathname === '/auth') req.url = addConsentPrompt(url);
    if (googleOffline && req.method === 'GET' && url.pathname === '/auth') req.url = googleOfflineScope(url);
    if (mounted) req.originalUrl = issuerPath + req.url;
    return providerCallback(req, res);
  } catch (err) {
    console.error('[idp] handler error', err);
    if (!res.headersSent) sendJson(res, 500, { error: 'server_error', error_description: String(err?.message || err) });
    else res.end();
  }
});

server.listen(PORT, HOST, () => {
  const { port } = server.address();
  const hostForUrl = HOST.includes(':') ? `[${HOST}]` : HOST;
  const issuer = cfg.issuer || `http://${hostForUrl}:${port}${issuerPath}`;
  provider = new Provider(issuer, configuration);
  // oidc-provider omits "interval" from the device authorization response (clients then default
  // to 5 s, RFC 8628) and never answers slow_down; advertise a short interval so tests poll fast.
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.oidc?.route === 'device_authorization' && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
      ctx.body = { ...ctx.body, interval: deviceInterval };
    }
  });
  provider.on('server_error', (ctx, err) => console.error('[idp] server_error', err));
  if (DEBUG) {
    for (const ev of ['grant.error', 'authorization.error', 'userinfo.error', 'device_authorization.error']) {
      provider.on(ev, (ctx, err) => console.error(`[idp] ${ev}`, err.name, err.error_description || err.message, err.error_detail || ''));
    }
  }
  providerCallback = provider.callback();
  process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);
});

const shutdown = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
// IDP_EXIT_ON_STDIN_EOF=1: exit when the parent closes our stdin (e.g. a Rust test harness that
// spawned us with Stdio::piped() died) so no orphan IdP processes linger.
if (process.env.IDP_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', shutdown);
  process.stdin.on('close', shutdown);
  process.stdin.resume();
}
