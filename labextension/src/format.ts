/**
 * Pure helpers for the sidebar: formatting, query strings, chart geometry and the
 * polling backoff. No JupyterLab imports, so the unit tests run under plain Node.
 */

/** A metric value as the REST API sends it: a number, or "NaN" / "Infinity" / "-Infinity". */
export type MetricValue = number | string | null | undefined;

export function formatMetric(value: MetricValue): string {
  if (value === null || value === undefined || value === '') {
    return '';
  }
  if (typeof value === 'string') {
    return value === 'Infinity' ? '∞' : value === '-Infinity' ? '-∞' : value;
  }
  if (Number.isInteger(value)) {
    return String(value);
  }
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) {
    return value.toExponential(3);
  }
  return String(Number(value.toPrecision(4)));
}

/** Seconds as "0.4 s", "12.3 s", "4m 05s", "2h 03m". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) {
    return '';
  }
  if (seconds < 60) {
    return `${seconds.toFixed(1)} s`;
  }
  const total = Math.floor(seconds);
  const minutes = Math.floor(total / 60);
  if (minutes < 60) {
    return `${minutes}m ${String(total % 60).padStart(2, '0')}s`;
  }
  return `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, '0')}m`;
}

/** An ISO time as "just now", "5 min ago", "3 h ago", or a date when older than a day. */
export function formatWhen(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) {
    return '';
  }
  const t = Date.parse(iso);
  if (isNaN(t)) {
    return iso;
  }
  const s = Math.max(0, (now - t) / 1000);
  if (s < 45) {
    return 'just now';
  }
  if (s < 3600) {
    return `${Math.round(s / 60)} min ago`;
  }
  if (s < 86400) {
    return `${Math.round(s / 3600)} h ago`;
  }
  return new Date(t).toISOString().slice(0, 16).replace('T', ' ');
}

/** CSS modifier for a run or step status: one of ok, failed, running, killed, cached, skipped, idle. */
export function statusClass(status: string | null | undefined): string {
  switch ((status || '').toUpperCase()) {
    case 'FINISHED':
    case 'RAN':
      return 'ok';
    case 'FAILED':
      return 'failed';
    case 'RUNNING':
      return 'running';
    case 'KILLED':
      return 'killed';
    case 'CACHED':
      return 'cached';
    case 'SKIPPED':
    case 'NOT RUN':
      return 'skipped';
    default:
      return 'idle';
  }
}

export interface IRunsQuery {
  experiment?: string | null;
  filter?: string | null;
  orderBy?: string | null;
  kinds?: string[];
  limit: number;
  offset: number;
}

/** The query string of `GET runs` (empty values left out). */
export function runsQuery(q: IRunsQuery): string {
  const params = new URLSearchParams();
  if (q.experiment) {
    params.set('experiment', q.experiment);
  }
  if (q.filter && q.filter.trim()) {
    params.set('filter', q.filter.trim());
  }
  if (q.orderBy) {
    params.set('order_by', q.orderBy);
  }
  for (const kind of q.kinds || []) {
    params.append('kind', kind);
  }
  params.set('limit', String(q.limit));
  params.set('offset', String(q.offset));
  return params.toString();
}

/** The order_by a click on a column gives: the same column flips direction, a new one sorts DESC. */
export function toggleOrder(current: string | null, column: string): string {
  const [col, dir] = (current || '').split(/\s+/);
  if (col === column) {
    return `${column} ${dir === 'DESC' ? 'ASC' : 'DESC'}`;
  }
  return `${column} DESC`;
}

/** The metric keys to show as table columns: the most common on the page first, at most `n`. */
export function keyMetrics(runs: { metrics: Record<string, MetricValue> }[], n = 4): string[] {
  const counts = new Map<string, number>();
  for (const run of runs) {
    for (const key of Object.keys(run.metrics || {})) {
      counts.set(key, (counts.get(key) || 0) + 1);
    }
  }
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, n)
    .map(([key]) => key);
}

/** "1–50 of 1,234" for a page of results. */
export function pageLabel(offset: number, count: number, total: number): string {
  if (total === 0) {
    return '0 runs';
  }
  return `${(offset + 1).toLocaleString('en-US')}–${(offset + count).toLocaleString('en-US')} of ${total.toLocaleString('en-US')}`;
}

export interface IPoint {
  step: number;
  value: MetricValue;
}

/**
 * An SVG path ("M x y L x y ...") drawing the finite values of `points` in a `width` x
 * `height` box with `pad` pixels of margin; null when fewer than one finite point.
 */
export function chartPath(points: IPoint[], width: number, height: number, pad = 4): string | null {
  const finite = points.filter(p => typeof p.value === 'number' && isFinite(p.value)) as {
    step: number;
    value: number;
  }[];
  if (finite.length === 0) {
    return null;
  }
  const xs = finite.map(p => p.step);
  const ys = finite.map(p => p.value);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (x: number) => pad + (x1 === x0 ? (width - 2 * pad) / 2 : ((x - x0) / (x1 - x0)) * (width - 2 * pad));
  const sy = (y: number) => height - pad - (y1 === y0 ? (height - 2 * pad) / 2 : ((y - y0) / (y1 - y0)) * (height - 2 * pad));
  return finite
    .map((p, i) => `${i === 0 ? 'M' : 'L'}${sx(p.step).toFixed(1)} ${sy(p.value).toFixed(1)}`)
    .join(' ');
}

/**
 * Polling delays: `base` while data changes, doubling (up to `max`) while nothing changes
 * or requests fail; any change or a user action resets it.
 */
export class Backoff {
  constructor(readonly base = 2000, readonly max = 60000) {
    this.delay = base;
  }

  delay: number;

  /** The delay before the next poll, given what the last one saw. */
  next(outcome: 'changed' | 'same' | 'error'): number {
    this.delay = outcome === 'changed' ? this.base : Math.min(this.max, this.delay * 2);
    return this.delay;
  }

  reset(): void {
    this.delay = this.base;
  }
}
