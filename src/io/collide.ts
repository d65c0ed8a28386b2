// Inputs and outputs that are the same file: `create -B X -b X` or `unpack B --output B` would
// write one over the other (or over the input it is still reading). Two paths name the same file
// when they resolve to the same path (through symlinked directories too) or, for files that
// exist, have the same device and inode. An existing FIFO or character device (a pipe to a
// consumer, /dev/stdout, /dev/null) is written in place and may legitimately be named twice.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NydusError } from '../errors.js';

/** A flag and the path given to it; the path may be undefined when the flag was not given. */
export type Named = readonly [flag: string, file: string | undefined];

/** The path with its directory's symlinks resolved (the file itself need not exist). */
export function realPathOf(file: string): string {
  const abs = path.resolve(file);
  try {
    return fs.realpathSync(abs);
  } catch {
    try {
      return path.join(fs.realpathSync(path.dirname(abs)), path.basename(abs));
    } catch {
      return abs;
    }
  }
}

/** Refuses an output that is an existing directory, before any work is done for it. */
function checkNotDirectory(flag: string, file: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return;
  }
  if (st.isDirectory()) throw new NydusError('USAGE', `${flag} ${file} is a directory: give a file path`);
}

interface Identity {
  flag: string;
  file: string;
  real: string;
  ino?: string;
  special: boolean;
}

function identify([flag, file]: readonly [string, string]): Identity {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(file);
  } catch {
    st = undefined;
  }
  return {
    flag, file, real: realPathOf(file),
    ino: st ? `${st.dev}:${st.ino}` : undefined,
    special: !!st && (st.isFIFO() || st.isCharacterDevice()),
  };
}

const same = (a: Identity, b: Identity) => a.real === b.real || (a.ino !== undefined && a.ino === b.ino);

/**
 * Refuses (USAGE, one line naming both flags) an output that is the same file as an input or
 * as another output, and an output that is a directory.
 */
export function checkNoCollision(inputs: readonly Named[], outputs: readonly Named[]): void {
  const given = (l: readonly Named[]) => l.filter((n): n is readonly [string, string] => n[1] !== undefined && n[1] !== '').map(identify);
  for (const [flag, file] of outputs) if (file) checkNotDirectory(flag, file);
  const ins = given(inputs);
  const outs = given(outputs);
  for (const [i, o] of outs.entries()) {
    if (o.special) continue;
    for (const x of ins) {
      if (same(o, x)) throw new NydusError('USAGE', `${o.flag} ${o.file} is the same file as ${x.flag} ${x.file}: the output would replace an input`);
    }
    for (const x of outs.slice(i + 1)) {
      if (same(o, x)) throw new NydusError('USAGE', `${x.flag} ${x.file} is the same file as ${o.flag} ${o.file}: one output would overwrite the other`);
    }
  }
}
