import {
  CanActivate,
  ExecutionContext,
  ForbiddenException,
  Inject,
  Injectable,
  SetMetadata,
  UnauthorizedException,
} from '@nestjs/common';
import { GUARDS_METADATA } from '@nestjs/common/constants';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { ACCESS_POLICY } from '../tokens';
import { AccessLevel, AccessPolicy, credentialsOf } from './access-policy';

const REQUIRED = 'coordbus:access';

/** Marks a handler (or controller) as an operator action; everything else guarded is a read. */
export const OperatorOnly = () => SetMetadata(REQUIRED, 'operator' satisfies AccessLevel);

/** The level a guarded request reached, for handlers that show it (the console's `whoami`). */
export interface GuardedRequest extends Request {
  coordbusAccess?: AccessLevel;
}

/**
 * Applies the AccessPolicy to `/v1/*` and the console's data: 401 without a needed read token,
 * 403 for an action without the operator token. Tokens are never logged or echoed.
 */
@Injectable()
export class AccessGuard implements CanActivate {
  constructor(
    @Inject(ACCESS_POLICY) private readonly policy: AccessPolicy,
    private readonly reflector: Reflector,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<GuardedRequest>();
    const required = this.reflector.getAllAndOverride<AccessLevel | undefined>(REQUIRED, [
      context.getHandler(),
      context.getClass(),
    ]);
    req.coordbusAccess = enforceAccess(this.policy, req, required ?? 'read');
    return true;
  }
}

/**
 * The door for one request: the level reached, or a 401/403 with the policy's reason. Used by the
 * guard and by handlers that answer one path both openly and guarded (`/`: the page, or the index).
 */
export function enforceAccess(policy: AccessPolicy, req: Request, required: AccessLevel): AccessLevel {
  const creds = credentialsOf(req.headers as { authorization?: string; cookie?: string });
  const decision = required === 'operator' ? policy.act(creds) : policy.read(creds);
  if (!decision.ok) {
    if (decision.status === 401) throw new UnauthorizedException(decision.reason);
    throw new ForbiddenException(decision.reason);
  }
  return decision.level;
}

/** What a route needs, from its guard and `@OperatorOnly` metadata: nothing, the read token or the operator token. */
export function accessOf(controller: object, handler: object): AccessLevel | 'none' {
  const guards = [
    ...((Reflect.getMetadata(GUARDS_METADATA, controller) as unknown[] | undefined) ?? []),
    ...((Reflect.getMetadata(GUARDS_METADATA, handler) as unknown[] | undefined) ?? []),
  ];
  if (!guards.includes(AccessGuard)) return 'none';
  const required = (Reflect.getMetadata(REQUIRED, handler) ?? Reflect.getMetadata(REQUIRED, controller)) as
    AccessLevel | undefined;
  return required ?? 'read';
}
