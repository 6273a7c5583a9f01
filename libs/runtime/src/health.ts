import { Controller, Get, Inject, Injectable, Res } from '@nestjs/common';
import type { Response } from 'express';
import { ApiDoc } from './api-index';
import { metricsRegistry } from './metrics';
import { BASE_CONFIG } from './tokens';
import type { BaseConfig } from './config';

export type ReadinessCheck = () => boolean | string | Promise<boolean | string>;

/**
 * What /readyz asks. Services register checks (Redis reachable, consumer groups created,
 * database open); a check returning a string reports it as the reason it is not ready.
 */
@Injectable()
export class ReadinessService {
  private readonly checks = new Map<string, ReadinessCheck>();

  /** Adds a named check; registering one name twice is a programming error. */
  register(name: string, check: ReadinessCheck): void {
    if (this.checks.has(name)) throw new Error(`readiness check ${name} is registered twice`);
    this.checks.set(name, check);
  }

  async check(timeoutMs = 1000): Promise<{ ready: boolean; checks: Record<string, string> }> {
    const results: Record<string, string> = {};
    let ready = true;
    await Promise.all(
      [...this.checks].map(async ([name, check]) => {
        let timer: NodeJS.Timeout | undefined;
        try {
          const r = await Promise.race([
            Promise.resolve(check()),
            new Promise<string>((resolve) => {
              timer = setTimeout(() => resolve(`no answer within ${timeoutMs} ms`), timeoutMs);
            }),
          ]);
          results[name] = r === true ? 'ok' : r === false ? 'not ready' : r;
        } catch (err) {
          results[name] = (err as Error).message;
        } finally {
          clearTimeout(timer);
        }
        if (results[name] !== 'ok') ready = false;
      }),
    );
    return { ready, checks: results };
  }
}

/** Liveness, readiness and Prometheus metrics: the three endpoints every service serves. */
@Controller()
export class HealthController {
  private readonly startedAt = Date.now();

  constructor(
    private readonly readiness: ReadinessService,
    @Inject(BASE_CONFIG) private readonly config: BaseConfig,
  ) {}

  /** Alive as long as the event loop answers; restarts are the orchestrator's job, not ours. */
  @Get('healthz')
  @ApiDoc('liveness: the process answers (no token, never checks Redis)')
  healthz(): { status: 'ok'; service: string; uptime_s: number } {
    return {
      status: 'ok',
      service: this.config.service,
      uptime_s: Math.round((Date.now() - this.startedAt) / 1000),
    };
  }

  @Get('readyz')
  @ApiDoc('readiness: Redis, consumer groups and service checks; 503 naming what is not ready')
  async readyz(@Res() res: Response): Promise<void> {
    const { ready, checks } = await this.readiness.check();
    res
      .status(ready ? 200 : 503)
      .json({ status: ready ? 'ready' : 'not ready', service: this.config.service, checks });
  }

  @Get('metrics')
  @ApiDoc('Prometheus metrics (text exposition format; no token)')
  async metrics(@Res() res: Response): Promise<void> {
    res.setHeader('Content-Type', metricsRegistry.contentType);
    res.send(await metricsRegistry.metrics());
  }
}
