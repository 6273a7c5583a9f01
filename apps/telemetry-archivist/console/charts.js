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

/**
 * A small chart of recent rates (per second) over time: `t` in epoch ms, each series one line
 * (`null` is a gap). The largest value and the number of points are on the element, for tests and
 * for the tooltip.
 */
export function Sparkline({ t, series, width = 160, height = 34 }) {
  const ref = useRef(null);
  const max = Math.max(0, ...series.flatMap((s) => s.values.filter((v) => v !== null)));
  const key = JSON.stringify([t.length ? t[t.length - 1] : 0, series.map((s) => s.values)]);
  useEffect(() => {
    const plot = new uPlot(
      {
        width,
        height,
        cursor: { show: false },
        legend: { show: false },
        select: { show: false },
        scales: { x: { time: true }, y: { range: (_u, _min, hi) => [0, Math.max(1, hi)] } },
        axes: [{ show: false }, { show: false }],
        series: [
          {},
          ...series.map((s) => ({
            label: s.label,
            stroke: s.stroke,
            fill: s.fill,
            width: 1,
            spanGaps: false,
          })),
        ],
      },
      [t.map((ms) => ms / 1000), ...series.map((s) => s.values)],
      ref.current,
    );
    return () => plot.destroy();
  }, [key, width, height]);
  const title = series
    .map(
      (s) =>
        `${s.label}: ${fmtRate(last(s.values))}/s now, ${fmtRate(Math.max(0, ...s.values.filter((v) => v !== null)))}/s peak`,
    )
    .join('\n');
  return html`<span class="spark" ref=${ref} title=${title} data-points=${t.length} data-max=${max}></span>`;
}

function last(values) {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null) return values[i];
  return 0;
}

function fmtRate(v) {
  return v >= 100 ? Math.round(v).toString() : v.toFixed(1);
}
