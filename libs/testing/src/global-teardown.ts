import { rmSync } from 'node:fs';
import { STATE_FILE } from './global-setup';

export default async function globalTeardown(): Promise<void> {
  const owned = (globalThis as Record<string, unknown>).__COORDBUS_REDIS__ as
    { dispose?: () => Promise<void>; stop?: () => Promise<unknown> } | undefined;
  if (owned?.dispose) await owned.dispose();
  else if (owned?.stop) await owned.stop();
  rmSync(STATE_FILE, { force: true });
}
