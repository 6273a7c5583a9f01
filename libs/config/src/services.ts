import table from './service-table.json';

export interface ServiceEntry {
  name: string;
  /** Default `HTTP_PORT` of the service (/healthz, /readyz, /metrics). */
  port: number;
  /** Reads a consumer group (scaled on its lag). */
  consumes: boolean;
}

/**
 * Every service and its default HTTP port. service-table.json is the one list: the services read it
 * here, `npm start` and the container entry point read the file itself.
 */
export const SERVICES: readonly ServiceEntry[] = table;

export function servicePort(name: string): number {
  const s = SERVICES.find((e) => e.name === name);
  if (!s)
    throw new RangeError(
      `unknown service ${JSON.stringify(name)} (known: ${SERVICES.map((e) => e.name).join(', ')})`,
    );
  return s.port;
}
