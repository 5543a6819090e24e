// The console end to end, as a person uses it: the first admin signs in, adds a user and a group,
// connects a cluster (its connector registering through the REST API), grants the group a role on a
// namespace, and the user then sees that access. The tests build on each other and run in order.

import { test as base, expect, type BrowserContext, type Page, type TestInfo } from '@playwright/test';
import fs from 'node:fs';
import path from 'node:path';

const ADMIN = 'admin@infra.local';
const ADMIN_PASSWORD = 'admin-e2e-password-1';
const DANA = 'dana@example.com';
const DANA_PASSWORD = 'dana-e2e-password-1';
const SCREENSHOTS = path.resolve(__dirname, '..', 'test-results', 'screenshots');

const registration = {
  name: 'prod',
  unique_id: 'sha256:abc',
  endpoint: 'https://127.0.0.1:8443',
  ca: '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUe2e\n-----END CERTIFICATE-----\n',
  kubernetes_version: 'v1.32.0',
  connector_version: '0.1.0',
  namespaces: ['web', 'db'],
  roles: ['cluster-admin', 'admin', 'edit', 'view', 'logs', 'exec', 'port-forward'],
};

// Every console error fails the test. (Debian's chromium launcher prints shell noise on the browser's
// stderr, which never reaches a page's console.)
const ignoredConsoleError = (_text: string, _url: string) => false;

type Guard = { watch: (context: BrowserContext) => void };

/**
 * Every test fails on a console error or an uncaught page error (hydration errors and panics included).
 * Console warnings do not fail it; they are attached to its results as console-warnings.
 */
const test = base.extend<{ consoleGuard: Guard }>({
  consoleGuard: [
    async ({ context }, use, testInfo) => {
      const errors: string[] = [];
      const warnings: string[] = [];
      const watch = (ctx: BrowserContext) => {
        ctx.on('console', (msg) => {
          if (msg.type() === 'warning') warnings.push(`${msg.page()?.url() ?? '?'}: ${msg.text()}`);
          if (msg.type() !== 'error' || ignoredConsoleError(msg.text(), msg.location().url)) return;
          const at = msg.location().url ? ` (${msg.location().url})` : '';
          errors.push(`console error on ${msg.page()?.url() ?? '?'}: ${msg.text()}${at}`);
        });
        ctx.on('weberror', (err) => {
          errors.push(`page error on ${err.page()?.url() ?? '?'}: ${err.error().stack ?? err.error().message}`);
        });
      };
      watch(context);
      await use({ watch });
      if (warnings.length) await testInfo.attach('console-warnings', { body: warnings.join('\n'), contentType: 'text/plain' });
      expect(errors, 'the browser console should have no errors').toEqual([]);
    },
    { auto: true },
  ],
});

test.describe.configure({ mode: 'serial' });

// The server binary must match the assets in target/site. A binary from a plain `cargo build` or
// `cargo test --features ssr` (not `cargo leptos build`) overwrites target/debug/infra and asks for
// /pkg/infra_bg.wasm, which cargo-leptos never writes: nothing would hydrate. Say so at once.
test.beforeAll(async ({ request }) => {
  const html = await (await request.get('/login')).text();
  const assets = [...html.matchAll(/<link[^>]+href="(\/pkg\/[^"]+)"/g)].map((m) => m[1]);
  expect(assets.length, 'the sign-in page links the console assets under /pkg/').toBeGreaterThan(0);
  for (const asset of assets) {
    const res = await request.head(asset);
    expect(
      res.status(),
      `${asset} is missing: the server binary does not match target/site. ` +
        'Rebuild both with `cargo leptos build` (or point INFRA_BIN at a binary it built).',
    ).toBe(200);
  }
});

// What earlier tests learnt and later ones need.
let danaOneTimePassword = '';

function dataDir(): string {
  const dir = process.env.INFRA_E2E_DATA_DIR;
  if (!dir) throw new Error('INFRA_E2E_DATA_DIR is not set: run the suite through playwright.config.ts');
  return dir;
}

/** Waits until the WebAssembly has hydrated the page (the app sets data-hydrated on <body>). */
async function hydrated(page: Page) {
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
}

async function open(page: Page, url: string) {
  await page.goto(url);
  await hydrated(page);
}

/** A full-page screenshot in test-results/screenshots/NAME.png, attached to the test's results. */
async function snap(page: Page, testInfo: TestInfo, name: string) {
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  await testInfo.attach(name, { path: file, contentType: 'image/png' });
}

