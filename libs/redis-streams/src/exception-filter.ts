import { ArgumentsHost, Catch, RpcExceptionFilter } from '@nestjs/common';
import { RpcException } from '@nestjs/microservices';
import { Observable, throwError } from 'rxjs';

/**
 * The transport's exception filter, bound to every `@StreamHandler` / `@StreamBatchHandler`
 * method. Nest's default RPC filter replaces any error that is not an `RpcException` with
 * `{ status: 'error', message: 'Internal server error' }`; the transport needs the real error
 * (its type and `retryable` decide retry, wait or dead letter; its message is the dead-letter
 * reason), so this filter hands whatever the handler threw back to the transport untouched (an
 * `RpcException` unwrapped to the error it carries).
 */
@Catch()
export class StreamExceptionFilter implements RpcExceptionFilter<unknown> {
  catch(exception: unknown, _host: ArgumentsHost): Observable<never> {
    const error =
      exception instanceof RpcException && typeof exception.getError() === 'object'
        ? exception.getError()
        : exception;
    return throwError(() => error);
  }
}
