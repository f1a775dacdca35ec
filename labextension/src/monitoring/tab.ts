/** The Monitoring tab: each monitor with its state, its drift share and performance over
 * windows (uPlot charts with hover values), and the alerts not resolved yet, with
 * Acknowledge / Resolve and links to what retraining did (pipeline run, version, request). */

import { bellIcon } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import { ISignal, Signal } from '@lumino/signaling';

import { metricChart } from '../chart';
import { alertBox, button, el, statusDot } from '../dom';
import { formatMetric, formatWhen } from '../format';
import { requestAPI } from '../handler';
import { Poller } from '../poller';
import { PollingTab } from '../tab';
import { CommandIDs } from '../tokens';

export interface ICheck {
  type: string;
  name: string;
  metric?: string;
  min?: number;
  max?: number;
  share?: number;
}

export interface IColumnDrift {
  test: string | null;
  statistic: number | null;
  threshold: number | null;
  value_kind: 'p_value' | 'distance' | null;
  drifted: boolean;
}

export interface IDistribution {
  labels: string[];
  reference: number[];
  current: number[];
}

export interface ICheckResult {
  name: string;
  type: string;
  passed: boolean | null;
  details?: { columns?: Record<string, IColumnDrift>; distributions?: Record<string, IDistribution> };
}

export interface IResult {
  id: number;
  window_end: number;
  rows: number;
  status: string;
  drift_share: number | null;
  checks: ICheckResult[];
  metrics: Record<string, { value?: number; lower?: number; upper?: number; realized?: number | null }>;
}

export interface IMonitor {
  name: string;
  model: string;
  state: string;
  window: string;
  checks: ICheck[];
  results: IResult[];
}

export interface IAlertAction {
  kind: string;
  status?: string;
  pipeline_run?: string;
  version?: number;
  model?: string;
  request?: number;
  error?: string;
}

export interface IAlert {
  id: number;
  monitor: string;
  check: string;
  state: string;
  message: string;
  windows: number;
  opened_at: string;
  acknowledged_by: string | null;
  actions: IAlertAction[];
}

export class MonitoringModel {
  constructor() {
    this.poller = new Poller(async () => {
      const data = await requestAPI<{ monitors: IMonitor[]; alerts: IAlert[] }>('monitoring?limit=50');
      this.monitors = data.monitors || [];
      this.alerts = data.alerts || [];
      return JSON.stringify(data);
    }, () => this._changed.emit());
  }

  async move(alert: IAlert, action: 'ack' | 'resolve'): Promise<void> {
    try {
      await requestAPI(`monitoring/alerts/${alert.id}/${action}`, { method: 'POST', body: '{}' });
      this.actionError = '';
    } catch (error) {
      this.actionError = String((error as Error).message || error);
    }
    await this.poller.refresh();
    this._changed.emit();
  }

  /** The window whose drift by column a monitor shows (its id; unset: the latest). */
  shownWindow = new Map<string, number>();
  /** Windows fetched in full (with their distributions), by monitor and result id. */
  windows = new Map<string, IResult>();

  /** Show the drift by column of one of a monitor's windows, fetching its distributions. */
  async showWindow(monitor: string, resultId: number): Promise<void> {
    this.shownWindow.set(monitor, resultId);
    this._changed.emit();
    if (!this.windows.has(`${monitor}/${resultId}`)) {
      try {
        const data = await requestAPI<{ results: IResult[] }>(
          `monitoring/monitors/${encodeURIComponent(monitor)}?limit=1000`);
        for (const r of data.results || []) {
          this.windows.set(`${monitor}/${r.id}`, r);
        }
        this.actionError = '';
      } catch (error) {
        this.actionError = String((error as Error).message || error);
      }
      this._changed.emit();
    }
  }

  readonly poller: Poller;
  monitors: IMonitor[] = [];
  alerts: IAlert[] = [];
  actionError = '';

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  private _changed = new Signal<this, void>(this);
}

const STATE_CLASS: Record<string, string> = {
  alerting: 'failed', failing: 'failed', error: 'failed', open: 'failed', ok: 'ok', resolved: 'ok',
  empty: 'killed', acknowledged: 'killed', new: 'running', drifted: 'failed'
};

function stateBadge(state: string): HTMLElement {
  return el('span', { class: `jp-cellops-badge jp-cellops-badge-${STATE_CLASS[state] || 'running'}` }, state);
}

