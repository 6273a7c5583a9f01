import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DOCS_BEGIN, DOCS_END, renderConfigDocs, spliceConfigDocs } from './docs';
import { VARIABLE_SECTIONS } from './variables';

const README = join(__dirname, '..', '..', '..', 'README.md');

describe('README configuration tables', () => {
  it('are exactly what the variable definitions render (run `npm run docs:config` when this fails)', () => {
    const readme = readFileSync(README, 'utf8');
    expect(readme).toContain(DOCS_BEGIN);
    expect(spliceConfigDocs(readme)).toBe(readme);
  });

  it('list every defined variable once, and a drifted README is caught', () => {
    const block = renderConfigDocs();
    for (const section of VARIABLE_SECTIONS)
      for (const v of Object.values(section.vars)) expect(block).toContain(`| \`${v.name}\``);
    const drifted = `${DOCS_BEGIN}\n| \`JOBS_RETENTION\` | \`30d\` | | stale |\n${DOCS_END}`;
    expect(spliceConfigDocs(drifted)).not.toBe(drifted);
  });
});
