import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { EpisodeState } from '../episodes/episode-tracker';

/** How many leading bytes identify a file's content (tells a reused inode from the file we knew). */
export const FINGERPRINT_BYTES = 256;

/** Which file a checkpoint is about: device and inode (as strings: they can pass 2^53) plus a content fingerprint. */
export interface FileIdentity {
  dev: string;
  ino: string;
  /** sha256 (hex) of the file's first `fp_len` bytes. */
  fp: string;
  fp_len: number;
}

/**
 * Where a (source, path) stands: the file, the byte offset of the first line not yet emitted
 * (always a line start), and the stall episode open at that point. Written in the same Lua script as
 * the events of the range it covers.
 */
export interface Checkpoint extends FileIdentity {
  v: 1;
  offset: number;
  episode: EpisodeState | null;
  updated_at: string;
}

export function fingerprintOf(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Reads up to `len` bytes from the start of a file. */
export async function readHead(fd: FileHandle, len: number): Promise<Buffer> {
  const buf = Buffer.alloc(len);
  let got = 0;
  while (got < len) {
    const { bytesRead } = await fd.read(buf, got, len - got, got);
    if (!bytesRead) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

/** Parses a stored checkpoint; null (with the reason) when it is not one. */
export function parseCheckpoint(raw: string): { checkpoint: Checkpoint | null; problem?: string } {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch (err) {
    return { checkpoint: null, problem: `not JSON (${(err as Error).message})` };
  }
  const c = v as Partial<Checkpoint> | null;
  if (
    !c ||
    typeof c !== 'object' ||
    c.v !== 1 ||
    typeof c.dev !== 'string' ||
    typeof c.ino !== 'string' ||
    typeof c.fp !== 'string' ||
    !Number.isInteger(c.fp_len) ||
    !Number.isInteger(c.offset) ||
    (c.offset as number) < 0 ||
    (c.episode !== null &&
      (typeof c.episode !== 'object' ||
        typeof c.episode?.last_breach_ms !== 'number' ||
        typeof c.episode?.first_ms !== 'number'))
  ) {
    return { checkpoint: null, problem: 'missing or mistyped fields' };
  }
  return { checkpoint: c as Checkpoint };
}
