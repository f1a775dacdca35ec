import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';

import { ICellopsSidebar } from '../tokens';
import { MonitoringModel, MonitoringTab } from './tab';

/** The Monitoring tab. */
export const monitoringPlugin: JupyterFrontEndPlugin<void> = {
  id: 'cellops:monitoring',
  description: 'cellops Monitoring: monitors, their drift and performance over windows, and open alerts.',
  autoStart: true,
  requires: [ICellopsSidebar],
  activate: (app: JupyterFrontEnd, sidebar: ICellopsSidebar) => {
    sidebar.addTab(new MonitoringTab(new MonitoringModel(), app.commands));
  }
};
