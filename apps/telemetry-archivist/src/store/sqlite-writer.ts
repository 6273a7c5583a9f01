import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

/** What the writer thread needs to open the archive and insert into it. */
export interface SqliteWriterSetup {
  file: string;
  /** Applied to the thread's own connection (per-connection settings: synchronous, busy_timeout). */
  pragmas: string[];
  /** The row INSERT, `columns` parameters, archived_ms last. */
  insertSql: string;
  /** The text-index INSERT: (rowid, words). */
  wordsSql: string;
  columns: number;
}

/** SQLite refused the write: its result code, and the row's position when a row's statement failed. */
export class SqliteWriteFailure extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly index: number | undefined,
  ) {
    super(message);
  }
}

type Reply =
  | { ready: true }
  | { id: number; inserted: number }
  | { id: number; error: { message: string; code?: string; index?: number } };

const WORKER_FILE = join(__dirname, 'sqlite-writer.worker.cjs');

/**
 * Runs the archive's inserts on a worker thread with its own connection to the file, so a batch
 * commits while the service thread reads and decodes the next one (better-sqlite3 blocks its
 * thread for the whole transaction). Batches are committed one at a time, in the order given.
 *
 * `insert` resolves after the commit, like the synchronous path did. A thread that dies (or
 * cannot open the file) fails every batch it held with a plain Error, and the next insert starts
 * a new thread: the caller treats that as the database being unavailable and retries.
 */
export class SqliteWriter {
  private worker?: Worker;
  private starting?: Promise<Worker>;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(n: number): void; reject(e: Error): void }>();

  constructor(private readonly setup: SqliteWriterSetup) {}

  /** Starts the thread now, so a file it cannot open fails the store's open() rather than the first batch. */
  async start(): Promise<void> {
    await this.thread();
  }

  /**
   * Inserts rows given as `columns` values each (the INSERT's parameters without archived_ms,
   * then the search words or null) in one transaction; resolves to the number inserted.
   * Rejects with SqliteWriteFailure when SQLite refused it, with an Error when the thread failed.
   */
  async insert(values: unknown[], archivedMs: number): Promise<number> {
    const worker = await this.thread();
    const id = this.nextId++;
    return new Promise<number>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // Held open only while a batch is in flight: an idle writer never keeps the process alive.
      if (this.pending.size === 1) worker.ref();
      worker.postMessage({ id, values, archivedMs });
    });
  }

  /** Lets the thread finish what it was given, closes its connection and waits for it to exit. */
  async close(): Promise<void> {
    const worker = this.worker ?? (await this.starting?.catch(() => undefined));
    this.worker = undefined;
    this.starting = undefined;
    if (!worker) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.ref();
    worker.postMessage({ op: 'close' });
    await exited;
  }

  private thread(): Promise<Worker> {
    if (this.worker) return Promise.resolve(this.worker);
    this.starting ??= this.spawn().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private spawn(): Promise<Worker> {
    return new Promise<Worker>((resolve, reject) => {
      const worker = new Worker(WORKER_FILE, { workerData: this.setup });
      let ready = false;
      const fail = (err: Error) => {
        if (this.worker === worker) this.worker = undefined;
        if (!ready) reject(err);
        const waiting = [...this.pending.values()];
        this.pending.clear();
        for (const p of waiting) p.reject(err);
      };
      worker.on('message', (reply: Reply) => {
        if ('ready' in reply) {
          ready = true;
          this.worker = worker;
          if (!this.pending.size) worker.unref();
          resolve(worker);
          return;
        }
        const p = this.pending.get(reply.id);
        if (!p) return;
        this.pending.delete(reply.id);
        if (!this.pending.size) worker.unref();
        if ('error' in reply) {
          const { message, code, index } = reply.error;
          p.reject(new SqliteWriteFailure(message, code, index));
        } else {
          p.resolve(reply.inserted);
        }
      });
      worker.on('error', (err) => fail(err));
      worker.on('exit', (code) => fail(new Error(`the SQLite writer thread exited (code ${code})`)));
    });
  }
}
