// The Arrow data path: rollout record batches, zero-copy training views, IPC files, metrics log.
export * from './rollout-table.js';
export * from './train-view.js';
export * from './ipc.js';
export { completeStreamPrefix } from './ipc-stream.js';
