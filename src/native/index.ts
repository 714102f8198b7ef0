// The native layer's public surface (re-exported by src/index.ts).
export * from './binding.js';
export * from './options.js';
export * from './pack.js';
export * from './generate.js';
export * from './policy.js';
export * from './threads.js';
export * from './debug.js';
