import type { InjectionToken, Provider, Type } from '@nestjs/common';
import { Test, TestingModule } from '@nestjs/testing';

/** Every method of `T` a jest mock; plain properties stay assignable (`mock.keys = ...`). */
export type Mocked<T> = {
  -readonly [K in keyof T]: T[K] extends (...args: infer A) => infer R ? jest.Mock<R, A> & T[K] : T[K];
};

/**
 * An object whose every method is a jest.fn, made on first use. `then` stays undefined, so an
 * awaited mock is not taken for a promise.
 */
export function autoMock<T extends object>(): Mocked<T> {
  const fns = new Map<PropertyKey, unknown>();
  return new Proxy({} as Mocked<T>, {
    get(target, key) {
      if (key in target) return (target as Record<PropertyKey, unknown>)[key];
      if (key === 'then' || typeof key === 'symbol') return undefined;
      if (!fns.has(key)) fns.set(key, jest.fn());
      return fns.get(key);
    },
  });
}

/** The mocks `newTestService` made, by the token the service asked for. */
export class ServiceMocks {
  private readonly byToken = new Map<InjectionToken, unknown>();

  /** Made (or returned) for `token` when Nest resolves a dependency nothing else provides. */
  mockFor(token: InjectionToken): unknown {
    if (!this.byToken.has(token)) this.byToken.set(token, autoMock());
    return this.byToken.get(token);
  }

  /** The mock given for `token` (a class or an injection token); throws when the service never asked. */
  of<T extends object>(token: InjectionToken): Mocked<T> {
    if (!this.byToken.has(token))
      throw new Error(
        `no mock for ${String(typeof token === 'function' ? token.name : token)}: the service does not inject it`,
      );
    return this.byToken.get(token) as Mocked<T>;
  }
}

/**
 * The immich-style unit test of a service: the service is built by Nest's injector, every
 * dependency not given in `providers` (configuration values, a real clock or registry) is an
 * automatic mock, and the test reads them back by token: `mocks.of<JobStore>(JOB_STORE)`.
 * Services keep their logic; repositories are what gets mocked.
 */
export async function newTestService<T>(
  service: Type<T>,
  providers: Provider[] = [],
): Promise<{ sut: T; mocks: ServiceMocks; module: TestingModule }> {
  const mocks = new ServiceMocks();
  const module = await Test.createTestingModule({ providers: [service, ...providers] })
    .useMocker((token) => mocks.mockFor(token as InjectionToken))
    .compile();
  return { sut: module.get(service), mocks, module };
}
