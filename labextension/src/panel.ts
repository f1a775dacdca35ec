import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import {
  chartPath,
  formatDuration,
  formatMetric,
  formatWhen,
  keyMetrics,
  pageLabel,
  statusClass,
  toggleOrder
} from './format';
import { artifactURL } from './handler';
import { CellopsModel, IPipelineRun, IRunDetail, IStep, Tab } from './model';

/** Opens a notebook (a path under the server root) in JupyterLab. */
export type OpenPath = (path: string) => Promise<unknown>;

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string | null)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'class') {
      node.className = value;
    } else {
      node.setAttribute(key, value);
    }
  }
  for (const child of children) {
    if (child !== null) {
      node.append(child);
    }
  }
  return node;
}

function badge(status: string): HTMLElement {
  return el('span', { class: `jp-cellops-badge jp-cellops-badge-${statusClass(status)}`, title: status }, status.toLowerCase());
}

function keyValueTable(title: string, values: Record<string, unknown>): HTMLElement | null {
  const keys = Object.keys(values).sort();
  if (keys.length === 0) {
    return null;
  }
  return el(
    'section',
    {},
    el('h3', {}, title),
    el(
      'table',
      { class: 'jp-cellops-kv' },
      el('tbody', {}, ...keys.map(k => el('tr', {}, el('th', {}, k), el('td', {}, formatMetric(values[k] as any)))))
    )
  );
}

const SVG = 'http://www.w3.org/2000/svg';

function metricChart(key: string, points: { step: number; value: any }[]): HTMLElement {
  const width = 240;
  const height = 64;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('class', 'jp-cellops-chart');
  const d = chartPath(points, width, height);
  if (d) {
    const path = document.createElementNS(SVG, 'path');
    path.setAttribute('d', d);
    svg.append(path);
  }
  const last = points.length ? points[points.length - 1].value : null;
  return el(
    'figure',
    { class: 'jp-cellops-metric', 'data-metric': key },
    el('figcaption', {}, el('b', {}, key), ` ${formatMetric(last)}`, el('small', {}, ` (${points.length} points)`)),
    svg
  );
}

/** The cellops sidebar: tabs over one model; every render reads only the model. */
export class CellopsPanel extends Widget {
  constructor(
    readonly model: CellopsModel,
    private readonly openPath: OpenPath
  ) {
    super();
    this.id = 'cellops-sidebar';
    this.addClass('jp-cellops-panel');
    this.title.caption = 'cellops: runs and pipelines';
    model.changed.connect(() => this.render(), this);
    this.render();
  }

  /** Tabs shown in the bar; later panels (Registry, Monitoring) are added here. */
  readonly tabs: { id: Tab; label: string }[] = [
    { id: 'runs', label: 'Runs' },
    { id: 'pipelines', label: 'Pipelines' }
  ];

  protected onAfterShow(msg: Message): void {
    this.model.setActive(true);
  }

  protected onAfterHide(msg: Message): void {
    this.model.setActive(false);
  }

  protected onAfterAttach(msg: Message): void {
    if (this.isVisible) {
      this.model.setActive(true);
    }
  }

  protected onBeforeDetach(msg: Message): void {
    this.model.setActive(false);
  }

  dispose(): void {
    this.model.dispose();
    super.dispose();
  }

  render(): void {
    const m = this.model;
    const focused = document.activeElement as HTMLElement | null;
    const refocus = focused && this.node.contains(focused) ? focused.dataset.focusKey : undefined;
    const bar = el(
      'nav',
      { class: 'jp-cellops-tabs', role: 'tablist' },
      ...this.tabs.map(t => {
        const b = el('button', { role: 'tab', class: t.id === m.tab ? 'jp-mod-current' : '', 'aria-selected': String(t.id === m.tab) }, t.label);
        b.onclick = () => m.setTab(t.id);
        return b;
      })
    );
    let body: HTMLElement;
    if (m.error && m.error.noWorkspace) {
      body = el('div', { class: 'jp-cellops-empty' }, el('p', {}, el('b', {}, 'No runs yet.')), el('p', {}, m.error.message));
    } else if (m.error && m.error.status === 0) {
      body = el('div', { class: 'jp-cellops-error' }, el('p', {}, m.error.message), el('p', {}, 'Retrying with backoff…'));
    } else if (m.tab === 'runs') {
      body = m.detail ? this.renderDetail(m.detail) : this.renderRuns();
    } else {
      body = this.renderPipelines();
    }
    const error = m.error && !m.error.noWorkspace && m.error.status !== 0 ? el('div', { class: 'jp-cellops-error', role: 'alert' }, m.error.message) : null;
    this.node.replaceChildren(bar, ...(error ? [error] : []), body);
    if (refocus) {
      const again = this.node.querySelector(`[data-focus-key="${refocus}"]`) as HTMLInputElement | null;
      if (again) {
        again.focus();
        again.setSelectionRange?.(again.value.length, again.value.length);
      }
    }
  }

