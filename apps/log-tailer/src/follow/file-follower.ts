import { FSWatcher, watch } from 'node:fs';
import { FileHandle, open, readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { Checkpoint, FileIdentity, FINGERPRINT_BYTES, fingerprintOf, readHead } from './file-identity';
import { LineSplitter } from './line-splitter';

/** Complete lines read from one file, and the checkpoint position just past them. */
export interface FollowBatch {
  lines: string[];
  /** Over-limit lines dropped in this range. */
  dropped: number;
  identity: FileIdentity;
  /** Byte offset of the first line not in this or an earlier batch (a line start). */
  offset: number;
  /** Bytes read past `offset` but not yet a complete line (for the lag metric). */
  pendingBytes: number;
}

/**
 * Where the batch goes. The follower awaits it before reading on, so the checkpoint can never
 * run ahead of what was delivered; a rejection is fatal (the sink retries transient failures).
 */
export type BatchSink = (batch: FollowBatch) => Promise<void>;

export type FollowerEvent =
  | { kind: 'opened'; path: string; offset: number; why: string }
  | { kind: 'truncated'; path: string; atOffset: number }
  | { kind: 'rotated'; path: string; from: string; discardedPartialBytes: number }
  | { kind: 'gone'; path: string };

export interface FollowerOptions {
  path: string;
  fromStart: boolean;
  lineLimitBytes: number;
  readChunkBytes: number;
  rotateWaitMs: number;
  reconcileMs: number;
  logger: Logger;
  sink: BatchSink;
  /** Called when following cannot go on (watcher died, directory gone, read error): exit non-zero. */
  onFatal: (err: Error) => void;
  onEvent?: (event: FollowerEvent) => void;
}

interface OpenFile {
  fd: FileHandle;
  /** Name it was opened under (the path, or a rotated sibling found at start). */
  name: string;
  dev: bigint;
  ino: bigint;
  readPos: number;
  head: Buffer;
  fp: string;
  splitter: LineSplitter;
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT';
}

/**
 * Follows one file through an open handle, driven by inotify on its directory (so renames,
 * deletes and creates are seen). No timer runs in steady state except a slow reconcile backstop.
 *
 * Rotation: a rename or delete+recreate (the path names another inode) drains the old handle,
 * keeps reading it for `rotateWaitMs` (a writer may still append before it reopens), then
 * switches to the new file from 0. Truncation/copytruncate (size below the read position) or a
 * rewrite (the first bytes changed) restarts at 0. A partial last line is never handed out; one
 * left at the end of a rotated-away file is discarded (and logged), since no newline can follow.
 */
export class FileFollower {
  private current: OpenFile | null = null;
  private readonly dir: string;
  private readonly base: string;
  private dirIno: bigint | null = null;
  private watcher: FSWatcher | null = null;
  private reconcileTimer: NodeJS.Timeout | null = null;
  private switchTimer: NodeJS.Timeout | null = null;
  private switchDue = false;
  private goneLogged = false;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  private readonly buf: Buffer;

  /** Set once start() has opened the initial file; pumps before that are dropped. */
  private opened = false;

  constructor(private readonly o: FollowerOptions) {
    this.dir = dirname(o.path);
    this.base = basename(o.path);
    this.buf = Buffer.allocUnsafe(o.readChunkBytes);
  }

  /** Device, inode and size of the file being read (null when none is open). */
  async currentFile(): Promise<{ dev: string; ino: string; size: number } | null> {
    const cur = this.current;
    if (!cur) return null;
    try {
      const st = await cur.fd.stat();
      return { dev: String(cur.dev), ino: String(cur.ino), size: st.size };
    } catch {
      return null;
    }
  }

  /** Opens the file where the checkpoint (or the start rule) says, then starts watching. */
  async start(checkpoint: Checkpoint | null): Promise<void> {
    if (this.stopped) return;
    this.dirIno = (await stat(this.dir, { bigint: true })).ino;
    if (this.stopped) return;
    // Watch before the first read: anything written after this point produces an event.
    this.watcher = watch(this.dir, { persistent: true }, (_type, filename) => {
      if (
        filename === null ||
        filename === this.base ||
        this.switchTimer ||
        this.current?.name !== this.o.path
      ) {
        this.requestPump();
      }
    });
    this.watcher.on('error', (err) => this.fatal(new Error(`watcher of ${this.dir} failed: ${err.message}`)));
    this.watcher.on('close', () => {
      if (!this.stopped) this.fatal(new Error(`watcher of ${this.dir} closed unexpectedly`));
    });
    this.reconcileTimer = setInterval(() => void this.reconcile(), this.o.reconcileMs);
    this.reconcileTimer.unref();
    await this.openInitial(checkpoint);
    // stop() may have run while the file was being opened: it could not close what was not open yet.
    if (this.stopped) {
      await this.current?.fd.close().catch(() => undefined);
      this.current = null;
      return;
    }
    this.opened = true;
    this.requestPump();
  }

  /** Stops watching and waits for the read in progress; handles are closed. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.reconcileTimer) clearInterval(this.reconcileTimer);
    if (this.switchTimer) clearTimeout(this.switchTimer);
    this.watcher?.close();
    await this.running;
    await this.current?.fd.close().catch(() => undefined);
    this.current = null;
  }

  /** Reads whatever is new; concurrent requests coalesce into one more pass. */
  requestPump(): Promise<void> {
    // Until start() has opened the file where the checkpoint says, a pump would see no open file
    // and read it from 0 ("file appeared"), re-emitting everything already committed. start()
    // pumps once itself after opening, so events that arrive before then lose nothing.
    if (this.stopped || !this.opened) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.pumpOnce();
        } while (this.again && !this.stopped);
      } catch (err) {
        if (!this.stopped) this.fatal(err as Error);
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }

  private fatal(err: Error): void {
    if (this.stopped) return;
    this.stopped = true;
    this.o.onFatal(err);
  }

  private async reconcile(): Promise<void> {
    try {
      const st = await stat(this.dir, { bigint: true });
      if (st.ino !== this.dirIno) throw new Error(`watched directory ${this.dir} was replaced`);
    } catch (err) {
      this.fatal(isNotFound(err) ? new Error(`watched directory ${this.dir} disappeared`) : (err as Error));
      return;
    }
    await this.requestPump();
  }

  private async openFile(name: string, offset: number, why: string): Promise<OpenFile> {
    const fd = await open(name, 'r');
    try {
      const st = await fd.stat({ bigint: true });
      const head = await readHead(fd, FINGERPRINT_BYTES);
      const file: OpenFile = {
        fd,
        name,
        dev: st.dev,
        ino: st.ino,
        readPos: offset,
        head,
        fp: fingerprintOf(head),
        splitter: new LineSplitter(this.o.lineLimitBytes),
      };
      this.o.onEvent?.({ kind: 'opened', path: name, offset, why });
      return file;
    } catch (err) {
      await fd.close().catch(() => undefined);
      throw err;
    }
  }

  private async statPath(): Promise<{ dev: bigint; ino: bigint; size: bigint } | null> {
    try {
      return await stat(this.o.path, { bigint: true });
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /** The start rule: resume the checkpoint's file (even if renamed since), else a new file from 0, else the end. */
  private async openInitial(cp: Checkpoint | null): Promise<void> {
    const st = await this.statPath();
    if (cp) {
      if (st && String(st.dev) === cp.dev && String(st.ino) === cp.ino) {
        const file = await this.openFile(this.o.path, 0, 'checkpoint');
        if (await this.matches(file, cp)) {
          file.readPos = cp.offset;
          this.o.onEvent?.({
            kind: 'opened',
            path: this.o.path,
            offset: cp.offset,
            why: 'resumed from checkpoint',
          });
        } else {
          this.o.logger.warn(
            { path: this.o.path, ino: cp.ino },
            'same inode but different content or shorter than the checkpoint: a new file, reading from 0',
          );
        }
        this.current = file;
        return;
      }
      // The file we were reading was rotated while we were down: finish it first.
      const sibling = await this.findByIdentity(cp);
      if (sibling) {
        this.o.logger.info(
          { path: this.o.path, rotatedTo: sibling },
          'checkpointed file was rotated while stopped: draining it first',
        );
        const file = await this.openFile(sibling, 0, 'rotated while stopped');
        if (await this.matches(file, cp)) {
          file.readPos = cp.offset;
          this.current = file;
          return;
        }
        await file.fd.close();
      }
      if (st) this.current = await this.openFile(this.o.path, 0, 'new file since checkpoint');
      return;
    }
    if (!st) return; // appears later: read from 0
    const file = await this.openFile(this.o.path, 0, this.o.fromStart ? 'from start' : 'from end');
    if (!this.o.fromStart) await this.seekToLastLineStart(file, Number(st.size));
    this.current = file;
  }

  /** Content check of a checkpoint against an open file: long enough, same first bytes. */
  private async matches(file: OpenFile, cp: Checkpoint): Promise<boolean> {
    const st = await file.fd.stat();
    if (st.size < cp.offset || file.head.length < cp.fp_len) return false;
    return fingerprintOf(file.head.subarray(0, cp.fp_len)) === cp.fp;
  }

  /** Starting at the end must not start inside a line: back up to just after the last newline. */
  private async seekToLastLineStart(file: OpenFile, size: number): Promise<void> {
    const window = Math.min(size, 64 * 1024);
    const tail = Buffer.alloc(window);
    const { bytesRead } = await file.fd.read(tail, 0, window, size - window);
    const nl = tail.subarray(0, bytesRead).lastIndexOf(0x0a);
    if (nl >= 0) {
      file.readPos = size - window + nl + 1;
    } else if (window === size) {
      file.readPos = 0;
    } else {
      // Inside a line longer than the window: skip to its end rather than emit half of it.
      file.readPos = size;
      file.splitter.skipToNextLine();
    }
  }

  private async findByIdentity(cp: Checkpoint): Promise<string | null> {
    for (const name of await readdir(this.dir)) {
      const full = join(this.dir, name);
      try {
        const st = await stat(full, { bigint: true });
        if (st.isFile() && String(st.dev) === cp.dev && String(st.ino) === cp.ino) return full;
      } catch {
        // Vanished between readdir and stat: not it.
      }
    }
    return null;
  }

  identityOf(file: OpenFile): FileIdentity {
    return { dev: String(file.dev), ino: String(file.ino), fp: file.fp, fp_len: file.head.length };
  }

  private async pumpOnce(): Promise<void> {
    this.o.logger.trace({ path: this.o.path, readPos: this.current?.readPos }, 'pump');
    if (!this.current) {
      if (!(await this.statPath())) return;
      this.current = await this.openFile(this.o.path, 0, 'file appeared');
      this.goneLogged = false;
      await this.emit(this.current, [], 0);
    }
    const cur = this.current;
    await this.checkRewritten(cur);
    await this.drain(cur);
    await this.checkRotated(cur);
  }

  /** Truncation (size below what we read) or a rewrite (first bytes changed): start over at 0. */
  private async checkRewritten(cur: OpenFile): Promise<void> {
    const st = await cur.fd.stat();
    let why: string | null = null;
    if (st.size < cur.readPos) why = 'truncated';
    else if (cur.head.length) {
      const head = await readHead(cur.fd, cur.head.length);
      if (!head.equals(cur.head)) why = 'rewritten (first bytes changed)';
    }
    if (cur.head.length < FINGERPRINT_BYTES && st.size > cur.head.length && !why) {
      cur.head = await readHead(cur.fd, FINGERPRINT_BYTES);
      cur.fp = fingerprintOf(cur.head);
    }
    if (!why) return;
    this.o.logger.warn(
      { path: cur.name, readPos: cur.readPos, size: st.size, why },
      'file truncated: reading it again from 0',
    );
    this.o.onEvent?.({ kind: 'truncated', path: cur.name, atOffset: cur.readPos });
    cur.readPos = 0;
    cur.splitter.reset();
    cur.head = await readHead(cur.fd, FINGERPRINT_BYTES);
    cur.fp = fingerprintOf(cur.head);
    await this.emit(cur, [], 0);
  }

  private async drain(cur: OpenFile): Promise<void> {
    const buf = this.buf;
    while (!this.stopped) {
      const { bytesRead } = await cur.fd.read(buf, 0, buf.length, cur.readPos);
      if (!bytesRead) return;
      cur.readPos += bytesRead;
      if (cur.head.length < FINGERPRINT_BYTES) {
        cur.head = await readHead(cur.fd, FINGERPRINT_BYTES);
        cur.fp = fingerprintOf(cur.head);
      }
      const { lines, dropped } = cur.splitter.push(buf.subarray(0, bytesRead));
      if (lines.length || dropped) await this.emit(cur, lines, dropped);
      // A short read means we reached the end; the next append brings an inotify event.
      if (bytesRead < buf.length) return;
    }
  }

  private emit(cur: OpenFile, lines: string[], dropped: number): Promise<void> {
    return this.o.sink({
      lines,
      dropped,
      identity: this.identityOf(cur),
      offset: cur.readPos - cur.splitter.pending,
      pendingBytes: cur.splitter.pending,
    });
  }

  /** After draining: does the path still name the file we read? */
  private async checkRotated(cur: OpenFile): Promise<void> {
    const st = await this.statPath();
    if (st && st.dev === cur.dev && st.ino === cur.ino) {
      this.goneLogged = false;
      if (this.switchTimer) clearTimeout(this.switchTimer);
      this.switchTimer = null;
      this.switchDue = false;
      return;
    }
    if (!st) {
      if (!this.goneLogged) {
        this.goneLogged = true;
        this.o.logger.info(
          { path: this.o.path },
          'file is gone (deleted or renamed); waiting for it to reappear',
        );
        this.o.onEvent?.({ kind: 'gone', path: this.o.path });
      }
      return;
    }
    // Another file now has the name: give writers of the old one rotateWaitMs to finish, then switch.
    this.o.logger.debug(
      { path: this.o.path, switchDue: this.switchDue, timer: Boolean(this.switchTimer) },
      'path names another file',
    );
    if (!this.switchDue && this.o.rotateWaitMs > 0) {
      if (!this.switchTimer) {
        this.switchTimer = setTimeout(() => {
          this.switchTimer = null;
          this.switchDue = true;
          void this.requestPump();
        }, this.o.rotateWaitMs);
      }
      return;
    }
    this.switchDue = false;
    await this.drain(cur);
    if (this.stopped) return;
    const partial = cur.splitter.pending;
    if (partial) {
      this.o.logger.warn(
        { path: cur.name, bytes: partial },
        'rotated-away file ends with an incomplete line: discarded (no newline can follow)',
      );
    }
    const next = await this.openFile(this.o.path, 0, 'rotation');
    await cur.fd
      .close()
      .catch((err: Error) => this.o.logger.error({ err, path: cur.name }, 'closing the rotated file failed'));
    this.current = next;
    this.goneLogged = false;
    this.o.onEvent?.({ kind: 'rotated', path: this.o.path, from: cur.name, discardedPartialBytes: partial });
    await this.emit(next, [], 0);
    this.again = true;
  }
}
