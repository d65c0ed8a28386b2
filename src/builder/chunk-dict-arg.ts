// The --chunk-dict argument, on its own so that create's flag checks do not load merge.
import { NydusError } from '../errors.js';

/** `--chunk-dict`: `bootstrap=PATH`, or a bare PATH (split at the first `=`). */
export function parseChunkDictArg(arg: string): string {
  const eq = arg.indexOf('=');
  if (eq < 0) return arg;
  const type = arg.slice(0, eq);
  if (type !== 'bootstrap') throw new NydusError('USAGE', `invalid chunk dict type ${JSON.stringify(type)}: only bootstrap=PATH is supported`);
  const p = arg.slice(eq + 1);
  if (p.length === 0) throw new NydusError('USAGE', 'invalid --chunk-dict: the path is empty');
  return p;
}
