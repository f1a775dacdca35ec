/**
 * The Runs tab of the sidebar, made for its default width: status, name (with when and how
 * long under it), the key metric, and step runs folded under their pipeline run. "Open in
 * main area" shows every column, charts and the compare view.
 */

import { listIcon } from '@jupyterlab/ui-components';
import { button, el, statusDot } from '../dom';
import { formatDuration, formatMetric, formatWhen, keyMetric, keyMetrics, pageLabel, toggleOrder } from '../format';
import { PollingTab } from '../tab';
import { IRunSummary, PARENT_KINDS, RunsModel } from './model';
import { errorBox, runDetail, toolbar } from './parts';

export class RunsTab extends PollingTab<RunsModel> {
  readonly key = 'runs';
  readonly label = 'Runs';
  readonly icon = listIcon;
  readonly rank = 100;

  constructor(
    model: RunsModel,
    private readonly openMain: (compare?: string[]) => void,
    private readonly openArtifact: (runId: string, path: string) => Promise<void>
  ) {
    super(model);
    this.addClass('jp-cellops-runs-tab');
    this.render();
  }

  render(): void {
    const m = this.model;
    const focused = document.activeElement as HTMLElement | null;
    const refocus = focused && this.node.contains(focused) ? focused.dataset.focusKey : undefined;
    let body: HTMLElement;
    const error = m.error;
    if (error && error.noWorkspace) {
      body = el('div', { class: 'jp-cellops-empty' }, el('p', {}, el('b', {}, 'No runs yet.')), el('p', {}, error.message));
    } else if (m.detail) {
      body = runDetail(m.detail, () => void m.openRun(null), (id, path) => void this.openArtifact(id, path),
                       digest => m.showDatasetRuns(digest));
    } else {
      body = el('div', {},
        toolbar(m, [this.compareButton(),
                    button('Open in main area', () => this.openMain(),
                           { class: 'jp-cellops-open-main', title: 'Every column, charts and a compare view, full width' })]),
        error && error.status === 0 ? el('p', { class: 'jp-cellops-error' }, error.message, ' Retrying…') : errorBox(m),
        this.table());
    }
    this.node.replaceChildren(body);
    if (refocus) {
      const again = this.node.querySelector(`[data-focus-key="${refocus}"]`) as HTMLInputElement | null;
      again?.focus();
      again?.setSelectionRange?.(again.value.length, again.value.length);
    }
  }

  /** "Compare (n)": the ticked runs side by side in the main-area view. */
  private compareButton(): HTMLButtonElement {
    const m = this.model;
    const ids = [...m.selected.keys()];
    const b = button(`Compare (${ids.length})`, () => this.openMain(ids),
                     { class: 'jp-cellops-compare-button', title: 'Tick two or more runs to compare them' }, 'accept');
    b.disabled = ids.length < 2;
    return b;
  }

  private table(): HTMLElement {
    const m = this.model;
    if (m.runs.length === 0) {
      return el('p', { class: 'jp-cellops-empty' },
                m.filter ? 'No run matches this filter.' : 'No runs yet. Log one with %%track in a notebook.');
    }
    const metric = keyMetric(m.runs, m.orderBy, m.shownMetric);
    const current = m.orderBy || 'attributes.start_time DESC';
    const [orderCol, orderDir] = current.split(/\s+/);
    const arrowOf = (column: string) => column === orderCol ? (orderDir === 'ASC' ? ' ▲' : ' ▼') : '';
    // Each header says what a click sorts by; the name column sorts by name or by start time.
    const sortButton = (label: string, column: string, what: string) => {
      const b = el('button', { class: 'jp-cellops-sort', type: 'button', 'data-sort': column,
                               title: `Sort by ${what}${column === orderCol ? ' (click again to reverse)' : ''}`,
                               'aria-pressed': String(column === orderCol) },
                   label, arrowOf(column));
      b.onclick = () => m.setOrder(toggleOrder(current, column));
      return b;
    };
    const sortState = (columns: string[]) =>
      columns.includes(orderCol) ? (orderDir === 'ASC' ? 'ascending' : 'descending') : 'none';
    const head = el('tr', {},
      el('th', { class: 'jp-cellops-check' }),
      el('th', { class: 'jp-cellops-status', title: 'Status', 'aria-sort': sortState(['attributes.status']) },
         sortButton('●', 'attributes.status', 'status')),
      el('th', { class: 'jp-cellops-name-head', 'aria-sort': sortState(['attributes.run_name', 'attributes.start_time']) },
         sortButton('name', 'attributes.run_name', 'run name'), ' · ',
         sortButton('started', 'attributes.start_time', 'start time')),
      metric ? el('th', { class: 'jp-cellops-num jp-cellops-metric-head', 'aria-sort': sortState([`metrics.\`${metric}\``]) },
                  this.metricPicker(metric),
                  sortButton(orderCol === `metrics.\`${metric}\`` ? '' : '⇅', `metrics.\`${metric}\``, metric)) : null);
    const rows: HTMLElement[] = [];
    for (const run of m.runs) {
      rows.push(this.row(run, metric, 0));
      for (const child of m.children.get(run.run_id) || []) {
        rows.push(this.row(child, metric, 1));
      }
    }
    const prev = button('‹ Newer', () => m.setOffset(m.offset - m.pageSize), { class: 'jp-cellops-prev' });
    prev.disabled = m.offset === 0;
    const next = button('Older ›', () => m.setOffset(m.offset + m.pageSize), { class: 'jp-cellops-next' });
    next.disabled = m.offset + m.runs.length >= m.total;
    return el('div', { class: `jp-cellops-results${m.stale ? ' jp-mod-stale' : ''}`, 'aria-busy': String(m.stale) },
      m.stale ? el('p', { class: 'jp-cellops-stale' }, 'Showing the previous results.') : null,
      el('table', { class: 'jp-cellops-table jp-cellops-compact' }, el('thead', {}, head), el('tbody', {}, ...rows)),
      el('div', { class: 'jp-cellops-pager' }, prev, el('span', {}, pageLabel(m.offset, m.runs.length, m.total)), next));
  }

