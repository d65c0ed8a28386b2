// Upstream's log lines: "[%Y-%m-%d %H:%M:%S%.6f %:z] LEVEL msg" on stderr, and to -L FILE.
import * as fs from 'node:fs';
import * as path from 'node:path';

export const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export type Level = (typeof LEVELS)[number];

function stamp(d = new Date()): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const off = -d.getTimezoneOffset();
  const tz = `${off >= 0 ? '+' : '-'}${p(Math.floor(Math.abs(off) / 60))}:${p(Math.abs(off) % 60)}`;
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds() * 1000, 6)} ${tz}`;
}

export class Logger {
  private readonly min: number;
  private readonly fd?: number;

  constructor(level: Level = 'info', file?: string) {
    this.min = LEVELS.indexOf(level);
    // flexi_logger appends ".log" when the path has no extension.
    if (file) this.fd = fs.openSync(path.extname(file) ? file : `${file}.log`, 'a');
  }

  enabled(level: Level): boolean {
    return LEVELS.indexOf(level) >= this.min;
  }

  log(level: Level, msg: string): void {
    if (!this.enabled(level)) return;
    const line = `[${stamp()}] ${level.toUpperCase()} ${msg}\n`;
    process.stderr.write(line);
    if (this.fd !== undefined) fs.writeSync(this.fd, line);
  }

  info(msg: string): void {
    this.log('info', msg);
  }
  warn(msg: string): void {
    this.log('warn', msg);
  }
  error(msg: string): void {
    this.log('error', msg);
  }
}
