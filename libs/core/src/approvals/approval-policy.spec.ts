import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ApprovalPolicyInvalid, parseApprovalPolicy } from './approval-policy';
import { evaluatePipeline } from '../vm-requests/approval-pipeline';
import { buildChecklist, type StepKindDeps } from './step-kinds';

const deps: StepKindDeps = {
  quota: { perPrincipal: {}, groups: {} },
  namePattern: /^[a-z][a-z0-9-]*$/,
  webhooks: { post: () => Promise.reject(new Error('no network in unit tests')) },
  commands: { run: () => Promise.reject(new Error('no processes in unit tests')) },
  callbackBaseUrl: null,
  env: {
    NORM_CMDB_WEBHOOK_SECRET: 's3cret',
    NORM_CHAT_WEBHOOK_SECRET: 'chat',
    NORM_MAIL_WEBHOOK_SECRET: 'mail',
  },
};

function refusal(text: string): ApprovalPolicyInvalid {
  try {
    buildChecklist(parseApprovalPolicy(text, 'policy.yaml'), deps);
  } catch (err) {
    if (err instanceof ApprovalPolicyInvalid) return err;
    throw err;
  }
  throw new Error('the policy was accepted');
}

describe('approval policy file', () => {
  it('accepts the shipped example and builds every step', () => {
    const path = join(__dirname, '../../../../config/approval-policy.example.yaml');
    const checklist = buildChecklist(parseApprovalPolicy(readFileSync(path, 'utf8'), path), deps);
    expect(checklist.steps.map((s) => s.name)).toEqual([
      'quota',
      'naming',
      'capacity',
      'network-team',
      'security',
      'production-signoff',
      'large-staging',
      'dns-monitoring',
      'license-check',
    ]);
    expect(checklist.steps.map((s) => s.kind)).toContain('manual');
    expect(checklist.subscriptions.map((s) => [s.name, s.secret, [...s.events]])).toEqual([
      [
        'chat',
        'chat',
        ['approval.pending', 'approval.reminder', 'approval.escalated', 'vm-request.rejected'],
      ],
      ['audit-mail', 'mail', ['vm-request.approved', 'vm-request.rejected']],
    ]);
  });

  it('names the line of a bad notification: unknown event, unset secret, a name used twice', () => {
    const text = (extra: string): string =>
      `steps:\n  - {name: quota, kind: quota}\nnotifications:\n  - name: chat\n    url: https://c.example/\n${extra}`;
    expect(
      refusal(text('    secretEnv: NORM_CHAT_WEBHOOK_SECRET\n    events: [approval.lunch]\n')).message,
    ).toMatch(/line 7: notifications\.0\.events\.0: /);
    expect(refusal(text('    secretEnv: NOPE_SECRET\n')).message).toMatch(
      /line 4: notifications\.0: notification chat: .*NOPE_SECRET is not set/,
    );
    expect(
      refusal(
        text(
          '    secretEnv: NORM_CHAT_WEBHOOK_SECRET\n  - {name: chat, url: https://d.example/, secretEnv: X}\n',
        ),
      ).message,
    ).toMatch(/line 7: notifications\.1\.name: notification chat appears twice/);
    const all = buildChecklist(parseApprovalPolicy(text('    secretEnv: NORM_CHAT_WEBHOOK_SECRET\n')), deps)
      .subscriptions[0];
    expect(all?.events.size).toBe(6);
  });

  it('reads JSON too, YAML being a superset', () => {
    const c = buildChecklist(parseApprovalPolicy('{"steps": [{"name": "quota", "kind": "quota"}]}'), deps);
    expect(c.steps).toHaveLength(1);
  });

  it('names the line of a YAML error', () => {
    const err = refusal('steps:\n  - name: quota\n    kind: quota\n    kind: naming\n');
    expect(err.issues[0]?.line).toBe(4);
    expect(err.message).toMatch(/line 4/);
  });

  it('names the line of a bad field, of an unknown kind and of a kind option', () => {
    const text = [
      'steps:', //                      1
      '  - name: quota', //             2
      '    kind: quota', //             3
      '  - name: net', //               4
      '    kind: group', //             5
      '    groups: [network-team]', //  6
      '    quorum: most', //            7
      '  - name: fire', //              8
      '    kind: teleport', //          9
    ].join('\n');
    const err = refusal(text);
    // The quorum is a group option, checked by the kind: reported on the step's first line.
    expect(err.issues).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ line: 4, message: expect.stringMatching(/quorum/) as unknown }),
        expect.objectContaining({
          line: 8,
          message: expect.stringMatching(/unknown step kind teleport/) as unknown,
        }),
      ]),
    );
  });

  it('names the line of a schema error in the common fields', () => {
    const err = refusal('steps:\n  - name: quota\n    kind: quota\n    timeout: soon\n');
    expect(err.issues[0]).toMatchObject({ line: 4, path: 'steps.0.timeout' });
  });

  it('refuses duplicate names, onTimeout without timeout, unknown top-level fields and a missing secret', () => {
    expect(
      refusal('steps:\n  - {name: a, kind: quota}\n  - {name: a, kind: naming}\n').issues[0],
    ).toMatchObject({
      line: 3,
    });
    expect(
      refusal('steps:\n  - name: a\n    kind: group\n    groups: [x]\n    onTimeout: {action: expire}\n')
        .message,
    ).toMatch(/line 5: .*onTimeout needs a timeout/);
    expect(refusal('stepz: []\n').message).toMatch(/line 1/);
    expect(
      refusal(
        'steps:\n  - name: hook\n    kind: webhook\n    url: https://x.example/\n    secretEnv: NOPE_SECRET\n',
      ).message,
    ).toMatch(/line 2: .*NOPE_SECRET is not set/);
  });

  it('loads a site-specific kind from a module path relative to the policy file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'norm-kind-'));
    writeFileSync(
      join(dir, 'cost-centre.js'),
      `exports.createStep = (options, _deps, name) => ({
        name, kind: 'automatic',
        evaluate: (s) => Promise.resolve(s.labels['cost-centre'] === options.required
          ? { decision: 'approve', reason: 'cost centre ok' }
          : { decision: 'reject', reason: 'no cost centre ' + options.required }),
      });`,
    );
    const policyPath = join(dir, 'policy.yaml');
    const text =
      'stepKinds:\n  cost-centre: ./cost-centre.js\nsteps:\n  - {name: cc, kind: cost-centre, required: cc-42}\n';
    const c = buildChecklist(parseApprovalPolicy(text, policyPath), deps);
    const subject = {
      id: 'r1',
      name: 'web-1',
      ownerId: 'p1',
      ownerGroups: [],
      vcpus: 1,
      memoryMb: 512,
      diskGb: 1,
      lifecycleClass: 'cattle' as const,
      labels: { 'cost-centre': 'cc-42' },
    };
    const usage = () => Promise.resolve({ instances: 0, vcpus: 0, memoryMb: 0 });
    expect((await evaluatePipeline(c.steps, subject, { usage }, new Date())).outcome).toBe('approved');
    expect((await evaluatePipeline(c.steps, { ...subject, labels: {} }, { usage }, new Date())).reason).toBe(
      'cc: no cost centre cc-42',
    );
    const missing = refusal('stepKinds:\n  nope: ./missing.js\nsteps:\n  - {name: a, kind: nope}\n');
    expect(missing.message).toMatch(/stepKinds.nope: Cannot find module/);
  });
});
