// Platforms as --platform names them (os/arch[/variant], comma lists), the host's default, and
// which entries of an index they select (containerd's matcher, reduced to what images carry).
import { NydusError } from '../errors.js';
import { quote } from './digest.js';
import type { Platform } from './manifest.js';

export interface PlatformSpec {
  os: string;
  architecture: string;
  variant?: string;
}

/** Node's process.arch → the GOARCH names images use. */
const GOARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64' };

/** `linux/<host arch>`, upstream's default. */
export function hostPlatform(): PlatformSpec {
  return { os: 'linux', architecture: GOARCH[process.arch] ?? process.arch };
}

/** Parses `os/arch[/variant]` (one) or a comma list of them. */
export function parsePlatforms(list: string): PlatformSpec[] {
  const out = list.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(parsePlatform);
  if (out.length === 0) throw new NydusError('USAGE', `--platform ${quote(list)} names no platform`);
  return out;
}

export function parsePlatform(s: string): PlatformSpec {
  const parts = s.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[A-Za-z0-9_.-]+$/.test(p))) {
    throw new NydusError('USAGE', `platform ${quote(s)} is not os/arch[/variant]`);
  }
  const [os, architecture, variant] = parts.map((p) => p.toLowerCase()) as [string, string, string | undefined];
  return { os, architecture: architecture === 'aarch64' ? 'arm64' : architecture === 'x86_64' ? 'amd64' : architecture, ...(variant ? { variant } : {}) };
}

/** arm64's only variant is v8, so an entry without one is the same platform. */
const normalVariant = (arch: string, v: string | undefined) => (arch === 'arm64' && (v === undefined || v === 'v8') ? undefined : v);

/** Whether an index entry's platform is the one wanted (a wanted variant must match; none wanted takes any). */
export function platformMatches(have: Platform | undefined, want: PlatformSpec): boolean {
  if (!have) return false;
  if (have.os !== want.os || have.architecture !== want.architecture) return false;
  if (want.variant === undefined) return true;
  return normalVariant(have.architecture, have.variant) === normalVariant(want.architecture, want.variant);
}

export const formatPlatform = (p: Pick<Platform, 'os' | 'architecture' | 'variant'>): string => `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
