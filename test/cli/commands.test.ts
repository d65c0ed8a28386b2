// The launcher's table of commands (src/cli/commands.ts) against the files oclif reads its
// manifest and help from: a command missing from the table would start through oclif's Config
// and the modules one by one, an id without a file would run what help does not list.
import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { COMMANDS } from '../../src/cli/commands.js';
import { REPO } from './cli-runner.js';

describe('command table', () => {
  it('names every file under src/commands/, by oclif id, and nothing else', () => {
    const dir = join(REPO, 'src', 'commands');
    const ids = (readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3).split('/').join(':'));
    expect(Object.keys(COMMANDS).sort()).toEqual(ids.sort());
  });

  it('loads each command class', async () => {
    for (const [id, load] of Object.entries(COMMANDS)) expect(typeof (await load()).default, id).toBe('function');
  });
});
