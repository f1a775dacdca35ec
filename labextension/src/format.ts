/**
 * Pure helpers for the sidebar: formatting (the same rules as cellops.display in Python),
 * query strings, column choice, chart data and the polling backoff. No JupyterLab
 * imports, so the unit tests run under plain Node.
 */

/** A metric value as the REST API sends it: a number, or "NaN" / "Infinity" / "-Infinity". */
export type MetricValue = number | string | null | undefined;

/**
 * A number for people: 4 significant digits, thousands separators, whole numbers without
 * decimals, exponents only when huge or tiny; NaN and infinities readable.
 */
export function formatMetric(value: MetricValue, digits = 4): string {
  if (value === null || value === undefined || value === '') {
    return '';
  }
  if (typeof value === 'string') {
    return value === 'Infinity' ? '∞' : value === '-Infinity' ? '-∞' : value;
  }
  if (!isFinite(value)) {
    return isNaN(value) ? 'NaN' : value > 0 ? '∞' : '-∞';
  }
  if (Number.isInteger(value) && Math.abs(value) < 1e15) {
    return value.toLocaleString('en-US');
  }
  const abs = Math.abs(value);
  if (abs >= 1e15 || abs < 1e-4) {
    return value.toExponential(digits - 1);
  }
  const decimals = Math.max(0, digits - 1 - Math.floor(Math.log10(abs)));
  const text = value.toLocaleString('en-US', {
    minimumFractionDigits: 0,
    maximumFractionDigits: Math.min(20, decimals)
  });
  return text;
}

/** Bytes as people read them: "812 bytes", "2.0 MB" (powers of 1000, as cellops' CLI). */
export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !isFinite(n)) {
    return '';
  }
  if (n < 1000) {
    return `${n} byte${n === 1 ? '' : 's'}`;
  }
  let size = n;
  for (const unit of ['kB', 'MB', 'GB', 'TB', 'PB']) {
    size /= 1000;
    if (size < 1000 || unit === 'PB') {
      return `${size.toFixed(1)} ${unit}`;
    }
  }
  return `${n} bytes`;
}

