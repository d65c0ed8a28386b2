// Registry authentication: the WWW-Authenticate challenge, Basic credentials, and bearer tokens
// from the challenge's realm, one per set of scopes ("repository:<name>:pull" or
// ":pull,push"), cached until they expire. Credentials are looked up only once a registry asks.
import { request, type Dispatcher } from 'undici';
import { NydusError, type ErrorCode } from '../errors.js';
import { quote } from './digest.js';
import { IDENTITY_TOKEN_USER, type Credentials } from './credentials.js';
import {
  backoff, defaultDispatcher, discard, networkError, readBody, readErrorBody, registrySays, retriesOf,
  retryableError, retryableStatus, sleep, statusText, type TransportOptions,
} from './http.js';

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses WWW-Authenticate (RFC 7235): challenges `Scheme k=v, k="quoted", ...`, several of them
 * possibly in one header. Schemes are lowercased; parameter names too.
 */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  const out: Challenge[] = [];
  for (const h of header === undefined ? [] : Array.isArray(header) ? header : [header]) {
    let i = 0;
    const n = h.length;
    const skip = () => {
      while (i < n && (h[i] === ' ' || h[i] === '\t' || h[i] === ',')) i++;
    };
    const token = () => {
      const s = i;
      while (i < n && /[!#$%&'*+.^_`|~0-9A-Za-z/-]/.test(h[i]!)) i++;
      return h.slice(s, i);
    };
    let cur: Challenge | undefined;
    while (i < n) {
      skip();
      const t = token();
      if (t === '') {
        i++;
        continue;
      }
      let j = i;
      while (j < n && (h[j] === ' ' || h[j] === '\t')) j++;
      if (h[j] === '=' && cur) {
        i = j + 1;
        while (i < n && (h[i] === ' ' || h[i] === '\t')) i++;
        let value = '';
        if (h[i] === '"') {
          i++;
          while (i < n && h[i] !== '"') {
            if (h[i] === '\\' && i + 1 < n) i++;
            value += h[i++];
          }
          i++;
        } else value = token();
        cur.params[t.toLowerCase()] = value;
      } else {
        // A token not followed by "=" starts a new challenge (a token68 after it is ignored).
        cur = { scheme: t.toLowerCase(), params: {} };
        out.push(cur);
      }
    }
  }
  return out;
}

export const scopeOf = (repository: string, actions: 'pull' | 'pull,push'): string => `repository:${repository}:${actions}`;

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Token text goes into a header: printable ASCII, no spaces. */
const TOKEN = /^[\x21-\x7e]+$/;

export interface AuthContext {
  /** host[:port] of the registry, for messages and to tell the registry's own hosts. */
  host: string;
  /** The registry's dispatcher (its TLS policy), used for a realm on the registry's own host. */
  dispatcher: Dispatcher;
  transport: TransportOptions;
  /** Looks up credentials; called at most once, when the registry first asks for them. */
  credentials: () => Promise<Credentials | undefined>;
  userAgent: string;
}

export class Authenticator {
  private challenge?: Challenge;
  private creds?: Promise<Credentials | undefined>;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly pending = new Map<string, Promise<CachedToken>>();

  constructor(private readonly ctx: AuthContext) {}

  private credentials(): Promise<Credentials | undefined> {
    this.creds ??= this.ctx.credentials();
    return this.creds;
  }

  /** The Authorization header for a request needing `scopes`, once the registry has asked for one. */
  async header(scopes: string[], code: ErrorCode): Promise<string | undefined> {
    const ch = this.challenge;
    if (!ch) return undefined;
    if (ch.scheme === 'basic') {
      const c = await this.credentials();
      return c ? `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}` : undefined;
    }
    if (ch.scheme === 'bearer') return `Bearer ${(await this.token(ch, scopes, code)).token}`;
    return undefined;
  }

  /**
   * Takes in a 401's challenge. Returns true when a retry with new authorization may succeed:
   * Basic credentials not sent yet, or a bearer token (a refused one is dropped and fetched anew;
   * the caller retries once per request, so a refused fresh token ends it).
   */
  async unauthorized(header: string | string[] | undefined, scopes: string[], sentAuth: boolean): Promise<boolean> {
    const chs = parseChallenges(header);
    const ch = chs.find((c) => c.scheme === 'bearer') ?? chs.find((c) => c.scheme === 'basic');
    if (!ch) return false;
    this.challenge = ch;
    if (ch.scheme === 'basic') return !sentAuth && (await this.credentials()) !== undefined;
    this.tokens.delete(this.key(ch, scopes));
    return true;
  }

  /** Whether credentials were found for this registry (after a challenge asked for them). */
  async hasCredentials(): Promise<boolean> {
    return this.creds !== undefined && (await this.creds) !== undefined;
  }

  private key(ch: Challenge, scopes: string[]): string {
    return `${ch.params.realm ?? ''}\n${ch.params.service ?? ''}\n${[...scopes].sort().join(' ')}`;
  }

  private async token(ch: Challenge, scopes: string[], code: ErrorCode): Promise<CachedToken> {
    const key = this.key(ch, scopes);
    const hit = this.tokens.get(key);
    if (hit && hit.expiresAt > Date.now()) return hit;
    let p = this.pending.get(key);
    if (!p) {
      p = this.fetchToken(ch, scopes, code).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    const t = await p;
    this.tokens.set(key, t);
    return t;
  }

  private async fetchToken(ch: Challenge, scopes: string[], code: ErrorCode): Promise<CachedToken> {
    const { host } = this.ctx;
    const realm = ch.params.realm;
    let url: URL;
    try {
      url = new URL(realm ?? '');
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('scheme');
    } catch {
      throw new NydusError(code, `${host}: the bearer challenge's realm ${quote(String(realm))} is not an http(s) URL`);
    }
    const creds = await this.credentials();
    const service = ch.params.service;
    const dispatcher = url.host === host ? this.ctx.dispatcher : defaultDispatcher();
    const what = `token from ${url.origin}`;
    const headers: Record<string, string> = { 'user-agent': this.ctx.userAgent };
    let method: 'GET' | 'POST' = 'GET';
    let body: string | undefined;
    if (creds?.username === IDENTITY_TOKEN_USER) {
      // An identity token is an OAuth2 refresh token, traded at the realm by POST.
      method = 'POST';
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.password, client_id: 'nydusify' });
      if (service) form.set('service', service);
      if (scopes.length) form.set('scope', scopes.join(' '));
      body = form.toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    } else {
      if (service) url.searchParams.set('service', service);
      for (const s of scopes) url.searchParams.append('scope', s);
      if (creds) headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
    }
    const retries = retriesOf(this.ctx.transport);
    for (let attempt = 0; ; attempt++) {
      let res: Dispatcher.ResponseData;
      try {
        res = await request(url, { method, headers, body, dispatcher });
      } catch (e) {
        if (attempt < retries && retryableError(e)) {
          await sleep(backoff(attempt, this.ctx.transport));
          continue;
        }
        throw networkError(host, what, e, code, this.ctx.transport);
      }
      if (res.statusCode === 200) {
        let doc: Record<string, unknown> | null;
        try {
          doc = JSON.parse((await readBody(res.body, `${host}: ${what}`, 'REGISTRY_JSON_MAX')).toString('utf8')) as Record<string, unknown> | null;
        } catch (e) {
          if (e instanceof NydusError) throw e;
          if (attempt < retries && retryableError(e)) {
            await sleep(backoff(attempt, this.ctx.transport));
            continue;
          }
          throw e instanceof SyntaxError ? new NydusError(code, `${host}: ${what}: the answer is not JSON`) : networkError(host, what, e, code, this.ctx.transport);
        }
        if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new NydusError(code, `${host}: ${what}: the answer is not a JSON object`);
        const token = doc?.token ?? doc?.access_token;
        if (typeof token !== 'string' || !TOKEN.test(token)) throw new NydusError(code, `${host}: ${what}: the answer holds no usable token`);
        const ttl = typeof doc?.expires_in === 'number' && doc.expires_in > 0 ? doc.expires_in : 60;
        const issued = typeof doc?.issued_at === 'string' ? Date.parse(doc.issued_at) : NaN;
        const start = Number.isFinite(issued) && issued <= Date.now() ? issued : Date.now();
        // Renew a little early, so a token does not expire between our check and the registry's.
        return { token, expiresAt: start + Math.max(ttl * 1000 - 10_000, ttl * 500) };
      }
      if (retryableStatus(res.statusCode) && attempt < retries) {
        await discard(res.body);
        await sleep(backoff(attempt, this.ctx.transport, res.headers['retry-after']));
        continue;
      }
      const said = registrySays(await readErrorBody(res.body));
      const hint =
        res.statusCode === 401 || res.statusCode === 403
          ? creds ? ' (check the credentials for this registry)' : ' (no credentials for this registry in the Docker config)'
          : '';
      throw new NydusError(code, `${host}: ${statusText(res.statusCode)} from the token server ${url.origin}${hint}${said ? `: ${quote(said, 200)}` : ''}`);
    }
  }
}
