// Whole-file replacement that a crash cannot leave half-written: write a temporary file next to
// the target, flush it to disk, then rename over the target (rename is atomic on POSIX).
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';

/** Writes all of `bytes` to an open file descriptor (writeSync may write less than asked). */
export function writeAll(fd: number, bytes: Uint8Array): void {
  for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
}

/** Replaces `file` with `chunks` atomically (parent folders are created). */
export function writeFileAtomic(file: string, chunks: readonly Uint8Array[]): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    for (const c of chunks) writeAll(fd, c);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, file);
}
