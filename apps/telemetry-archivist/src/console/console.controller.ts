import {
  Body,
  Controller,
  ForbiddenException,
  Get,
  HttpException,
  Inject,
  NotFoundException,
  Param,
  Post,
  Query,
  Req,
  Res,
  ServiceUnavailableException,
  UseGuards,
  ValidationPipe,
} from '@nestjs/common';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Request, Response } from 'express';
import { ARCHIVIST_VARS, EnvReader } from '@coordbus/config';
import { TERMINAL_JOB_STATUSES } from '@coordbus/envelope';
import { ApiDoc } from '@coordbus/runtime';
import { AccessGuard, enforceAccess, GuardedRequest, OperatorOnly } from '../access/access.guard';
import { AccessPolicy, OPERATOR_COOKIE, READ_COOKIE } from '../access/access-policy';
import { ApiIndex } from '../query/api-index';
import { ACCESS_POLICY } from '../tokens';
import { Actor, ConsoleActionsService, httpStatusOf } from './console-actions.service';
import {
  CancelJobDto,
  DispatchDto,
  ForceReleaseDto,
  LoginDto,
  RedriveDto,
  SearchQueryDto,
  SendMessageDto,
  TelemetryQueryDto,
} from './console.dto';
import { ConsoleReadService } from './console-read.service';
import { ConsoleRedis } from './console-redis';
import { entryData } from './console-views';
import { parseCursor } from './feed-cursor';
import { FeedSink, LiveFeed } from './live-feed.service';

const pipe = new ValidationPipe({
  transform: true,
  whitelist: true,
  forbidNonWhitelisted: true,
  validationError: { target: false, value: false },
});

/** The built page (scripts/build.mjs -> dist/console), from the compiled service or from sources under test. */
export function consoleAssetsDir(): string {
  const candidates = [
    new EnvReader().get(ARCHIVIST_VARS.ARCHIVIST_CONSOLE_DIR),
    resolve(__dirname, '..', '..', '..', '..', 'console'),
    // `nest start` runs dist/nest/apps/...: the page is still the one `npm run build` made.
    resolve(__dirname, '..', '..', '..', '..', '..', 'console'),
    resolve(__dirname, '..', '..', '..', '..', 'dist', 'console'),
  ].filter((d): d is string => !!d);
  return candidates.find((d) => existsSync(join(d, 'index.html'))) ?? candidates[candidates.length - 1];
}

const ASSETS: Record<string, string> = {
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy':
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
};

function sseHeaders(res: Response): void {
  res.status(200);
  res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Connection', 'keep-alive');
  res.setHeader('X-Accel-Buffering', 'no');
  res.flushHeaders();
  res.write('retry: 1000\n\n');
}

function sinkOf(res: Response): FeedSink {
  return {
    write: (chunk) => res.write(chunk),
    get buffered() {
      return res.writableLength;
    },
    close: () => res.end(),
  };
}

/**
 * The page shell and its assets: no data, so no token; the page asks for one when reads need it.
 * A client asking for JSON and not HTML at `/` gets the API index instead, behind the read door.
 */
@Controller()
export class ConsolePageController {
  private readonly dir = consoleAssetsDir();

  constructor(
    @Inject(ACCESS_POLICY) private readonly policy: AccessPolicy,
    private readonly apiIndex: ApiIndex,
  ) {}

  @Get()
  @ApiDoc('the fleet console page (HTML); with Accept: application/json (no text/html), the index of /v1')
  index(@Req() req: Request, @Res() res: Response): void {
    const accept = String(req.headers.accept ?? '');
    if (/application\/json/i.test(accept) && !/text\/html/i.test(accept)) {
      enforceAccess(this.policy, req, 'read');
      res.json(this.apiIndex.body());
      return;
    }
    const file = join(this.dir, 'index.html');
    if (!existsSync(file)) throw new NotFoundException('the console is not built: run npm run build');
    res.set(SECURITY_HEADERS).type('html').sendFile(file);
  }

  @Get('console/assets/:file')
  @ApiDoc("the console's script and stylesheet")
  asset(@Param('file') name: string, @Res() res: Response): void {
    const type = ASSETS[name];
    if (!type || !existsSync(join(this.dir, name))) throw new NotFoundException();
    res
      .set({ ...SECURITY_HEADERS, 'Cache-Control': 'no-cache' })
      .type(type)
      .sendFile(join(this.dir, name));
  }
}

/** Login and logout: the token goes into an HttpOnly, SameSite=Strict cookie, never into the page. */
@Controller('console')
export class ConsoleLoginController {
  constructor(@Inject(ACCESS_POLICY) private readonly policy: AccessPolicy) {}

