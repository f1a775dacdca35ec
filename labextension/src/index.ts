import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { LabIcon } from '@jupyterlab/ui-components';

import { CellopsModel } from './model';
import { CellopsPanel } from './panel';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <rect x="3" y="3" width="8" height="8" rx="1.5"/><rect x="13" y="3" width="8" height="8" rx="1.5" opacity=".6"/>
    <rect x="3" y="13" width="8" height="8" rx="1.5" opacity=".6"/><path d="M13 17h8v2h-8zM13 13h5v2h-5z"/>
  </g></svg>`;

export const cellopsIcon = new LabIcon({ name: 'cellops:icon', svgstr: ICON_SVG });

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'cellops:sidebar',
  description: 'cellops sidebar: runs and pipelines of the workspace.',
  autoStart: true,
  optional: [ILayoutRestorer, ICommandPalette],
  activate: (app: JupyterFrontEnd, restorer: ILayoutRestorer | null, palette: ICommandPalette | null) => {
    const model = new CellopsModel();
    const panel = new CellopsPanel(model, path => app.commands.execute('docmanager:open', { path }));
    panel.title.icon = cellopsIcon;
    app.shell.add(panel, 'left', { rank: 650 });
    restorer?.add(panel, 'cellops-sidebar');
    app.commands.addCommand('cellops:open-sidebar', {
      label: 'Show cellops runs and pipelines',
      execute: () => app.shell.activateById(panel.id)
    });
    palette?.addItem({ command: 'cellops:open-sidebar', category: 'cellops' });
  }
};

export default plugin;
