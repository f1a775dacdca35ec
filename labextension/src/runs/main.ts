/**
 * The runs view in JupyterLab's main area: the whole table (every key metric, the params
 * that vary, the experiment when several are shown), rows ticked to compare, and the
 * comparison: params and metrics side by side (only real differences marked) and each
 * metric's history overlaid across the runs.
 */

import { Widget } from '@lumino/widgets';

import { metricChart } from '../chart';
import { badge, button, el } from '../dom';
import {
  differs,
  formatDuration,
  formatMetric,
  formatWhen,
  keyMetrics,
  metricGroups,
  pageLabel,
  paramColumns,
  toggleOrder
} from '../format';
import { IRunDetail, IRunSummary, RunsModel } from './model';
import { DEFAULT_PARAMS_TAG, errorBox, toolbar } from './parts';

export class RunsMainView extends Widget {
  /** The param columns the user picked (null: the default, the params that vary). */
  private chosenParams: Set<string> | null = null;
  /** Whether the compare view lists params left at their defaults too. */
  private allParams = false;
  private pickerOpen = false;

  constructor(readonly model: RunsModel, private readonly openRun: (runId: string) => void) {
    super();
    this.id = 'cellops-runs-view';
    this.addClass('jp-cellops-main');
    this.title.label = 'cellops runs';
    this.title.closable = true;
    model.changed.connect(() => this.render(), this);
    this.render();
  }

  protected onAfterShow(): void {
    this.model.poller.setActive(true);
  }

  protected onAfterHide(): void {
    this.model.poller.setActive(false);
  }

  protected onAfterAttach(): void {
    this.model.poller.setActive(this.isVisible);
  }

  protected onBeforeDetach(): void {
    this.model.poller.setActive(false);
  }

  dispose(): void {
    this.model.dispose();
    super.dispose();
  }

  render(): void {
    const m = this.model;
    const focused = document.activeElement as HTMLElement | null;
    const refocus = focused && this.node.contains(focused) ? focused.dataset.focusKey : undefined;
    const compare = button(`Compare (${m.selected.size})`, () => this.node.querySelector('.jp-cellops-compare')
      ?.scrollIntoView({ behavior: 'smooth' }), { class: 'jp-cellops-compare-button' }, 'accept');
    compare.disabled = m.selected.size < 2;
    const clear = button('Clear', () => m.clearSelection(), { class: 'jp-cellops-clear' });
    clear.disabled = m.selected.size === 0;
    this.node.replaceChildren(
      toolbar(m, [compare, clear, this.columnPicker()]),
      errorBox(m) || el('span'),
      this.table(),
      m.selected.size >= 2 ? this.comparison([...m.selected.values()].filter(Boolean) as IRunDetail[]) :
        el('p', { class: 'jp-cellops-hint' }, 'Tick two or more runs to compare them.'));
    if (refocus) {
      (this.node.querySelector(`[data-focus-key="${refocus}"]`) as HTMLInputElement | null)?.focus();
    }
  }

  private table(): HTMLElement {
    const m = this.model;
    const runs: IRunSummary[] = m.runs.flatMap(r => [r, ...(m.children.get(r.run_id) || [])]);
    if (runs.length === 0) {
      return el('p', { class: 'jp-cellops-empty' }, m.filter ? 'No run matches this filter.' : 'No runs yet.');
    }
    const metrics = keyMetrics(runs, 8);
    const params = paramColumns(runs, this.chosenParams).shown;
    const showExperiment = !m.experiment;
    const current = m.orderBy || 'attributes.start_time DESC';
    const [orderCol, orderDir] = current.split(/\s+/);
    const th = (label: string, column: string | null, cls = '') => {
      const arrow = column && column === orderCol ? (orderDir === 'ASC' ? ' ▲' : ' ▼') : '';
      const cell = el('th', { class: `${column ? 'jp-cellops-sortable' : ''} ${cls}`.trim() }, label, arrow);
      if (column) {
        cell.title = `Sort by ${label}`;
        cell.onclick = () => m.setOrder(toggleOrder(current, column));
      }
      return cell;
    };
    const head = el('tr', {},
      th('', null, 'jp-cellops-sticky jp-cellops-check'),
      th('run', 'attributes.run_name', 'jp-cellops-sticky jp-cellops-first'),
      th('status', 'attributes.status'),
      showExperiment ? th('experiment', 'attributes.experiment') : null,
      th('kind', 'attributes.kind'),
      th('started', 'attributes.start_time'),
      th('duration', null),
      ...metrics.map(k => th(k, `metrics.\`${k}\``, 'jp-cellops-num')),
      ...params.map(k => th(k, `params.\`${k}\``)));
    const rows = runs.map(run => {
      const box = el('input', { type: 'checkbox', 'aria-label': `Compare ${run.name || run.run_id.slice(0, 8)}` });
      box.checked = m.selected.has(run.run_id);
      box.onclick = e => e.stopPropagation();
      box.onchange = () => void m.toggleSelected(run.run_id);
      const tr = el('tr', { class: `jp-cellops-run${run.parent_run_id ? ' jp-cellops-child' : ''}`, 'data-run-id': run.run_id },
        el('td', { class: 'jp-cellops-sticky jp-cellops-check' }, box),
        el('td', { class: 'jp-cellops-sticky jp-cellops-first', title: run.run_id },
           run.name || run.run_id.slice(0, 8), el('small', {}, ` ${run.run_id.slice(0, 8)}`)),
        el('td', {}, badge(run.status)),
        showExperiment ? el('td', {}, run.experiment) : null,
        el('td', {}, run.kind),
        el('td', { title: run.start_time }, formatWhen(run.start_time)),
        el('td', { class: 'jp-cellops-num' }, formatDuration(run.duration_s)),
        ...metrics.map(k => el('td', { class: 'jp-cellops-num' }, formatMetric(run.metrics[k]))),
        ...params.map(k => el('td', {}, run.params[k] ?? '—')));
      tr.ondblclick = () => this.openRun(run.run_id);
      return tr;
    });
    const prev = button('‹ Newer', () => m.setOffset(m.offset - m.pageSize), { class: 'jp-cellops-prev' });
    prev.disabled = m.offset === 0;
    const next = button('Older ›', () => m.setOffset(m.offset + m.pageSize), { class: 'jp-cellops-next' });
    next.disabled = m.offset + m.runs.length >= m.total;
    return el('div', { class: `jp-cellops-results${m.stale ? ' jp-mod-stale' : ''}` },
      el('div', { class: 'jp-cellops-scroll' },
         el('table', { class: 'jp-cellops-table jp-cellops-wide' }, el('thead', {}, head), el('tbody', {}, ...rows))),
      el('div', { class: 'jp-cellops-pager' }, prev, el('span', {}, pageLabel(m.offset, m.runs.length, m.total)), next));
  }