  @Post('login')
  @ApiDoc('console login: body {token}; sets the read or operator cookie (HttpOnly, SameSite=Strict)')
  login(@Body(pipe) body: LoginDto, @Req() req: Request, @Res() res: Response): void {
    const level = this.policy.login(body.token);
    if (!level) {
      res.status(401).json({ statusCode: 401, message: 'that token is not the read or the operator token' });
      return;
    }
    const secure = req.secure ? '; Secure' : '';
    const cookie = (name: string, value: string) =>
      `${name}=${encodeURIComponent(value)}; HttpOnly; SameSite=Strict; Path=/${secure}`;
    res.setHeader('Set-Cookie', [cookie(level === 'operator' ? OPERATOR_COOKIE : READ_COOKIE, body.token)]);
    res.json({ level });
  }

  @Post('logout')
  @ApiDoc('console logout: clears both cookies')
  logout(@Res() res: Response): void {
    const gone = (name: string) => `${name}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`;
    res.setHeader('Set-Cookie', [gone(READ_COOKIE), gone(OPERATOR_COOKIE)]);
    res.json({ ok: true });
  }
}

function actorOf(req: Request): Actor {
  return { actor: `operator@${req.socket.remoteAddress ?? 'unknown'}` };
}

/** The console's data, live feed and actions. Reads need the read token when the door says so. */
@Controller('v1/console')
@UseGuards(AccessGuard)
export class ConsoleApiController {
  constructor(
    private readonly read: ConsoleReadService,
    private readonly actions: ConsoleActionsService,
    private readonly feed: LiveFeed,
    private readonly redis: ConsoleRedis,
    @Inject(ACCESS_POLICY) private readonly policy: AccessPolicy,
  ) {}

  @Get('whoami')
  @ApiDoc('the access level this request reached and whether actions are enabled')
  whoami(@Req() req: GuardedRequest) {
    return {
      level: req.coordbusAccess,
      actions_enabled: this.policy.actionsEnabled,
      reads_need_token: this.policy.readsNeedToken,
    };
  }

  @Get('snapshot')
  @ApiDoc(
    "the console's page snapshot: sessions, locks, orders, jobs, activity, audit, dead letters, and the live feed cursor",
  )
  snapshot() {
    return this.read.snapshot();
  }

