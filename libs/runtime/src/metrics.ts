import { collectDefaultMetrics, Registry } from 'prom-client';

/** The process-wide Prometheus registry served at /metrics. */
export const metricsRegistry = new Registry();
let defaultsCollected = false;

/** Adds the standard process metrics (CPU, memory, event loop lag) once, labelled by service. */
export function collectProcessMetrics(service: string): void {
  if (defaultsCollected) return;
  defaultsCollected = true;
  metricsRegistry.setDefaultLabels({ service });
  // A 10 ms event-loop monitor (prom-client's default) wakes an idle service 100 times a second;
  // 1 s keeps the lag histogram useful and an idle service at ~0 CPU.
  collectDefaultMetrics({
    register: metricsRegistry,
    prefix: 'coordbus_',
    eventLoopMonitoringPrecision: 1000,
  });
}
