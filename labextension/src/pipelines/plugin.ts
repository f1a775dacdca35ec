import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';

import { ICellopsSidebar } from '../tokens';
import { PipelinesModel, PipelinesTab } from './tab';

/** The Pipelines tab. */
export const pipelinesPlugin: JupyterFrontEndPlugin<void> = {
  id: 'cellops:pipelines',
  description: 'cellops Pipelines: pipeline runs and the state of each step.',
  autoStart: true,
  requires: [ICellopsSidebar],
  activate: (app: JupyterFrontEnd, sidebar: ICellopsSidebar) => {
    sidebar.addTab(new PipelinesTab(new PipelinesModel(), app.commands));
  }
};
