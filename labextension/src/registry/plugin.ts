import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { MainAreaWidget } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { el } from '../dom';
import { requestAPI } from '../handler';
import { cellopsIcon } from '../sidebar';
import { CommandIDs, ICellopsSidebar } from '../tokens';
import { RegistryModel } from './model';
import { RegistryTab } from './tab';

/** The Registry tab, and model cards in the main area. */
export const registryPlugin: JupyterFrontEndPlugin<void> = {
  id: 'cellops:registry',
  description: 'cellops Registry: models, versions, aliases, promotion requests, model cards.',
  autoStart: true,
  requires: [ICellopsSidebar],
  activate: (app: JupyterFrontEnd, sidebar: ICellopsSidebar) => {
    sidebar.addTab(new RegistryTab(new RegistryModel(), app.commands));
    app.commands.addCommand(CommandIDs.openModelCard, {
      label: 'Open a model card',
      execute: async args => {
        const name = String(args.name);
        const version = String(args.version ?? 'latest');
        const card = await requestAPI<{ name: string; version: number; html: string }>(
          `models/${encodeURIComponent(name)}/card?version=${encodeURIComponent(version)}`);
        const content = new Widget();
        content.addClass('jp-cellops-card');
        // The server renders the card's Markdown with raw HTML escaped: user text stays text.
        const body = el('div', { class: 'jp-RenderedHTMLCommon' });
        body.innerHTML = card.html;
        content.node.append(body);
        const widget = new MainAreaWidget({ content });
        widget.id = `cellops-card-${card.name}-${card.version}`.replace(/[^A-Za-z0-9_-]/g, '-');
        widget.title.label = `${card.name} v${card.version} card`;
        widget.title.icon = cellopsIcon;
        widget.title.closable = true;
        app.shell.add(widget, 'main');
        app.shell.activateById(widget.id);
      }
    });
  }
};
