import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { COORD_ROOT } from '@coordbus/config';
import { coordVar } from './config';
import { COORD_LAYOUT as L } from './file-layout';
import { DispatchOrder, InboxMessage, LockRecord, SessionRecord } from './types';

/**
 * Dual-writes coord state as the file layout under `COORD_ROOT` (described in file-layout.ts,
 * whose `readCoordRoot` is the reading side) that file-based tools and the sentinel's fs-poll
 * source read.
 *
 * Redis stays the system of record: the mirror is written after the state change commits, each
 * file atomically (temp file in the same directory + rename). A resource name that is not a plain
 * file name (`[A-Za-z0-9._-]`, not `.`/`..`) becomes a directory named by `encodeURIComponent`;
 * one whose name would pass {@link MAX_DIR_NAME} bytes (a file name's limit is 255 bytes) is cut
 * and suffixed with `+` and a hash of the whole name (`+` is never produced by the encoding, so
 * it cannot collide). The reader takes the name from `record.json`'s `resource`, so it
 * round-trips whatever the directory is called.
 */
/** Longest directory name the mirror writes: under NAME_MAX (255) on every common filesystem. */
export const MAX_DIR_NAME = 200;

export class FileMirror {
  constructor(readonly root: string) {}

  static fromEnv(env: NodeJS.ProcessEnv = process.env): FileMirror | undefined {
    const root = coordVar(env, COORD_ROOT);
    return root ? new FileMirror(root) : undefined;
  }

  /** The directory name a resource is stored under. */
  static resourceDir(resource: string): string {
    const dir =
      /^[A-Za-z0-9._-]+$/.test(resource) && resource !== '.' && resource !== '..'
        ? resource
        : encodeURIComponent(resource).replace(/\./g, '%2E');
    if (dir.length <= MAX_DIR_NAME) return dir; // ASCII: length is bytes
    const hash = createHash('sha256').update(resource).digest('hex').slice(0, 32);
    // Cut before a partial %XX escape, so the kept prefix still decodes.
    const head = dir.slice(0, 120).replace(/%[0-9A-F]?$/, '');
    return `${head}+${hash}`;
  }

  writeSession(s: SessionRecord): void {
    this.writeJson(join(this.root, L.sessions), `${s.session_id}.json`, {
      session_id: s.session_id,
      pid: s.pid,
      host: s.host,
      role: s.role,
      task: s.task,
      blob: s.blob,
      phase: s.phase,
      registered_at: s.registered_at,
      last_heartbeat: s.last_heartbeat,
    });
  }

  removeSession(sessionId: string): void {
    rmSync(join(this.root, L.sessions, `${sessionId}.json`), { force: true });
  }

  writeLock(l: LockRecord): void {
    const dir = join(this.root, L.locks, FileMirror.resourceDir(l.resource));
    this.writeJson(dir, L.lockRecord, {
      resource: l.resource,
      owner_session_id: l.owner_session_id,
      owner_pid: l.owner_pid,
      acquired_at: l.acquired_at,
      expires_at: l.expires_at,
      reason: l.reason,
    });
    this.writeText(dir, L.lockOwner, `${l.owner_session_id}\n`);
  }

  removeLock(resource: string): void {
    rmSync(join(this.root, L.locks, FileMirror.resourceDir(resource)), { recursive: true, force: true });
  }

  writeMessage(m: InboxMessage): void {
    this.writeJson(join(this.root, L.messages, `${L.inboxPrefix}${m.to_session}`), `${m.msg_id}.json`, m);
  }

  removeMessage(m: InboxMessage): void {
    rmSync(join(this.root, L.messages, `${L.inboxPrefix}${m.to_session}`, `${m.msg_id}.json`), {
      force: true,
    });
  }

  writeDispatch(o: DispatchOrder): void {
    this.writeJson(join(this.root, L.dispatch), `${o.order_id}.json`, o);
  }

  private writeJson(dir: string, name: string, value: unknown): void {
    this.writeText(dir, name, `${JSON.stringify(value, null, 2)}\n`);
  }

  private writeText(dir: string, name: string, text: string): void {
    mkdirSync(dir, { recursive: true });
    const tmp = join(dir, `.${name}.${process.pid}.${Date.now()}.tmp`);
    writeFileSync(tmp, text);
    renameSync(tmp, join(dir, name));
  }
}
