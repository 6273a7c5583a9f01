import { constants as fsc, FSWatcher, watch } from 'node:fs';
import { FileHandle, lstat, open, readdir, readlink, stat } from 'node:fs/promises';
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
  | { kind: 'gone'; path: string }
  | { kind: 'refused'; path: string; what: string; reason: string }
  | { kind: 'waiting-for-directory'; path: string; dir: string };

export interface FollowerOptions {
  path: string;
  fromStart: boolean;
  lineLimitBytes: number;
  readChunkBytes: number;
  rotateWaitMs: number;
  reconcileMs: number;
  /** Follow a symbolic link at the path (off: a link is refused, whenever it appears). */
  followSymlinks: boolean;
  /** How often a missing watched directory is looked for (it cannot be watched before it exists). */
  dirPollMs: number;
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

/** Something at the path that is not followed (a symlink without --follow-symlinks, a FIFO, a directory...). */
export class RefusedPathError extends Error {
  constructor(
    readonly path: string,
    /** What is there: `symlink`, `fifo`, `socket`, `directory`, `device`. */
    readonly what: string,
    readonly reason: string,
  ) {
    super(`${path}: ${reason}`);
    this.name = 'RefusedPathError';
  }
}

type Stats = Awaited<ReturnType<typeof lstat>>;

function kindOf(st: Stats): string {
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isDirectory()) return 'directory';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'device';
  return 'file';
}

/**
 * O_NONBLOCK: opening a FIFO for reading would otherwise block a libuv thread until a writer
 * appears (forever), and that thread also holds up process exit. It changes nothing for the
 * regular files we keep. O_NOFOLLOW closes the race between the lstat and the open.
 */