  private renderRuns(): HTMLElement {
    const m = this.model;
    const picker = el('select', { 'aria-label': 'Experiment', class: 'jp-cellops-experiment' }, el('option', { value: '' }, 'All experiments'));
    for (const exp of m.experiments) {
      const opt = el('option', { value: exp.name }, `${exp.name} (${exp.run_count})`);
      opt.selected = exp.name === m.experiment;
      picker.append(opt);
    }
    picker.onchange = () => m.setExperiment(picker.value || null);
    const filter = el('input', {
      class: 'jp-cellops-filter',
      type: 'search',
      placeholder: "metrics.accuracy > 0.9 and params.model = 'rf'",
      'aria-label': 'Filter runs',
      'data-focus-key': 'filter'
    });
    filter.value = m.filter;
    filter.onkeydown = (e: KeyboardEvent) => {
      if (e.key === 'Enter') {
        m.setFilter(filter.value);
      }
    };
    const metrics = keyMetrics(m.runs);
    const columns: [string, string][] = [
      ['attributes.status', 'status'],
      ['attributes.run_name', 'name'],
      ['attributes.start_time', 'started'],
      ['', 'duration'],
      ...metrics.map(k => [`metrics.\`${k}\``, k] as [string, string])
    ];
    const [orderCol, orderDir] = (m.orderBy || 'attributes.start_time DESC').split(/\s+/);
    const head = el(
      'tr',
      {},
      ...columns.map(([col, label]) => {
        const th = el('th', col ? { class: 'jp-cellops-sortable', title: `Sort by ${label}` } : {}, label);
        if (col) {
          if (col === orderCol) {
            th.append(orderDir === 'ASC' ? ' ▲' : ' ▼');
          }
          th.onclick = () => m.setOrder(toggleOrder(m.orderBy || 'attributes.start_time DESC', col));
        }
        return th;
      })
    );
    const rows = m.runs.map(run => {
      const tr = el(
        'tr',
        { class: 'jp-cellops-run', 'data-run-id': run.run_id, tabindex: '0' },
        el('td', {}, badge(run.status)),
        el('td', { title: run.run_id }, run.name || run.run_id.slice(0, 8), run.kind !== 'run' ? el('small', {}, ` ${run.kind}`) : null),
        el('td', { title: run.start_time }, formatWhen(run.start_time)),
        el('td', {}, formatDuration(run.duration_s)),
        ...metrics.map(k => el('td', { class: 'jp-cellops-num' }, formatMetric(run.metrics[k])))
      );
      tr.onclick = () => void m.openRun(run.run_id);
      tr.onkeydown = (e: KeyboardEvent) => e.key === 'Enter' && void m.openRun(run.run_id);
      return tr;
    });
    const prev = el('button', { class: 'jp-cellops-prev' }, '‹ Newer');
    prev.disabled = m.offset === 0;
    prev.onclick = () => m.setOffset(m.offset - m.pageSize);
    const next = el('button', { class: 'jp-cellops-next' }, 'Older ›');
    next.disabled = m.offset + m.runs.length >= m.total;
    next.onclick = () => m.setOffset(m.offset + m.pageSize);
    const table =
      m.runs.length > 0
        ? el('div', { class: 'jp-cellops-scroll' }, el('table', { class: 'jp-cellops-table' }, el('thead', {}, head), el('tbody', {}, ...rows)))
        : el('p', { class: 'jp-cellops-empty' }, m.filter ? 'No run matches this filter.' : 'No runs yet. Log one with %%track in a notebook.');
    return el(
      'div',
      { class: 'jp-cellops-runs' },
      el('div', { class: 'jp-cellops-toolbar' }, picker, filter),
      table,
      el('div', { class: 'jp-cellops-pager' }, prev, el('span', {}, pageLabel(m.offset, m.runs.length, m.total)), next)
    );
  }

