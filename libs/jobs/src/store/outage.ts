import { isRetryable } from '@coordbus/envelope';

/** How long a job's own Redis write waits out an outage (Redis full, restarting, unreachable) before giving up. */
export const JOB_OUTAGE_WAIT_MS = 300_000;

/** The pause before the next try after `attempt` failed ones: 100 ms doubling to 2 s. */
export const outagePauseMs = (attempt: number): number => Math.min(100 * 2 ** Math.min(attempt - 1, 5), 2000);

export interface OutageWaitOptions {
  /** Give up (throw the outage) after this long; default JOB_OUTAGE_WAIT_MS. */
  maxWaitMs?: number;
  /** Told of each outage met, before the wait. */
  onRetry?: (err: Error, attempt: number) => void;
}

/**
 * Runs a Redis step of a job again while it fails with an outage (`isRetryable`: OOM, LOADING, a
 * lost connection...). Such a failure is the dependency's, not the job's: giving up would leave
 * the job without its claim, its log lines or its terminal record, i.e. stuck or lost. Any other
 * error is thrown at once. The step must be safe to repeat (a refused script wrote nothing).
 */
export async function waitOutOutage<T>(fn: () => Promise<T>, opts: OutageWaitOptions = {}): Promise<T> {
  const deadline = Date.now() + (opts.maxWaitMs ?? JOB_OUTAGE_WAIT_MS);
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isRetryable(err) || Date.now() >= deadline) throw err;
      opts.onRetry?.(err as Error, attempt);
      await new Promise((r) => setTimeout(r, outagePauseMs(attempt)));
    }
  }
}
