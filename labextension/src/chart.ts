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

/** What a chart can draw besides its series. */
export interface IChartOptions {
  /** A dashed horizontal line at this value (a check's threshold). */
  threshold?: { value: number; label: string };
  /** Steps to mark with a red point on the first series (failing windows). */
  marked?: number[];
  /** Labels of x = 0, 1, 2, ... (categories or bins) instead of the numbers. */
  xLabels?: string[];
}

/** The exact value, as hovering shows it (the axes show it rounded to 4 significant digits). */
function exact(v: number | null | undefined): string {
  return v === null || v === undefined ? '–' : Number.isInteger(v) ? v.toLocaleString('en-US') : String(v);
}

/**
 * A chart of `series` (steps on x) with its controls: "log" toggles a log y-axis,
 * "smooth" applies exponential smoothing. Resizes with its container. Axes have at least
 * three ticks, rounded to 4 significant digits; hovering shows exact values.
 */
export function metricChart(title: string, series: ISeries[], height = 160, xLabel = 'step',
                            options: IChartOptions = {}): HTMLElement {
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
    const extra: (number | null)[][] = [];
    const extraSeries: uPlot.Series[] = [];
    if (options.threshold) {
      extra.push(xs.map(() => options.threshold!.value));
      extraSeries.push({ label: options.threshold.label, stroke: themeColour('--jp-error-color1', '#d32f2f'),
                         width: 1, dash: [5, 4], points: { show: false },
                         value: (_u: uPlot, v: number | null) => exact(v) });
    }
    if (options.marked && options.marked.length && ys.length) {
      const marked = new Set(options.marked);
      extra.push(xs.map((x, i) => (marked.has(x) ? ys[0][i] : null)));
      const red = themeColour('--jp-error-color1', '#d32f2f');
      extraSeries.push({ label: 'failing', stroke: red, width: 0, paths: () => null,
                         points: { show: true, size: 8, fill: red, stroke: red },
                         value: (_u: uPlot, v: number | null) => (v === null || v === undefined ? '' : 'failing') });
    }
    const data: uPlot.AlignedData = [xs, ...ys.map(y => smooth(y, weight)), ...extra];
    const xValue = (v: number | null | undefined) =>
      v === null || v === undefined ? '' : options.xLabels ? (options.xLabels[v] ?? '') : String(v);
    const longest = Math.max(0, ...(options.xLabels ?? []).map(t => t.length));
    const labelSpace = Math.max(30, 7 * longest + 12);  // about 6.5 px a character at 11 px
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
        // Named ticks (bin edges) get room for their text: never two that overlap.
        { label: xLabel, stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid },
          size: 36, labelSize: 14, space: labelSpace,
          ...(options.xLabels ? { values: (_u: uPlot, splits: number[]) => splits.map(v => xValue(v)) } : {}) },
        // `space`: at most one tick per 24 px, so even a short chart gets three or more.
        { stroke: axis, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, size: 56, space: 24,
          values: (_u, splits) => splits.map(v => formatMetric(v)) }
      ],
      series: [
        { label: xLabel, value: (_u, v) => xValue(v) },
        ...series.map((s, i) => ({
          label: s.label,
          stroke: seriesColour(i),
          width: 1.5,
          spanGaps: true,
          points: { show: xs.length < 40 },
          value: (_u: uPlot, v: number | null) => exact(v)
        })),
        ...extraSeries
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
