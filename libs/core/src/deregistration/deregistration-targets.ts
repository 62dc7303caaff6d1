import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type CommandRunner, type WebhookPoster } from '../approvals/step-runners';
import { DomainError } from '../errors';
import { type Clock } from '../ports';
import { AnsibleStaticInventoryDeregistrar } from './ansible-static.deregistrar';
import { ChefDeregistrar } from './chef.deregistrar';
import { CommandDeregistrar } from './command.deregistrar';
import { DnsDeregistrar } from './dns.deregistrar';
import { SensuDeregistrar } from './sensu.deregistrar';
import { type Deregistrar } from './deregistrar.port';
import { type HttpRequest, nodeHttpRequest } from './http-request';
import { PuppetDeregistrar } from './puppet.deregistrar';
import { SpacewalkDeregistrar } from './spacewalk.deregistrar';
import { WebhookDeregistrar } from './webhook.deregistrar';

export type DeregistrationTargetSpec =
  | { kind: 'webhook'; name: string; url: string }
  | { kind: 'command'; name: string; argv: string[] }
  | { kind: 'ansible'; name: string; path: string }
  | { kind: 'sensu'; name: string; apiUrl: string; namespace: string }
  | { kind: 'chef'; name: string; serverUrl: string; organization: string }
  | { kind: 'puppet'; name: string; caUrl?: string; puppetdbUrl?: string }
  | { kind: 'spacewalk'; name: string; apiUrl: string }
  | {
      kind: 'dns';
      name: string;
      host: string;
      port: number;
      zone: string;
      reverseZone: string | undefined;
    };

