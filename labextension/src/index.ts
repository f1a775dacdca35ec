import { JupyterFrontEndPlugin } from '@jupyterlab/application';

import { featuresPlugin } from './features/plugin';
import { insightPlugin } from './insight/plugin';
import { monitoringPlugin } from './monitoring/plugin';
import { pipelinesPlugin } from './pipelines/plugin';
import { registryPlugin } from './registry/plugin';
import { runsPlugin } from './runs/plugin';
import { servingPlugin } from './serving/plugin';
import { sidebarPlugin } from './sidebar';
import { teamPlugin } from './team/plugin';

export * from './tokens';

/** The sidebar, then one plugin per tab (each area adds its own the same way). */
const plugins: JupyterFrontEndPlugin<any>[] = [sidebarPlugin, runsPlugin, pipelinesPlugin, registryPlugin, servingPlugin, monitoringPlugin,
                                            featuresPlugin, insightPlugin, teamPlugin];

export default plugins;