  @Get('sessions/:id')
  @ApiDoc('one session: its locks, orders, activity and archived timeline')
  session(@Param('id') id: string) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,199}$/.test(id)) throw new NotFoundException(`no session ${id}`);
    return this.read.session(id);
  }

  @Get('jobs/:id')
  @ApiDoc("one job's metadata")
  async job(@Param('id') id: string) {
    const job = /^[A-Za-z0-9._:-]{1,100}$/.test(id) ? await this.read.job(id) : null;
    if (!job) throw new NotFoundException(`no job ${id}`);
    return job;
  }

  @Get('telemetry')
  @ApiDoc('stall and degraded telemetry (breaches and episodes) of the last `hours` (1-720, default 24)')
  telemetry(@Query(pipe) q: TelemetryQueryDto) {
    return this.read.telemetry(Math.min(720, Math.max(1, Number(q.hours ?? 24))));
  }

  @Get('search')
  @ApiDoc(
    'search the archive (q): a session id, or words (ticket, note, subject, resource, log line); cursor pages',
  )
  search(@Query(pipe) q: SearchQueryDto) {
    return this.read.search(q.q.trim(), q.cursor);
  }

  @Get('streams')
  @ApiDoc('stream health: length, lag, pending, consumers per stream and group')
  streams() {
    return this.read.streams();
  }

  /**
   * The live feed (SSE). Resumes after `Last-Event-ID` (the browser sends it on reconnect) or
   * `?cursor=` (the snapshot's cursor, for the first connect); a cursor it did not make is a 400.
   */
  @Get('live')
  @ApiDoc('the live feed (SSE); resumes after Last-Event-ID or ?cursor=', { query: ['cursor'] })
  async live(@Req() req: Request, @Res() res: Response): Promise<void> {
    const raw =
      (req.headers['last-event-id'] as string | undefined) ?? (req.query.cursor as string | undefined);
    const from = raw === undefined ? null : parseCursor(raw);
    if (raw !== undefined && !from) {
      res.status(400).json({ statusCode: 400, message: 'Last-Event-ID / cursor is not one this feed made' });
      return;
    }
    sseHeaders(res);
    const untrack = this.feed.track(res);
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    let disconnect: (() => void) | null = null;
    let closed = false;
    req.on('close', () => {
      closed = true;
      clearInterval(ping);
      untrack();
      disconnect?.();
    });
    try {
      disconnect = await this.feed.connect(sinkOf(res), from);
      if (closed) disconnect();
    } catch (err) {
      clearInterval(ping);
      res.write(`event: error\ndata: ${JSON.stringify({ message: (err as Error).message })}\n\n`);
      res.end();
    }
  }

  /** A job's log records (SSE), resuming after `Last-Event-ID` (`<seq>-0`); ends with the job. */
  @Get('jobs/:id/logs')
  @ApiDoc("a job's log records (SSE), resuming after Last-Event-ID; ends with the job")
  async jobLogs(@Param('id') id: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    if (!/^[A-Za-z0-9._:-]{1,100}$/.test(id)) throw new NotFoundException(`no job ${id}`);
    const raw = (req.headers['last-event-id'] as string | undefined) ?? '0-0';
    if (!/^\d{1,15}-\d{1,15}$/.test(raw))
      throw new HttpException('Last-Event-ID must be a log entry id', 400);
    sseHeaders(res);
    const stream = this.redis.keyspace.jobLog(id);
    let after = raw;
    let closed = false;
    const untrack = this.feed.track(res);
    req.on('close', () => {
      closed = true;
      untrack();
    });
    while (!closed && !this.feed.stopping) {
      let entries;
      try {
        entries = await this.redis.afterIn(stream, after, 500);
      } catch {
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      let ended = false;
      for (const [eid, fields] of entries) {
        after = eid;
        const d = entryData(fields);
        if (!d) continue;
        const rec = {
          seq: d.seq,
          ts: d.ts,
          kind: d.kind,
          line: typeof d.line === 'string' ? d.line : undefined,
          status: d.status,
          exit_code: d.exit_code,
          signal: d.signal,
          reason: d.reason,
        };
        res.write(`id: ${eid}\nevent: log\ndata: ${JSON.stringify(rec)}\n\n`);
        if (d.kind === 'status' && typeof d.status === 'string' && TERMINAL.has(d.status)) ended = true;
      }
      if (ended) {
        res.write(`event: end\ndata: {}\n\n`);
        break;
      }
      if (!entries.length) await new Promise((r) => setTimeout(r, 250));
    }
    res.end();
  }

  private async act(run: () => Promise<unknown>) {
    try {
      return await run();
    } catch (err) {
      if (err instanceof HttpException) throw err;
      const status = httpStatusOf(err);
      if (status === 500) throw err;
      if (status === 503) throw new ServiceUnavailableException((err as Error).message);
      throw new HttpException({ statusCode: status, message: (err as Error).message }, status);
    }
  }

  /** A custom header a cross-site form cannot send: actions are not forgeable from another page. */
  private checkOrigin(req: Request): void {
    if (req.headers['x-coordbus-action'] !== '1') {
      throw new ForbiddenException('actions need the X-Coordbus-Action: 1 header');
    }
  }

  @Post('actions/message')
  @ApiDoc('operator: send a coord message (X-Coordbus-Action: 1)')
  @OperatorOnly()
  message(@Body(pipe) b: SendMessageDto, @Req() req: Request) {
    this.checkOrigin(req);
    return this.act(() => this.actions.send(actorOf(req), b.to, b.subject ?? '', b.body));
  }

  @Post('actions/dispatch')
  @ApiDoc('operator: dispatch a work order (X-Coordbus-Action: 1)')
  @OperatorOnly()
  dispatch(@Body(pipe) b: DispatchDto, @Req() req: Request) {
    this.checkOrigin(req);
    return this.act(() => this.actions.dispatch(actorOf(req), b.assignee, b.ticket));
  }

  @Post('actions/force-release')
  @ApiDoc('operator: force-release a lock with a reason (X-Coordbus-Action: 1)')
  @OperatorOnly()
  forceRelease(@Body(pipe) b: ForceReleaseDto, @Req() req: Request) {
    this.checkOrigin(req);
    return this.act(() => this.actions.forceRelease(actorOf(req), b.resource, b.owner, b.reason));
  }

  @Post('actions/cancel-job')
  @ApiDoc('operator: cancel a job (X-Coordbus-Action: 1)')
  @OperatorOnly()
  cancel(@Body(pipe) b: CancelJobDto, @Req() req: Request) {
    this.checkOrigin(req);
    return this.act(() => this.actions.cancelJob(actorOf(req), b.job, b.reason ?? null));
  }

  @Post('actions/redrive')
  @ApiDoc('operator: re-drive a dead letter to its stream (X-Coordbus-Action: 1)')
  @OperatorOnly()
  redrive(@Body(pipe) b: RedriveDto, @Req() req: Request) {
    this.checkOrigin(req);
    const ks = this.redis.keyspace;
    const source = {
      coordIngest: ks.coordIngest,
      coordEvents: ks.coordEvents,
      sentinelObservations: ks.sentinelObservations,
      telemetryEvents: ks.telemetryEvents,
      jobEvents: ks.jobEvents,
    }[b.stream] as string;
    return this.act(() => this.actions.redrive(actorOf(req), source, b.id, b.reason ?? null));
  }
}

const TERMINAL = new Set<string>(TERMINAL_JOB_STATUSES);