async function signIn(page: Page, email: string, password: string) {
  await open(page, '/login');
  await page.locator('#email').fill(email);
  await page.locator('#password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

async function signInAdmin(page: Page) {
  await signIn(page, ADMIN, ADMIN_PASSWORD);
  await expect(page).toHaveURL(/\/$/);
  await hydrated(page);
}

async function changePassword(page: Page, current: string, next: string) {
  await expect(page).toHaveURL(/\/change-password$/);
  await hydrated(page);
  await page.locator('#current_password').fill(current);
  await page.locator('#new_password').fill(next);
  await page.locator('#confirm_password').fill(next);
  await page.getByRole('button', { name: 'Save password' }).click();
  await expect(page).toHaveURL(/\/\?password=changed$/);
  await hydrated(page);
  await expect(page.getByRole('status')).toHaveText('Your password was changed.');
}

const nav = (page: Page) => page.getByRole('navigation');

test('the first admin signs in with the one-time password and chooses a new one', async ({ page }, testInfo) => {
  const passwordFile = path.join(dataDir(), 'initial-admin-password');
  const oneTime = fs.readFileSync(passwordFile, 'utf8').trim();
  expect(oneTime).not.toBe('');

  await open(page, '/login');
  await expect(page.getByRole('heading', { name: 'Sign in' })).toBeVisible();
  await snap(page, testInfo, 'login');

  await page.locator('#email').fill(ADMIN);
  await page.locator('#password').fill(oneTime);
  await page.getByRole('button', { name: 'Sign in' }).click();

  await expect(page).toHaveURL(/\/change-password$/);
  await hydrated(page);
  await expect(page.getByText(`Signed in as ${ADMIN}`)).toBeVisible();
  await snap(page, testInfo, 'change-password');

  await changePassword(page, oneTime, ADMIN_PASSWORD);
  await expect(page.getByTestId('page-title')).toHaveText('My access');
  await expect(page.getByTestId('signed-in-as')).toHaveText(ADMIN);
  for (const link of ['My access', 'Users', 'Groups', 'Clusters', 'Access', 'Audit log', 'Settings']) {
    await expect(nav(page).getByRole('link', { name: link, exact: true })).toBeVisible();
  }
  await snap(page, testInfo, 'my-access-admin');

  // the one-time password is spent: its file is gone and it no longer signs in
  expect(fs.existsSync(passwordFile)).toBe(false);
});

test('a wrong password shows an error and does not sign in', async ({ page }) => {
  await signIn(page, ADMIN, 'not-the-password');
  await expect(page).toHaveURL(/\/login\?error=/);
  await hydrated(page);
  await expect(page.getByRole('alert')).toBeVisible();
  await expect(page.getByRole('alert')).not.toBeEmpty();

  await page.goto('/');
  await expect(page).toHaveURL(/\/login$/);
  await expect(page.getByRole('button', { name: 'Sign in' })).toBeVisible();
});

test('the admin adds a user and a group, and adds the user to the group with the keyboard', async ({ page }, testInfo) => {
  await signInAdmin(page);

  // a user with a one-time password
  await nav(page).getByRole('link', { name: 'Users', exact: true }).click();
  await expect(page).toHaveURL(/\/users$/);
  await expect(page.getByTestId('page-title')).toHaveText('Users');
  await page.locator('#new-email').fill(DANA);
  await page.locator('#new-name').fill('Dana Scully');
  await page.getByRole('button', { name: 'Add user' }).click();
  const notice = page.getByRole('status').filter({ hasText: 'User added.' });
  await expect(notice).toContainText('One-time password:');
  const match = /One-time password: (\S+) \(shown once/.exec((await notice.textContent()) ?? '');
  expect(match, 'the notice shows the one-time password').not.toBeNull();
  danaOneTimePassword = match![1];
  const users = page.getByTestId('users');
  await expect(users.getByRole('row').filter({ hasText: DANA })).toContainText('Dana Scully');
  await expect(users.getByRole('row').filter({ hasText: DANA })).toContainText('active');
  await snap(page, testInfo, 'users');

  // a group
  await nav(page).getByRole('link', { name: 'Groups', exact: true }).click();
  await expect(page).toHaveURL(/\/groups$/);
  await page.locator('#group-name').fill('Engineering');
  await page.getByRole('button', { name: 'Create group' }).click();
  const groupLink = page.getByTestId('groups').getByRole('link', { name: 'Engineering', exact: true });
  await expect(groupLink).toBeVisible();
  await snap(page, testInfo, 'groups');

  await groupLink.click();
  await expect(page).toHaveURL(/\/groups\/\d+$/);
  await expect(page.getByTestId('page-title')).toHaveText('Engineering');

  // the typeahead, driven from the keyboard
  const member = page.locator('#member');
  const listbox = page.locator('#member-listbox');
  await expect(member).toHaveAttribute('role', 'combobox');
  await expect(member).toHaveAttribute('aria-controls', 'member-listbox');
  await expect(member).toHaveAttribute('aria-expanded', 'false');
  await member.click();
  await member.pressSequentially('dan'); // real keystrokes: each one an input event (debounced 150 ms)
  await expect(member).toHaveAttribute('aria-expanded', 'true');
  const dana = listbox.getByRole('option').filter({ hasText: DANA });
  await expect(dana).toBeVisible();
  await expect(listbox.getByRole('option')).toHaveCount(1);
  // the first suggestion is active at once
  await expect(member).toHaveAttribute('aria-activedescendant', 'member-option-0');
  await expect(dana).toHaveAttribute('id', 'member-option-0');
  await expect(dana).toHaveAttribute('aria-selected', 'true');

  // Escape closes the list; ArrowDown opens it again on the first option
  await member.press('Escape');
  await expect(member).toHaveAttribute('aria-expanded', 'false');
  await expect(member).not.toHaveAttribute('aria-activedescendant', /./);
  await expect(listbox).toBeHidden();
  await member.press('ArrowDown');
  await expect(member).toHaveAttribute('aria-expanded', 'true');
  await expect(member).toHaveAttribute('aria-activedescendant', 'member-option-0');
  await member.press('ArrowUp'); // wraps around: one option, so still the same
  await expect(member).toHaveAttribute('aria-activedescendant', 'member-option-0');

  // Enter picks the active option and closes the list without submitting the form
  await member.press('Enter');
  await expect(member).toHaveValue(DANA);
  await expect(member).toHaveAttribute('aria-expanded', 'false');
  await expect(member).not.toHaveAttribute('aria-activedescendant', /./);
  await expect(page.getByTestId('members').getByRole('row').filter({ hasText: DANA })).toHaveCount(0);

  await page.getByRole('button', { name: 'Add member' }).click();
  const members = page.getByTestId('members');
  await expect(members.getByRole('row').filter({ hasText: DANA })).toContainText('Dana Scully');
  await expect(page.getByText('Group · 1 member ·')).toBeVisible();
  await snap(page, testInfo, 'group-detail');
});

test('the admin connects a cluster whose connector registers with its key', async ({ page, request }) => {
  await signInAdmin(page);
  await nav(page).getByRole('link', { name: 'Clusters', exact: true }).click();
  await expect(page).toHaveURL(/\/clusters$/);
  await expect(page.getByText('No clusters yet.')).toBeVisible();

  await page.locator('#cluster-name').fill('prod');
  await page.getByRole('button', { name: 'Create connector key' }).click();
  const keyBox = page.getByTestId('connector-key');
  await expect(keyBox).toHaveText(/^\s*[^.\s]+\.[^.\s]+\s*$/);
  const key = ((await keyBox.textContent()) ?? '').trim();

  const clusters = page.getByTestId('clusters');
  const prodRow = clusters.getByRole('row').filter({ has: page.getByRole('link', { name: 'prod', exact: true }) });
  await expect(prodRow.locator('[data-status]')).toHaveAttribute('data-status', 'pending');
  await expect(prodRow.locator('[data-status]')).toHaveText('pending');
  await expect(prodRow).toContainText('never');

  // a tampered key is refused, and nothing changes
  const last = key.slice(-1);
  const tampered = key.slice(0, -1) + (last === 'A' ? 'B' : 'A');
  const refused = await request.post('/api/destinations/register', {
    headers: { Authorization: `Bearer ${tampered}` },
    data: registration,
  });
  expect(refused.status()).toBe(401);
  await page.reload();
  await hydrated(page);
  await expect(clusters.getByRole('row')).toHaveCount(2); // the header and prod
  await expect(prodRow.locator('[data-status]')).toHaveAttribute('data-status', 'pending');
  await expect(prodRow).toContainText('never');

  // the real key registers the cluster
  const registered = await request.post('/api/destinations/register', {
    headers: { Authorization: `Bearer ${key}` },
    data: registration,
  });
  expect(registered.status(), await registered.text()).toBe(200);
  expect(await registered.json()).toMatchObject({ name: 'prod', status: 'connected', namespaces: ['db', 'web'] });

  await page.reload();
  await hydrated(page);
  await expect(clusters.getByRole('row')).toHaveCount(2);
  await expect(prodRow.locator('[data-status]')).toHaveAttribute('data-status', 'connected');
  await expect(prodRow).toContainText('v1.32.0');
  await expect(prodRow).toContainText('just now');

  await prodRow.getByRole('link', { name: 'prod', exact: true }).click();
  await expect(page).toHaveURL(/\/clusters\/prod$/);
  await expect(page.getByTestId('page-title')).toHaveText('prod');
  await expect(page.locator('header [data-status]')).toHaveAttribute('data-status', 'connected');
  await expect(page.getByTestId('last-seen')).toHaveText('just now');
  const namespaces = page.getByTestId('namespaces');
  await expect(namespaces.getByText('web', { exact: true })).toBeVisible();
  await expect(namespaces.getByText('db', { exact: true })).toBeVisible();
});

test('the admin grants the group a role on a namespace with the typeaheads', async ({ page }, testInfo) => {
  await signInAdmin(page);
  await open(page, '/clusters');
  await expect(page.getByTestId('clusters').locator('[data-status]')).toHaveAttribute('data-status', 'connected');
  await snap(page, testInfo, 'clusters');

  await open(page, '/clusters/prod');
  await expect(page.getByTestId('page-title')).toHaveText('prod');

  // who: the group, picked from the keyboard
  const subject = page.locator('#subject');
  await subject.click();
  await subject.pressSequentially('Eng');
  await expect(subject).toHaveAttribute('aria-expanded', 'true');
  const group = page.locator('#subject-listbox').getByRole('option').filter({ hasText: 'Engineering' });
  await expect(group).toBeVisible();
  await expect(group).toContainText('group');
  const groupId = await group.getAttribute('id');
  // walk to the group's option (it is the only match today, but don't depend on the order)
  for (let i = 0; i < 8 && (await subject.getAttribute('aria-activedescendant')) !== groupId; i++) {
    await subject.press('ArrowDown');
  }
  await expect(subject).toHaveAttribute('aria-activedescendant', groupId!);
  await subject.press('Enter');
  await expect(subject).toHaveValue('Engineering');
  await expect(subject).toHaveAttribute('aria-expanded', 'false');

  // which role: the cluster's roles, picked with the mouse
  const role = page.locator('#role');
  await role.click();
  await role.pressSequentially('e');
  const roleOptions = page.locator('#role-listbox').getByRole('option');
  await expect(roleOptions).toHaveText(['edit', 'exec']);
  await role.pressSequentially('d');
  await expect(roleOptions).toHaveText(['edit']);
  await roleOptions.first().click();
  await expect(role).toHaveValue('edit');
  await expect(role).toHaveAttribute('aria-expanded', 'false');

  // where: one namespace
  await expect(page.locator('#namespace option')).toHaveText(['Whole cluster', 'Namespace db', 'Namespace web']);
  await page.locator('#namespace').selectOption('web');

  await page.getByRole('button', { name: 'Grant access' }).click();
  const row = page.getByTestId('cluster-access').getByRole('row').filter({ hasText: 'Engineering' });
  await expect(row).toHaveCount(1);
  const cells = row.getByRole('cell');
  await expect(cells.nth(0)).toContainText('Engineering');
  await expect(cells.nth(0)).toContainText('group');
  await expect(cells.nth(1)).toHaveText('edit');
  await expect(cells.nth(2)).toHaveText('prod.web');
  await expect(cells.nth(3)).toHaveText('never');
  await expect(page.getByRole('alert')).toHaveCount(0);
  await snap(page, testInfo, 'cluster-detail');

  // every grant, filtered
  await nav(page).getByRole('link', { name: 'Access', exact: true }).click();
  await expect(page).toHaveURL(/\/access$/);
  const grants = page.getByTestId('grants');
  const grant = grants.getByRole('row').filter({ hasText: 'prod.web' });
  await expect(grant).toContainText('Engineering');
  await expect(grant).toContainText('edit');
  await expect(grant).toContainText(`by ${ADMIN}`);
  await page.locator('#f-role').fill('view');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/role=view/);
  await expect(grants.getByRole('row').filter({ hasText: 'prod.web' })).toHaveCount(0);
  await page.locator('#f-role').fill('edit');
  await page.locator('#f-cluster').fill('prod');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/role=edit/);
  await expect(grant).toContainText('Engineering');
  await snap(page, testInfo, 'access');

  // the audit log shows the changes and the refused registration
  await nav(page).getByRole('link', { name: 'Audit log', exact: true }).click();
  await expect(page).toHaveURL(/\/audit$/);
  const audit = page.getByTestId('audit');
  await expect(audit.getByRole('row').filter({ hasText: 'denied' }).first()).toBeVisible();
  await expect(audit.getByRole('row').filter({ hasText: 'grants.' }).first()).toContainText(ADMIN);
  await snap(page, testInfo, 'audit');

  await nav(page).getByRole('link', { name: 'Settings', exact: true }).click();
  await expect(page).toHaveURL(/\/settings$/);
  await expect(page.getByTestId('page-title')).toHaveText('Settings');
  await expect(page.getByTestId('keys')).toBeVisible();
  await snap(page, testInfo, 'settings');
});

test('the user signs in, chooses a password and sees the access her group has', async ({ page }, testInfo) => {
  expect(danaOneTimePassword, 'set by an earlier test').not.toBe('');
  await signInAdmin(page);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto('/');
  await expect(page).toHaveURL(/\/login$/);

  await signIn(page, DANA, danaOneTimePassword);
  await changePassword(page, danaOneTimePassword, DANA_PASSWORD);
  await expect(page.getByTestId('signed-in-as')).toHaveText(DANA);
  const access = page.getByTestId('my-access');
  const row = access.getByRole('row').filter({ hasText: 'prod.web' });
  await expect(row).toHaveCount(1);
  await expect(row.getByRole('cell').nth(0)).toHaveText('prod.web');
  await expect(row.getByRole('cell').nth(1)).toHaveText('edit');
  await expect(row.getByRole('cell').nth(2)).toHaveText('group Engineering');
  await expect(row.locator('[data-status]')).toHaveAttribute('data-status', 'connected');
  await snap(page, testInfo, 'my-access-dana');

  // not an admin: no Users link, and the users page lists nobody
  await expect(nav(page).getByRole('link', { name: 'Clusters', exact: true })).toBeVisible();
  await expect(nav(page).getByRole('link', { name: 'Users', exact: true })).toHaveCount(0);
  await expect(nav(page).getByRole('link', { name: 'Access', exact: true })).toHaveCount(0);
  const html = await (await page.request.get('/users')).text();
  expect(html).not.toContain('data-testid="users"');
  await open(page, '/users');
  await expect(page.getByRole('alert')).toBeVisible();
  await expect(page.getByTestId('users')).toHaveCount(0);
  await expect(page.locator('#new-email')).toHaveCount(0);

  // she can sign in with her new password only
  await page.getByRole('button', { name: 'Sign out' }).click();
  await signIn(page, DANA, danaOneTimePassword);
  await expect(page).toHaveURL(/\/login\?error=/);
  await signIn(page, DANA, DANA_PASSWORD);
  await expect(page).toHaveURL(/\/$/);
});

test('without JavaScript the forms still work', async ({ browser, consoleGuard }, testInfo) => {
  const context = await browser.newContext({ javaScriptEnabled: false, baseURL: testInfo.project.use.baseURL, ignoreHTTPSErrors: true });
  consoleGuard.watch(context);
  try {
    const page = await context.newPage();
    await page.goto('/login');
    await page.locator('#email').fill(ADMIN);
    await page.locator('#password').fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page).toHaveURL(/\/$/);
    await expect(page.getByTestId('page-title')).toHaveText('My access');
    await expect(page.locator('body')).not.toHaveAttribute('data-hydrated', /./);

    await page.goto('/users');
    const users = page.getByTestId('users');
    await expect(users.getByRole('row').filter({ hasText: DANA })).toBeVisible();
    await expect(users.getByRole('row').filter({ hasText: ADMIN })).toBeVisible();

    // the action forms post to the server functions, which send the browser back to the page (with a
    // password given: a one-time password could not be shown without JavaScript)
    await page.locator('#new-email').fill('erin@example.com');
    await page.locator('#new-name').fill('Erin No-Script');
    await page.locator('#new-password').fill('erin-e2e-password-1');
    await page.getByRole('button', { name: 'Add user' }).click();
    await expect(page).toHaveURL(/\/users\??$/);
    await expect(users.getByRole('row').filter({ hasText: 'erin@example.com' })).toContainText('Erin No-Script');
  } finally {
    await context.close();
  }
});

