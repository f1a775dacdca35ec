import { ISignal, Signal } from '@lumino/signaling';

import { Backoff, IPoint, MetricValue } from './format';
import { APIError, requestAPI } from './handler';
import { runsQuery } from './format';

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

export interface IStep {
  name: string;
  status: string;
  run_id: string | null;
  duration_s: number | null;
  reason: string | null;
  error: string | null;
}

export interface IPipelineRun extends IRunSummary {
  steps: IStep[];
}

interface IPage<K extends string, T> {
  total: number;
  limit: number;
  offset: number;
  runs?: T[];
  pipelines?: T[];
}

export type Tab = 'runs' | 'pipelines';

/**
 * What the sidebar shows, polled from the server: experiments, a page of runs, the open
 * run, recent pipeline runs. Polls the visible tab with backoff and stops while hidden.
 */
export class CellopsModel {
  readonly pageSize = 50;
  experiments: { name: string; run_count: number }[] = [];
  experiment: string | null = null;
  filter = '';
  orderBy: string | null = null;
  offset = 0;
  runs: IRunSummary[] = [];
  total = 0;
  detail: IRunDetail | null = null;
  pipelines: IPipelineRun[] = [];
  tab: Tab = 'runs';
  /** Set when the last request failed; `noWorkspace` is the normal "nothing logged yet". */
  error: APIError | null = null;
  loading = false;

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Start or stop polling (the panel calls this when it is shown or hidden). */
  setActive(active: boolean): void {
    this._active = active;
    if (active) {
      this.refresh();
    } else {
      this._clearTimer();
    }
  }

  setTab(tab: Tab): void {
    this.tab = tab;
    this.refresh();
  }

  setExperiment(name: string | null): void {
    this.experiment = name;
    this.offset = 0;
    this.refresh();
  }

  setFilter(filter: string): void {
    this.filter = filter;
    this.offset = 0;
    this.refresh();
  }

  setOrder(orderBy: string | null): void {
    this.orderBy = orderBy;
    this.offset = 0;
    this.refresh();
  }

  setOffset(offset: number): void {
    this.offset = Math.max(0, offset);
    this.refresh();
  }

  async openRun(runId: string | null): Promise<void> {
    if (runId === null) {
      this.detail = null;
      this._changed.emit();
      return;
    }
    try {
      this.detail = await requestAPI<IRunDetail>(`runs/${runId}`);
      this.error = null;
    } catch (error) {
      this.error = error as APIError;
    }
    this._changed.emit();
  }

  /** Copy a run's notebook artifact under the server root; resolves to its path there. */
  async exportNotebook(runId: string, artifact: string): Promise<string> {
    const reply = await requestAPI<{ path: string }>(
      `runs/${runId}/artifacts/${artifact.split('/').map(encodeURIComponent).join('/')}/open`,
      { method: 'POST' }
    );
    return reply.path;
  }

  /** Fetch now (user action): resets the backoff. */
  refresh(): void {
    this._backoff.reset();
    this._clearTimer();
    void this._poll();
  }

  dispose(): void {
    this._active = false;
    this._clearTimer();
    Signal.clearData(this);
  }

  private async _poll(): Promise<void> {
    if (!this._active) {
      return;
    }
    const seq = ++this._seq;
    this.loading = true;
    let outcome: 'changed' | 'same' | 'error' = 'same';
    try {
      const snapshot = this.tab === 'runs' ? await this._fetchRuns() : await this._fetchPipelines();
      if (seq !== this._seq) {
        return; // a newer poll started (the user changed something)
      }
      outcome = snapshot !== this._last || this.error !== null ? 'changed' : 'same';
      this._last = snapshot;
      this.error = null;
    } catch (error) {
      if (seq !== this._seq) {
        return;
      }
      const apiError = error instanceof APIError ? error : new APIError(0, String(error));
      outcome = this.error && this.error.message === apiError.message ? 'error' : 'changed';
      this.error = apiError;
    }
    this.loading = false;
    if (outcome !== 'same') {
      this._changed.emit();
    }
    const delay = this._backoff.next(outcome === 'changed' && this.error === null ? 'changed' : outcome);
    this._clearTimer();
    if (this._active && !document.hidden) {
      this._timer = window.setTimeout(() => void this._poll(), delay);
    } else if (this._active) {
      const resume = () => {
        document.removeEventListener('visibilitychange', resume);
        this.refresh();
      };
      document.addEventListener('visibilitychange', resume);
    }
  }

  private async _fetchRuns(): Promise<string> {
    const [exps, page] = await Promise.all([
      requestAPI<{ experiments: { name: string; run_count: number }[] }>('experiments'),
      requestAPI<IPage<'runs', IRunSummary>>(
        'runs?' + runsQuery({ experiment: this.experiment, filter: this.filter, orderBy: this.orderBy, limit: this.pageSize, offset: this.offset })
      )
    ]);
    this.experiments = exps.experiments;
    this.runs = page.runs || [];
    this.total = page.total;
    return JSON.stringify([exps, page]);
  }

  private async _fetchPipelines(): Promise<string> {
    const page = await requestAPI<IPage<'pipelines', IPipelineRun>>('pipelines?limit=20');
    this.pipelines = page.pipelines || [];
    return JSON.stringify(page);
  }

  private _clearTimer(): void {
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
      this._timer = null;
    }
  }

  private _changed = new Signal<this, void>(this);
  private _backoff = new Backoff();
  private _active = false;
  private _timer: number | null = null;
  private _seq = 0;
  private _last = '';
}
