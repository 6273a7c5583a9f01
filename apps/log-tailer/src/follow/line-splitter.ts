const NEWLINE = 0x0a;

/** Lines completed by one chunk. */
export interface SplitResult {
  lines: string[];
  /** Lines over the limit, dropped whole (counted, never emitted in part). */
  dropped: number;
}

/**
 * Splits a byte stream into complete lines with bounded memory.
 *
 * Bytes after the last newline are held until their newline arrives, so a partial line is never
 * emitted. A line longer than `limitBytes` is dropped and counted: once the held part passes the
 * limit it is freed and the rest of that line is skipped up to its newline, so memory stays at
 * most `limitBytes` plus one chunk whatever the input. Decoding happens once per chunk (a newline
 * byte never occurs inside a UTF-8 sequence, so splitting the decoded text is exact).
 */
export class LineSplitter {
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** Bytes since the last newline, including held or skipped ones: `offset - pending` is a line start. */
  private pendingBytes = 0;
  private skipping = false;

  constructor(readonly limitBytes: number) {
    if (!Number.isInteger(limitBytes) || limitBytes < 1)
      throw new RangeError(`line limit must be a positive integer`);
  }

  /** Bytes read past the last complete line (a checkpoint must stop before them). */
  get pending(): number {
    return this.pendingBytes;
  }

  /** True while the current (incomplete) line is already known to be over the limit. */
  get overLimit(): boolean {
    return this.skipping;
  }

  /** Forgets the partial line (after truncation or a rotation nobody completed it across). */
  reset(): void {
    this.held = [];
    this.heldBytes = 0;
    this.pendingBytes = 0;
    this.skipping = false;
  }

  /** Starts in "skip to the next newline" mode (a start offset inside an over-limit line). */
  skipToNextLine(): void {
    this.reset();
    this.skipping = true;
  }

  push(chunk: Buffer): SplitResult {
    const lines: string[] = [];
    let dropped = 0;
    const lastNl = chunk.lastIndexOf(NEWLINE);
    if (lastNl < 0) {
      this.hold(chunk);
      return { lines, dropped };
    }
    let start = 0;
    const firstNl = chunk.indexOf(NEWLINE);
    // Finish the line that began in earlier chunks.
    if (this.skipping || this.heldBytes > 0) {
      if (this.skipping || this.heldBytes + firstNl > this.limitBytes) {
        dropped++;
      } else {
        this.held.push(chunk.subarray(0, firstNl));
        lines.push(stripCr(Buffer.concat(this.held).toString('utf8')));
      }
      start = firstNl + 1;
    }
    this.held = [];
    this.heldBytes = 0;
    this.skipping = false;
    if (start <= lastNl) {
      const text = chunk.toString('utf8', start, lastNl);
      const parts = text.split('\n');
      for (const part of parts) {
        // A UTF-16 length over the limit is over it in bytes too; only borderline lines need counting.
        if (
          part.length > this.limitBytes ||
          (part.length * 3 > this.limitBytes && Buffer.byteLength(part) > this.limitBytes)
        ) {
          dropped++;
        } else {
          lines.push(stripCr(part));
        }
      }
    }
    this.pendingBytes = 0;
    this.hold(chunk.subarray(lastNl + 1));
    return { lines, dropped };
  }

  private hold(rest: Buffer): void {
    if (!rest.length) return;
    this.pendingBytes += rest.length;
    if (this.skipping) return;
    if (this.heldBytes + rest.length > this.limitBytes) {
      this.held = [];
      this.heldBytes = 0;
      this.skipping = true;
      return;
    }
    // Copy: the caller reuses its read buffer.
    this.held.push(Buffer.from(rest));
    this.heldBytes += rest.length;
  }
}

function stripCr(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}
