import { readFileSync } from 'node:fs';

/**
 * Whether `pid` is running: a zombie has ended and only waits to be reaped (an orphan's by init,
 * whenever init gets to it), so it does not count.
 */
export function processRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}
