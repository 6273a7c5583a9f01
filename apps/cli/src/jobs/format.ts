import type { JobLogRecord } from '@coordbus/envelope';
import { formatDuration } from '@coordbus/config';
import type { JobMeta } from '@coordbus/jobs';

/** A plain aligned table (no colours: the output is often piped). */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

export function jobsTable(jobs: JobMeta[], nowMs = Date.now()): string {
  return table(
    ['ID', 'NAME', 'HOOK', 'STATUS', 'EXIT', 'CREATED', 'DURATION', 'WORKTREE', 'REASON'],
    jobs.map((j) => [
      j.id,
      j.name,
      j.hook,
      j.status,
      j.exit_code === null ? (j.signal ?? '-') : String(j.exit_code),
      j.created_at.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
      j.started_at
        ? formatDuration((j.finished_at ? Date.parse(j.finished_at) : nowMs) - Date.parse(j.started_at))
        : '-',
      j.worktree ?? '-',
      // Why it ended as it did when that is not its exit code (refused, cancelled, crashed).
      j.reason ?? '',
    ]),
  );
}

/** One record for people: output lines as they were, status records marked. */
export function renderRecord(rec: JobLogRecord): { stream: 'stdout' | 'stderr'; text: string } {
  if (rec.kind === 'stdout') return { stream: 'stdout', text: `${rec.line ?? ''}\n` };
  if (rec.kind === 'stderr') return { stream: 'stderr', text: `${rec.line ?? ''}\n` };
  const bits = [`[${rec.seq}] ${rec.status}`];
  if (rec.exit_code !== undefined && rec.exit_code !== null) bits.push(`exit ${rec.exit_code}`);
  if (rec.signal) bits.push(rec.signal);
  if (rec.reason) bits.push(`(${rec.reason})`);
  return { stream: 'stderr', text: `${bits.join(' ')}\n` };
}
