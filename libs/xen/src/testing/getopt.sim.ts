/**
 * GNU getopt_long as xl uses it (permuting, `--` ends options, unambiguous long-option
 * prefixes, `opterr = 0`), because xl's error messages depend on exactly which option
 * character getopt reports: an unknown long option reports optopt 0, which xl prints as a
 * NUL byte inside ``option `X' not supported.``.
 */
export interface LongOpt {
  name: string;
  hasArg: boolean;
  val: string;
}

export type GetoptResult =
  | { ok: true; opts: Array<{ opt: string; arg?: string }>; positionals: string[] }
  | { ok: false; optopt: string };

export function getoptLong(
  args: readonly string[],
  optstring: string,
  longopts: readonly LongOpt[],
): GetoptResult {
  const opts: Array<{ opt: string; arg?: string }> = [];
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === '--') {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) {
      const body = a.slice(2);
      const eq = body.indexOf('=');
      const name = eq >= 0 ? body.slice(0, eq) : body;
      const exact = longopts.find((l) => l.name === name);
      const prefixed = longopts.filter((l) => l.name.startsWith(name));
      const match = exact ?? (prefixed.length === 1 ? prefixed[0] : undefined);
      if (!match) return { ok: false, optopt: '\0' };
      if (match.hasArg) {
        if (eq >= 0) opts.push({ opt: match.val, arg: body.slice(eq + 1) });
        else if (i + 1 < args.length) opts.push({ opt: match.val, arg: args[++i] ?? '' });
        else return { ok: false, optopt: match.val };
      } else {
        if (eq >= 0) return { ok: false, optopt: match.val };
        opts.push({ opt: match.val });
      }
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const c = a[j] ?? '';
        const at = optstring.indexOf(c);
        if (c === ':' || at < 0) return { ok: false, optopt: c };
        if (optstring[at + 1] === ':') {
          const rest = a.slice(j + 1);
          if (rest.length > 0) opts.push({ opt: c, arg: rest });
          else if (i + 1 < args.length) opts.push({ opt: c, arg: args[++i] ?? '' });
          else return { ok: false, optopt: c };
          break;
        }
        opts.push({ opt: c });
      }
      continue;
    }
    positionals.push(a);
  }
  return { ok: true, opts, positionals };
}
