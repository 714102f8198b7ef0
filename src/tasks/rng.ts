// The project's seeded PRNG: xoshiro128** seeded through splitmix32. Small, fast, and identical on
// every platform (32-bit integer math only), so generated problems are reproducible everywhere.
import { hashString } from './hash.js';
import type { Rng } from './task.js';

/** A deterministic Rng (xoshiro128**); build it from a number or from a list of key parts. */
export class SeededRng implements Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    let x = (seed >>> 0) ^ Math.floor(seed / 4294967296);
    const next = (): number => {
      // splitmix32
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
      z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
      return (z ^ (z >>> 15)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** An Rng keyed by several parts, e.g. rngFor('math', 'train', seed, index). */
  static fromKey(...parts: readonly (string | number)[]): SeededRng {
    const [h1, h2] = hashString(parts.map(String).join('\u001f'));
    return new SeededRng(h1 + (h2 & 0x1fffff) * 4294967296);
  }

  /** The next raw 32-bit unsigned output. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform float in [0, 1) with 53 random bits. */
  next(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [lo, hi] inclusive; both bounds must be safe integers with lo <= hi. */
  int(lo: number, hi: number): number {
    if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || lo > hi) {
      throw new RangeError(`Rng.int: bad range [${lo}, ${hi}]`);
    }
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** Uniform element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('Rng.pick: empty array');
    return items[this.int(0, items.length - 1)] as T;
  }
}

/** Shorthand for SeededRng.fromKey: an Rng determined by its key parts. */
export function rngFor(...parts: readonly (string | number)[]): SeededRng {
  return SeededRng.fromKey(...parts);
}

/** Fisher-Yates shuffle in place with the given Rng; returns the same array. */
export function shuffleInPlace<T>(rng: Rng, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    const tmp = items[i] as T;
    items[i] = items[j] as T;
    items[j] = tmp;
  }
  return items;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
