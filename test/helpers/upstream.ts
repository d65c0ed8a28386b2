// Where the upstream-built fixtures are: shared/fixtures/upstream, outside the repository. A
// checkout sits beside shared/ (../shared); a clone made elsewhere (CI clones into /tmp) finds it
// through $NYDUS_SHARED or the workplace's /work/shared.
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const candidates = [process.env.NYDUS_SHARED, resolve(repo, '../shared'), '/work/shared'].filter((d): d is string => !!d);

/** shared/fixtures/upstream (the first candidate holding it; the checkout's sibling when none does, so a miss names it). */
export const UPSTREAM = resolve(candidates.find((d) => existsSync(resolve(d, 'fixtures/upstream'))) ?? resolve(repo, '../shared'), 'fixtures/upstream');
