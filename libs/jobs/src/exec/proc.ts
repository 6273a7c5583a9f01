import { readFileSync } from 'node:fs';
import { KillFailedError } from '@coordbus/envelope';

/**
 * The start time of a process (field 22 of /proc/<pid>/stat, clock ticks since boot), or null
 * where /proc is missing. Recorded beside a pid so a later probe can tell the same process from
 * an unrelated one that reused its pid.
 */
export function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may contain spaces and parentheses: count fields after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19] ?? null;
  } catch {
    return null;
  }
}

function signalOk(target: number): boolean {
  try {
    process.kill(target, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True when the process `pid` exists and, if a start time was recorded, is the same process. */
export function processAlive(pid: number, startTime: string | null): boolean {
  if (!signalOk(pid)) return false;
  if (startTime === null) return true;
  const now = processStartTime(pid);
  return now === null || now === startTime;
}

/**
 * True when the process group `pgid` still has members and its leader was not replaced by an
 * unrelated process: a group whose leader exited but whose children live on still counts.
 */
export function groupAlive(pgid: number, leaderStart: string | null): boolean {
  if (!signalOk(-pgid)) return false;
  if (leaderStart === null) return true;
  const now = processStartTime(pgid);
  // Leader gone but group members remain: ours (a new process cannot take a pid that is a live pgid).
  if (now === null) return true;
  return now === leaderStart;
}

/** Signals a whole process group; a group already gone is not an error. */
export function killGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') return false;
    throw new KillFailedError(`could not send ${signal} to process group ${pgid}: ${code}`, {
      pgid,
      signal,
      code,
    });
  }
}
