/**
 * `%runs` in a notebook: the output carries `application/vnd.cellops.runs+json` (which
 * experiment, which filter) beside a static HTML table. In JupyterLab this renderer shows
 * the live runs grid of the main-area view in the output itself — sortable headers, rows
 * ticked to compare, frozen run column, the comparison below — read from the server, so it
 * works after a kernel restart and in a notebook reopened without a kernel. Elsewhere
 * (nbviewer, GitHub, another front end) the static HTML shows.
 */

import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Panel } from '@lumino/widgets';

import { RunsMainView } from './main';
import { RunsModel } from './model';

export const RUNS_MIME = 'application/vnd.cellops.runs+json';

/** Ahead of the widget renderer (rank -10): in JupyterLab the grid replaces the ipywidget. */
export const RUNS_RANK = -20;

let counter = 0;

export class RunsOutput extends Panel implements IRenderMime.IRenderer {
  private view: RunsMainView | null = null;

  constructor(private readonly openRun: (runId: string) => void) {
    super();
    this.addClass('jp-cellops-output');
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const data = (model.data[RUNS_MIME] || {}) as { experiment?: string | null; filter?: string | null };
    this.view?.dispose();
    const runs = new RunsModel(25);
    runs.experiment = data.experiment || null;
    runs.filter = data.filter || '';
    this.view = new RunsMainView(runs, this.openRun);
    this.view.id = `cellops-runs-output-${++counter}`;
    this.addWidget(this.view);
  }
}

export function runsOutputFactory(openRun: (runId: string) => void): IRenderMime.IRendererFactory {
  return {
    safe: true, // the data is an experiment name and a filter; everything shown comes from the server
    mimeTypes: [RUNS_MIME],
    defaultRank: RUNS_RANK,
    createRenderer: () => new RunsOutput(openRun)
  };
}