  /** "Params ▾": a checkbox per param key of the page (varying ones first), to show the
   * others on demand or hide some; "Default" goes back to the varying ones. */
  private columnPicker(): HTMLElement {
    const runs: IRunSummary[] = this.model.runs.flatMap(r => [r, ...(this.model.children.get(r.run_id) || [])]);
    const { all, shown } = paramColumns(runs, this.chosenParams);
    const picker = el('details', { class: 'jp-cellops-columns' },
      el('summary', { class: 'jp-Button jp-mod-styled jp-mod-minimal' }, `Params (${shown.length}/${all.length})`));
    picker.open = this.pickerOpen;
    picker.ontoggle = () => { this.pickerOpen = picker.open; };
    const list = el('div', { class: 'jp-cellops-columns-list' });
    for (const key of all) {
      const box = el('input', { type: 'checkbox', 'data-focus-key': `param-column-${key}` });
      box.checked = shown.includes(key);
      box.onchange = () => {
        const next = new Set(paramColumns(runs, this.chosenParams).shown);
        box.checked ? next.add(key) : next.delete(key);
        this.chosenParams = next;
        this.render();
      };
      list.append(el('label', {}, box, ` ${key}`));
    }
    const reset = button('Default', () => { this.chosenParams = null; this.render(); }, { class: 'jp-cellops-columns-reset' });
    reset.disabled = this.chosenParams === null;
    list.append(reset);
    picker.append(all.length ? list : el('div', { class: 'jp-cellops-columns-list' }, 'No params on this page.'));
    return picker;
  }

  private comparison(runs: IRunDetail[]): HTMLElement {
    const label = (r: IRunDetail) => `${r.name || 'run'} ${r.run_id.slice(0, 8)}`;
    // Params an estimator left at its class default (autologged) in every run that has
    // them, and equal across runs, are folded away unless the user asks for all.
    const defaults = runs.map(r => new Set((r.tags[DEFAULT_PARAMS_TAG] || '').split(',').filter(Boolean)));
    const table = (title: string, kind: 'params' | 'metrics') => {
      const keys = [...new Set(runs.flatMap(r => Object.keys(r[kind] || {})))].sort();
      if (keys.length === 0) {
        return null;
      }
      const num = kind === 'metrics' ? 'jp-cellops-num' : '';
      let folded = 0;
      const rows = keys.flatMap(k => {
        const values = runs.map(r => (r[kind] as Record<string, any>)[k]);
        const diff = differs(values);
        const isDefault = kind === 'params' && !diff &&
          runs.every((r, i) => !(k in r.params) || defaults[i].has(k));
        if (isDefault && !this.allParams) {
          folded += 1;
          return [];
        }
        return [el('tr', { class: diff ? 'jp-cellops-differs' : '' }, el('th', {}, k),
          ...values.map(v => el('td', { class: num },
                                v === undefined ? el('span', { class: 'jp-cellops-missing' }, '—') :
                                  kind === 'metrics' ? formatMetric(v) : String(v))))];
      });
      const toggle = kind === 'params' && (folded || this.allParams) ?
        button(this.allParams ? 'Hide the defaults' : `Show all (${folded} at their defaults)`, () => {
          this.allParams = !this.allParams;
          this.render();
        }, { class: 'jp-cellops-all-params', title: 'Params an estimator left at its class default, the same in every run' }) : null;
      return el('section', {}, el('h3', {}, title),
        el('table', { class: 'jp-cellops-table jp-cellops-kv' },
           el('thead', {}, el('tr', {}, el('th', {}), ...runs.map(r => el('th', { class: num }, label(r))))),
           el('tbody', {}, ...rows)),
        toggle);
    };
    const keys = [...new Set(runs.flatMap(r => Object.keys(r.metric_history || {})))]
      .filter(k => runs.some(r => (r.metric_history[k] || []).length > 1));
    const charts = [...metricGroups(keys).entries()].map(([group, members]) => metricChart(
      group, runs.flatMap(r => members.filter(k => r.metric_history[k]).map(k => ({
        label: members.length > 1 ? `${label(r)} ${k}` : label(r), points: r.metric_history[k] })))));
    return el('div', { class: 'jp-cellops-compare' },
      el('h2', {}, `Comparing ${runs.length} runs`),
      table('Parameters', 'params'),
      table('Metrics', 'metrics'),
      charts.length ? el('section', {}, el('h3', {}, 'Metric histories'),
                         el('div', { class: 'jp-cellops-chart-grid' }, ...charts)) : null);
  }
}
