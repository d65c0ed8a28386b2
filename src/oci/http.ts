// The HTTP layer under the registry client: one undici dispatcher per registry (TLS checks, plain
// HTTP, HTTP(S)_PROXY/NO_PROXY from the environment), what may be retried and how long to wait,
// bounded reads of small bodies, and network and HTTP failures turned into one line naming the
// registry.
import { setTimeout as sleep } from 'node:timers/promises';
import { EnvHttpProxyAgent, type Dispatcher } from 'undici';
import { NydusError, type ErrorCode } from '../errors.js';
import { LIMITS, limitError, type LimitName } from '../format/limits.js';
import { quote } from './digest.js';

export interface TransportOptions {
  /** Skip TLS certificate verification for this registry. */
  insecure?: boolean;
  /** Speak HTTP instead of HTTPS to this registry. */
  plainHttp?: boolean;
  /** How the caller spells the two options above in hints ("--target-insecure", "--plain-http"). */
  hints?: { insecure?: string; plainHttp?: string };
  /** Retries after the first attempt of each retryable step (default 3). */
  retries?: number;
  /** Delay before the first retry; doubled for each next one (default 1000 ms). */
  retryDelayMs?: number;
}

/** One dispatcher per TLS policy: undici pools connections per origin inside it. */
export function makeDispatcher(insecure: boolean): Dispatcher {
  const tls = { rejectUnauthorized: !insecure };
  // connect: direct connections; requestTls: the TLS inside a proxy's CONNECT tunnel.
  return new EnvHttpProxyAgent({ connect: tls, requestTls: tls });
}

let secureDefault: Dispatcher | undefined;
/** The dispatcher for hosts other than the registry (token servers, blob redirects): always verified. */
export function defaultDispatcher(): Dispatcher {
  secureDefault ??= makeDispatcher(false);
  return secureDefault;
}

/** HTTP statuses worth another try: the server or something in front of it is busy or failing. */
export const retryableStatus = (s: number): boolean => s === 408 || s === 429 || s === 500 || s === 502 || s === 503 || s === 504;

const RETRYABLE_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED',
]);

const TLS_TRUST_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_UNTRUSTED', 'CERT_SIGNATURE_FAILURE',
]);

/** The code of a network error, looking through undici's wrappers. */
export function netCode(e: unknown): string | undefined {
  let cur = e as { code?: unknown; cause?: unknown } | undefined;
  for (let i = 0; i < 4 && cur; i++) {
    if (typeof cur.code === 'string' && cur.code !== 'UND_ERR' && !(cur.code === 'UND_ERR_SOCKET' && cur.cause)) return cur.code;
    cur = cur.cause as typeof cur;
  }
  return undefined;
}

/** True when the failure of a request is a connection problem that another attempt may not have. */
export const retryableError = (e: unknown): boolean => !(e instanceof NydusError) && RETRYABLE_CODES.has(netCode(e) ?? '');

/**
 * A registry's answer or connection failure as a user error, with what a retry needs to know:
 * the HTTP status (none for a network failure) and whether another attempt may fare better.
 */
export class RegistryError extends NydusError {
  constructor(code: ErrorCode, message: string, readonly status: number | undefined, readonly transient: boolean, cause?: unknown) {
    super(code, message, { cause });
  }
}