/** Seconds as "850 ms", "12.3 s", "4m 05s", "2h 03m" (as the CLI prints them). */
/** A request rate as the sidebar shows it: "0 req/s", "0.2 req/s", "12 req/s", "1.3k req/s". */
export function formatRate(perSecond: number | null | undefined): string {
  if (perSecond === null || perSecond === undefined || !isFinite(perSecond) || perSecond <= 0) {
    return '0 req/s';
  }
  if (perSecond >= 1000) {
    return `${(perSecond / 1000).toFixed(1)}k req/s`;
  }
  if (perSecond >= 10) {
    return `${Math.round(perSecond)} req/s`;
  }
  return `${Number(perSecond.toPrecision(2))} req/s`;
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) {
    return '';
  }
  if (seconds < 1) {
    return `${Math.round(seconds * 1000)} ms`;
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

/**
 * The one metric a narrow list shows: the one it is sorted by, else the one the user
 * picked if runs on the page have it, else the most common on the page; null when the
 * page has none. A metric no listed run has is never chosen (its column would be blank).
 */
export function keyMetric(runs: { metrics: Record<string, MetricValue> }[], orderBy: string | null,
                          picked: string | null = null): string | null {
  const sorted = /^metrics\.(?:`([^`]+)`|(\S+))/.exec(orderBy || '');
  if (sorted) {
    return sorted[1] || sorted[2];
  }
  const present = keyMetrics(runs, Infinity);
  if (picked && present.includes(picked)) {
    return picked;
  }
  return present[0] || null;
}

/**
 * A filter error as the server words it ("message", then the filter and a caret line
 * under the offending character) split into the message and the excerpt with the
 * offending position, so a narrow box can wrap both and still mark the right character.
 */
export function splitCaret(message: string): { message: string; excerpt: string; at: number } | null {
  const lines = message.split('\n');
  if (lines.length < 3) {
    return null;
  }
  const caretLine = lines[lines.length - 1];
  const excerptLine = lines[lines.length - 2];
  if (!/^ *\^$/.test(caretLine) || !excerptLine.startsWith('  ')) {
    return null;
  }
  return { message: lines.slice(0, -2).join('\n'), excerpt: excerptLine.slice(2),
           at: caretLine.indexOf('^') - 2 };
}

/** The param keys whose values differ across the runs (a key some runs lack counts as
 * differing only when at least two runs have it), most-varied first, then the rest. */
export function varyingParams(runs: { params: Record<string, string> }[]): { varying: string[]; same: string[] } {
  const values = new Map<string, Set<string>>();
  for (const run of runs) {
    for (const [key, value] of Object.entries(run.params || {})) {
      if (!values.has(key)) {
        values.set(key, new Set());
      }
      values.get(key)!.add(sameValueKey(value));
    }
  }
  const varying: string[] = [];
  const same: string[] = [];
  for (const [key, set] of [...values.entries()].sort((a, b) => b[1].size - a[1].size || a[0].localeCompare(b[0]))) {
    (set.size > 1 ? varying : same).push(key);
  }
  return { varying, same };
}

/** The param columns of the runs grid: every param key (varying ones first, then those
 * all runs share) and the ones shown — the user's `chosen` keys in that order, or by
 * default the first `n` varying ones (the columns that tell runs apart). */
export function paramColumns(
  runs: { params: Record<string, string> }[], chosen: ReadonlySet<string> | null, n = 6
): { all: string[]; shown: string[] } {
  const { varying, same } = varyingParams(runs);
  const all = [...varying, ...same];
  return { all, shown: chosen ? all.filter(k => chosen.has(k)) : varying.slice(0, n) };
}

/** Whether a row of a compare table is a real difference: the runs that have the key
 * disagree. A key only some runs have is shown as missing there, not as a difference. */
export function differs(values: (string | MetricValue | boolean)[]): boolean {
  const present = values.filter(v => v !== undefined && v !== null && v !== '');
  return new Set(present.map(v => sameValueKey(v))).size > 1;
}

/**
 * What makes two logged values one value when runs are compared (as cellops.display's
 * same_value_key does): a number or boolean however written (`0`, `0.0`, `False`; `1e3`
 * and `1000`) is that number; other text is itself, and `00501` stays text.
 */
export function sameValueKey(value: unknown): string {
  if (value === null || value === undefined) {
    return '';
  }
  if (typeof value === 'boolean') {
    return `n:${Number(value)}`;
  }
  if (typeof value === 'number') {
    return Number.isNaN(value) ? 'nan' : `n:${value}`;
  }
  const text = String(value).trim();
  const lower = text.toLowerCase();
  if (lower === 'true' || lower === 'false') {
    return `n:${lower === 'true' ? 1 : 0}`;
  }
  if (lower === 'nan') {
    return 'nan';
  }
  if (/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text) && !/^[+-]?0\d/.test(text)) {
    return `n:${Number(text)}`;
  }
  return `t:${text}`;
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
 * Several series of points as one table uPlot can draw: the union of their steps on x
 * (sorted), one y array per series with null where a series has no finite point.
 */
export function alignSeries(series: IPoint[][]): [number[], ...(number | null)[][]] {
  const steps = [...new Set(series.flatMap(points => points.map(p => p.step)))].sort((a, b) => a - b);
  const index = new Map(steps.map((s, i) => [s, i]));
  const ys = series.map(points => {
    const y: (number | null)[] = new Array(steps.length).fill(null);
    for (const p of points) {
      if (typeof p.value === 'number' && isFinite(p.value)) {
        y[index.get(p.step)!] = p.value;
      }
    }
    return y;
  });
  return [steps, ...ys];
}

/** Exponential smoothing (as TensorBoard's slider): weight 0 is the raw values. */
export function smooth(values: (number | null)[], weight: number): (number | null)[] {
  if (weight <= 0) {
    return values;
  }
  let last: number | null = null;
  return values.map(v => {
    if (v === null) {
      return null;
    }
    last = last === null ? v : last * weight + (1 - weight) * v;
    return last;
  });
}

/** Metric keys grouped for overlaying: `train_loss`, `val_loss` and `loss` share the chart
 * "loss"; `loss/train` and `loss/val` share "loss". Keys in no group stand alone. */
export function metricGroups(keys: string[]): Map<string, string[]> {
  const stem = (key: string): string => {
    const m = /^(?:train|training|val|valid|validation|test|eval)[_./-](.+)$/.exec(key) ||
      /^(.+?)[_./-](?:train|training|val|valid|validation|test|eval)$/.exec(key);
    return m ? m[1] : key;
  };
  const groups = new Map<string, string[]>();
  for (const key of [...keys].sort()) {
    const s = stem(key);
    groups.set(s, [...(groups.get(s) || []), key]);
  }
  return groups;
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
