#!/usr/bin/env node
'use strict';
// Bundles the `coord` hot path (bin/coord, bin/coord-with-fanout) with esbuild into
// dist/coord/*.js: one file each, only node builtins outside it, and `@coordbus/envelope`
// mapped to its class-validator-free part (libs/coord/src/envelope-lite.ts), so a
// `coord heartbeat` loads ~100 KB of JS instead of Nest/commander/class-validator/ioredis.
// bin/coord runs this on demand when the bundle is missing or older than the last build.
// Lua commands are inlined: see luaCommandsPlugin.
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
const outDir = path.join(root, 'dist', 'coord');
const ENTRIES = {
  coord: path.join(root, 'apps/cli/src/coord/entry.ts'),
  'coord-with-fanout': path.join(root, 'apps/cli/src/coord/wrapper.ts'),
};

const LOAD_CALL = 'loadCommands(__dirname)';

/**
 * A `src/commands/index.ts` loads the `.lua` files beside it at run time (libs/lua
 * `loadCommands(__dirname)`); the bundle has no such directory, so this rewrites that call to
 * `loadCommands(__dirname, { 'lock-5.lua': <text>, ... })` with every file of the directory
 * imported through esbuild's text loader. A commands/index.ts without the call fails the build.
 */
const luaCommandsPlugin = {
  name: 'coordbus-lua-commands',
  setup(build) {
    build.onLoad({ filter: /[\\/]commands[\\/]index\.ts$/ }, (args) => {
      const source = fs.readFileSync(args.path, 'utf8');
      if (!source.includes(LOAD_CALL)) {
        return { errors: [{ text: `${args.path}: expected ${LOAD_CALL} (see apps/cli/coord-bundle.js)` }] };
      }
      const dir = path.dirname(args.path);
      const files = [];
      const walk = (sub) => {
        for (const name of fs.readdirSync(path.join(dir, sub)).sort()) {
          const rel = sub ? `${sub}/${name}` : name;
          if (fs.statSync(path.join(dir, rel)).isDirectory()) walk(rel);
          else if (name.endsWith('.lua')) files.push(rel);
        }
      };
      walk('');
      const imports = files.map((f, i) => `import __lua${i} from ${JSON.stringify(`./${f}`)};`).join('\n');
      const table = `{ ${files.map((f, i) => `${JSON.stringify(f)}: __lua${i}`).join(', ')} }`;
      const contents = `${imports}\n${source.replace(LOAD_CALL, `loadCommands(__dirname, ${table})`)}`;
      return { contents, loader: 'ts', resolveDir: dir, watchFiles: files.map((f) => path.join(dir, f)) };
    });
  },
};

/** Builds both bundles (async: esbuild runs plugins only in its async API). */
async function build() {
  const esbuild = require('esbuild');
  fs.mkdirSync(outDir, { recursive: true });
  for (const [name, entry] of Object.entries(ENTRIES)) {
    const result = await esbuild.build({
      entryPoints: [entry],
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      write: false,
      minify: false,
      legalComments: 'none',
      tsconfig: path.join(root, 'tsconfig.json'),
      alias: { '@coordbus/envelope': path.join(root, 'libs/coord/src/envelope-lite.ts') },
      loader: { '.lua': 'text' },
      plugins: [luaCommandsPlugin],
      logLevel: 'error',
    });
    // temp + rename: concurrent first runs (many hooks at once) never see half a file.
    const target = path.join(outDir, `${name}.js`);
    const tmp = `${target}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, result.outputFiles[0].contents);
    fs.renameSync(tmp, target);
  }
}

module.exports = { build, outDir };
if (require.main === module) {
  const t = Date.now();
  build().then(
    () => console.log(`bundled coord into ${path.relative(root, outDir)} in ${Date.now() - t} ms`),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
