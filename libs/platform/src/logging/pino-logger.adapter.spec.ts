import { describe, expect, it } from 'vitest';
import { PinoLoggerAdapter } from './pino-logger.adapter';
import { REDACTED } from './redaction';
import { createRootLogger } from './root-logger';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const root = createRootLogger({
    app: 'worker',
    level: 'info',
    destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  });
  return { root, lines };
}

describe('PinoLoggerAdapter', () => {
  it('writes the fixed message with the data as fields, redacted', () => {
    const { root, lines } = capture();
    const log = new PinoLoggerAdapter(root);
    log.warn('deregistration failed', { instanceId: 'i-1', target: 'chef', token: 'x' });
    log.debug('below the level', {});
    expect(lines).toEqual([
      expect.objectContaining({
        level: 'warn',
        msg: 'deregistration failed',
        instanceId: 'i-1',
        target: 'chef',
        token: REDACTED,
      }),
    ]);
  });

  it('keeps component bindings on child loggers and the request id given in the data', () => {
    const { root, lines } = capture();
    const log = new PinoLoggerAdapter(root).child({ component: 'vm-requests' });
    log.info('request approved', { requestId: 'req-7' });
    log.child({ step: 'quota' }).info('outside', {});
    expect(lines[0]).toMatchObject({ requestId: 'req-7', component: 'vm-requests', msg: 'request approved' });
    expect(lines[1]).toMatchObject({ component: 'vm-requests', step: 'quota', msg: 'outside' });
    expect(lines[1]).not.toHaveProperty('requestId');
  });
});
