/**
 * Metric charts drawn with uPlot: axes with ticks and labels, step on x, hover values in the
 * legend, several series overlaid, a log-scale toggle and smoothing. Colours come from the
 * JupyterLab theme (read when drawn), so charts follow the light and dark themes.
 */

import uPlot from 'uplot';

import { alignSeries, formatMetric, IPoint, smooth } from './format';
import { el } from './dom';

export interface ISeries {
  label: string;
  points: IPoint[];
}

const PALETTE = [
  ['--jp-brand-color1', '#1976d2'],
  ['--jp-warn-color1', '#f57c00'],
  ['--jp-success-color1', '#388e3c'],
  ['--jp-error-color1', '#d32f2f'],
  ['--jp-accent-color1', '#7b1fa2'],
  ['--jp-info-color1', '#0097a7']
];

/** Redraws of the charts on screen, run when the JupyterLab theme changes. */
const redraws = new Set<() => void>();
let themeWatcher: MutationObserver | null = null;

function watchTheme(): void {
  if (themeWatcher === null) {
    themeWatcher = new MutationObserver(() => redraws.forEach(redraw => redraw()));
    themeWatcher.observe(document.body, { attributes: true, attributeFilter: ['data-jp-theme-name'] });
  }
}

function themeColour(variable: string, fallback: string): string {
  return getComputedStyle(document.body).getPropertyValue(variable).trim() || fallback;
}

/** The i-th series colour of the theme. */
export function seriesColour(i: number): string {
  const [variable, fallback] = PALETTE[i % PALETTE.length];
  return themeColour(variable, fallback);
}

/**
 * A chart of `series` (steps on x) with its controls: "log" toggles a log y-axis,
 * "smooth" applies exponential smoothing. Resizes with its container.
 */
export function metricChart(title: string, series: ISeries[], height = 160, xLabel = 'step'): HTMLElement {
  const host = el('div', { class: 'jp-cellops-uplot' });
  const log = el('input', { type: 'checkbox', 'aria-label': `Log scale for ${title}` });
  const smoothing = el('input', { type: 'range', min: '0', max: '0.95', step: '0.05', value: '0',
                                  'aria-label': `Smoothing for ${title}` });
  const figure = el('figure', { class: 'jp-cellops-chart', 'data-metric': title },
    el('figcaption', {}, el('b', {}, title),
       el('label', { class: 'jp-cellops-chart-control' }, log, ' log'),
       el('label', { class: 'jp-cellops-chart-control' }, 'smooth ', smoothing)),
    host);
  let plot: uPlot | null = null;
  const draw = () => {
    plot?.destroy();
    const width = Math.max(160, host.clientWidth || figure.clientWidth || 300);
    const [xs, ...ys] = alignSeries(series.map(s => s.points));
    const weight = Number(smoothing.value);
    const data: uPlot.AlignedData = [xs, ...ys.map(y => smooth(y, weight))];
    const axis = themeColour('--jp-ui-font-color2', '#616161');
    const grid = themeColour('--jp-border-color2', '#e0e0e0');
    const positive = ys.every(y => y.every(v => v === null || v > 0));
    plot = new uPlot({
      width,
      height,
      legend: { show: true, live: true },
      cursor: { drag: { x: true, y: false } },
      scales: { x: { time: false }, y: { distr: log.checked && positive ? 3 : 1 } },
      axes: [
        { label: xLabel, stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid },
          size: 36, labelSize: 14 },
        { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, size: 56,
          values: (_u, splits) => splits.map(v => formatMetric(v)) }
      ],
      series: [
        { label: xLabel, value: (_u, v) => (v === null || v === undefined ? '' : String(v)) },
        ...series.map((s, i) => ({
          label: s.label,
          stroke: seriesColour(i),
          width: 1.5,
          spanGaps: true,
          points: { show: xs.length < 40 },
          value: (_u: uPlot, v: number | null) => (v === null || v === undefined ? '–' : formatMetric(v))
        }))
      ]
    }, data, host);
  };
  log.onchange = draw;
  smoothing.oninput = draw;
  watchTheme();
  redraws.add(draw);
  // Drawn once attached (it needs a width), and again when the container is resized.
  const observer = new ResizeObserver(() => {
    if (!host.isConnected) {  // replaced by a re-render: let it go
      observer.disconnect();
      redraws.delete(draw);
      plot?.destroy();
      plot = null;
    } else if (!plot || Math.abs(plot.width - host.clientWidth) > 4) {
      draw();
    }
  });
  observer.observe(host);
  requestAnimationFrame(() => host.isConnected && !plot && draw());
  return figure;
}
