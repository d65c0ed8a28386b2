// Who we are, in the form the container tools parse. The converters read `nydus-image --version`
// with `Version:\s*v*(\d+.\d+.\d+)` (nydus-snapshotter, compared against the release that brought
// a feature: tar-rafs needs v2.2) and `Version:\s*(v.*)` (acceld, the builder-version annotation),
// so the version leads with the upstream release whose CLI and formats we follow, then names us.
import { spawnSync } from 'node:child_process';
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The upstream nydus release whose CLI, formats and --output-json we follow. */
const UPSTREAM_RELEASE = '2.4.4';

const packageRoot = fileURLToPath(new URL('..', import.meta.url));
const packageVersion = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Written as --output-json's version and the nydus-builder-version annotation. */
export const TOOL_VERSION = `v${UPSTREAM_RELEASE}-nydus-ts-${packageVersion}`;

/** The commit of the checkout we run from; "unknown" when installed outside one (as upstream without git). */
function gitCommit(): string {
  const r = spawnSync('git', ['-C', packageRoot, 'rev-parse', '--show-toplevel', '--verify', 'HEAD'], { encoding: 'utf8', timeout: 5000 });
  if (r.status !== 0) return 'unknown';
  const [top, head] = r.stdout.trim().split('\n');
  // A package installed under another project's checkout must not report that project's commit.
  if (top === undefined || head === undefined || realpathSync(top) !== realpathSync(packageRoot)) return 'unknown';
  return head;
}

/** When this module was compiled: the modification time of the file that runs. */
function buildTime(): string {
  return statSync(fileURLToPath(import.meta.url)).mtime.toISOString();
}

/** `nydus-image --version` in upstream's layout (tab-separated fields; Node where upstream names rustc). */
export function nydusImageVersionText(): string {
  return [
    `Version: \t${TOOL_VERSION}`,
    `Git Commit: \t${gitCommit()}`,
    `Build Time: \t${buildTime()}`,
    'Profile: \trelease',
    `Node: \t\tnode ${process.version} (V8 ${process.versions.v8})`,
    '',
  ].join('\n');
}

/** `nydusify --version` in upstream nydusify's layout (urfave/cli's "<name> version" line, then the fields). */
export function nydusifyVersionText(): string {
  return [
    'Nydusify version ',
    `Version\t: ${TOOL_VERSION}`,
    `Revision\t: ${gitCommit()}`,
    `Node version\t: ${process.version}`,
    `Build time\t: ${buildTime()}`,
    '',
  ].join('\n');
}