export class MonitoringTab extends PollingTab<MonitoringModel> {
  readonly key = 'monitoring';
  readonly label = 'Monitoring';
  readonly icon = bellIcon;
  readonly rank = 400;

  constructor(model: MonitoringModel, private readonly commands: CommandRegistry) {
    super(model);
    this.addClass('jp-cellops-monitoring-tab');
    this.render();
  }

  render(): void {
    const { monitors, alerts } = this.model;
    this.renderParts(() => [
      alertBox(this.model.actionError),
      el('h3', { class: 'jp-cellops-section' }, `Open alerts (${alerts.length})`),
      alerts.length === 0
        ? el('p', { class: 'jp-cellops-empty' }, 'No open alerts.')
        : el('div', { class: 'jp-cellops-alerts' }, ...alerts.map(a => this.alert(a))),
      el('h3', { class: 'jp-cellops-section' }, 'Monitors'),
      monitors.length === 0
        ? el('p', { class: 'jp-cellops-empty' }, 'No monitors yet. Create one with cellops.create_monitor(...) or: cellops monitor apply monitors.yaml')
        : el('div', { class: 'jp-cellops-monitors' }, ...monitors.map(m => this.monitor(m)))]);
  }

  private alert(a: IAlert): HTMLElement {
    const actions = a.actions.map(x => {
      const parts: (HTMLElement | string)[] = [`${x.kind}: ${x.status || ''}`];
      if (x.pipeline_run) {
        const run = x.pipeline_run;
        parts.push(button(`pipeline run ${run.slice(0, 8)}`, () => {
          void this.commands.execute(CommandIDs.openRun, { runId: run });
        }, { class: 'jp-cellops-link', title: 'The retraining pipeline run' }));
      }
      if (x.version) {
        parts.push(` ${x.model} v${x.version}`);
      }
      if (x.request) {
        parts.push(el('span', { class: 'jp-cellops-request', title: 'Approve it in the Registry tab' },
          ` · promotion request #${x.request}`));
      }
      if (x.error) {
        parts.push(el('span', { class: 'jp-cellops-note' }, ` ${x.error}`));
      }
      return el('li', {}, ...parts);
    });
    return el('article', { class: 'jp-cellops-alert', 'data-alert-id': String(a.id) },
      el('header', {}, stateBadge(a.state), ' ', el('b', {}, `${a.monitor} · ${a.check}`),
         el('small', {}, ` #${a.id} · ${formatWhen(a.opened_at)} · ${a.windows} window(s)`)),
      el('p', { class: 'jp-cellops-note' }, a.message,
         a.acknowledged_by ? ` — acknowledged by ${a.acknowledged_by}` : ''),
      actions.length ? el('ul', { class: 'jp-cellops-actions' }, ...actions) : el('span'),
      el('div', {},
        a.state === 'open' ? button('Acknowledge', () => void this.model.move(a, 'ack'),
                                    { class: 'jp-cellops-ack', title: 'Say someone is on it' }) : el('span'),
        button('Resolve', () => void this.model.move(a, 'resolve'), { class: 'jp-cellops-resolve' })));
  }

  private monitor(m: IMonitor): HTMLElement {
    const charts: HTMLElement[] = [];
    const drift = m.checks.find(c => c.type === 'drift' && c.share !== undefined);
    const points = (f: (r: IResult, i: number) => number | null | undefined) =>
      m.results.map((r, i) => ({ step: i + 1, value: f(r, i) ?? null }));
    const failing = m.results.map((r, i) => (r.status === 'failing' ? i + 1 : 0)).filter(Boolean);
    if (drift && m.results.some(r => r.drift_share !== null)) {
      charts.push(metricChart(`${m.name}: drift share`,
        [{ label: 'drift share', points: points(r => r.drift_share) }], 140, 'window',
        { threshold: { value: drift.share as number, label: `fails at ${drift.share}` }, marked: failing }));
    }
    for (const check of m.checks.filter(c => c.type.endsWith('performance'))) {
      const get = (k: 'value' | 'lower' | 'upper' | 'realized') => points(r => r.metrics[check.name]?.[k] ?? null);
      const series = [{ label: check.metric || check.name, points: get('value') }];
      if (check.type === 'estimated_performance') {
        series.push({ label: 'lower', points: get('lower') }, { label: 'upper', points: get('upper') },
                    { label: 'realised', points: get('realized') });
      }
      if (m.results.some(r => r.metrics[check.name])) {
        const bound = check.min !== undefined ? { value: check.min, label: `fails under ${check.min}` }
          : check.max !== undefined ? { value: check.max, label: `fails over ${check.max}` } : undefined;
        charts.push(metricChart(`${m.name}: ${check.name}`, series, 140, 'window',
                                { threshold: bound, marked: failing }));
      }
    }
    const last = m.results[m.results.length - 1];
    return el('article', { class: 'jp-cellops-monitor', 'data-monitor': m.name },
      el('header', {}, stateBadge(m.state), ' ', el('b', {}, m.name), el('small', {}, ` ${m.model} · every ${m.window}`)),
      el('p', { class: 'jp-cellops-note' }, last
        ? `${m.results.length} window(s); last ${formatWhen(new Date(last.window_end).toISOString())}: ${last.status}, ${last.rows} rows`
          + (last.drift_share !== null ? `, drift share ${formatMetric(last.drift_share)}` : '')
        : 'No window evaluated yet: cellops monitor run'),
      ...charts,
      this.columnDrift(m));
  }

