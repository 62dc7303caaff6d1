import { readFileSync } from 'node:fs';
import { isMap, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { z } from 'zod';
import { DomainError } from '../errors';
import { parseDuration } from '../config/duration';
import { subscriptionSchema } from '../notifications/webhook-subscriptions';

/**
 * The checklist as configuration: an ordered list of steps, each of a registered kind, each
 * optionally limited to the requests its `when` matches. YAML is a superset of JSON, so one
 * parser reads both, and its line counter lets every error name the line to fix.
 */

const duration = z.string().transform((text, ctx) => {
  try {
    return parseDuration(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

const names = z.array(z.string().min(1)).min(1);

/** Every field present must match; a list matches any of its values. */
export const stepConditionSchema = z.strictObject({
  /** The request's `environment` label. */
  environment: names.optional(),
  lifecycleClass: z
    .array(z.enum(['cattle', 'pet']))
    .min(1)
    .optional(),
  /** Applies when the request is larger than any one of these. */
  sizeAbove: z
    .strictObject({
      vcpus: z.number().int().nonnegative().optional(),
      memoryMb: z.number().int().nonnegative().optional(),
      diskGb: z.number().int().nonnegative().optional(),
    })
    .optional(),
  /** Network id or name. */
  network: names.optional(),
  /** Image id or name. */
  image: names.optional(),
  /** Every listed label must be present with one of its values. */
  labels: z.record(z.string(), z.union([z.string(), names])).optional(),
});
export type StepCondition = z.infer<typeof stepConditionSchema>;

export const quorumSchema = z.union([
  z.literal('any'),
  z.literal('all'),
  z.strictObject({ n: z.number().int().min(1) }),
]);
export type Quorum = z.infer<typeof quorumSchema>;

export const timeoutActionSchema = z.discriminatedUnion('action', [
  z.strictObject({ action: z.literal('remind') }),
  z.strictObject({ action: z.literal('escalate'), groups: names }),
  z.strictObject({ action: z.literal('expire') }),
  z.strictObject({ action: z.literal('approve') }),
]);
export type TimeoutAction = z.infer<typeof timeoutActionSchema>;

/** Fields every step has; the kind's own options are checked by the kind's factory. */
export const policyStepSchema = z.looseObject({
  name: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, 'a lowercase name: letters, digits and -'),
  kind: z.string().min(1),
  when: stepConditionSchema.optional(),
  parallel: z.boolean().optional(),
  timeout: duration.optional(),
  onTimeout: timeoutActionSchema.optional(),
});
export type PolicyStep = z.infer<typeof policyStepSchema>;

export const approvalPolicySchema = z
  .strictObject({
    /** Site-specific kinds: kind name → path of a module exporting `createStep`. */
    stepKinds: z.record(z.string().regex(/^[a-z][a-z0-9-]*$/), z.string().min(1)).optional(),
    steps: z.array(policyStepSchema).min(1, 'a checklist needs at least one step'),
    /** Outbound webhooks told about approval events (README "Notifications"). */
    notifications: z.array(subscriptionSchema).optional(),
  })
  .superRefine((p, ctx) => {
    const seen = new Set<string>();
    for (const [i, s] of p.steps.entries()) {
      if (seen.has(s.name))
        ctx.addIssue({ code: 'custom', path: ['steps', i, 'name'], message: `step ${s.name} appears twice` });
      seen.add(s.name);
      if (s.onTimeout && s.timeout === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['steps', i, 'onTimeout'],
          message: 'onTimeout needs a timeout',
        });
    }
    const subs = new Set<string>();
    for (const [i, n] of (p.notifications ?? []).entries()) {
      if (subs.has(n.name))
        ctx.addIssue({
          code: 'custom',
          path: ['notifications', i, 'name'],
          message: `notification ${n.name} appears twice`,
        });
      subs.add(n.name);
    }
  });
export type ApprovalPolicy = z.infer<typeof approvalPolicySchema>;

export interface PolicyIssue {
  path: string;
  line: number | null;
  message: string;
}

/** A policy file Norm refuses to start with; `issues` name the line of each problem. */
export class ApprovalPolicyInvalid extends DomainError {
  constructor(
    readonly source: string,
    readonly issues: readonly PolicyIssue[],
  ) {
    super(
      'ConfigInvalid',
      `approval policy ${source} is invalid: ${issues
        .map((i) => `${i.line === null ? '' : `line ${i.line}: `}${i.path ? `${i.path}: ` : ''}${i.message}`)
        .join('; ')}`,
      { source, issues },
    );
  }
}

/** The policy text and, for each step, the line it starts on (for later errors from a kind). */
export interface ParsedPolicy {
  policy: ApprovalPolicy;
  source: string;
  stepLines: Array<number | null>;
  /** The line each `notifications` entry starts on. */
  notificationLines?: Array<number | null>;
}

export function parseApprovalPolicy(text: string, source = '<policy>'): ParsedPolicy {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0)
    throw new ApprovalPolicyInvalid(
      source,
      doc.errors.map((e) => ({
        path: '',
        line: e.linePos?.[0]?.line ?? lines.linePos(e.pos[0]).line,
        message: e.message.split('\n')[0] ?? e.message,
      })),
    );
  const lineOf = (path: ReadonlyArray<PropertyKey>): number | null => {
    // The deepest node that exists: a missing field is reported on its parent's line.
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n), true) as YamlNode | undefined;
      if (node && typeof node === 'object' && 'range' in node && node.range)
        return lines.linePos(node.range[0]).line;
    }
    return null;
  };
  const parsed = approvalPolicySchema.safeParse(doc.toJS());
  if (!parsed.success)
    throw new ApprovalPolicyInvalid(
      source,
      parsed.error.issues.map((i) => ({
        path: i.path.map(String).join('.'),
        line: lineOf(i.path),
        message: i.message,
      })),
    );
  const linesOf = (key: string): Array<number | null> => {
    const node = doc.get(key, true);
    return isSeq(node)
      ? node.items.map((item) => (isMap(item) && item.range ? lines.linePos(item.range[0]).line : null))
      : [];
  };
  return {
    policy: parsed.data,
    source,
    stepLines: linesOf('steps'),
    notificationLines: linesOf('notifications'),
  };
}

export function loadApprovalPolicy(path: string): ParsedPolicy {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ApprovalPolicyInvalid(path, [
      { path: '', line: null, message: `cannot read the file: ${(err as Error).message}` },
    ]);
  }
  return parseApprovalPolicy(text, path);
}
