import { type CommandRunner, type WebhookPoster } from '../approvals/step-runners';
import { DomainError } from '../errors';
import { type Clock } from '../ports';
import { AnsibleStaticInventoryDeregistrar } from './ansible-static.deregistrar';
import { CommandDeregistrar } from './command.deregistrar';
import { SensuDeregistrar } from './sensu.deregistrar';
import { type Deregistrar } from './deregistrar.port';
import { WebhookDeregistrar } from './webhook.deregistrar';

export type DeregistrationTargetSpec =
  | { kind: 'webhook'; name: string; url: string }
  | { kind: 'command'; name: string; argv: string[] }
  | { kind: 'ansible'; name: string; path: string }
  | { kind: 'sensu'; name: string; apiUrl: string; namespace: string };

const NAME = /^[a-z][a-z0-9-]{0,62}$/;

/**
 * `NORM_DEREGISTRATION_TARGETS`: `;`-separated `kind:name=spec`, e.g.
 * `webhook:cmdb=https://cmdb.example/hooks/norm;command:cleanup=/usr/local/bin/norm-dereg --site a;ansible:site=/etc/ansible/hosts`.
 * A command's spec is split on spaces and run without a shell.
 */
export function parseDeregistrationTargets(text: string): DeregistrationTargetSpec[] {
  const specs: DeregistrationTargetSpec[] = [];
  for (const part of text
    .split(';')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const m = /^([a-z]+):([^=]+)=(.+)$/.exec(part);
    if (!m) throw new Error(`"${part}" is not kind:name=spec`);
    const [, kind, name = '', spec = ''] = m;
    if (!NAME.test(name)) throw new Error(`target name "${name}" must match ${NAME.source}`);
    if (specs.some((s) => s.name === name && s.kind === kind))
      throw new Error(`target ${kind}:${name} twice`);
    if (kind === 'webhook') {
      let url: URL;
      try {
        url = new URL(spec);
      } catch {
        throw new Error(`webhook:${name} needs an http(s) URL`);
      }
      if (url.protocol !== 'https:' && url.protocol !== 'http:')
        throw new Error(`webhook:${name} needs an http(s) URL`);
      specs.push({ kind, name, url: spec });
    } else if (kind === 'command') {
      const argv = spec.split(/\s+/).filter(Boolean);
      if (!argv[0]?.startsWith('/')) throw new Error(`command:${name} needs an absolute program path`);
      specs.push({ kind, name, argv });
    } else if (kind === 'ansible') {
      if (!spec.startsWith('/')) throw new Error(`ansible:${name} needs an absolute inventory path`);
      specs.push({ kind, name, path: spec });
    } else if (kind === 'sensu') {
      // `https://sensu:8080/default`: the backend API, then the namespace as the path.
      let url: URL;
      try {
        url = new URL(spec);
      } catch {
        throw new Error(`sensu:${name} needs the backend URL with the namespace as its path`);
      }
      const namespace = url.pathname.replace(/^\/+|\/+$/g, '') || 'default';
      specs.push({ kind, name, apiUrl: `${url.protocol}//${url.host}`, namespace });
    } else {
      throw new Error(`unknown target kind "${kind}" (webhook, command, ansible, sensu)`);
    }
  }
  return specs;
}

export interface DeregistrarFactoryDeps {
  http: WebhookPoster;
  commands: CommandRunner;
  clock: Clock;
  /** HMAC key for every webhook target; required when one is configured. */
  webhookSecret: string | undefined;
  /** Sensu Go API key; required when a sensu target is configured. */
  sensuApiKey?: string | undefined;
  timeoutMs: number;
}

export function buildDeregistrars(
  specs: readonly DeregistrationTargetSpec[],
  deps: DeregistrarFactoryDeps,
): Deregistrar[] {
  return specs.map((s) => {
    switch (s.kind) {
      case 'webhook':
        if (!deps.webhookSecret)
          throw new DomainError(
            'ConfigInvalid',
            'a webhook deregistration target needs NORM_DEREGISTRATION_WEBHOOK_SECRET',
            {
              target: s.name,
            },
          );
        return new WebhookDeregistrar(
          { name: s.name, url: s.url, secret: deps.webhookSecret, timeoutMs: deps.timeoutMs },
          deps.http,
          deps.clock,
        );
      case 'command':
        return new CommandDeregistrar(
          { name: s.name, argv: s.argv, timeoutMs: deps.timeoutMs },
          deps.commands,
        );
      case 'ansible':
        return new AnsibleStaticInventoryDeregistrar({ name: s.name, path: s.path });
      case 'sensu':
        if (!deps.sensuApiKey)
          throw new DomainError(
            'ConfigInvalid',
            'a sensu deregistration target needs NORM_DEREGISTRATION_SENSU_API_KEY',
            {
              target: s.name,
            },
          );
        return new SensuDeregistrar({
          name: s.name,
          apiUrl: s.apiUrl,
          namespace: s.namespace,
          apiKey: deps.sensuApiKey,
          timeoutMs: deps.timeoutMs,
        });
    }
  });
}
