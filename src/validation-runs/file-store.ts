import type pg from "pg";

/**
 * Uploaded files live in PostgreSQL, where every instance reads them, as rows of about 256 kB in
 * `validation_file_chunks` rather than as large objects: a chunk is one ordinary INSERT or SELECT on
 * any pooled connection, whereas a large object must be read and written inside one transaction
 * held for the whole stream (a connection pinned for minutes, across a PgBouncer in transaction
 * mode impossible); and deleting the file is a row delete that retention batches like any other
 * (large objects would need lo_unlink per file).
 */
export const CHUNK_BYTES = 256 * 1024;
/** Chunks read by one query: at one a chunk, sending the queries alone (socket writes) was ~4 % of a run's CPU. */
const CHUNKS_PER_READ = 4;
/** Reads kept in flight ahead of the one being parsed: 2 MB of memory, 2 pooled connections at most. */
const READ_AHEAD = 1;

const CREATE_FILE = `INSERT INTO validation_files (id, owner) VALUES (gen_random_uuid(), $1) RETURNING id`;
const INSERT_CHUNK = `INSERT INTO validation_file_chunks (file_id, seq, data) VALUES ($1, $2, $3)`;
const FINISH_FILE = `UPDATE validation_files SET byte_size = $2, chunk_count = $3 WHERE id = $1`;
const READ_CHUNKS = `SELECT encode(data, 'base64') AS data FROM validation_file_chunks WHERE file_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq`;
const FILE_SIZE = `SELECT byte_size::float8 AS byte_size, chunk_count FROM validation_files WHERE id = $1`;
const DELETE_FILE = `DELETE FROM validation_files WHERE id = $1`;

export interface StoredFile {
  id: string;
  bytes: number;
  chunks: number;
}

export class FileStore {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Writes `source` in chunks as it arrives (each INSERT awaited before more is read, so memory
   * holds one chunk whatever the size). Throws what `source` throws (a size limit, an aborted
   * upload) after deleting what it wrote.
   */
  async write(owner: string, source: AsyncIterable<Buffer>): Promise<StoredFile> {
    const id = (await this.pool.query<{ id: string }>(CREATE_FILE, [owner])).rows[0]!.id;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let bytes = 0;
    let chunks = 0;
    const flush = async (size: number) => {
      const joined = Buffer.concat(pending, pendingBytes);
      await this.pool.query(INSERT_CHUNK, [id, chunks++, joined.subarray(0, size)]);
      const rest = joined.subarray(size);
      pending = rest.length ? [rest] : [];
      pendingBytes = rest.length;
    };
    try {
      for await (const data of source) {
        pending.push(data);
        pendingBytes += data.length;
        bytes += data.length;
        while (pendingBytes >= CHUNK_BYTES) await flush(CHUNK_BYTES);
      }
      if (pendingBytes > 0) await flush(pendingBytes);
      await this.pool.query(FINISH_FILE, [id, bytes, chunks]);
      return { id, bytes, chunks };
    } catch (error) {
      await this.delete(id).catch(() => undefined);
      throw error;
    }
  }

  async size(id: string): Promise<StoredFile | null> {
    const row = (await this.pool.query<{ byte_size: number; chunk_count: number }>(FILE_SIZE, [id])).rows[0];
    return row ? { id, bytes: row.byte_size, chunks: row.chunk_count } : null;
  }

  /**
   * The file's chunks in order, `CHUNKS_PER_READ` a query, the next `READ_AHEAD` queries already
   * requested while the caller works on the current (the reads otherwise left the parser idle an
   * eighth of the time); stops before each chunk once `signal` is aborted (throwing its reason).
   */
  async *read(file: StoredFile, signal: AbortSignal): AsyncGenerator<Buffer> {
    // pg reads rows in text format only, where bytea is hex: twice the bytes to send, turn into a
    // string and decode. Base64 is a third larger than the bytes; reading it back took half the CPU
    // of hex (0.5 against 1 ms a chunk; the newlines PostgreSQL puts in are skipped by Node).
    const fetch = (first: number) => {
      const end = Math.min(first + CHUNKS_PER_READ, file.chunks);
      const read = this.pool.query<{ data: string }>(READ_CHUNKS, [file.id, first, end]).then((result) => {
        if (result.rows.length !== end - first) throw new Error(`Chunks ${first}–${end - 1} of file ${file.id} are not all there`);
        return result.rows.map((row) => Buffer.from(row.data, "base64"));
      });
      // A read in flight when the caller stops must not become an unhandled rejection.
      read.catch(() => undefined);
      return read;
    };
    const ahead: Promise<Buffer[]>[] = [];
    let requested = 0;
    while (ahead.length > 0 || requested < file.chunks) {
      signal.throwIfAborted();
      while (requested < file.chunks && ahead.length <= READ_AHEAD) {
        ahead.push(fetch(requested));
        requested += CHUNKS_PER_READ;
      }
      for (const chunk of await ahead.shift()!) {
        signal.throwIfAborted();
        yield chunk;
      }
    }
  }

  async delete(id: string): Promise<void> {
    await this.pool.query(DELETE_FILE, [id]);
  }
}
