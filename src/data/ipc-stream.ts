// Arrow IPC stream framing, the part a crash-tolerant append-only log needs. A stream is a schema
// message followed by record-batch messages, each framed as 0xFFFFFFFF, int32 metadata length,
// flatbuffer metadata, body. The writer never writes the end-of-stream marker, so appending a
// batch is just appending its message; readers stop at end of file. A torn tail (a killed writer)
// is cut off by finding the end of the last complete message.
import { Message, Table, tableFromIPC, tableToIPC, type RecordBatch, type Schema } from 'apache-arrow';

const EOS_BYTES = 8;

/** Length of the longest prefix of `bytes` made of complete IPC stream messages. */
export function completeStreamPrefix(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  while (pos + 8 <= bytes.length) {
    const first = view.getInt32(pos, true);
    // Pre-1.0 streams have no continuation marker: the first word is the metadata length.
    const header = first === -1 ? 8 : 4;
    const metaLen = first === -1 ? view.getInt32(pos + 4, true) : first;
    if (metaLen <= 0 || pos + header + metaLen > bytes.length) break;
    let bodyLength: number;
    try {
      bodyLength = Message.decode(bytes.subarray(pos + header, pos + header + metaLen)).bodyLength;
    } catch {
      break;
    }
    const next = pos + header + metaLen + bodyLength;
    if (!Number.isFinite(next) || next > bytes.length) break;
    pos = next;
  }
  return pos;
}

/** The stream's schema message (no end-of-stream marker). */
export function schemaMessage(schema: Schema): Uint8Array {
  const bytes = tableToIPC(new Table(schema), 'stream');
  return bytes.subarray(0, bytes.length - EOS_BYTES);
}

/** The messages of `batches` alone, to append after `schemaBytes` (= schemaMessage(schema)). */
export function batchMessages(schemaBytes: Uint8Array, schema: Schema, batches: readonly RecordBatch[]): Uint8Array {
  const bytes = tableToIPC(batches.length ? new Table([...batches]) : new Table(schema), 'stream');
  const head = bytes.subarray(0, schemaBytes.length);
  // The serializer is deterministic; a different prefix would mean dictionaries or a changed schema.
  if (!Buffer.from(head).equals(Buffer.from(schemaBytes))) throw new Error('ipc-stream: batch does not serialize after the log schema');
  return bytes.subarray(schemaBytes.length, bytes.length - EOS_BYTES);
}

/** The table in the complete prefix of a stream (null when not even the schema is complete). */
export function readStreamPrefix(bytes: Uint8Array): { table: Table | null; validBytes: number } {
  const validBytes = completeStreamPrefix(bytes);
  if (validBytes === 0) return { table: null, validBytes };
  return { table: tableFromIPC(bytes.subarray(0, validBytes)), validBytes };
}
