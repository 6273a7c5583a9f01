import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Writes a synthetic coord root in exactly the layout coord's file mirror uses (issue #3):
 * sessions/<id>.json, locks/<resource>/record.json + owner, messages/inbox-<id>/<msg_id>.json,
 * dispatch-orders/<order_id>.json. Written here by hand so the source is checked against the
 * documented layout, not against one writer's code.
 */
export class SyntheticCoordRoot {
  readonly root = mkdtempSync(join(tmpdir(), 'coordbus-fsroot-'));

  path(...parts: string[]): string {
    return join(this.root, ...parts);
  }

  write(rel: string, content: string): void {
    const full = this.path(rel);
    mkdirSync(join(full, '..'), { recursive: true });
    writeFileSync(full, content);
  }

  session(id: string, fields: Partial<Record<string, unknown>> = {}): void {
    const now = new Date().toISOString();
    this.write(
      `sessions/${id}.json`,
      JSON.stringify({
        session_id: id,
        pid: 4242,
        host: 'host-a',
        role: 'worker',
        task: 'TOD-1',
        blob: { k: 1 },
        phase: null,
        registered_at: now,
        last_heartbeat: now,
        ...fields,
      }),
    );
  }

  lock(resourceDir: string, owner: string, fields: Partial<Record<string, unknown>> = {}): void {
    this.write(
      `locks/${resourceDir}/record.json`,
      JSON.stringify({
        owner_session_id: owner,
        owner_pid: 4242,
        acquired_at: new Date().toISOString(),
        expires_at: null,
        reason: '',
        ...fields,
      }),
    );
    this.write(`locks/${resourceDir}/owner`, `${owner}\n`);
  }

  message(to: string, msgId: string, fields: Partial<Record<string, unknown>> = {}): void {
    this.write(
      `messages/inbox-${to}/${msgId}.json`,
      JSON.stringify({
        msg_id: msgId,
        from_session: 'b',
        to_session: to,
        kind: 'note',
        subject: 'hi',
        body: 'SECRET BODY',
        ts: new Date().toISOString(),
        ...fields,
      }),
    );
  }

  order(orderId: string, assignee: string, ticket: string): void {
    this.write(
      `dispatch-orders/${orderId}.json`,
      JSON.stringify({
        order_id: orderId,
        assignee,
        ticket,
        issued_by: 'hv',
        issued_at: new Date().toISOString(),
      }),
    );
  }

  remove(rel: string): void {
    rmSync(this.path(rel), { recursive: true, force: true });
  }

  dispose(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}
