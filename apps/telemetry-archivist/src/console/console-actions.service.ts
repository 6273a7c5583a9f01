import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import type { Queue } from 'bullmq';
import type Redis from 'ioredis';
import { CoordStore } from '@coordbus/coord';
import { CoordbusError, EnvelopeCodec, NotFoundError } from '@coordbus/envelope';
import { BullJobData, JobStore, cancelJobs, createJobQueue } from '@coordbus/jobs';
import { DeadLetters } from '@coordbus/redis-streams';
import { REDIS } from '@coordbus/runtime';
import { ARCHIVIST_CONFIG } from '../tokens';
import type { ArchivistConfig } from '../config';
import { ConsoleRedis } from './console-redis';

/** The session id the console's messages and orders come from. */
export const OPERATOR_SESSION = 'operator';
const AUDIT_MAXLEN = 100_000;

export interface Actor {
  /** Who acted, as far as the service can tell: `operator@<remote address>`. */
  actor: string;
}

export interface ActionResult {
  ok: true;
  audit_id: string;
  [k: string]: unknown;
}

/**
 * The console's actions. Each goes through the existing operation of its domain (CoordStore,
 * cancelJobs, one Lua command for the re-drive) and is recorded on the audit stream with who,
 * what, when, why and the outcome — including refusals — and never a token or a message body.
 */
@Injectable()
export class ConsoleActionsService implements OnApplicationShutdown {
  private readonly coord: CoordStore;
  private readonly jobs: JobStore;
  private queue: Queue<BullJobData> | undefined;

  constructor(
    @Inject(REDIS) private readonly ioredis: Redis,
    private readonly redis: ConsoleRedis,
    @Inject(ARCHIVIST_CONFIG) private readonly config: ArchivistConfig,
  ) {
    this.coord = new CoordStore(ioredis, { keyspace: redis.keyspace });
    this.jobs = new JobStore(ioredis, redis.keyspace, new EnvelopeCodec({ maxBytes: config.maxEntryBytes }));
  }

  async onApplicationShutdown(): Promise<void> {
    await this.queue?.close().catch(() => undefined);
  }

  private jobQueue = (): Queue<BullJobData> => {
    this.queue ??= createJobQueue(this.ioredis, this.redis.keyspace);
    return this.queue;
  };

  /** Runs an action and audits it, success or failure; a failure is rethrown after auditing. */
  private async audited(
    who: Actor,
    action: string,
    target: string,
    reason: string | null,
    run: () => Promise<Record<string, unknown>>,
  ): Promise<ActionResult> {
    let result: Record<string, unknown>;
    try {
      result = await run();
    } catch (err) {
      await this.audit(who, action, target, reason, 'refused', (err as Error).message).catch(() => undefined);
      throw err;
    }
    const audit_id = await this.audit(who, action, target, reason, 'ok', null);
    return { ok: true, audit_id, ...result };
  }

  private audit(
    who: Actor,
    action: string,
    target: string,
    reason: string | null,
    result: 'ok' | 'refused',
    error: string | null,
  ): Promise<string> {
    const data = { ts: new Date().toISOString(), actor: who.actor, action, target, reason, result, error };
    return this.redis.append(this.redis.keyspace.auditStream, AUDIT_MAXLEN, [
      'type',
      'console-audit',
      'v',
      '1',
      'data',
      JSON.stringify(data),
    ]);
  }

  send(who: Actor, to: string, subject: string, body: string): Promise<ActionResult> {
    return this.audited(who, 'message.send', to, subject || null, async () => {
      const { message } = await this.coord.send(OPERATOR_SESSION, to, body, { kind: 'operator', subject });
      return { msg_id: message.msg_id };
    });
  }

  dispatch(who: Actor, assignee: string, ticket: string): Promise<ActionResult> {
    return this.audited(who, 'order.dispatch', assignee, ticket, async () => {
      const { order } = await this.coord.dispatch(OPERATOR_SESSION, assignee, ticket);
      return { order_id: order.order_id };
    });
  }

  forceRelease(
    who: Actor,
    resource: string,
    owner: string | undefined,
    reason: string,
  ): Promise<ActionResult> {
    return this.audited(who, 'lock.force-release', resource, reason, async () => {
      const r = await this.coord.forceRelease(resource, owner);
      return { owner: r.owner };
    });
  }

  cancelJob(who: Actor, jobId: string, reason: string | null): Promise<ActionResult> {
    return this.audited(who, 'job.cancel', jobId, reason, async () => {
      const res = await cancelJobs(this.jobs, this.jobQueue, { jobId, filter: {}, wait: false });
      return { cancelled: res.cancelled.length, pending: res.pending.length, finished: res.finished.length };
    });
  }

  /** Appends a dead letter's original fields back to its source stream, once (DeadLetters.replay). */
  redrive(who: Actor, source: string, entryId: string, reason: string | null): Promise<ActionResult> {
    const deadStream = this.redis.keyspace.deadLetter(source);
    return this.audited(who, 'dead.redrive', `${deadStream}/${entryId}`, reason, async () => {
      const dead = new DeadLetters(this.ioredis, this.redis.keyspace);
      const letter = await dead.get(entryId, dead.deadStreamOf(deadStream));
      if (!letter) throw new NotFoundError(`no dead letter ${entryId} on ${deadStream}`);
      const r = await dead.replay(letter);
      if (r.status === 'missing')
        throw new NotFoundError(`dead letter ${entryId} was re-driven or dropped already`);
      return { new_id: r.new_id, stream: letter.source_stream };
    });
  }
}

/** Maps a domain error to the HTTP status the console shows. */
export function httpStatusOf(err: unknown): number {
  if (!(err instanceof CoordbusError)) return 500;
  switch (err.code) {
    case 'NotFound':
      return 404;
    case 'Conflict':
    case 'NoMatch':
      return 409;
    case 'Invalid':
      return 400;
    case 'Unavailable':
      return 503;
    default:
      return 500;
  }
}