const NAME = /^[a-z][a-z0-9-]{0,62}$/;
/** A zone apex as an operator writes it: dot-separated labels, trailing dot optional. */
const ZONE = /^([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.?$/i;

/** `server[:port]/zone[/reverse-zone]`, port 53 by default; the reverse zone is derived when absent. */
function parseDnsSpec(name: string, spec: string): Extract<DeregistrationTargetSpec, { kind: 'dns' }> {
  const usage = `dns:${name} needs server[:port]/zone[/reverse-zone]`;
  const [server = '', zone = '', reverseZone, ...rest] = spec.split('/');
  const m = /^(\[[0-9a-f:]+\]|[^:[\]]+)(?::(\d{1,5}))?$/i.exec(server);
  if (!m || !zone || rest.length > 0) throw new Error(usage);
  const port = m[2] === undefined ? 53 : Number(m[2]);
  if (port < 1 || port > 65535) throw new Error(`dns:${name}: port ${m[2]} is not 1-65535`);
  for (const z of [zone, reverseZone].filter((x): x is string => x !== undefined))
    if (!ZONE.test(z)) throw new Error(`dns:${name}: "${z}" is not a zone name`);
  return {
    kind: 'dns',
    name,
    host: (m[1] ?? '').replace(/^\[|\]$/g, ''),
    port,
    zone: zone.replace(/\.$/, ''),
    reverseZone: reverseZone?.replace(/\.$/, ''),
  };
}

/**
 * `NORM_DEREGISTRATION_TARGETS`: `;`-separated `kind:name=spec`, e.g.
 * `webhook:cmdb=https://cmdb.example/hooks/norm;command:cleanup=/usr/local/bin/norm-dereg --site a;ansible:site=/etc/ansible/hosts`.
 * A command's spec is split on spaces and run without a shell; a dns spec is
 * `server[:port]/zone[/reverse-zone]`.
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
    } else if (kind === 'chef') {
      // `https://chef.example/organizations/acme`: the server, then the organization as the path.
      const url = httpUrl(spec, `chef:${name} needs the server URL ending in /organizations/<org>`);
      const org = /^\/organizations\/([^/]+)\/?$/.exec(url.pathname)?.[1];
      if (!org) throw new Error(`chef:${name} needs the server URL ending in /organizations/<org>`);
      specs.push({ kind, name, serverUrl: url.origin, organization: decodeURIComponent(org) });
    } else if (kind === 'puppet') {
      specs.push({ kind, name, ...parsePuppetSpec(name, spec) });
    } else if (kind === 'spacewalk') {
      // The XML-RPC endpoint; a bare server means Spacewalk's and Uyuni's usual /rpc/api.
      const url = httpUrl(spec, `spacewalk:${name} needs an http(s) URL`);
      const path = url.pathname === '/' ? '/rpc/api' : url.pathname;
      specs.push({ kind, name, apiUrl: `${url.origin}${path}` });
    } else if (kind === 'dns') {
      specs.push(parseDnsSpec(name, spec));
    } else {
      throw new Error(
        `unknown target kind "${kind}" (webhook, command, ansible, sensu, chef, puppet, spacewalk, dns)`,
      );
    }
  }
  return specs;
}

function httpUrl(spec: string, message: string): URL {
  let url: URL;
  try {
    url = new URL(spec);
  } catch {
    throw new Error(message);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(message);
  if (url.username || url.password) throw new Error(`${message}, without credentials (they have settings)`);
  return url;
}

/** `ca=https://puppet:8140,puppetdb=https://puppetdb:8081`; either may be left out, not both. */
function parsePuppetSpec(name: string, spec: string): { caUrl?: string; puppetdbUrl?: string } {
  const out: { caUrl?: string; puppetdbUrl?: string } = {};
  const usage = `puppet:${name} needs ca=https://…,puppetdb=https://… (one or both)`;
  for (const part of spec.split(',').map((p) => p.trim())) {
    const m = /^(ca|puppetdb)=(.+)$/.exec(part);
    if (!m) throw new Error(usage);
    const [, which, value = ''] = m;
    const url = httpUrl(value, usage);
    // Both APIs authenticate Norm by its client certificate, which only TLS carries.
    if (url.protocol !== 'https:')
      throw new Error(`puppet:${name} ${which ?? ''} must be https (client certificates)`);
    if (which === 'ca') out.caUrl = url.origin;
    else out.puppetdbUrl = url.origin;
  }
  if (!out.caUrl && !out.puppetdbUrl) throw new Error(usage);
  return out;
}

export interface DeregistrarFactoryDeps {
  http: WebhookPoster;
  commands: CommandRunner;
  clock: Clock;
  /** HMAC key for every webhook target; required when one is configured. */
  webhookSecret: string | undefined;
  /** Sensu Go API key; required when a sensu target is configured. */
  sensuApiKey?: string | undefined;
  /** Chef API client name and the path of its RSA key; required when a chef target is configured. */
  chefClient?: string | undefined;
  chefKeyPath?: string | undefined;
  /** Client certificate, key and CA (PEM paths); required when a puppet target is configured. */
  puppetCertPath?: string | undefined;
  puppetKeyPath?: string | undefined;
  puppetCaPath?: string | undefined;
  /** Spacewalk/Uyuni API user; required when a spacewalk target is configured. */
  spacewalkUser?: string | undefined;
  spacewalkPassword?: string | undefined;
  /** HTTP for the chef, puppet, spacewalk and sensu targets; node:http(s) unless a test says otherwise. */
  request?: HttpRequest;
  /** TSIG key (name and base64 HMAC-SHA256 secret) signing every dns target's updates. */
  dnsTsig?: { keyName: string | undefined; secret: string | undefined } | undefined;
  timeoutMs: number;
}

function configInvalid(message: string, target: string): DomainError {
  return new DomainError('ConfigInvalid', message, { target });
}

/** Reads a PEM file at boot, so a missing or unreadable key stops the process, not a decommission. */
function readPem(setting: string, path: string | undefined, target: string): string {
  if (!path)
    throw configInvalid(`a ${target.split(':')[0] ?? ''} deregistration target needs ${setting}`, target);
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw configInvalid(
      `${setting}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      target,
    );
  }
}

function privateKey(setting: string, pem: string, target: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch {
    // Never the parser's message: it may quote the file.
    throw configInvalid(`${setting} is not a PEM private key`, target);
  }
}

function certificate(setting: string, pem: string, target: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw configInvalid(`${setting} is not a PEM certificate`, target);
  }
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
        return new SensuDeregistrar(
          {
            name: s.name,
            apiUrl: s.apiUrl,
            namespace: s.namespace,
            apiKey: deps.sensuApiKey,
            timeoutMs: deps.timeoutMs,
          },
          deps.request,
        );
      case 'chef': {
        const target = `chef:${s.name}`;
        if (!deps.chefClient)
          throw configInvalid('a chef deregistration target needs NORM_DEREGISTRATION_CHEF_CLIENT', target);
        const key = privateKey(
          'NORM_DEREGISTRATION_CHEF_KEY_PATH',
          readPem('NORM_DEREGISTRATION_CHEF_KEY_PATH', deps.chefKeyPath, target),
          target,
        );
        if (key.asymmetricKeyType !== 'rsa')
          throw configInvalid(
            'NORM_DEREGISTRATION_CHEF_KEY_PATH must be an RSA key (Chef signs with RSA)',
            target,
          );
        return new ChefDeregistrar(
          {
            name: s.name,
            serverUrl: s.serverUrl,
            organization: s.organization,
            clientName: deps.chefClient,
            key,
            timeoutMs: deps.timeoutMs,
          },
          deps.clock,
          deps.request ?? nodeHttpRequest,
        );
      }
      case 'puppet': {
        const target = `puppet:${s.name}`;
        const cert = readPem('NORM_DEREGISTRATION_PUPPET_CERT_PATH', deps.puppetCertPath, target);
        const key = readPem('NORM_DEREGISTRATION_PUPPET_KEY_PATH', deps.puppetKeyPath, target);
        const ca = readPem('NORM_DEREGISTRATION_PUPPET_CA_PATH', deps.puppetCaPath, target);
        // A certificate that does not match its key fails every handshake; say so at boot.
        if (
          !certificate('NORM_DEREGISTRATION_PUPPET_CERT_PATH', cert, target).checkPrivateKey(
            privateKey('NORM_DEREGISTRATION_PUPPET_KEY_PATH', key, target),
          )
        )
          throw configInvalid('NORM_DEREGISTRATION_PUPPET_KEY_PATH does not match the certificate', target);
        certificate('NORM_DEREGISTRATION_PUPPET_CA_PATH', ca, target);
        return new PuppetDeregistrar(
          {
            name: s.name,
            caUrl: s.caUrl,
            puppetdbUrl: s.puppetdbUrl,
            tls: { cert, key, ca },
            timeoutMs: deps.timeoutMs,
          },
          deps.clock,
          deps.request ?? nodeHttpRequest,
        );
      }
      case 'spacewalk': {
        const target = `spacewalk:${s.name}`;
        if (!deps.spacewalkUser || !deps.spacewalkPassword)
          throw configInvalid(
            'a spacewalk deregistration target needs NORM_DEREGISTRATION_SPACEWALK_USER and NORM_DEREGISTRATION_SPACEWALK_PASSWORD',
            target,
          );
        return new SpacewalkDeregistrar(
          {
            name: s.name,
            apiUrl: s.apiUrl,
            username: deps.spacewalkUser,
            password: deps.spacewalkPassword,
            timeoutMs: deps.timeoutMs,
          },
          deps.request ?? nodeHttpRequest,
        );
      }
      case 'dns':
        if (!deps.dnsTsig?.keyName || !deps.dnsTsig.secret)
          throw configInvalid(
            'a dns deregistration target needs NORM_DEREGISTRATION_DNS_TSIG_KEY_NAME and NORM_DEREGISTRATION_DNS_TSIG_SECRET',
            `dns:${s.name}`,
          );
        return new DnsDeregistrar({
          name: s.name,
          server: { host: s.host, port: s.port },
          zone: s.zone,
          reverseZone: s.reverseZone,
          tsig: { keyName: deps.dnsTsig.keyName, secret: Buffer.from(deps.dnsTsig.secret, 'base64') },
          timeoutMs: deps.timeoutMs,
        });
    }
  });
}
