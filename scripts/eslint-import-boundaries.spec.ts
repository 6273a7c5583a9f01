import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { Linter } from 'eslint';
import { parser } from 'typescript-eslint';

const plugin = require('./eslint-import-boundaries.cjs');
const root = join(__dirname, '..');

/** Messages of the rule for `code` as if it were the file at `rel` (repo-relative). */
function lint(rel: string, code: string): string[] {
  const linter = new Linter({ configType: 'flat', cwd: root });
  return linter
    .verify(
      code,
      [
        {
          files: ['**/*.ts'],
          languageOptions: { parser },
          plugins: { coordbus: plugin },
          rules: { 'coordbus/import-boundaries': 'error' },
        },
      ],
      join(root, rel),
    )
    .map((m) => m.message);
}

describe('coordbus/import-boundaries', () => {
  it('fails an app importing another app, however it is written', () => {
    const file = 'apps/cli/src/jobs/context.ts';
    for (const code of [
      "import { JobStore } from '../../../job-coordinator/src/store/job-store';",
      "export * from '../../../job-coordinator/src/domain/job';",
      "const m = require('../../../job-coordinator/src/queue/bull');",
      "type Q = typeof import('../../../job-coordinator/src/queue/bull');",
      "void import('../../../sentinel-subscriber/src/metrics');",
    ]) {
      const msgs = lint(file, code);
      expect(msgs).toHaveLength(1);
      expect(msgs[0]).toMatch(
        /^apps\/cli imports apps\/(job-coordinator|sentinel-subscriber) .*apps never import another app/,
      );
    }
  });

  it('fails a lib importing an app', () => {
    expect(
      lint(
        'libs/jobs/src/queue/worker.ts',
        "import { x } from '../../../../apps/job-coordinator/src/config';",
      ),
    ).toEqual([
      expect.stringMatching(/^libs\/jobs imports apps\/job-coordinator .*a lib never imports an app/),
    ]);
  });

  it('fails a relative path into another lib, and passes its barrel', () => {
    expect(
      lint(
        'apps/cli/src/jobs/commands.ts',
        "import { JobStore } from '../../../../libs/jobs/src/store/job-store';",
      ),
    ).toEqual([expect.stringMatching(/reaches into libs\/jobs .*@coordbus\/jobs/)]);
    expect(lint('apps/cli/src/jobs/commands.ts', "import { JobStore } from '@coordbus/jobs';")).toEqual([]);
    expect(
      lint('apps/cli/src/jobs/commands.ts', "import { JobStore } from '@coordbus/jobs/src/store/job-store';"),
    ).toEqual([expect.stringMatching(/reaches into libs\/jobs/)]);
  });

  it('passes imports inside one app or lib, packages, and code outside apps/ and libs/', () => {
    expect(lint('apps/job-coordinator/src/main.ts', "import { jobsConfig } from './config';")).toEqual([]);
    expect(lint('libs/jobs/test/harness.ts', "import { JobStore } from '../src/store/job-store';")).toEqual(
      [],
    );
    expect(
      lint('apps/cli/src/main.ts', "import Redis from 'ioredis'; import { join } from 'node:path';"),
    ).toEqual([]);
    expect(lint('test/jobs.e2e.ts', "import { x } from '../apps/job-coordinator/src/config';")).toEqual([]);
  });

  it('is switched on by the repository eslint config', async () => {
    // The real config, through the real CLI: a fixture on stdin named as an app file.
    const out = await new Promise<{ code: number; stdout: string }>((resolve) => {
      const child = execFile(
        join(root, 'node_modules/.bin/eslint'),
        ['--stdin', '--stdin-filename', 'apps/cli/src/jobs/fixture.ts', '--format', 'json'],
        { cwd: root },
        (err, stdout) => resolve({ code: err ? Number((err as { code?: number }).code) : 0, stdout }),
      );
      child.stdin!.end(
        "import { JobStore } from '../../../job-coordinator/src/store/job-store';\nvoid JobStore;\n",
      );
    });
    expect(out.code).toBe(1);
    const [result] = JSON.parse(out.stdout) as { messages: { ruleId: string }[] }[];
    expect(result.messages.map((m) => m.ruleId)).toEqual(['coordbus/import-boundaries']);
  }, 60_000);
});
