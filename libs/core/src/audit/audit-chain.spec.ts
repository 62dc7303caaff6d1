import { describe, expect, it } from 'vitest';
import { type AuditRecord } from './audit.port';
import { canonicalJson, chainHash, checkHead, checkLink, GENESIS_HASH, GENESIS_HEAD } from './audit-chain';

function chain(n: number): AuditRecord[] {
  const out: AuditRecord[] = [];
  let prev = GENESIS_HASH;
  for (let i = 1; i <= n; i += 1) {
    const fields = {
      at: new Date(Date.UTC(2026, 0, 1, 0, 0, i)),
      actor: 'p-1',
      action: 'thing.update',
      objectType: 'thing',
      objectId: `t-${i}`,
      before: { n: i - 1 },
      after: { n: i },
      reason: null,
      requestId: null,
    };
    const hash = chainHash(prev, fields);
    out.push({ seq: String(i), ...fields, prevHash: prev, hash });
    prev = hash;
  }
  return out;
}

/** What the verifier does: every link, then the end against the head. */
function verify(rows: AuditRecord[], head: { seq: string; hash: string } | undefined): string | undefined {
  let prev = GENESIS_HASH;
  let last = GENESIS_HEAD;
  for (const row of rows) {
    const broken = checkLink(prev, row);
    if (broken) return `${broken.problem}@${broken.seq}`;
    prev = row.hash;
    last = { seq: row.seq, hash: row.hash };
  }
  const broken = checkHead(head, last);
  return broken && `${broken.problem}@${broken.seq}`;
}

describe('audit chain', () => {
  const rows = chain(5);
  const head = { seq: '5', hash: rows[4]!.hash };

  it('holds for an untouched chain ending at its head, and for an empty one', () => {
    expect(verify(rows, head)).toBeUndefined();
    expect(verify([], GENESIS_HEAD)).toBeUndefined();
  });

  it('reports an edited row at that row', () => {
    const edited = rows.map((r) => (r.seq === '3' ? { ...r, actor: 'someone-else' } : r));
    expect(verify(edited, head)).toBe('hash-mismatch@3');
  });

  it('reports a deleted middle row at the row after it', () => {
    expect(verify([...rows.slice(0, 2), ...rows.slice(3)], head)).toBe('prev-hash-mismatch@4');
  });

  it('reports deleted newest rows as truncation at the head, which links alone cannot see', () => {
    expect(verify(rows.slice(0, 4), head)).toBe('truncated@5');
    expect(verify(rows.slice(0, 2), head)).toBe('truncated@5');
    expect(verify([], head)).toBe('truncated@5');
  });

  it('reports a chain that runs past its head, a rewritten head, and a missing one', () => {
    expect(verify(rows, { seq: '4', hash: rows[3]!.hash })).toBe('head-mismatch@5');
    expect(verify(rows, { seq: '5', hash: 'f'.repeat(64) })).toBe('head-mismatch@5');
    expect(verify(rows, undefined)).toBe('head-missing@5');
  });

  it('does not depend on key order in before/after (jsonb does not keep it)', () => {
    const a = chainHash(GENESIS_HASH, { ...rows[0]!, after: { b: 1, a: { d: 2, c: 3 } } });
    const b = chainHash(GENESIS_HASH, { ...rows[0]!, after: { a: { c: 3, d: 2 }, b: 1 } });
    expect(a).toBe(b);
  });
});

describe('canonicalJson', () => {
  it('sorts keys at every depth by code unit, drops undefined members and writes dates as ISO strings', () => {
    const value = {
      b: [3, { z: 1, a: null, u: undefined }, 'x'],
      a: { é: 1, Z: 2, _: 3, '10': 4, '9': 5 },
      at: new Date('2026-12-06T00:00:00.123Z'),
      n: -0.5,
      s: 'quote " and \\ and \n',
      t: true,
      missing: undefined,
      list: [undefined, null],
    };
    expect(canonicalJson(value)).toBe(
      '{"a":{"10":4,"9":5,"Z":2,"_":3,"é":1},"at":"2026-12-06T00:00:00.123Z","b":[3,{"a":null,"z":1},"x"],' +
        '"list":[null,null],"n":-0.5,"s":"quote \\" and \\\\ and \\n","t":true}',
    );
    // Same members in another order: same text.
    const { t, ...rest } = value;
    expect(canonicalJson({ t, ...rest })).toBe(canonicalJson(value));
  });
});
