// The integers a sampled completion is keyed by. The native sampler draws every token from
// (seed, call id, position), so packing a CallKey into one 64-bit call id, and folding the key's
// seed into the run seed, makes a completion the same whichever worker, chunk or batch draws it.
//
// Layout of the call id (63 bits): step in bits 40..62, episode in bits 16..39, call in bits 0..15.
// Training steps stay below 2^22; evaluation uses steps >= 2^22 (src/rl/evaluate.ts,
// EVAL_STEP_BASE), so evaluation draws never coincide with training draws.
import type { CallKey } from '../workflows/sampler.js';

/** Exclusive upper bounds of the three call-id fields. */
export const CALL_ID_LIMITS = Object.freeze({ step: 2 ** 23, episode: 2 ** 24, call: 2 ** 16 });

const MASK64 = (1n << 64n) - 1n;

function checkField(name: keyof typeof CALL_ID_LIMITS, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value >= CALL_ID_LIMITS[name]) {
    throw new RangeError(`nativeCallId: key.${name} must be an integer in [0, ${CALL_ID_LIMITS[name]}), got ${value}`);
  }
}

/** The 64-bit call id the native sampler is keyed by: step << 40 | episode << 16 | call. */
export function nativeCallId(key: CallKey): bigint {
  checkField('step', key.step);
  checkField('episode', key.episode);
  checkField('call', key.call);
  return (BigInt(key.step) << 40n) | (BigInt(key.episode) << 16n) | BigInt(key.call);
}

/** The (step, episode, call) a native call id was built from (inverse of nativeCallId). */
export function splitCallId(id: bigint): { step: number; episode: number; call: number } {
  return { step: Number(id >> 40n), episode: Number((id >> 16n) & 0xffffffn), call: Number(id & 0xffffn) };
}

// splitmix64's finaliser: a bijection on 64-bit words with good avalanche, so nearby seeds
// (1, 2, 3, ...) give unrelated sampler seeds.
function splitmix64(x: bigint): bigint {
  let z = (x + 0x9e3779b97f4a7c15n) & MASK64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

function toSeed(name: string, v: number | bigint): bigint {
  const b = typeof v === 'bigint' ? v : Number.isSafeInteger(v) ? BigInt(v) : NaN;
  if (typeof b !== 'bigint' || b < 0n || b > MASK64) {
    throw new RangeError(`mixSeeds: ${name} must be an integer in [0, 2^64), got ${String(v)}`);
  }
  return b;
}

/** The native sampler seed of a call: the run (sampler) seed mixed with the call key's seed. */
export function mixSeeds(runSeed: number | bigint, keySeed: number | bigint): bigint {
  return splitmix64(splitmix64(toSeed('runSeed', runSeed)) ^ toSeed('keySeed', keySeed));
}
