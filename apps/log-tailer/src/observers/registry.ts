import { HeadroomStageTimingsObserver } from './headroom-stage-timings';
import { LineObserver, ObserverOptions } from './line-observer';

export type ObserverFactory = (options: ObserverOptions) => LineObserver;

/**
 * Every observer the tailer knows, by the name `--observer` takes. A new upstream is a new
 * `LineObserver` plus one entry here.
 */
export const OBSERVERS: Readonly<Record<string, ObserverFactory>> = {
  [HeadroomStageTimingsObserver.observerName]: (o) => new HeadroomStageTimingsObserver(o),
};

export function knownObservers(): string[] {
  return Object.keys(OBSERVERS).sort();
}

export function isKnownObserver(name: string): boolean {
  return Object.prototype.hasOwnProperty.call(OBSERVERS, name);
}

/** Builds an observer by name; an unknown name is a usage error naming the known ones. */
export function createObserver(name: string, options: ObserverOptions): LineObserver {
  if (!isKnownObserver(name)) {
    throw new Error(
      `unknown observer ${JSON.stringify(name)}; known observers: ${knownObservers().join(', ')}`,
    );
  }
  return OBSERVERS[name](options);
}
