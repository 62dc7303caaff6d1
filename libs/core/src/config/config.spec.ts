import { describe, expect, it } from 'vitest';
import { ConfigInvalid, loadConfig, SETTING_DOCS } from './config';

describe('loadConfig', () => {
  it('fills every default from an empty environment', () => {
    const config = loadConfig({});
    expect(config.databaseUrl).toBe('postgres://postgres@127.0.0.1:5432/norm');
    expect(config.heartbeatTimeoutMs).toBe(180_000);
    expect(config.apiPort).toBe(8080);
    expect(config.sshKeyPath).toBeUndefined();
  });

  it('reads durations written like 180s', () => {
    expect(loadConfig({ NORM_HEARTBEAT_TIMEOUT: '5m', NORM_SHUTDOWN_GRACE: '1500ms' })).toMatchObject({
      heartbeatTimeoutMs: 300_000,
      shutdownGraceMs: 1_500,
    });
  });

  it('lists every bad variable in one error', () => {
    let error: unknown;
    try {
      loadConfig({
        NORM_API_PORT: 'abc',
        NORM_SHUTDOWN_GRACE: '10',
        DATABASE_URL: 'mysql://x',
        NORM_LOG_LEVEL: 'loud',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigInvalid);
    const problems = (error as ConfigInvalid).problems.map((p) => p.env).sort();
    expect(problems).toEqual(['DATABASE_URL', 'NORM_API_PORT', 'NORM_LOG_LEVEL', 'NORM_SHUTDOWN_GRACE']);
    expect((error as Error).message).toMatch(/NORM_SHUTDOWN_GRACE: "10" is not a duration/);
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ NORM_API_PORT: '' }).apiPort).toBe(8080);
  });

  it('documents why every setting has its default', () => {
    for (const doc of SETTING_DOCS) expect(doc.why.length, doc.env).toBeGreaterThan(20);
  });
});
