import { JupyterFrontEndPlugin } from '@jupyterlab/application';

import { pipelinesPlugin } from './pipelines/plugin';
import { runsPlugin } from './runs/plugin';
import { sidebarPlugin } from './sidebar';

export * from './tokens';

/** The sidebar, then one plugin per tab (registry and monitoring add theirs the same way). */
const plugins: JupyterFrontEndPlugin<any>[] = [sidebarPlugin, runsPlugin, pipelinesPlugin];

export default plugins;
