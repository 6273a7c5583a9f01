#!/usr/bin/env node
'use strict';
// The container image's entry point: one image, the service picked at run time.
//
//   container-entry.js                      runs $COORDBUS_SERVICE
//   container-entry.js [flags]               runs $COORDBUS_SERVICE with those flags
//   container-entry.js <service> [flags]     runs that service (e.g. sentinel-subscriber)
//   container-entry.js cli [args]           the coordbus CLI (also: `coordbus [args]`)
//   container-entry.js healthcheck          exits 0 when /readyz of the local service answers 200
//   container-entry.js healthcheck --live   the same for /healthz (liveness)
//   container-entry.js list                 prints the services this image can run
//
// The service runs in this same process (no extra child), so SIGTERM from the runtime reaches
// its graceful-stop handler directly. COORDBUS_APP_ROOT overrides where dist/ is found (tests).
const { existsSync, readFileSync } = require('node:fs');
const { join, resolve } = require('node:path');
const http = require('node:http');

const USAGE = 2;
const appRoot = process.env.COORDBUS_APP_ROOT || resolve(__dirname, '..');

/** libs/config/src/service-table.json, the one list: from the build in the image, else from the source tree. */
function services() {
  const built = join(appRoot, 'dist', 'libs', 'config', 'src', 'service-table.json');
  const file = existsSync(built)
    ? built
    : join(__dirname, '..', 'libs', 'config', 'src', 'service-table.json');
  const table = JSON.parse(readFileSync(file, 'utf8'));
  return new Map(table.map((s) => [s.name, s]));
}

function fail(message, code = USAGE) {
  process.stderr.write(`coordbus-container: ${message}\n`);
  process.exit(code);
}

function usage(known) {
  return [
    'usage: container-entry.js [<service>|cli|healthcheck|list] [args...]',
    `services: ${[...known.keys()].join(', ')}`,
    'or set COORDBUS_SERVICE to a service name',
  ].join('\n');
}

/**
 * GET /readyz (or /healthz with --live) of the service in this container; the port is HTTP_PORT or
 * the service's default. The image's HEALTHCHECK uses readiness: a service that cannot reach Redis
 * must not show `(healthy)`. Liveness (restart on a hung process) is the orchestrator's own probe.
 */
function healthcheck(known, args) {
  const path = args.includes('--live') ? '/healthz' : '/readyz';
  const name = process.env.COORDBUS_SERVICE;
  const port = Number(process.env.HTTP_PORT || (known.get(name) || {}).port);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    fail('healthcheck needs HTTP_PORT or COORDBUS_SERVICE naming a service with a default port', 1);
  }
  const timeoutMs = Number(process.env.HEALTHCHECK_TIMEOUT_MS || 3000);
  const req = http.get({ host: '127.0.0.1', port, path, timeout: timeoutMs }, (res) => {
    res.resume();
    if (res.statusCode === 200) process.exit(0);
    fail(`${path} on port ${port} answered ${res.statusCode}`, 1);
  });
  req.on('timeout', () => {
    req.destroy();
    fail(`${path} on port ${port} did not answer within ${timeoutMs} ms`, 1);
  });
  req.on('error', (err) => fail(`${path} on port ${port}: ${err.message}`, 1));
}

function runCli(args) {
  const main = join(appRoot, 'dist', 'apps', 'cli', 'main.js');
  if (!existsSync(main)) fail(`${main} is missing: the image was built without the CLI`, 1);
  process.env.COORDBUS_CLI_MAIN = '1';
  process.argv = [process.argv[0], 'coordbus', ...args];
  require(main);
}

function runService(name, args, known) {
  if (!known.has(name)) fail(`unknown service ${JSON.stringify(name)}\n${usage(known)}`);
  const main = join(appRoot, 'dist', 'apps', name, 'main.js');
  if (!existsSync(main)) fail(`${main} is missing: the image was built without ${name}`, 1);
  process.env.COORDBUS_SERVICE = name;
  // The service's own flags follow its name (the log-tailer takes --path/--config).
  process.argv = [process.argv[0], main, ...args];
  require(main);
}

function main(argv) {
  const known = services();
  let [command, ...rest] = argv;
  // `docker run -e COORDBUS_SERVICE=log-tailer image --path /x`: the arguments are the service's flags.
  if (command === undefined || command.startsWith('-')) {
    if (command !== undefined && ['-h', '--help'].includes(command) && !process.env.COORDBUS_SERVICE)
      rest = [];
    else {
      rest = argv;
      command = process.env.COORDBUS_SERVICE;
    }
  }
  if (!command) fail(`no service given\n${usage(known)}`);
  switch (command) {
    case 'healthcheck':
      return healthcheck(known, rest);
    case 'list':
      process.stdout.write(`${[...known.values()].map((s) => `${s.name}\t${s.port}`).join('\n')}\n`);
      return undefined;
    case 'cli':
    case 'coordbus':
      return runCli(rest);
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(`${usage(known)}\n`);
      return undefined;
    default:
      return runService(command, rest, known);
  }
}

main(process.argv.slice(2));
