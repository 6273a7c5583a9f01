import { collectDefaultMetrics, Registry } from 'prom-client';

/** The process-wide Prometheus registry served at /metrics. */
export const metricsRegistry = new Registry();
let defaultsCollected = false;

/** Adds the standard process metrics (CPU, memory, event loop lag) once, labelled by service. */
export function collectProcessMetrics(service: string): void {
  if (defaultsCollected) return;
  defaultsCollected = true;
  metricsRegistry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: metricsRegistry, prefix: 'coordbus_' });
}
