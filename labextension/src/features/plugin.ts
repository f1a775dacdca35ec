import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';

import { ICellopsSidebar } from '../tokens';
import { FeaturesModel, FeaturesTab } from './tab';

/** The Features tab. */
export const featuresPlugin: JupyterFrontEndPlugin<void> = {
  id: 'cellops:features',
  description: 'cellops Features: feature views, their freshness, the online store and the models using them.',
  autoStart: true,
  requires: [ICellopsSidebar],
  activate: (app: JupyterFrontEnd, sidebar: ICellopsSidebar) => {
    sidebar.addTab(new FeaturesTab(new FeaturesModel(), app.commands));
  }
};
