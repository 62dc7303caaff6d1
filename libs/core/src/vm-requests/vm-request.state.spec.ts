import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  assertTransition,
  canTransition,
  INSTANCE_TRANSITIONS,
  VM_REQUEST_STATES,
  VM_REQUEST_TRANSITIONS,
} from './vm-request.state';

describe('vm request transitions', () => {
  it('walks the happy path', () => {
    expect(canTransition('pending_approval', 'approved')).toBe(true);
    expect(canTransition('approved', 'provisioning')).toBe(true);
    expect(canTransition('provisioning', 'running')).toBe(true);
  });

  it('ends stay ends', () => {
    for (const end of ['running', 'rejected', 'cancelled', 'failed'] as const)
      expect(VM_REQUEST_TRANSITIONS[end]).toEqual([]);
  });

  it('refuses cancel once provisioning began, with the current state in the error', () => {
    let caught: unknown;
    try {
      assertTransition('r1', 'provisioning', 'cancelled');
    } catch (error) {
      caught = error;
    }
    expect(caught).toMatchObject({
      code: 'InvalidTransition',
      details: { currentState: 'provisioning', wantedState: 'cancelled' },
    });
  });

  it('every reachable state is reachable from pending_approval', () => {
    const seen = new Set<string>(['pending_approval']);
    const queue = ['pending_approval'] as Array<(typeof VM_REQUEST_STATES)[number]>;
    while (queue.length > 0) {
      const s = queue.shift()!;
      for (const next of VM_REQUEST_TRANSITIONS[s]) {
        if (seen.has(next)) continue;
        seen.add(next);
        queue.push(next);
      }
    }
    expect([...seen].sort()).toEqual([...VM_REQUEST_STATES].sort());
  });

  it('assertTransition agrees with the table for every pair', () => {
    fc.assert(
      fc.property(fc.constantFrom(...VM_REQUEST_STATES), fc.constantFrom(...VM_REQUEST_STATES), (a, b) => {
        const allowed = VM_REQUEST_TRANSITIONS[a].includes(b);
        if (allowed) expect(() => assertTransition('x', a, b)).not.toThrow();
        else expect(() => assertTransition('x', a, b)).toThrow();
      }),
    );
  });

  it('a decommissioned instance never comes back', () => {
    expect(INSTANCE_TRANSITIONS.decommissioned).toEqual([]);
  });
});
