import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AppProcess, freePort, startApp } from '../../harness/app-process';

export interface ApiUnderTest {
  process: AppProcess;
  baseUrl: string;
  get(path: string, headers?: Record<string, string>): Promise<Response>;
}

/** Starts the real api (`node -r ./scripts/register.js apps/api/src/main.ts`) and waits until it listens. */
export async function startApi(env: Record<string, string>): Promise<ApiUnderTest> {
  const port = await freePort();
  const process = startApp('api', {
    NORM_API_HOST: '127.0.0.1',
    NORM_API_PORT: String(port),
    // The bootstrap admin token file goes to a directory of this run, never the repo's .norm.
    NORM_STATE_DIR: mkdtempSync(join(tmpdir(), 'norm-api-e2e-')),
    ...env,
  });
  await process.waitForLine((line) => line.msg === 'api listening');
  const baseUrl = `http://127.0.0.1:${port}`;
  return {
    process,
    baseUrl,
    get: (path, headers = {}) => fetch(`${baseUrl}${path}`, { headers, signal: AbortSignal.timeout(5_000) }),
  };
}