/** A network failure as one line: the registry, what was being done, and what went wrong. */
export function networkError(host: string, what: string, e: unknown, code: ErrorCode, opts: TransportOptions = {}): NydusError {
  if (e instanceof NydusError) return e;
  const c = netCode(e);
  const insecure = opts.hints?.insecure ?? 'the insecure option';
  const plain = opts.hints?.plainHttp ?? 'the plain-http option';
  let why: string;
  if (c !== undefined && TLS_TRUST_CODES.has(c)) why = `TLS certificate not trusted (${c}); ${insecure} skips verification`;
  else if (c === 'ERR_SSL_WRONG_VERSION_NUMBER' || c === 'ERR_SSL_PACKET_LENGTH_TOO_LONG' || c === 'EPROTO') why = `TLS handshake failed (${c}); if the registry speaks plain HTTP, use ${plain}`;
  else if (c === 'ECONNREFUSED') why = 'connection refused';
  else if (c === 'ECONNRESET' || c === 'UND_ERR_SOCKET' || c === 'EPIPE') why = 'connection reset by the server';
  else if (c === 'ENOTFOUND' || c === 'EAI_AGAIN') why = 'host not found';
  else if (c === 'ETIMEDOUT' || c === 'UND_ERR_CONNECT_TIMEOUT') why = 'connection timed out';
  else if (c === 'UND_ERR_HEADERS_TIMEOUT' || c === 'UND_ERR_BODY_TIMEOUT') why = 'the server stopped answering';
  else if (c === 'HPE_INVALID_CONSTANT' || c === 'HPE_INVALID_VERSION' || c === 'UND_ERR_INFO') why = `not an HTTP answer (${c}); if the registry speaks HTTPS, leave out ${plain}`;
  else why = `${c ?? 'network error'}: ${String((e as Error)?.message ?? e).split('\n')[0]}`;
  return new RegistryError(code, `${host}: ${what}: ${why}`, undefined, RETRYABLE_CODES.has(c ?? ''), e);
}

const REASONS: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  408: 'Request Timeout', 409: 'Conflict', 413: 'Payload Too Large', 416: 'Range Not Satisfiable', 429: 'Too Many Requests',
  500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
};

export const statusText = (status: number): string => `${status}${REASONS[status] ? ` ${REASONS[status]}` : ''}`;

/** What the registry said in its error body ({"errors":[{"code","message"}]}), on one line, or ''. */
export function registrySays(body: Buffer): string {
  let text = '';
  try {
    const doc = JSON.parse(body.toString('utf8')) as { errors?: Array<{ code?: unknown; message?: unknown }> };
    const first = Array.isArray(doc.errors) ? doc.errors[0] : undefined;
    if (first) text = [first.code, first.message].filter((s) => typeof s === 'string').join(': ');
  } catch {
    text = body.toString('utf8');
  }
  // eslint-disable-next-line no-control-regex
  text = text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/** An unexpected HTTP status as one line: the registry, the status, what was asked, a hint. */
export function statusError(host: string, status: number, what: string, said: string, code: ErrorCode, hint401?: string): RegistryError {
  const hint =
    status === 401 ? ` (${hint401 ?? 'check the credentials for this registry'})`
    : status === 403 ? ' (the credentials are not allowed to do this)'
    : '';
  const tail = said !== '' ? `: registry says ${quote(said, 200)}` : '';
  return new RegistryError(code, `${host}: ${statusText(status)}${hint}: ${what}${tail}`, status, retryableStatus(status));
}

/** Reads a whole small body, refusing one over the limit without reading it all. */
export async function readBody(body: Dispatcher.ResponseData['body'], where: string, limit: LimitName): Promise<Buffer> {
  const max = LIMITS[limit].value;
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > max) {
      body.destroy();
      throw limitError(limit, where, `more than ${size - (chunk as Buffer).length}`);
    }
    parts.push(chunk as Buffer);
  }
  return Buffer.concat(parts);
}

/** Reads at most a few KiB of an error body for its message, and drops the rest. */
export async function readErrorBody(body: Dispatcher.ResponseData['body']): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      parts.push(chunk as Buffer);
      size += (chunk as Buffer).length;
      if (size >= 8192) break;
    }
  } catch {
    // The message is a courtesy; the status already says what failed.
  }
  body.destroy();
  return Buffer.concat(parts);
}

/** Drops a body we do not need, so its connection goes back to the pool. */
export async function discard(body: Dispatcher.ResponseData['body']): Promise<void> {
  try {
    await body.dump({ limit: 65536 });
  } catch {
    body.destroy();
  }
}

/** The delay before retry number `attempt` (0-based): Retry-After when the server gives a sane one, else exponential. */
export function backoff(attempt: number, opts: TransportOptions, retryAfter?: string | string[]): number {
  const base = opts.retryDelayMs ?? 1000;
  const ra = typeof retryAfter === 'string' ? Number(retryAfter) : NaN;
  if (Number.isFinite(ra) && ra >= 0 && ra <= 60) return ra * 1000;
  return Math.min(base * 2 ** attempt, 60_000);
}

export const retriesOf = (opts: TransportOptions): number => opts.retries ?? 3;

export { sleep };
