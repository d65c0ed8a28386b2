// Image references as docker writes them: [host[:port]/]path[:tag][@digest], with docker.io as
// the default registry, library/ for its one-component names and latest as the default tag
// (the grammar of distribution's reference package, normalised as ParseNormalizedNamed does).
import { NydusError } from '../errors.js';
import { badDigest, quote, type Digest } from './digest.js';

export interface Reference {
  /** host[:port] as written (lowercased), "docker.io" for Docker Hub. */
  readonly registry: string;
  /** The repository path, e.g. "library/alpine". */
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: Digest;
}

export const DOCKER_HUB = 'docker.io';
/** Where Docker Hub's registry API answers (docker.io itself only redirects there). */
export const DOCKER_HUB_API = 'registry-1.docker.io';

const NAME_TOTAL_MAX = 255;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]+)?$`);
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;

function bad(input: string, why: string): NydusError {
  return new NydusError('USAGE', `image reference ${quote(input)}: ${why}`);
}

/** Parses and normalises a reference; throws a USAGE error naming the reference and the fault. */
export function parseReference(input: string): Reference {
  if (input.length === 0) throw bad(input, 'empty');
  let rest = input;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    const why = badDigest(d);
    if (why !== undefined) throw bad(input, why);
    digest = d as Digest;
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  // A tag follows the last ":" after the last "/"; a ":" before it is a registry port.
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(input, `tag ${quote(tag)} is not [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
  }
  if (rest.length > NAME_TOTAL_MAX) throw bad(input, `name longer than ${NAME_TOTAL_MAX} characters`);

  let registry = DOCKER_HUB;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    // The first component is a registry when it looks like a host: a dot, a port, localhost or capitals.
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      if (!DOMAIN.test(first)) throw bad(input, `registry ${quote(first)} is not host[:port]`);
      registry = first.toLowerCase();
      path = rest.slice(slash + 1);
    }
  }
  if (registry === 'index.docker.io') registry = DOCKER_HUB;
  if (path.length === 0) throw bad(input, 'no repository name');
  for (const c of path.split('/')) {
    if (!PATH_COMPONENT.test(c)) {
      if (c !== c.toLowerCase()) throw bad(input, 'repository name must be lowercase');
      throw bad(input, `repository component ${quote(c)} is not [a-z0-9] words joined by ".", "_", "__" or "-"`);
    }
  }
  if (registry === DOCKER_HUB && !path.includes('/')) path = `library/${path}`;
  return { registry, repository: path, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/** What to ask the registry for: the digest when there is one, else the tag, else "latest". */
export const refTarget = (ref: Reference): string => ref.digest ?? ref.tag ?? 'latest';

/** The canonical text of a reference: registry/repository[:tag][@digest]. */
export function formatReference(ref: Reference): string {
  return `${ref.registry}/${ref.repository}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/** The host[:port] whose /v2/ API serves `registry`. */
export const apiHost = (registry: string): string => (registry === DOCKER_HUB ? DOCKER_HUB_API : registry);

/** Checks a repository path on its own (a --source repository for cross-repository mounts, say). */
export function checkRepository(repository: string, where: string): string {
  if (repository.length === 0 || repository.length > NAME_TOTAL_MAX || !repository.split('/').every((c) => PATH_COMPONENT.test(c))) {
    throw new NydusError('USAGE', `${where}: repository ${quote(repository)} is not a valid repository name`);
  }
  return repository;
}
