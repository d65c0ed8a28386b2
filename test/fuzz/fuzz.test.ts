// The seeded 60-second fuzz run that `npm test` includes: the harness of `npm run fuzz` (see
// test/fuzz/run.js) with a fixed seed, which must end with zero findings. On a failure the
// findings directory printed below holds each input with a repro.sh.
import { spawn } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SEED = 20261206;
const SECONDS = 60;

describe('fuzz (seeded, 60 s)', () => {
  it(`seed ${SEED}: every reader and source survives ${SECONDS} s of hostile inputs with no finding`, async () => {
    const out = path.join(os.tmpdir(), `nydus-fuzz-test-${process.pid}`);
    // Asynchronously: a test worker blocked for a minute loses its line to vitest.
    const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [path.join(HERE, 'run.js'), '--seed', String(SEED), '--seconds', String(SECONDS), '--out', out, '--json'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-100_000)));
      // The harness ends itself 120 s past its budget (a watchdog); this is the last resort.
      const timer = setTimeout(() => child.kill('SIGKILL'), (SECONDS + 240) * 1000);
      child.on('close', (status) => {
        clearTimeout(timer);
        resolve({ status, stdout, stderr });
      });
    });
    const last = r.stdout.trim().split('\n').pop() ?? '';
    expect(last.startsWith('{'), `no summary from the fuzz run (exit ${r.status}): ${r.stderr.slice(-2000)}`).toBe(true);
    const summary = JSON.parse(last) as {
      executions: number; seconds: number; perSecond: number; findings: number;
      list: Array<{ kind: string; target: string; count: number; message: string; dir: string }>;
    };
    console.log(`fuzz seed ${SEED}: ${summary.executions} executions in ${summary.seconds} s (${summary.perSecond}/s), ${summary.findings} findings${summary.findings ? ` (in ${out})` : ''}`);
    for (const f of summary.list) console.log(`  [${f.kind}] ${f.target} x${f.count}: ${f.message}  ${f.dir}`);
    expect(summary.executions).toBeGreaterThan(0);
    expect(summary.list.map((f) => `[${f.kind}] ${f.target}: ${f.message}`)).toEqual([]);
  }, (SECONDS + 270) * 1000);
});
