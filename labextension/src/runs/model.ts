import { ISignal, Signal } from '@lumino/signaling';

import { IPoint, MetricValue, runsQuery } from '../format';
import { APIError, requestAPI } from '../handler';
import { Poller } from '../poller';

export interface IRunSummary {
  run_id: string;
  name: string | null;
  experiment: string;
  status: string;
  kind: string;
  parent_run_id: string | null;
  user: string | null;
  start_time: string;
  end_time: string | null;
  duration_s: number | null;
  params: Record<string, string>;
  metrics: Record<string, MetricValue>;
  tags: Record<string, string>;
}

export interface IArtifact {
  path: string;
  size: number;
  media_type: string | null;
}

export interface IRunDetail extends IRunSummary {
  error: string | null;
  notebook_path: string | null;
  git: { commit: string | null; branch: string | null; dirty: boolean | null };
  artifacts: IArtifact[];
  datasets: { name: string; digest: string; role: string; rows: number | null; columns: number | null; source: string | null }[];
  children: string[];
  metric_history: Record<string, (IPoint & { timestamp: string })[]>;
  source: string | null;
}

interface IRunsPage {
  runs: IRunSummary[];
  total: number;
  limit: number;
  offset: number;
}

/** Kinds shown at the top level; steps and trials are listed under their pipeline or sweep. */
export const TOP_KINDS = ['run', 'cell', 'notebook', 'pipeline', 'sweep'];
export const PARENT_KINDS = new Set(['pipeline', 'sweep', 'notebook']);

/**
 * What a runs view shows, polled from the server: experiments, a page of top-level runs,
 * the children of the runs the user expanded, the open run, the runs selected to compare
 * (with their metric histories).
 */
export class RunsModel {
  constructor(readonly pageSize = 50) {
    this.poller = new Poller(() => this._fetch(), () => this._changed.emit());
  }

  readonly poller: Poller;
  experiments: { name: string; run_count: number }[] = [];
  experiment: string | null = null;
  filter = '';
  /** List runs of every kind (a dataset's runs include pipeline steps), not only top-level ones. */
  everyKind = false;
  orderBy: string | null = null;
  /** The metric the narrow list shows, as the user picked it (null: chosen from the page). */
  shownMetric: string | null = null;
  offset = 0;
  runs: IRunSummary[] = [];
  total = 0;
  /** Children of expanded runs (a pipeline's steps, a sweep's trials), by parent id. */
  children = new Map<string, IRunSummary[]>();
  detail: IRunDetail | null = null;
  /** Runs ticked for comparison, with their details (metric histories). */
  selected = new Map<string, IRunDetail | null>();
  /** True while the page on screen is from before the filter or order now asked for. */
  stale = false;

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get error(): APIError | null {
    return this.poller.error;
  }

  setExperiment(name: string | null): void {
    this.experiment = name;
    this._reload();
  }

  /** Filter the runs; `everyKind` lists step and trial runs too, not only top-level ones. */
  setFilter(filter: string, everyKind = false): void {
    this.filter = filter;
    this.everyKind = everyKind;
    this._reload();
  }

  /** The runs of every experiment and kind that used the dataset with this digest. */
  showDatasetRuns(digest: string): void {
    this.detail = null;
    this.experiment = null;
    this.setFilter(`datasets.digest = '${digest.replace(/'/g, "''")}'`, true);
  }

  /** Show this metric's column in the narrow list (null: let the page choose). */
  showMetric(metric: string | null): void {
    this.shownMetric = metric;
    this._changed.emit();
  }

  setOrder(orderBy: string | null): void {
    this.orderBy = orderBy;
    this._reload();
  }

  setOffset(offset: number): void {
    this.offset = Math.max(0, offset);
    this.stale = true;
    this.poller.refresh();
  }

  toggleExpanded(runId: string): void {
    if (this.children.has(runId)) {
      this.children.delete(runId);
      this._changed.emit();
    } else {
      this.children.set(runId, []);
      this.poller.refresh();
    }
  }

  async openRun(runId: string | null): Promise<void> {
    if (runId === null) {
      this.detail = null;
      this._changed.emit();
      return;
    }
    try {
      this.detail = await requestAPI<IRunDetail>(`runs/${encodeURIComponent(runId)}?max_points=500`);
      this.poller.error = null;
    } catch (error) {
      this.poller.error = error as APIError;
    }
    this._changed.emit();
  }

  async toggleSelected(runId: string): Promise<void> {
    if (this.selected.has(runId)) {
      this.selected.delete(runId);
      this._changed.emit();
      return;
    }
    this.selected.set(runId, null);
    this._changed.emit();
    try {
      this.selected.set(runId, await requestAPI<IRunDetail>(`runs/${encodeURIComponent(runId)}?max_points=500`));
    } catch (error) {
      this.selected.delete(runId);
      this.poller.error = error as APIError;
    }
    this._changed.emit();
  }

  clearSelection(): void {
    this.selected.clear();
    this._changed.emit();
  }

  /** Select exactly these runs (the sidebar's ticked runs, opened in the compare view). */
  async select(runIds: string[]): Promise<void> {
    this.selected.clear();
    await Promise.all(runIds.map(id => this.toggleSelected(id)));
  }

  /** Copy a run's notebook artifact under the server root; resolves to its path there. */
  async exportNotebook(runId: string, artifact: string): Promise<string> {
    const reply = await requestAPI<{ path: string }>(
      `runs/${encodeURIComponent(runId)}/artifacts/${artifact.split('/').map(encodeURIComponent).join('/')}/open`,
      { method: 'POST' }
    );
    return reply.path;
  }

  dispose(): void {
    this.poller.dispose();
    Signal.clearData(this);
  }

  private _reload(): void {
    this.offset = 0;
    this.stale = true;
    this._changed.emit();
    this.poller.refresh();
  }

  private async _fetch(): Promise<string> {
    const query = runsQuery({ experiment: this.experiment, filter: this.filter, orderBy: this.orderBy,
                              kinds: this.everyKind ? undefined : TOP_KINDS, limit: this.pageSize,
                              offset: this.offset });
    // A failing request (a bad filter) leaves the last results on screen, marked stale.
    const [exps, page] = await Promise.all([
      requestAPI<{ experiments: { name: string; run_count: number }[] }>('experiments'),
      requestAPI<IRunsPage>('runs?' + query)
    ]);
    const parents = [...this.children.keys()];
    const children = await Promise.all(parents.map(id => requestAPI<IRunsPage>(
      'runs?' + runsQuery({ filter: `attributes.parent_run_id = '${id}'`, orderBy: 'attributes.start_time ASC',
                            limit: 200, offset: 0 }))));
    this.experiments = exps.experiments;
    this.runs = page.runs || [];
    this.total = page.total;
    parents.forEach((id, i) => this.children.set(id, children[i].runs || []));
    this.stale = false;
    return JSON.stringify([exps, page, children]);
  }

  private _changed = new Signal<this, void>(this);
}
