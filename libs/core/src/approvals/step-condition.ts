import { type ApprovalSubject } from '../vm-requests/approval-pipeline';
import { type StepCondition } from './approval-policy';

/**
 * Whether a step concerns a request. Every field given must match; the answer says which
 * field failed, because "skipped: lifecycle class cattle is not pet" is what the requester
 * and an auditor want to read.
 */
export function matchCondition(
  when: StepCondition | undefined,
  s: ApprovalSubject,
): { applies: boolean; why: string } {
  if (!when) return { applies: true, why: 'applies to every request' };
  const environment = s.labels['environment'];
  if (when.environment && (environment === undefined || !when.environment.includes(environment)))
    return {
      applies: false,
      why: `environment ${environment ?? '(none)'} is not ${when.environment.join(' or ')}`,
    };
  if (when.lifecycleClass && !when.lifecycleClass.includes(s.lifecycleClass))
    return {
      applies: false,
      why: `lifecycle class ${s.lifecycleClass} is not ${when.lifecycleClass.join(' or ')}`,
    };
  if (when.sizeAbove) {
    const above = (['vcpus', 'memoryMb', 'diskGb'] as const).filter((k) => {
      const limit = when.sizeAbove?.[k];
      return limit !== undefined && s[k] > limit;
    });
    if (above.length === 0)
      return { applies: false, why: `size is not above ${describeSize(when.sizeAbove)}` };
  }
  if (when.network && !anyOf(when.network, s.networkId, s.networkName))
    return { applies: false, why: `network ${s.networkName ?? s.networkId ?? '(none)'} is not listed` };
  if (when.image && !anyOf(when.image, s.imageId, s.imageName))
    return { applies: false, why: `image ${s.imageName ?? s.imageId ?? '(none)'} is not listed` };
  for (const [key, wanted] of Object.entries(when.labels ?? {})) {
    const values = typeof wanted === 'string' ? [wanted] : wanted;
    const actual = s.labels[key];
    if (actual === undefined || !values.includes(actual))
      return { applies: false, why: `label ${key}=${actual ?? '(none)'} is not ${values.join(' or ')}` };
  }
  return { applies: true, why: 'the condition matches' };
}

function anyOf(listed: readonly string[], ...values: Array<string | null | undefined>): boolean {
  return values.some((v) => v !== null && v !== undefined && listed.includes(v));
}

function describeSize(size: NonNullable<StepCondition['sizeAbove']>): string {
  return Object.entries(size)
    .map(([k, v]) => `${k} ${String(v)}`)
    .join(' or ');
}
