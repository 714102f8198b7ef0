// Stable, platform-independent string hashing for split assignment and seed derivation. The values
// must never change between releases: they decide which generated problems are held out.

/** A 64-bit hash of a string as two unsigned 32-bit halves (murmur3-style mixing of UTF-16 units). */
export function hashString(text: string, salt = 0): [number, number] {
  let h1 = (0x9e3779b9 ^ salt) >>> 0;
  let h2 = (0x85ebca6b ^ Math.imul(salt, 0x27d4eb2f)) >>> 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0xcc9e2d51);
    h1 = (h1 << 15) | (h1 >>> 17);
    h2 = Math.imul(h2 ^ c, 0x1b873593);
    h2 = (h2 << 13) | (h2 >>> 19);
    h1 = (h1 + h2) | 0;
  }
  h1 ^= text.length;
  h2 ^= text.length;
  h1 = fmix32(h1 ^ (h2 >>> 1));
  h2 = fmix32(h2 ^ h1);
  return [h1 >>> 0, h2 >>> 0];
}

/** A hash of a string mapped to a float in [0, 1) (53 bits), for fraction-based decisions. */
export function hashUnit(text: string, salt = 0): number {
  const [h1, h2] = hashString(text, salt);
  return ((h1 >>> 5) * 67108864 + (h2 >>> 6)) / 9007199254740992;
}

/** The murmur3 32-bit finaliser (full avalanche). */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