function openFlags(followSymlinks: boolean): number {
  return fsc.O_RDONLY | fsc.O_NONBLOCK | (followSymlinks ? 0 : fsc.O_NOFOLLOW);
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
  /** What was last refused at the path (dev:ino:kind), so a warning is logged once per thing. */
  private refusedLogged: string | null = null;
  private dirWait: { timer: NodeJS.Timeout; wake: () => void } | null = null;
  private dirMissingLogged = false;
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

  /** True while start() waits for the watched directory to be created. */
  get waitingForDirectory(): boolean {
    return this.dirMissingLogged && this.dirIno === null;
  }

  /**
   * Opens the file where the checkpoint (or the start rule) says, then starts watching. A watched
   * directory that does not exist yet is waited for (polled: inotify needs it to exist), like
   * collectors do, so a supervisor does not crash-loop the service while the producer is not up.
   */
  async start(checkpoint: Checkpoint | null): Promise<void> {
    if (this.stopped) return;
    const dirSt = await this.waitForDirectory();
    if (!dirSt || this.stopped) return;
    this.dirIno = dirSt.ino;
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

  private async waitForDirectory(): Promise<{ ino: bigint } | null> {
    for (;;) {
      try {
        const st = await stat(this.dir, { bigint: true });
        if (!st.isDirectory())
          throw new Error(`${this.dir} (the directory of ${this.o.path}) is not a directory`);
        if (this.dirMissingLogged) this.o.logger.info({ dir: this.dir }, 'watched directory appeared');
        return st;
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      if (!this.dirMissingLogged) {
        this.dirMissingLogged = true;
        this.o.logger.warn(
          { dir: this.dir, path: this.o.path, pollMs: this.o.dirPollMs },
          'watched directory does not exist yet: waiting for it (not ready until then)',
        );
        this.o.onEvent?.({ kind: 'waiting-for-directory', path: this.o.path, dir: this.dir });
      }
      await new Promise<void>((wake) => {
        this.dirWait = { timer: setTimeout(wake, this.o.dirPollMs), wake };
      });
      this.dirWait = null;
      if (this.stopped) return null;
    }
  }

  /** Stops watching and waits for the read in progress; handles are closed. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.dirWait) {
      clearTimeout(this.dirWait.timer);
      this.dirWait.wake();
    }
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

  /**
   * Opens `name` only if it is a regular file (a symlink only with followSymlinks), never
   * blocking: lstat first so nothing else is even opened, then a non-blocking open and an fstat of
   * what was actually opened (the path may have been swapped in between). Throws RefusedPathError
   * for anything else, and ENOENT when it is gone.
   */
  private async openFile(name: string, offset: number, why: string): Promise<OpenFile> {
    const lst = await lstat(name, { bigint: true });
    if (lst.isSymbolicLink() && !this.o.followSymlinks) {
      const target = await readlink(name).catch(() => '?');
      throw new RefusedPathError(
        name,
        'symlink',
        `is a symbolic link (to ${target}): not followed (start with --follow-symlinks or TAILER_FOLLOW_SYMLINKS=1 to follow links)`,
      );
    }
    if (!lst.isSymbolicLink() && !lst.isFile()) {
      throw new RefusedPathError(name, kindOf(lst), `is a ${kindOf(lst)}, not a regular file: not read`);
    }
    let fd: FileHandle;
    try {
      fd = await open(name, openFlags(this.o.followSymlinks));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // ELOOP: replaced by a symlink since the lstat; ENXIO: a socket (or a FIFO opened for writing).
      if (code === 'ELOOP')
        throw new RefusedPathError(name, 'symlink', 'became a symbolic link while opening: not followed');
      if (code === 'ENXIO') throw new RefusedPathError(name, 'socket', 'is not a regular file: not read');
      throw err;
    }
    try {
      const st = await fd.stat({ bigint: true });
      if (!st.isFile()) {
        throw new RefusedPathError(name, kindOf(st), `is a ${kindOf(st)}, not a regular file: not read`);
      }
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

  /**
   * openFile for the watched path, where something refused or vanished is not an error: it is
   * logged once and the follower keeps watching for a regular file to come back (null).
   */
  private async openPath(offset: number, why: string): Promise<OpenFile | null> {
    try {
      const file = await this.openFile(this.o.path, offset, why);
      this.refusedLogged = null;
      return file;
    } catch (err) {
      if (isNotFound(err)) return null;
      if (!(err instanceof RefusedPathError)) throw err;
      const st = await lstat(this.o.path, { bigint: true }).catch(() => null);
      const key = `${st?.dev}:${st?.ino}:${err.what}`;
      if (this.refusedLogged !== key) {
        this.refusedLogged = key;
        this.o.logger.warn(
          { path: this.o.path, what: err.what, reason: err.reason },
          `refusing ${this.o.path}: ${err.reason}; waiting for a regular file there`,
        );
        this.o.onEvent?.({ kind: 'refused', path: this.o.path, what: err.what, reason: err.reason });
      }
      return null;
    }
  }

  /** Identity of what the path names: lstat unless links are followed (a link is then its target). */
  private async statPath(): Promise<{ dev: bigint; ino: bigint; size: bigint } | null> {
    try {
      return this.o.followSymlinks
        ? await stat(this.o.path, { bigint: true })
        : await lstat(this.o.path, { bigint: true });
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
        const file = await this.openPath(0, 'checkpoint');
        if (!file) return;
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
        const file = await this.openFile(sibling, 0, 'rotated while stopped').catch((err: unknown) => {
          if (isNotFound(err) || err instanceof RefusedPathError) return null;
          throw err;
        });
        if (file && (await this.matches(file, cp))) {
          file.readPos = cp.offset;
          this.current = file;
          return;
        }
        await file?.fd.close();
      }
      if (st) this.current = await this.openPath(0, 'new file since checkpoint');
      return;
    }
    if (!st) return; // appears later: read from 0
    // Its directory did not exist at start: whatever is in it now was written after we started.
    const fromStart = this.o.fromStart || this.dirMissingLogged;
    const file = await this.openPath(0, fromStart ? 'from start' : 'from end');
    if (!file) return;
    if (!fromStart) await this.seekToLastLineStart(file, Number(st.size));
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
        const st = await lstat(full, { bigint: true });
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
      this.current = await this.openPath(0, 'file appeared');
      if (!this.current) return;
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
    const next = await this.openPath(0, 'rotation');
    await cur.fd
      .close()
      .catch((err: Error) => this.o.logger.error({ err, path: cur.name }, 'closing the rotated file failed'));
    // Refused (a symlink, a FIFO...): nothing is open until a regular file is back at the path.
    this.current = next;
    this.goneLogged = false;
    this.o.onEvent?.({ kind: 'rotated', path: this.o.path, from: cur.name, discardedPartialBytes: partial });
    if (!next) return;
    await this.emit(next, [], 0);
    this.again = true;
  }
}
