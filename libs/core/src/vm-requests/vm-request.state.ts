import { DomainError } from '../errors';

export const VM_REQUEST_STATES = [
  'pending_approval',
  'approved',
  'provisioning',
  'running',
  'rejected',
  'cancelled',
  'failed',
] as const;
export type VmRequestState = (typeof VM_REQUEST_STATES)[number];

/**
 * THE transition table: every state change of a request goes through `assertTransition`, and
 * the store applies it with `UPDATE … WHERE id = $1 AND version = $2`, so a transition is
 * both legal and based on the state its caller actually read.
 *
 * - `approved → cancelled`: the provision job has not started; its handler finds the request
 *   cancelled and ends quietly. Once provisioning has begun, cancel is refused (the domain may
 *   be half-built; decommissioning the instance is the way out).
 * - `approved → failed`: placement found no host.
 */
export const VM_REQUEST_TRANSITIONS: Readonly<Record<VmRequestState, readonly VmRequestState[]>> = {
  pending_approval: ['approved', 'rejected', 'cancelled'],
  approved: ['provisioning', 'cancelled', 'failed'],
  provisioning: ['running', 'failed'],
  running: [],
  rejected: [],
  cancelled: [],
  failed: [],
};

export const IN_FLIGHT_STATES: readonly VmRequestState[] = ['pending_approval', 'approved', 'provisioning'];

export function canTransition(from: VmRequestState, to: VmRequestState): boolean {
  return VM_REQUEST_TRANSITIONS[from].includes(to);
}

export class InvalidTransition extends DomainError {
  constructor(kind: string, id: string, current: string, wanted: string, why?: string) {
    super('InvalidTransition', why ?? `a ${kind} in state ${current} cannot become ${wanted}`, {
      kind,
      id,
      currentState: current,
      wantedState: wanted,
    });
  }
}

export function assertTransition(id: string, from: VmRequestState, to: VmRequestState): void {
  if (!canTransition(from, to)) throw new InvalidTransition('vm-request', id, from, to);
}

export const INSTANCE_STATES = [
  'provisioning',
  'running',
  'stopping',
  'stopped',
  'decommissioning',
  'decommissioned',
  'failed',
] as const;
export type InstanceState = (typeof INSTANCE_STATES)[number];

/** The instance's own table; same rule: one place, checked before the versioned UPDATE. */
export const INSTANCE_TRANSITIONS: Readonly<Record<InstanceState, readonly InstanceState[]>> = {
  provisioning: ['running', 'failed'],
  running: ['stopping', 'decommissioning', 'running'],
  stopping: ['stopped', 'running', 'decommissioning'],
  stopped: ['running', 'decommissioning'],
  decommissioning: ['decommissioned', 'decommissioning'],
  decommissioned: [],
  failed: [],
};

export function assertInstanceTransition(id: string, from: InstanceState, to: InstanceState): void {
  if (!INSTANCE_TRANSITIONS[from].includes(to)) throw new InvalidTransition('instance', id, from, to);
}
