// The dedup dictionary: chunk digest -> chunk index, in typed arrays. A Map keyed by the digest as
// a string cost a string per chunk and the Map's hashing of it on the main thread's hot path; here
// a digest is hashed from its own bytes (with a per-process seed, so digests read from a hostile
// parent bootstrap or chunk dict cannot be chosen to collide) and kept as 32 bytes.

/** RAFS chunk digests (blake3 and sha256) are 32 bytes. */
const DIGEST = 32;

export class DigestMap {
  /** Open addressing: entry index + 1, 0 when free. */
  private slots = new Int32Array(1024);
  private mask = 1023;
  private digests = new Uint8Array(DIGEST * 512);
  private values = new Int32Array(512);
  private count = 0;
  private readonly seed = (Math.random() * 0x1_0000_0000) >>> 0;

  get size(): number {
    return this.count;
  }

  get(d: Uint8Array): number | undefined {
    const e = this.find(d);
    return e < 0 ? undefined : this.values[e];
  }

  has(d: Uint8Array): boolean {
    return this.find(d) >= 0;
  }

  /** Sets the index of digest d (a new entry, or the existing one's value replaced). */
  set(d: Uint8Array, value: number): void {
    if (d.length !== DIGEST) throw new Error(`chunk digest of ${d.length} bytes, not ${DIGEST}`);
    const e = this.find(d);
    if (e >= 0) {
      this.values[e] = value;
      return;
    }
    if (2 * (this.count + 1) > this.slots.length) this.grow();
    const k = this.count++;
    if (k === this.values.length) {
      const digests = new Uint8Array(this.digests.length * 2);
      digests.set(this.digests);
      this.digests = digests;
      const values = new Int32Array(this.values.length * 2);
      values.set(this.values);
      this.values = values;
    }
    this.digests.set(d, DIGEST * k);
    this.values[k] = value;
    this.insert(k, this.hash(d, 0));
  }

  clear(): void {
    this.slots = new Int32Array(1024);
    this.mask = 1023;
    this.digests = new Uint8Array(DIGEST * 512);
    this.values = new Int32Array(512);
    this.count = 0;
  }

  /** The entry of digest d, or -1. */
  private find(d: Uint8Array): number {
    if (d.length !== DIGEST || this.count === 0) return -1;
    const slots = this.slots;
    const mask = this.mask;
    for (let h = this.hash(d, 0) & mask; ; h = (h + 1) & mask) {
      const e = slots[h] - 1;
      if (e < 0) return -1;
      if (this.same(e, d)) return e;
    }
  }

  private same(e: number, d: Uint8Array): boolean {
    const s = this.digests;
    const at = DIGEST * e;
    for (let i = 0; i < DIGEST; i++) if (s[at + i] !== d[i]) return false;
    return true;
  }

  /** A seeded mix of the digest's eight words (from `at` in its array). */
  private hash(d: Uint8Array, at: number): number {
    let h = this.seed;
    for (let i = at; i < at + DIGEST; i += 4) {
      const w = d[i] | (d[i + 1] << 8) | (d[i + 2] << 16) | (d[i + 3] << 24);
      h = Math.imul(h ^ w, 0x9e3779b1);
      h ^= h >>> 15;
    }
    return h >>> 0;
  }

  private insert(e: number, hash: number): void {
    const slots = this.slots;
    const mask = this.mask;
    let h = hash & mask;
    while (slots[h] !== 0) h = (h + 1) & mask;
    slots[h] = e + 1;
  }

  private grow(): void {
    this.slots = new Int32Array(this.slots.length * 2);
    this.mask = this.slots.length - 1;
    for (let e = 0; e < this.count; e++) this.insert(e, this.hash(this.digests, DIGEST * e));
  }
}
