import { appendFileSync, writeFileSync } from 'node:fs';
import { TestRedisServer, waitFor } from '@coordbus/testing';
import { range, stageLines, TailerHarness } from './harness';

describe('log-tailer through a Redis outage', () => {
  let server: TestRedisServer;
  let h: TailerHarness;
  beforeAll(async () => {
    server = await new TestRedisServer({ appendonly: true }).start();
  });
  afterAll(async () => {
    await server.dispose();
  });
  beforeEach(() => {
    h = new TailerHarness('outage', server.url);
  });
  afterEach(async () => {
    await h.dispose();
  });

  it('keeps the lines written while Redis is down and delivers each once when it is back', async () => {
    writeFileSync(h.logPath, stageLines(1, 50));
    await h.start();
    await h.waitForSeqs(range(1, 50));
    await server.stop('SIGTERM');
    appendFileSync(h.logPath, stageLines(51, 120));
    // The tailer keeps retrying the same range (never skipping it, never dying).
    await waitFor(
      async () => (await h.metric('coordbus_tailer_errors_total', { stage: 'commit' })) >= 1,
      'a failed commit',
    );
    await server.start();
    await h.waitForSeqs(range(1, 120), 'every line once after the outage', 20_000);
    expect(h.fatals).toEqual([]);
  });
});
