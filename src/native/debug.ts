// Test hooks that prove zero-copy: addresses are only ever compared with each other.
import { loadBinding } from './binding.js';

/** Address of a typed array's first element, as the addon sees it (tests only). */
export function bufferAddress(array: ArrayBufferView): bigint {
  return loadBinding().bufferAddress(array);
}

/** Addresses of the typed arrays the latest addon call on this thread passed to the core, by argument name. */
export function lastBorrowedAddresses(): Record<string, bigint> {
  return loadBinding().lastBorrowed();
}
