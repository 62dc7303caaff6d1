import { type NormConfig } from '../config';
import { loadApprovalPolicy } from './approval-policy';
import { buildChecklist, type Checklist, defaultChecklist, type StepKindDeps } from './step-kinds';
import { fetchWebhookPoster, processCommandRunner } from './step-runners';

/**
 * The active checklist: the policy file when NORM_APPROVAL_POLICY names one, otherwise the
 * NORM_APPROVAL_STEPS default. Called at boot by the API and the worker; a bad file throws
 * ApprovalPolicyInvalid naming its lines, and the process does not start.
 */
export function checklistFromConfig(
  config: NormConfig,
  overrides: Partial<StepKindDeps> = {},
  env: Readonly<Record<string, string | undefined>> = process.env,
): Checklist {
  const deps: StepKindDeps = {
    quota: { perPrincipal: config.quotaPerPrincipal, groups: config.quotaGroups },
    namePattern: config.namePattern,
    webhooks: fetchWebhookPoster,
    commands: processCommandRunner,
    callbackBaseUrl: config.approvalCallbackBaseUrl?.replace(/\/+$/, '') ?? null,
    env,
    ...overrides,
  };
  return config.approvalPolicy === undefined
    ? defaultChecklist(config.approvalSteps, deps)
    : buildChecklist(loadApprovalPolicy(config.approvalPolicy), deps);
}
