// Timings and counters reported in --output-json's "trace" (blob.md §7.4).
export class Trace {
  readonly consumed = new Map<string, number>();
  readonly events = new Map<string, number | string>();

  start(point: string): { end(): void } {
    const t0 = process.hrtime.bigint();
    return { end: () => this.consumed.set(point, Number(process.hrtime.bigint() - t0) / 1e9) };
  }

  event(name: string, value: number | string): void {
    this.events.set(name, value);
  }

  /** Upstream's last events of a build: who ran it (some xattrs need privileges). */
  eventIds(): void {
    this.event('euid', String(process.geteuid?.() ?? 0));
    this.event('egid', String(process.getegid?.() ?? 0));
  }

  toJSON(): { consumed_time: Record<string, number>; registered_events: Record<string, number | string> } {
    const sorted = <T>(m: Map<string, T>) => Object.fromEntries([...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    return { consumed_time: sorted(this.consumed), registered_events: sorted(this.events) };
  }
}
