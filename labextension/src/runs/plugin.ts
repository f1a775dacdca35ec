import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget } from '@jupyterlab/apputils';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';

import { cellopsIcon } from '../sidebar';
import { CommandIDs, ICellopsSidebar } from '../tokens';
import { RunsMainView } from './main';
import { RunsModel } from './model';
import { RUNS_RANK, runsOutputFactory } from './output';
import { RunsTab } from './tab';

/** The Runs tab, the full-width runs view, and the commands to reach them. */
export const runsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'cellops:runs',
  description: 'cellops Runs: the sidebar tab and the full-width view with compare.',
  autoStart: true,
  requires: [ICellopsSidebar],
  optional: [ICommandPalette, IRenderMimeRegistry],
  activate: (app: JupyterFrontEnd, sidebar: ICellopsSidebar, palette: ICommandPalette | null,
             rendermime: IRenderMimeRegistry | null) => {
    const model = new RunsModel();
    const openArtifact = async (runId: string, artifact: string) => {
      await app.commands.execute(CommandIDs.openArtifact, { runId, artifact });
    };
    let view: MainAreaWidget<RunsMainView> | null = null;
    const openMain = (compare?: string[]) => {
      if (view === null || view.isDisposed) {
        const content = new RunsMainView(new RunsModel(100), runId => {
          void app.commands.execute(CommandIDs.openRun, { runId });
        });
        content.model.experiment = model.experiment;
        content.model.filter = model.filter;
        content.model.orderBy = model.orderBy;
        view = new MainAreaWidget({ content });
        view.id = 'cellops-runs-main';
        view.title.label = 'cellops runs';
        view.title.icon = cellopsIcon;
        app.shell.add(view, 'main');
      }
      app.shell.activateById(view.id);
      if (compare && compare.length) {
        void view.content.model.select(compare);
      }
    };
    const tab = new RunsTab(model, openMain, openArtifact);
    sidebar.addTab(tab);

    app.commands.addCommand(CommandIDs.openRun, {
      label: 'Show a cellops run',
      execute: args => {
        sidebar.activate('runs');
        void model.openRun(String(args.runId));
      }
    });
    app.commands.addCommand(CommandIDs.showDatasetRuns, {
      label: 'Show the cellops runs that used a dataset',
      execute: args => {
        sidebar.activate('runs');
        model.showDatasetRuns(String(args.digest));
      }
    });
    app.commands.addCommand(CommandIDs.openRunsView, {
      label: 'Open cellops runs in the main area',
      execute: () => openMain()
    });
    app.commands.addCommand(CommandIDs.openArtifact, {
      label: 'Open a run notebook',
      execute: async args => {
        try {
          const path = await model.exportNotebook(String(args.runId), String(args.artifact));
          await app.commands.execute('docmanager:open', { path });
        } catch (error) {
          model.poller.error = error as any;
          tab.render();
        }
      }
    });
    palette?.addItem({ command: CommandIDs.openRunsView, category: 'cellops' });
    // `%runs` outputs: the live grid in the notebook (notebooks copy this registry).
    rendermime?.addFactory(runsOutputFactory(runId => {
      void app.commands.execute(CommandIDs.openRun, { runId });
    }), RUNS_RANK);
  }
};
