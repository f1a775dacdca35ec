/** The Pipelines tab: recent pipeline runs with each step's state; cached steps link to
 * the run they reused, and a pipeline run that reused every step says so. */

import { buildIcon } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import { ISignal, Signal } from '@lumino/signaling';

import { badge, button, el } from '../dom';
import { formatDuration, formatWhen, statusClass } from '../format';
import { requestAPI } from '../handler';
import { Poller } from '../poller';
import { PollingTab } from '../tab';
import { CommandIDs } from '../tokens';

export interface IStep {
  name: string;
  status: string;
  run_id: string | null;
  duration_s: number | null;
  reason: string | null;
  error: string | null;
}

export interface IPipelineRun {
  run_id: string;
  name: string | null;
  status: string;
  start_time: string;
  duration_s: number | null;
  steps: IStep[];
}

export class PipelinesModel {
  constructor() {
    this.poller = new Poller(async () => {
      const page = await requestAPI<{ pipelines: IPipelineRun[] }>('pipelines?limit=20');
      this.pipelines = page.pipelines || [];
      return JSON.stringify(page);
    }, () => this._changed.emit());
  }

  readonly poller: Poller;
  pipelines: IPipelineRun[] = [];

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  private _changed = new Signal<this, void>(this);
}

export class PipelinesTab extends PollingTab<PipelinesModel> {
  readonly key = 'pipelines';
  readonly label = 'Pipelines';
  readonly icon = buildIcon;
  readonly rank = 200;

  constructor(model: PipelinesModel, private readonly commands: CommandRegistry) {
    super(model);
    this.addClass('jp-cellops-pipelines-tab');
    this.render();
  }

  render(): void {
    const pipelines = this.model.pipelines;
    this.renderParts(() => [
      pipelines.length === 0
        ? el('p', { class: 'jp-cellops-empty' }, 'No pipeline runs yet. Run one with: cellops pipeline run pipeline.yaml')
        : el('div', { class: 'jp-cellops-pipelines' }, ...pipelines.map(p => this.pipeline(p)))]);
  }

  private pipeline(p: IPipelineRun): HTMLElement {
    const allCached = p.steps.length > 0 && p.steps.every(s => s.status === 'cached');
    const steps = p.steps.map(s => {
      const chip = el('li', { class: `jp-cellops-step jp-cellops-badge-${statusClass(s.status)}`, 'data-step': s.name,
                              title: s.error || s.reason || s.status },
        el('b', {}, s.name), ` ${s.status}`,
        s.duration_s ? el('small', {}, ` ${formatDuration(s.duration_s)}`) : null);
      if (s.run_id) {
        const run = s.run_id;
        chip.append(button(s.status === 'cached' ? `from ${run.slice(0, 8)}` : 'run', e => {
          e.stopPropagation();
          void this.commands.execute(CommandIDs.openRun, { runId: run });
        }, { class: 'jp-cellops-step-run', title: s.status === 'cached' ? 'The earlier run this step reused' : 'This step\'s run' }));
        if (['ran', 'failed', 'cached'].includes(s.status)) {
          chip.append(button('Open', e => {
            e.stopPropagation();
            void this.commands.execute(CommandIDs.openArtifact, { runId: run, artifact: 'output.ipynb' });
          }, { class: 'jp-cellops-open', title: 'Open the executed notebook' }));
        }
      }
      return chip;
    });
    return el('article', { class: 'jp-cellops-pipeline', 'data-run-id': p.run_id },
      el('header', {}, el('b', {}, p.name || 'pipeline'), ' ', badge(p.status),
         el('small', {}, ` ${formatWhen(p.start_time)} · ${formatDuration(p.duration_s)}`)),
      allCached ? el('p', { class: 'jp-cellops-note' }, `Nothing ran: all ${p.steps.length} steps reused earlier runs.`) : null,
      el('ol', { class: 'jp-cellops-steps' }, ...steps));
  }
}
