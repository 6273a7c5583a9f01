import { Controller } from '@nestjs/common';
import { StreamBatchHandler, StreamHandler } from './decorators';

/** Applies a decorator to a fresh controller method, as Nest does at class definition time. */
function declare(decorator: MethodDecorator): void {
  @Controller()
  class C {
    handle() {
      return undefined;
    }
  }
  decorator(C.prototype, 'handle', Object.getOwnPropertyDescriptor(C.prototype, 'handle')!);
}

describe('stream handler decorators', () => {
  it('accept a batch handler concurrency from 1 to 16', () => {
    for (const concurrency of [1, 2, 16]) {
      expect(() =>
        declare(StreamBatchHandler({ stream: 'coordIngest', group: 'archivist', concurrency })),
      ).not.toThrow();
    }
  });

  it.each([0, 17, 1.5, Number.NaN])(
    'refuse batch concurrency %p, naming the option and its range',
    (concurrency) => {
      expect(() => StreamBatchHandler({ stream: 'coordIngest', group: 'archivist', concurrency })).toThrow(
        /StreamBatchHandler: concurrency must be an integer from 1 to 16/,
      );
    },
  );

  it.each([-1, 1001, 2.5])('refuse batch lingerMs %p, naming the option and its range', (lingerMs) => {
    expect(() => StreamBatchHandler({ stream: 'coordIngest', group: 'archivist', lingerMs })).toThrow(
      /StreamBatchHandler: lingerMs must be an integer from 0 to 1000/,
    );
  });

  it('refuse concurrency on a single-entry handler, pointing at the server option', () => {
    expect(() =>
      StreamHandler({ stream: 'coordIngest', group: 'fanout', concurrency: 2 } as Parameters<
        typeof StreamHandler
      >[0]),
    ).toThrow(/single-entry handlers share the server option `concurrency`/);
  });
});
