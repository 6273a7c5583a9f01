import { Secret } from '@coordbus/runtime';

/** What a request may do: read the archive and the console, or also act (operator). */
export type AccessLevel = 'read' | 'operator';

/** The credentials a request carried: a bearer header and the console's cookies. */
export interface PresentedCredentials {
  bearer?: string;
  readCookie?: string;
  operatorCookie?: string;
}

export type AccessDecision =
  { ok: true; level: AccessLevel } | { ok: false; status: 401 | 403; reason: string };

/** Cookie names the console's login form sets (HttpOnly, SameSite=Strict). */
export const READ_COOKIE = 'coordbus_read';
export const OPERATOR_COOKIE = 'coordbus_operator';

/**
 * Who may read and who may act, from the configuration alone (pure; tested without HTTP).
 *
 * - Reads (`/v1/*`, the console's data and live feed) need `COORDBUS_API_TOKEN` when one is set,
 *   and always when the listener is not loopback: a listener reachable from the network with no
 *   token configured refuses every read, saying which variable to set.
 * - Actions need `COORDBUS_OPERATOR_TOKEN`, always; with none configured the console is read-only.
 *   The operator token also grants reads.
 */
export class AccessPolicy {
  constructor(private readonly options: { apiToken?: Secret; operatorToken?: Secret; loopback: boolean }) {}

  /** Whether the console may offer actions at all. */
  get actionsEnabled(): boolean {
    return this.options.operatorToken !== undefined;
  }

  /** Whether a read token is configured at all. */
  get hasReadToken(): boolean {
    return this.options.apiToken !== undefined;
  }

  /** Whether reads need a token (the console shows its login form when they do). */
  get readsNeedToken(): boolean {
    return this.options.apiToken !== undefined || !this.options.loopback;
  }

  private isOperator(c: PresentedCredentials): boolean {
    const op = this.options.operatorToken;
    return op !== undefined && (op.matches(c.bearer) || op.matches(c.operatorCookie));
  }

  private isReader(c: PresentedCredentials): boolean {
    const api = this.options.apiToken;
    return api !== undefined && (api.matches(c.bearer) || api.matches(c.readCookie));
  }

  /** The level a request reaches, or why it is refused. */
  level(c: PresentedCredentials): AccessDecision {
    if (this.isOperator(c)) return { ok: true, level: 'operator' };
    if (this.isReader(c) || !this.readsNeedToken) return { ok: true, level: 'read' };
    if (this.options.apiToken === undefined) {
      return {
        ok: false,
        status: 401,
        reason:
          'this listener is not loopback (HTTP_HOST) and no COORDBUS_API_TOKEN (or COORDBUS_API_TOKEN_FILE) is set: reads are refused until one is',
      };
    }
    return {
      ok: false,
      status: 401,
      reason: 'a token is required: send Authorization: Bearer <COORDBUS_API_TOKEN>',
    };
  }

  /** Reads: refused without the read (or operator) token when one is required. */
  read(c: PresentedCredentials): AccessDecision {
    return this.level(c);
  }

  /** Actions: the operator token, always. */
  act(c: PresentedCredentials): AccessDecision {
    if (!this.actionsEnabled) {
      return {
        ok: false,
        status: 403,
        reason: 'actions are disabled: set COORDBUS_OPERATOR_TOKEN (or COORDBUS_OPERATOR_TOKEN_FILE)',
      };
    }
    if (this.isOperator(c)) return { ok: true, level: 'operator' };
    return {
      ok: false,
      status: 403,
      reason: 'this action needs the operator token (Authorization: Bearer <COORDBUS_OPERATOR_TOKEN>)',
    };
  }

  /** Which token a login form value is, if any. */
  login(token: string): AccessLevel | null {
    if (this.options.operatorToken?.matches(token)) return 'operator';
    if (this.options.apiToken?.matches(token)) return 'read';
    return null;
  }
}

/** Reads the bearer header and the console cookies of a request (no cookie-parser dependency). */
export function credentialsOf(headers: { authorization?: string; cookie?: string }): PresentedCredentials {
  const out: PresentedCredentials = {};
  const auth = headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) out.bearer = m[1];
  }
  for (const part of (headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    try {
      value = decodeURIComponent(value);
    } catch {
      continue;
    }
    if (name === READ_COOKIE) out.readCookie = value;
    if (name === OPERATOR_COOKIE) out.operatorCookie = value;
  }
  return out;
}
