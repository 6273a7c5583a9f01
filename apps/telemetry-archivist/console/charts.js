// Charts: uPlot (no hand-written chart code).
import uPlot from 'uplot';
import { html } from 'htm/preact';
import { useEffect, useRef } from 'preact/hooks';

/** A scatter of durations over time for one telemetry stage. */
export function StageChart({ title, points, width = 640, height = 180 }) {
  const ref = useRef(null);
  useEffect(() => {
    const xs = points.map((p) => p[0] / 1000);
    const stall = points.map((p) => (p[2] === 'stall' ? p[1] : null));
    const degraded = points.map((p) => (p[2] !== 'stall' ? p[1] : null));
    const plot = new uPlot(
      {
        title,
        width,
        height,
        series: [
          {},
          {
            label: 'stall (ms)',
            stroke: '#ef4444',
            fill: '#ef444433',
            points: { show: true, size: 6 },
            paths: () => null,
          },
          { label: 'degraded (ms)', stroke: '#f59e0b', points: { show: true, size: 6 }, paths: () => null },
        ],
        axes: [{ stroke: '#9ca3af' }, { stroke: '#9ca3af' }],
        legend: { show: true },
      },
      [xs, stall, degraded],
      ref.current,
    );
    return () => plot.destroy();
  }, [title, points, width, height]);
  return html`<div class="chart" ref=${ref}></div>`;
}

/** A tiny line of recent rates (entries/s) for a stream. */
export function Sparkline({ values, width = 140, height = 32 }) {
  const ref = useRef(null);
  useEffect(() => {
    const xs = values.map((_, i) => i);
    const plot = new uPlot(
      {
        width,
        height,
        cursor: { show: false },
        legend: { show: false },
        select: { show: false },
        scales: { x: { time: false } },
        axes: [{ show: false }, { show: false }],
        series: [{}, { stroke: '#60a5fa', fill: '#60a5fa33', width: 1 }],
      },
      [xs, values],
      ref.current,
    );
    return () => plot.destroy();
  }, [values.join(','), width, height]);
  return html`<span class="spark" ref=${ref}></span>`;
}
