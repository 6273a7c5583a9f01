import { LoggerService } from '@nestjs/common';
import pino, { Logger } from 'pino';
import { EnvReader, SHARED_VARS } from '@coordbus/config';

/**
 * A JSON logger on stdout with the service name on every line. Without `level`, `LOG_LEVEL`; a
 * bad one means `info` here (the logger of start-up itself), and the service's config check
 * reports it.
 */
export function createLogger(
  service: string,
  level: string = new EnvReader().get(SHARED_VARS.LOG_LEVEL),
): Logger {
  return pino({
    name: service,
    level,
    base: { service, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

/** Routes Nest's own logging into pino so every line of a service is JSON. */
export class NestPinoLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}

  private write(
    level: 'info' | 'error' | 'warn' | 'debug' | 'trace',
    message: unknown,
    rest: unknown[],
  ): void {
    const context = typeof rest[rest.length - 1] === 'string' ? (rest.pop() as string) : undefined;
    const fields: Record<string, unknown> = context ? { context } : {};
    if (message instanceof Error) {
      this.logger[level]({ ...fields, err: message }, message.message);
    } else if (typeof message === 'object' && message !== null) {
      this.logger[level]({ ...fields, ...(message as object) });
    } else {
      if (rest.length && typeof rest[0] === 'string' && level === 'error') fields.stack = rest[0];
      this.logger[level](fields, String(message));
    }
  }

  log(message: unknown, ...rest: unknown[]): void {
    this.write('info', message, rest);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.write('error', message, rest);
  }
  warn(message: unknown, ...rest: unknown[]): void {
    this.write('warn', message, rest);
  }
  debug(message: unknown, ...rest: unknown[]): void {
    this.write('debug', message, rest);
  }
  verbose(message: unknown, ...rest: unknown[]): void {
    this.write('trace', message, rest);
  }
}
