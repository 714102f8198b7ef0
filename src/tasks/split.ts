// Train/test assignment by a hash of a problem's canonical key: the split of a problem depends on
// nothing but its key, so a held-out problem can never be generated for train under any seed.
import { hashUnit } from './hash.js';

/** Salt of the split hash; changing it reshuffles every held-out set, so it is frozen. */
const SPLIT_SALT = 0x5eed5011;

/** The split a canonical problem key belongs to: 'test' for a `testFraction` share of keys. */
export function splitOfKey(key: string, testFraction: number): 'train' | 'test' {
  return hashUnit(key, SPLIT_SALT) < testFraction ? 'test' : 'train';
}

/** Throws unless `f` is a fraction strictly between 0 and 1 (both splits must be non-empty). */
export function checkTestFraction(f: number, where: string): void {
  if (!(f > 0 && f < 1)) throw new RangeError(`${where}: testFraction must be in (0, 1), got ${f}`);
}
