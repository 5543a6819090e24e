import fs from 'node:fs';

// Removes the server's temporary data directory after the run (keep it with INFRA_E2E_KEEP_DATA=1).
export default async function globalTeardown() {
  const dir = process.env.INFRA_E2E_DATA_DIR;
  if (!dir || process.env.INFRA_E2E_KEEP_DATA) return;
  fs.rmSync(dir, { recursive: true, force: true });
}
