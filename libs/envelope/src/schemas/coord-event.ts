import { Type } from 'class-transformer';
import { IsIn, IsObject, IsOptional, IsString, Matches, MinLength, ValidateIf } from 'class-validator';
import { ULID_PATTERN } from '../ulid';
import { IsJsonValue, IsNullableString, IsTimestamp } from './common';

export const TX_KINDS = [
  'session.register',
  'session.heartbeat',
  'session.dereg',
  'lock.acquire',
  'lock.release',
  'inbox.deliver',
  'dispatch.issue',
  'dispatch.ack',
  'dispatch.done',
  'dispatch.reject',
] as const;
export type TxKind = (typeof TX_KINDS)[number];

export class SessionRegisterPayload {
  @IsString() role!: string;
  @IsString() task!: string;
  @IsJsonValue() blob!: unknown;
}

/** Only emitted when something changed (phase, or liveness after a gap). */
export class SessionHeartbeatPayload {
  @IsTimestamp() last_heartbeat!: string;
  @IsNullableString() phase!: string | null;
}

/** `reason`: `explicit` (coord dereg), `ttl-expired` (sentinel cull) or whatever the caller gave. */
export class SessionDeregPayload {
  @IsString() @MinLength(1) reason!: string;
}

export class LockAcquirePayload {
  @IsString() @MinLength(1) resource!: string;
  @IsString() @MinLength(1) owner_session!: string;
  @IsOptional() @IsTimestamp() expires_at?: string;
  @IsOptional() @IsString() reason?: string;
}

/** `reason`: `unlock`, `stolen`, `owner-evicted`, `owner-dereg`, `expired`, `forced`. */
export class LockReleasePayload {
  @IsString() @MinLength(1) resource!: string;
  @IsString() @MinLength(1) owner_session!: string;
  @IsOptional() @IsString() reason?: string;
}

/** Envelope only: the message body never travels in an event. */
export class InboxDeliverPayload {
  @IsString() @MinLength(1) to_session!: string;
  @IsString() @MinLength(1) msg_id!: string;
  @IsString() kind!: string;
  @IsOptional() @IsString() from_session?: string;
  @IsOptional() @IsString() subject?: string;
}

export class DispatchIssuePayload {
  @IsString() @MinLength(1) order_id!: string;
  @IsString() @MinLength(1) assignee!: string;
  @IsString() @MinLength(1) ticket!: string;
}

/** An order's assignee moving it along (`coord order ack|done|reject <id> [--note N]`). */
export class DispatchStatePayload {
  @IsString() @MinLength(1) order_id!: string;
  @IsString() @MinLength(1) assignee!: string;
  @IsOptional() @IsString() note?: string;
}

/** The typed payload class of every TxKind (seed 002's table; RFC question 4 answered "now"). */
export const PAYLOAD_CLASSES = {
  'session.register': SessionRegisterPayload,
  'session.heartbeat': SessionHeartbeatPayload,
  'session.dereg': SessionDeregPayload,
  'lock.acquire': LockAcquirePayload,
  'lock.release': LockReleasePayload,
  'inbox.deliver': InboxDeliverPayload,
  'dispatch.issue': DispatchIssuePayload,
  'dispatch.ack': DispatchStatePayload,
  'dispatch.done': DispatchStatePayload,
  'dispatch.reject': DispatchStatePayload,
} as const;

export interface PayloadByKind {
  'session.register': SessionRegisterPayload;
  'session.heartbeat': SessionHeartbeatPayload;
  'session.dereg': SessionDeregPayload;
  'lock.acquire': LockAcquirePayload;
  'lock.release': LockReleasePayload;
  'inbox.deliver': InboxDeliverPayload;
  'dispatch.issue': DispatchIssuePayload;
  'dispatch.ack': DispatchStatePayload;
  'dispatch.done': DispatchStatePayload;
  'dispatch.reject': DispatchStatePayload;
}

/**
 * A coord state-change event (seed 002's `Event`, plus `ingress_ts` from its RFC question 2).
 * `(source, tx_id)` is the dedup key; `tx_id` is a ULID, monotonic within `source`.
 * The payload is checked against its kind's class by the codec (a tagged union on `tx_kind`).
 */
export class CoordEvent<K extends TxKind = TxKind> {
  @Matches(ULID_PATTERN, { message: 'tx_id must be a ULID' }) tx_id!: string;
  @IsIn(TX_KINDS) tx_kind!: K;
  @IsTimestamp() ts!: string;
  @ValidateIf((_o, v) => v !== null) @IsTimestamp() ingress_ts!: string | null;
  @IsString() @MinLength(1) source!: string;
  @IsNullableString() session_id!: string | null;
  @IsNullableString() resource!: string | null;
  @IsObject() @Type(() => Object) payload!: PayloadByKind[K];
}