/** A TCP port nobody listens on right now. */
async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

async function waitForFile(file: string, timeoutMs: number) {
  const start = Date.now();
  while (!fs.existsSync(file)) {
    if (Date.now() - start > timeoutMs) throw new Error(`${file} did not appear`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The Kubernetes API test server and the real connector for cluster `name`, as separate processes. */
async function startCluster(name: string, key: string, baseURL: string) {
  const { spawn } = await import('node:child_process');
  const root = path.resolve(__dirname, '..', '..');
  const infraBin = path.resolve(root, process.env.INFRA_BIN ?? 'target/debug/infra');
  const apiserverBin = path.resolve(root, 'target/debug/kube-test-apiserver');
  const dir = fs.mkdtempSync(path.join(dataDir(), `cluster-${name}-`));
  const apiserver = spawn(apiserverBin, ['--listen', `127.0.0.1:${await freePort()}`, '--dir', dir], { stdio: 'ignore' });
  let connector: ReturnType<typeof spawn> | undefined;
  const stop = () => {
    connector?.kill();
    apiserver.kill();
  };
  try {
    await waitForFile(path.join(dir, 'connector.kubeconfig'), 20_000);
  } catch (e) {
    stop();
    throw e;
  }
  connector = spawn(
    infraBin,
    ['connector', '--server', baseURL, '--server-ca', path.join(dataDir(), 'server-ca.crt'), '--access-key', key, '--name', name,
      '--kubeconfig', path.join(dir, 'connector.kubeconfig'), '--listen', `127.0.0.1:${await freePort()}`,
      '--data-dir', path.join(dir, 'connector'), '--heartbeat-secs', '2'],
    { stdio: 'ignore', env: { ...process.env, RUST_LOG: 'warn' } },
  );
  return { dir, stop };
}

test('a running connector keeps the cluster page live; a user downloads a kubeconfig that kubectl uses', async ({ page, browser }, testInfo) => {
  test.setTimeout(120_000);
  const baseURL = testInfo.project.use.baseURL!;

  await signInAdmin(page);
  await open(page, '/clusters');
  await page.locator('#cluster-name').fill('live');
  await page.getByRole('button', { name: 'Create connector key' }).click();
  const keyBox = page.getByTestId('connector-key');
  await expect(keyBox).toHaveText(/^\s*[^.\s]+\.[^.\s]+\s*$/);
  const key = ((await keyBox.textContent()) ?? '').trim();

  const cluster = await startCluster('live', key, baseURL);
  const dir = cluster.dir;
  try {
    // the page was opened while the cluster was still pending; it turns connected without a reload
    await open(page, '/clusters/live');
    await expect(page.locator('header [data-status]')).toHaveAttribute('data-status', 'connected', { timeout: 30_000 });
    await expect(page.getByTestId('last-seen')).toHaveText('just now');
    const namespaces = page.getByTestId('namespaces');
    for (const ns of ['default', 'web', 'db']) {
      await expect(namespaces.getByText(ns, { exact: true })).toBeVisible();
    }
    await expect(page.getByTestId('problems')).toHaveCount(0);

    // a grant on a namespace the cluster does not have shows as a problem, again without a reload
    const granted = await page.request.post('/api/grants', {
      headers: { Origin: baseURL },
      data: { subject: 'group:Engineering', role: 'view', resource: 'live.ghost' },
    });
    expect(granted.status(), await granted.text()).toBe(201);
    await expect(page.getByTestId('problems')).toContainText('namespace ghost does not exist', { timeout: 30_000 });
    await snap(page, testInfo, 'cluster-live');

    // Dana's group gets edit on live.web; she downloads a kubeconfig with a 1-hour token from the
    // console, and the real kubectl lists the pods with that file alone
    const edit = await page.request.post('/api/grants', {
      headers: { Origin: baseURL },
      data: { subject: 'group:Engineering', role: 'edit', resource: 'live.web' },
    });
    expect(edit.status(), await edit.text()).toBe(201);
    const dana = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
    await signIn(dana, DANA, DANA_PASSWORD);
    await open(dana, '/kubeconfig');
    await expect(dana.getByTestId('kubeconfig-howto')).toContainText('export KUBECONFIG');
    const form = dana.getByTestId('kubeconfig-form');
    await expect(form.getByLabel('live')).toBeChecked();
    await form.getByLabel(/A token in the file/).check();
    await form.getByLabel('Lifetime of the token or certificate').selectOption('3600');
    await snap(dana, testInfo, 'kubeconfig');
    const [download] = await Promise.all([
      dana.waitForEvent('download'),
      form.getByRole('button', { name: 'Download kubeconfig' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe('infra.kubeconfig');
    const file = path.join(dir, 'dana.kubeconfig');
    await download.saveAs(file);
    const { execFileSync } = await import('node:child_process');
    const kubectl = (args: string[]) => execFileSync('kubectl', ['--kubeconfig', file, '--request-timeout', '10s', ...args], { encoding: 'utf8' });
    await expect.poll(() => {
      try { return kubectl(['--context', 'infra:live.web', 'get', 'pods', '-o', 'name']); } catch (e) { return String(e); }
    }, { timeout: 20_000 }).toContain('pod/web-0');
    expect(() => kubectl(['--context', 'infra:live.web', 'get', 'pods', '-n', 'db'])).toThrow(/forbidden/);

    // the admin, with view on live, downloads a break-glass certificate: the page says it cannot be
    // revoked, and kubectl with the file reaches the API server directly as the admin
    const view = await page.request.post('/api/grants', {
      headers: { Origin: baseURL },
      data: { subject: `user:${ADMIN}`, role: 'view', resource: 'live' },
    });
    expect(view.status(), await view.text()).toBe(201);
    await open(page, '/kubeconfig');
    const adminForm = page.getByTestId('kubeconfig-form');
    await expect(page.getByTestId('break-glass')).toContainText('It cannot be revoked');
    await adminForm.getByLabel(/Break-glass/).check();
    await adminForm.getByLabel('Lifetime of the token or certificate').selectOption('600');
    await snap(page, testInfo, 'kubeconfig-admin');
    const [glass] = await Promise.all([
      page.waitForEvent('download'),
      adminForm.getByRole('button', { name: 'Download kubeconfig' }).click(),
    ]);
    const glassFile = path.join(dir, 'break-glass.kubeconfig');
    await glass.saveAs(glassFile);
    const whoami = execFileSync('kubectl', ['--kubeconfig', glassFile, '--request-timeout', '10s', 'auth', 'whoami', '-o', 'json'], { encoding: 'utf8' });
    expect(JSON.parse(whoami).status.userInfo.username).toBe(ADMIN);
    // it names the API server itself (the one in the connector's kubeconfig), not the proxy
    const apiServer = fs.readFileSync(path.join(dir, 'connector.kubeconfig'), 'utf8').match(/server:\s*"?([^"\s]+)"?/)?.[1]?.replace(/\/$/, '');
    expect(apiServer).toBeTruthy();
    expect(fs.readFileSync(glassFile, 'utf8')).toContain(apiServer!);
  } finally {
    cluster.stop();
  }
});

/** The test OpenID Provider (npm oidc-provider, end2end/idp/idp.mjs), with one client for this server. */
async function startIdp(baseURL: string, users: object[]) {
  const { spawn } = await import('node:child_process');
  const config = path.join(fs.mkdtempSync(path.join(dataDir(), 'idp-')), 'idp.json');
  fs.writeFileSync(config, JSON.stringify({
    clients: [{
      client_id: 'infra', client_secret: 'infra-secret',
      redirect_uris: [`${baseURL}/auth/oidc/callback`], grant_types: ['authorization_code', 'refresh_token'],
    }],
    users,
  }));
  const idp = spawn('node', [path.resolve(__dirname, '..', 'idp', 'idp.mjs'), config], { stdio: ['ignore', 'pipe', 'ignore'] });
  const issuer = await new Promise<string>((resolve, reject) => {
    let out = '';
    idp.stdout!.on('data', (chunk) => {
      out += chunk;
      const line = out.split('\n')[0];
      if (out.includes('\n')) {
        try { resolve(JSON.parse(line).issuer); } catch (e) { reject(new Error(`the IdP did not start: ${line}`)); }
      }
    });
    idp.once('exit', (code) => reject(new Error(`the IdP exited (${code})`)));
  });
  const admin = async (p: string, body: object) => {
    const res = await fetch(`${issuer}/admin${p}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(res.ok, await res.text()).toBe(true);
  };
  return { issuer, admin, stop: () => idp.kill() };
}

test('a user signs in through the identity provider; leaving the provider group ends her cluster access', async ({ page, browser }, testInfo) => {
  test.setTimeout(120_000);
  const baseURL = testInfo.project.use.baseURL!;
  const GWEN = 'gwen@example.com'; // (not erin@example.com: she is a local user from an earlier test, whom a provider may not take over)
  const idp = await startIdp(baseURL, [{ sub: 'gwen', email: GWEN, name: 'Gwen Example', password: 'gwen-idp-pw', groups: ['platform'] }]);
  let cluster: Awaited<ReturnType<typeof startCluster>> | undefined;
  try {
    // the admin adds the provider in the console and tests the connection; then a cluster `edge`
    await signInAdmin(page);
    await open(page, '/providers');
    const providerForm = page.getByTestId('provider-form');
    await providerForm.getByLabel(/^Name/).fill('corp');
    await providerForm.getByLabel(/^Issuer URL/).fill(idp.issuer);
    await providerForm.getByLabel('Client id').fill('infra');
    await providerForm.getByLabel(/^Client secret/).fill('infra-secret');
    await providerForm.getByRole('button', { name: 'Add provider' }).click();
    const row = page.getByTestId('providers').getByRole('row').filter({ hasText: 'corp' });
    await expect(row).toContainText(idp.issuer);
    await expect(providerForm.getByLabel(/^Client secret/)).toHaveValue('');
    await row.getByRole('button', { name: 'Test connection' }).click();
    await expect(page.getByTestId('provider-check')).toContainText('Discovery works');
    // and changes it: only example.com addresses may sign in through it (the secret stays as stored)
    await row.getByRole('button', { name: 'Edit' }).click();
    const edit = page.getByTestId('provider-edit');
    await expect(edit.getByLabel('Client id')).toHaveValue('infra');
    await edit.getByLabel(/^Allowed email domains/).fill('example.com');
    await snap(page, testInfo, 'provider-edit');
    await edit.getByRole('button', { name: 'Save changes' }).click();
    await expect(edit).toHaveCount(0);
    await expect(row).toContainText('example.com');
    await snap(page, testInfo, 'providers');
    const keyed = await page.request.post('/api/destinations/edge/connector-key', { headers: { Origin: baseURL }, data: {} });
    expect(keyed.status(), await keyed.text()).toBe(201);
    cluster = await startCluster('edge', (await keyed.json()).access_key, baseURL);

    // Gwen signs in with the provider's own login form and lands in the console
    const gwen = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
    await open(gwen, '/login');
    await snap(gwen, testInfo, 'login-with-provider');
    await gwen.getByRole('link', { name: 'Sign in with corp' }).click();
    await gwen.locator('input[name="email"]').fill(GWEN);
    await gwen.locator('input[name="password"]').fill('gwen-idp-pw');
    await gwen.getByRole('button', { name: 'Sign in' }).click();
    await expect(gwen).toHaveURL(new RegExp(`^${baseURL}/$`));
    await hydrated(gwen);
    await expect(gwen.getByText(GWEN).first()).toBeVisible();

    // her group came from the provider: the admin grants it (it is read-only here)
    await expect.poll(async () => (await page.request.get('/api/groups?q=platform')).text()).toContain('"source":"corp"');
    const granted = await page.request.post('/api/grants', {
      headers: { Origin: baseURL },
      data: { subject: 'group:platform', role: 'edit', resource: 'edge.web' },
    });
    expect(granted.status(), await granted.text()).toBe(201);
    await expect.poll(async () => (await page.request.get('/api/destinations/edge')).text(), { timeout: 30_000 }).toContain('"status":"connected"');

    // she downloads a kubeconfig (a token for an hour), and kubectl works with it
    await open(gwen, '/kubeconfig');
    const form = gwen.getByTestId('kubeconfig-form');
    await form.getByLabel(/A token in the file/).check();
    await form.getByLabel('Lifetime of the token or certificate').selectOption('3600');
    const [download] = await Promise.all([gwen.waitForEvent('download'), form.getByRole('button', { name: 'Download kubeconfig' }).click()]);
    const file = path.join(cluster.dir, 'gwen.kubeconfig');
    await download.saveAs(file);
    const { execFileSync } = await import('node:child_process');
    const kubectl = () => {
      try { return execFileSync('kubectl', ['--kubeconfig', file, '--context', 'infra:edge.web', '--request-timeout', '10s', 'get', 'pods', '-o', 'name'], { encoding: 'utf8', stdio: 'pipe' }); } catch (e) { return String((e as { stderr?: string }).stderr ?? e); }
    };
    await expect.poll(kubectl, { timeout: 20_000 }).toContain('pod/web-0');
    await open(gwen, '/');
    await expect(gwen.getByText('edge.web').first()).toBeVisible();
    await snap(gwen, testInfo, 'provider-user-access');

    // removed from the group at the provider: within one verification interval (3 s here) kubectl is
    // refused, and her access page no longer lists edge.web
    await idp.admin('/users/gwen', { groups: [] });
    await expect.poll(kubectl, { timeout: 20_000 }).toContain('forbidden');
    await open(gwen, '/');
    await expect(gwen.getByText('edge.web')).toHaveCount(0);
  } finally {
    cluster?.stop();
    idp.stop();
  }
});