  /** The metric column's header: a picker of the metrics the listed runs have. */
  private metricPicker(metric: string): HTMLElement {
    const m = this.model;
    const present = keyMetrics(m.runs, Infinity);
    const picker = el('select', { class: 'jp-cellops-metric-pick', 'aria-label': 'Metric shown',
                                  title: 'The metric this column shows' },
                      ...present.map(k => {
                        const o = el('option', { value: k }, k);
                        o.selected = k === metric;
                        return o;
                      }));
    picker.onchange = () => {
      m.showMetric(picker.value);
      if (/^metrics\./.test(m.orderBy || '')) {
        m.setOrder(`metrics.\`${picker.value}\` ${(m.orderBy || '').split(/\s+/)[1] || 'DESC'}`);
      }
    };
    return picker;
  }

  private row(run: IRunSummary, metric: string | null, depth: number): HTMLElement {
    const m = this.model;
    const expandable = depth === 0 && PARENT_KINDS.has(run.kind);
    const open = m.children.has(run.run_id);
    let toggle: HTMLButtonElement | null = null;
    if (expandable) {
      toggle = el('button', { class: 'jp-cellops-expand', type: 'button', 'aria-expanded': String(open),
                              'aria-label': `${open ? 'Hide' : 'Show'} the runs of ${run.name || run.kind}` },
                  open ? '▾' : '▸');
      toggle.onclick = e => {
        e.stopPropagation();
        m.toggleExpanded(run.run_id);
      };
    }
    const meta = [run.kind !== 'run' ? run.kind : '', formatWhen(run.start_time), formatDuration(run.duration_s)]
      .filter(Boolean).join(' · ');
    const box = el('input', { type: 'checkbox', 'aria-label': `Compare ${run.name || run.run_id.slice(0, 8)}` });
    box.checked = m.selected.has(run.run_id);
    box.onclick = e => e.stopPropagation();
    box.onchange = () => void m.toggleSelected(run.run_id);
    const name = run.name || run.run_id.slice(0, 8);
    const tr = el('tr', { class: `jp-cellops-run${depth ? ' jp-cellops-child' : ''}`, 'data-run-id': run.run_id,
                          'data-kind': run.kind, tabindex: '0' },
      el('td', { class: 'jp-cellops-check' }, box),
      el('td', { class: 'jp-cellops-status' }, statusDot(run.status)),
      el('td', { class: 'jp-cellops-name',
                 title: `${name}\n${run.status.toLowerCase()} · ${run.experiment} · ${run.run_id}` },
         el('span', { class: 'jp-cellops-run-name' }, toggle, el('span', { class: 'jp-cellops-run-label' }, name)),
         el('small', { class: 'jp-cellops-sub' }, meta)),
      metric ? el('td', { class: 'jp-cellops-num' }, formatMetric(run.metrics[metric])) : null);
    tr.onclick = () => void m.openRun(run.run_id);
    tr.onkeydown = (e: KeyboardEvent) => e.key === 'Enter' && void m.openRun(run.run_id);
    return tr;
  }
}
