import { Command } from 'commander';
import type Redis from 'ioredis';
import { EXIT_CODES, InvalidError, keyspaceFromEnv, NotFoundError } from '@coordbus/envelope';
import { cliRedisTimeoutMs, connectWithin } from '../redis-bound';
import { connect, fail } from '../tail/live';

interface SelectOpts {
  stream?: string;
  reason?: string;
  from?: string;
  to?: string;
  limit?: string;
  all?: boolean;
  json?: boolean;
}

type Letters = import('@coordbus/redis-streams').DeadLetters;
type View = import('@coordbus/redis-streams').DeadLetterView;

async function withLetters(what: string, fn: (d: Letters) => Promise<number>): Promise<number> {
  const env = process.env;
  let redis: Redis | undefined;
  try {
    redis = connect(env);
    await connectWithin(redis, cliRedisTimeoutMs(env), 'REDIS_URL');
    const { DeadLetters } = await import('@coordbus/redis-streams');
    return await fn(new DeadLetters(redis, keyspaceFromEnv(env)));
  } catch (e) {
    return fail(process.stderr, e, what);
  } finally {
    redis?.disconnect();
  }
}

function limitOf(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 100_000) {
    throw new InvalidError(`--limit must be a whole number from 1 to 100000 (got ${JSON.stringify(raw)})`, [
      'limit',
    ]);
  }
  return Number(raw);
}

/** The letters `ids` (or the filter) name; an id that is not there is an error, not a silent skip. */
async function select(d: Letters, ids: string[], o: SelectOpts): Promise<View[]> {
  if (!ids.length) {
    if (!o.all && !o.stream && !o.reason && !o.from && !o.to) {
      throw new InvalidError(
        'name dead letters by id, or select them with --stream/--reason/--from/--to (or --all)',
        ['selection: required'],
      );
    }
    return d.list({ stream: o.stream, reason: o.reason, from: o.from, to: o.to, limit: limitOf(o.limit) });
  }
  const out: View[] = [];
  for (const id of ids) {
    const v = await d.get(id, o.stream);
    if (!v) throw new NotFoundError(`no dead letter ${id}${o.stream ? ` on ${o.stream}` : ''}`);
    out.push(v);
  }
  return out;
}

function line(v: View): string {
  const e = v.entry;
  if (!e) return `${v.id}  ${v.source_stream}  (undecodable: ${v.problem})`;
  return `${v.id}  ${v.source_stream}  entry ${e.entry_id}  ${e.error_code}  after ${e.delivery_count} deliveries  ${e.ts}  ${JSON.stringify(e.reason)}`;
}

const selection = (c: Command) =>
  c
    .option('--stream <stream>', 'only this source stream (or its :dead stream), full key')
    .option('--reason <text>', 'reason contains this text (case-insensitive), or this exact error code')
    .option('--from <id>', 'dead-letter ids from this one (inclusive)')
    .option('--to <id>', 'dead-letter ids up to this one (inclusive)')
    .option('--limit <n>', 'at most this many (default 1000)')
    .option('--json', 'JSON output');

/**
 * `coordbus dead ls|show|replay|drop`: inspect dead letters, and once the cause is fixed re-drive
 * them to their source stream exactly once (the same atomic script as the console), or drop them.
 */
export function registerDeadCommands(program: Command): void {
  const dead = program
    .command('dead')
    .description('dead letters: entries a consumer refused (not outages); list, show, re-drive once, drop');

  selection(dead.command('ls').description('list dead letters, oldest first')).action(
    async (o: SelectOpts) => {
      process.exitCode = await withLetters('dead ls', async (d) => {
        const list = await d.list({
          stream: o.stream,
          reason: o.reason,
          from: o.from,
          to: o.to,
          limit: limitOf(o.limit),
        });
        if (o.json) process.stdout.write(`${JSON.stringify(list)}\n`);
        else if (!list.length) process.stdout.write('no dead letters\n');
        else for (const v of list) process.stdout.write(`${line(v)}\n`);
        return EXIT_CODES.ok;
      });
    },
  );

  dead
    .command('show <id>')
    .description('one dead letter with its original fields')
    .option('--stream <stream>', 'the source stream (when the id is on several)')
    .option('--json', 'JSON output')
    .action(async (id: string, o: SelectOpts) => {
      process.exitCode = await withLetters('dead show', async (d) => {
        const [v] = await select(d, [id], o);
        if (o.json) process.stdout.write(`${JSON.stringify(v)}\n`);
        else {
          process.stdout.write(`${line(v)}\n`);
          if (v.entry) process.stdout.write(`${JSON.stringify(v.entry.fields, null, 2)}\n`);
        }
        return EXIT_CODES.ok;
      });
    });

  for (const [verb, doc] of [
    [
      'replay',
      're-drive to the source stream, each exactly once (atomic move; a second replay finds nothing)',
    ],
    ['drop', 'delete for good'],
  ] as const) {
    selection(dead.command(`${verb} [ids...]`).description(doc))
      .option('--all', 'every dead letter the filters (or none) select')
      .action(async (ids: string[], o: SelectOpts) => {
        process.exitCode = await withLetters(`dead ${verb}`, async (d) => {
          const picked = await select(d, ids, o);
          const results: Record<string, unknown>[] = [];
          for (const v of picked) {
            if (verb === 'replay') results.push(await d.replay(v));
            else results.push({ id: v.id, status: (await d.drop(v)) ? 'dropped' : 'missing' });
          }
          if (o.json) process.stdout.write(`${JSON.stringify(results)}\n`);
          else {
            for (const r of results)
              process.stdout.write(`${r.id}  ${r.status}${r.new_id ? ` as ${r.new_id}` : ''}\n`);
            const done = results.filter((r) => r.status !== 'missing').length;
            process.stdout.write(
              `${verb === 'replay' ? 're-driven' : 'dropped'} ${done} of ${results.length}\n`,
            );
          }
          return EXIT_CODES.ok;
        });
      });
  }
}
