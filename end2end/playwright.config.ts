import { defineConfig, devices } from '@playwright/test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// The repository root: the server runs from there so it finds Leptos.toml and target/site.
const root = path.resolve(__dirname, '..');
const bin = process.env.INFRA_BIN ?? 'target/debug/infra';
const port = Number(process.env.INFRA_E2E_PORT ?? 3210);
// infra server serves HTTPS with a certificate from its own CA (made in the data directory at first
// start); the browser is told to accept it, as a user accepts the warning once.
const baseURL = `https://127.0.0.1:${port}`;

// Playwright loads this file in the runner and again in every worker. The runner makes a fresh, empty
// data directory (so the server creates its first admin) and hands it to the workers, which inherit
// its environment, through INFRA_E2E_DATA_DIR.
if (process.env.TEST_WORKER_INDEX === undefined) {
  process.env.INFRA_E2E_DATA_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'infra-e2e-'));
  // The server reads INFRA_* settings from the environment: none of the caller's may point it at
  // another database, address or admin.
  for (const key of Object.keys(process.env)) {
    if (key.startsWith('INFRA_') && key !== 'INFRA_BIN' && !key.startsWith('INFRA_E2E_')) delete process.env[key];
  }
}
const dataDir = process.env.INFRA_E2E_DATA_DIR!;

// Debian's chromium (a launcher script in /usr/bin that execs /usr/lib/chromium/chromium); never a
// downloaded browser build.
const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export default defineConfig({
  testDir: './tests',
  outputDir: 'test-results',
  // One server, one database: the tests build on each other and run in order.
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: !!process.env.CI,
  reporter: 'list',
  timeout: 60_000,
  expect: { timeout: 10_000 },
  globalTeardown: './global-teardown.ts',
  use: {
    baseURL,
    ignoreHTTPSErrors: true,
    headless: true,
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
  },
  projects: [
    {
      name: 'chromium',
      use: {
        ...devices['Desktop Chrome'],
        viewport: { width: 1280, height: 800 },
        launchOptions: {
          executablePath: chromium,
          args: [
            '--no-sandbox',
            '--disable-gpu',
            '--disable-dev-shm-usage',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
            '--no-first-run',
          ],
        },
      },
    },
  ],
  webServer: {
    // identity-provider users are verified every 3 s here (default 5 minutes), so the test sees removals quickly
    command: `${shellQuote(bin)} server --data-dir ${shellQuote(dataDir)} --listen 127.0.0.1:${port} --verify-interval-secs 3`,
    cwd: root,
    url: `${baseURL}/healthz`,
    ignoreHTTPSErrors: true,
    timeout: 120_000,
    reuseExistingServer: false,
    stdout: 'ignore',
    stderr: 'pipe',
    // tower-sessions warns at every sign-in that its store uses the default `create`: not news.
    env: { RUST_LOG: process.env.RUST_LOG ?? 'warn,tower_sessions_core=error' },
  },
});