  private renderDetail(run: IRunDetail): HTMLElement {
    const back = el('button', { class: 'jp-cellops-back' }, '‹ All runs');
    back.onclick = () => void this.model.openRun(null);
    const histories = Object.entries(run.metric_history || {});
    const charts = histories.filter(([, points]) => points.length > 1).map(([key, points]) => metricChart(key, points));
    const single = Object.fromEntries(Object.entries(run.metrics).filter(([key]) => !charts.some(c => c.dataset.metric === key)));
    const artifacts = run.artifacts.map(a => {
      const item = el('li', {}, el('a', { href: artifactURL(run.run_id, a.path), download: a.path.split('/').pop() || a.path }, a.path), el('small', {}, ` ${a.size.toLocaleString('en-US')} B `));
      if (a.path.endsWith('.ipynb')) {
        item.append(this.openButton(run.run_id, a.path));
      }
      return item;
    });
    const datasets = run.datasets.map(d => el('li', {}, `${d.role}: ${d.name} `, el('small', {}, `${d.rows ?? '?'}×${d.columns ?? '?'} ${d.digest.slice(0, 12)}`)));
    return el(
      'div',
      { class: 'jp-cellops-detail', 'data-run-id': run.run_id },
      back,
      el('h2', {}, run.name || run.run_id.slice(0, 8), ' ', badge(run.status)),
      el(
        'p',
        { class: 'jp-cellops-meta' },
        `${run.experiment} · ${run.kind} · ${run.run_id.slice(0, 8)} · ${formatWhen(run.start_time)} · ${formatDuration(run.duration_s)}`,
        run.git && run.git.commit ? ` · git ${run.git.commit.slice(0, 7)}${run.git.dirty ? '+dirty' : ''}` : ''
      ),
      run.error ? el('pre', { class: 'jp-cellops-error' }, run.error) : null,
      keyValueTable('Parameters', run.params),
      keyValueTable('Metrics', single),
      charts.length ? el('section', {}, el('h3', {}, 'Metric history'), ...charts) : null,
      keyValueTable('Tags', Object.fromEntries(Object.entries(run.tags).filter(([k]) => k !== 'pipeline.steps'))),
      artifacts.length ? el('section', {}, el('h3', {}, 'Artifacts'), el('ul', {}, ...artifacts)) : null,
      datasets.length ? el('section', {}, el('h3', {}, 'Datasets'), el('ul', {}, ...datasets)) : null,
      run.source ? el('section', {}, el('h3', {}, 'Source'), el('pre', { class: 'jp-cellops-source' }, run.source)) : null
    );
  }

  private openButton(runId: string, artifact: string): HTMLButtonElement {
    const button = el('button', { class: 'jp-cellops-open', title: 'Open this notebook in JupyterLab' }, 'Open');
    button.onclick = async (e: MouseEvent) => {
      e.stopPropagation();
      button.disabled = true;
      try {
        await this.openPath(await this.model.exportNotebook(runId, artifact));
      } catch (error) {
        this.model.error = error as any;
        this.render();
      } finally {
        button.disabled = false;
      }
    };
    return button;
  }

  private renderPipelines(): HTMLElement {
    const m = this.model;
    if (m.pipelines.length === 0) {
      return el('p', { class: 'jp-cellops-empty' }, 'No pipeline runs yet. Run one with: cellops pipeline run pipeline.yaml');
    }
    return el('div', { class: 'jp-cellops-pipelines' }, ...m.pipelines.map(p => this.renderPipeline(p)));
  }

  private renderPipeline(p: IPipelineRun): HTMLElement {
    const steps = p.steps.map((s: IStep) => {
      const chip = el(
        'li',
        { class: `jp-cellops-step jp-cellops-badge-${statusClass(s.status)}`, 'data-step': s.name, title: s.error || s.reason || s.status },
        el('b', {}, s.name),
        ` ${s.status}`,
        s.duration_s ? el('small', {}, ` ${formatDuration(s.duration_s)}`) : null
      );
      if (s.run_id && ['ran', 'failed', 'cached'].includes(s.status)) {
        chip.append(this.openButton(s.run_id, 'output.ipynb'));
      }
      return chip;
    });
    return el(
      'article',
      { class: 'jp-cellops-pipeline', 'data-run-id': p.run_id },
      el('header', {}, el('b', {}, p.name || 'pipeline'), ' ', badge(p.status), el('small', {}, ` ${formatWhen(p.start_time)} · ${formatDuration(p.duration_s)}`)),
      el('ol', { class: 'jp-cellops-steps' }, ...steps)
    );
  }
}
