// troupe's public API.
/** The native core: policies, packing helpers, option defaults, thread budget. */
export * from './native/index.js';