  /** Drift by column for the latest window (or the one picked): a table of every column's
   * test, statistic, threshold and verdict, and the worst columns' distributions. */
  private columnDrift(m: IMonitor): HTMLElement | null {
    const withColumns = m.results.filter(r => (r.checks || []).some(c => c.type === 'drift' && c.details?.columns));
    if (withColumns.length === 0) {
      return null;
    }
    const pickedId = this.model.shownWindow.get(m.name);
    const listed = withColumns.find(r => r.id === pickedId) || withColumns[withColumns.length - 1];
    const result = this.model.windows.get(`${m.name}/${listed.id}`) || listed;
    const check = result.checks.find(c => c.type === 'drift' && c.details?.columns)!;
    const columns = Object.entries(check.details!.columns!);
    columns.sort((a, b) => Number(b[1].drifted) - Number(a[1].drifted) || a[0].localeCompare(b[0]));
    const picker = el('select', { class: 'jp-cellops-window-pick jp-mod-styled', 'aria-label': `Window of ${m.name}` },
      ...withColumns.map(r => {
        const o = el('option', { value: String(r.id) },
                     `window ${m.results.indexOf(r) + 1} · ${formatWhen(new Date(r.window_end).toISOString())} · ${r.status}`);
        o.selected = r.id === listed.id;
        return o;
      }));
    picker.onchange = () => void this.model.showWindow(m.name, Number(picker.value));
    const rule = (c: IColumnDrift) => c.value_kind === 'p_value' ? `p < ${formatMetric(c.threshold)}` : `≥ ${formatMetric(c.threshold)}`;
    const table = el('table', { class: 'jp-cellops-table jp-cellops-drift-columns' },
      el('thead', {}, el('tr', {}, el('th', {}, 'column'), el('th', {}, 'test'),
                       el('th', { class: 'jp-cellops-num' }, 'statistic'), el('th', {}, 'drift if'), el('th', {}, ''))),
      el('tbody', {}, ...columns.map(([name, c]) => el('tr', { 'data-column': name, class: c.drifted ? 'jp-cellops-drifted' : '' },
        el('td', { class: 'jp-cellops-column-name', title: name }, name), el('td', {}, c.test || '—'),
        el('td', { class: 'jp-cellops-num', title: c.statistic === null ? '' : String(c.statistic) }, formatMetric(c.statistic)),
        el('td', {}, c.test ? rule(c) : ''),
        el('td', {}, c.test ? statusDot(c.drifted ? 'FAILED' : 'FINISHED', c.drifted ? 'drifted' : 'no drift') : '')))));
    const distributions = Object.entries(check.details!.distributions || {}).map(([name, d]) =>
      metricChart(`${name}: reference vs current`, [
        { label: 'reference', points: d.reference.map((v, i) => ({ step: i, value: v })) },
        { label: 'current', points: d.current.map((v, i) => ({ step: i, value: v })) }],
        120, name, { xLabels: d.labels }));
    const waiting = !check.details!.distributions && result === listed && listed !== withColumns[withColumns.length - 1];
    return el('section', { class: 'jp-cellops-drift-by-column' },
      el('h4', {}, 'Drift by column ', picker),
      el('div', { class: 'jp-cellops-scroll' }, table),
      waiting ? el('p', { class: 'jp-cellops-note' }, 'Loading the distributions…') : null,
      ...distributions);
  }
}
