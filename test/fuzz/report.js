#!/usr/bin/env node
// Prints a findings directory (of run.js --out) as a Markdown list, grouped by kind:
//   node test/fuzz/report.js DIR
import * as fs from 'node:fs';
import * as path from 'node:path';

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: node test/fuzz/report.js FINDINGS_DIR\n');
  process.exit(2);
}
const summary = JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8'));
const counts = new Map(summary.list.map((f) => [f.dir, f.count]));
const cases = fs.readdirSync(dir).filter((d) => fs.existsSync(path.join(dir, d, 'case.json')))
  .map((d) => ({ d, ...JSON.parse(fs.readFileSync(path.join(dir, d, 'case.json'), 'utf8')) }));
const byKind = new Map();
for (const c of cases) {
  const list = byKind.get(c.kind) ?? [];
  list.push(c);
  byKind.set(c.kind, list);
}
const out = [];
out.push(`seed ${summary.seed}: ${summary.executions} executions in ${summary.seconds} s (${summary.perSecond}/s), ${summary.findings} distinct findings`);
for (const [kind, list] of [...byKind].sort()) {
  out.push('', `### ${kind}`);
  for (const c of list.sort((a, b) => a.target.localeCompare(b.target))) {
    const n = counts.get(path.join(summary.out, c.d)) ?? counts.get(c.d) ?? '?';
    out.push(`- **${c.target}** (${c.via}, x${n}): ${c.message.split('\n')[0].slice(0, 200)}${c.detail && kind.startsWith('escape') ? ` — ${String(c.detail).slice(0, 120)}` : ''}`);
    out.push(`  - input: ${c.mutations.join(' | ').slice(0, 300)}`);
    out.push(`  - reproduce: \`${path.join(dir, c.d, 'repro.sh')}\``);
  }
}
process.stdout.write(`${out.join('\n')}\n`);
