/** Pieces the runs views share: the toolbar, a run's detail, metric charts. */

import { metricChart } from '../chart';
import { alertBox, badge, button, el } from '../dom';
import { formatBytes, formatDuration, formatMetric, formatWhen, metricGroups } from '../format';
import { artifactURL } from '../handler';
import { IRunDetail, RunsModel } from './model';

/** Experiment picker and filter box; Enter applies the filter. */
export function toolbar(model: RunsModel, extra: HTMLElement[] = []): HTMLElement {
  const picker = el('select', { 'aria-label': 'Experiment', class: 'jp-cellops-experiment jp-mod-styled' },
                    el('option', { value: '' }, 'All experiments'));
  for (const exp of model.experiments) {
    const opt = el('option', { value: exp.name }, `${exp.name} (${exp.run_count.toLocaleString('en-US')})`);
    opt.selected = exp.name === model.experiment;
    picker.append(opt);
  }
  picker.onchange = () => model.setExperiment(picker.value || null);
  const filter = el('input', {
    class: 'jp-cellops-filter jp-mod-styled',
    type: 'search',
    placeholder: "metrics.accuracy > 0.9 and params.model = 'rf'",
    'aria-label': 'Filter runs',
    'data-focus-key': 'filter',
    spellcheck: 'false'
  });
  filter.value = model.filter;
  filter.onkeydown = (e: KeyboardEvent) => {
    if (e.key === 'Enter') {
      model.setFilter(filter.value);
    }
  };
  return el('div', { class: 'jp-cellops-toolbar' }, picker, filter, ...extra);
}

/**
 * The server's error, in a monospace box so that a filter error's caret points at the
 * right character; the results below it are marked stale.
 */
export function errorBox(model: RunsModel): HTMLElement | null {
  const error = model.error;
  if (!error || error.noWorkspace || error.status === 0) {
    return null;
  }
  return alertBox(error.message);
}

/** One chart per metric group (train_/val_ variants overlaid), from a run's histories. */
export function runCharts(run: IRunDetail): HTMLElement[] {
  const histories = run.metric_history || {};
  const keys = Object.keys(histories).filter(k => histories[k].length > 1);
  return [...metricGroups(keys).entries()].map(([group, members]) =>
    metricChart(group, members.map(k => ({ label: k, points: histories[k] }))));
}

function keyValueTable(title: string, values: Record<string, unknown>, format: (v: any) => string): HTMLElement | null {
  const keys = Object.keys(values).sort();
  if (keys.length === 0) {
    return null;
  }
  return el('section', {}, el('h3', {}, title),
    el('table', { class: 'jp-cellops-kv' },
       el('tbody', {}, ...keys.map(k => el('tr', {}, el('th', {}, k), el('td', {}, format(values[k])))))));
}

/** The tag `%%track` sets naming the estimator params still at their class defaults. */
export const DEFAULT_PARAMS_TAG = 'cellops.default_params';

/**
 * Parameters: those the user set first; those an estimator left at its class default
 * (named by the run's `cellops.default_params` tag) folded under "N defaults".
 */
function paramsSection(run: IRunDetail): HTMLElement | null {
  const defaults = new Set((run.tags[DEFAULT_PARAMS_TAG] || '').split(',').filter(Boolean));
  const set = Object.fromEntries(Object.entries(run.params).filter(([k]) => !defaults.has(k)));
  const left = Object.fromEntries(Object.entries(run.params).filter(([k]) => defaults.has(k)));
  const section = keyValueTable('Parameters', set, v => String(v)) ||
    (Object.keys(left).length ? el('section', {}, el('h3', {}, 'Parameters')) : null);
  if (section && Object.keys(left).length) {
    const rows = Object.keys(left).sort().map(k => el('tr', {}, el('th', {}, k), el('td', {}, String(left[k]))));
    section.append(el('details', { class: 'jp-cellops-defaults' },
      el('summary', {}, `${rows.length} left at their defaults`),
      el('table', { class: 'jp-cellops-kv' }, el('tbody', {}, ...rows))));
  }
  return section;
}

/** A run's detail: header, error, params, metrics, charts, tags, artifacts, datasets, source. */
export function runDetail(run: IRunDetail, onBack: () => void, onOpen: (runId: string, path: string) => void,
                          onDataset?: (digest: string) => void): HTMLElement {
  const charts = runCharts(run);
  const charted = new Set(Object.keys(run.metric_history || {}).filter(k => (run.metric_history[k] || []).length > 1));
  const single = Object.fromEntries(Object.entries(run.metrics).filter(([key]) => !charted.has(key)));
  const artifacts = run.artifacts.map(a => {
    const item = el('li', {}, el('a', { href: artifactURL(run.run_id, a.path), download: a.path.split('/').pop() || a.path }, a.path),
                    el('small', {}, ` ${formatBytes(a.size)} `));
    if (a.path.endsWith('.ipynb')) {
      item.append(button('Open', e => {
        e.stopPropagation();
        onOpen(run.run_id, a.path);
      }, { class: 'jp-cellops-open', title: 'Open this notebook in JupyterLab' }));
    }
    return item;
  });
  const datasets = run.datasets.map(d => el('li', {}, `${d.role}: ${d.name} `,
    el('small', {}, `${formatMetric(d.rows)} × ${formatMetric(d.columns)} · ${d.digest.slice(0, 12)} `),
    onDataset ? button('runs', () => onDataset(d.digest.slice(0, 12)),
                       { class: 'jp-cellops-dataset-link', title: 'Show the runs that used this dataset' }) : null));
  return el('div', { class: 'jp-cellops-detail', 'data-run-id': run.run_id },
    button('‹ All runs', onBack, { class: 'jp-cellops-back' }),
    el('h2', {}, run.name || run.run_id.slice(0, 8), ' ', badge(run.status)),
    el('p', { class: 'jp-cellops-meta' },
       `${run.experiment} · ${run.kind} · ${run.run_id.slice(0, 8)} · ${formatWhen(run.start_time)} · ${formatDuration(run.duration_s)}`,
       run.git && run.git.commit ? ` · git ${run.git.commit.slice(0, 7)}${run.git.dirty ? '+dirty' : ''}` : ''),
    run.error ? el('pre', { class: 'jp-cellops-error-box' }, run.error) : null,
    paramsSection(run),
    keyValueTable('Metrics', single, v => formatMetric(v)),
    charts.length ? el('section', {}, el('h3', {}, 'Metric history'), ...charts) : null,
    keyValueTable('Tags', Object.fromEntries(Object.entries(run.tags).filter(([k]) => k !== DEFAULT_PARAMS_TAG)),
                  v => String(v)),
    artifacts.length ? el('section', {}, el('h3', {}, 'Artifacts'), el('ul', {}, ...artifacts)) : null,
    datasets.length ? el('section', {}, el('h3', {}, 'Datasets'), el('ul', {}, ...datasets)) : null,
    run.source ? el('section', {}, el('h3', {}, 'Source'), el('pre', { class: 'jp-cellops-source' }, run.source)) : null
  );
}
