import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { MainAreaWidget } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { el } from '../dom';
import { requestAPI } from '../handler';
import { cellopsIcon } from '../sidebar';
import { CommandIDs, ICellopsSidebar, IRegistryExtensions } from '../tokens';
import { RegistryModel } from './model';
import { RegistryTab } from './tab';

/** The Registry tab, and model cards in the main area. */
export const registryPlugin: JupyterFrontEndPlugin<IRegistryExtensions> = {
  id: 'cellops:registry',
  description: 'cellops Registry: models, versions, aliases, promotion requests, model cards.',
  autoStart: true,
  requires: [ICellopsSidebar],
  provides: IRegistryExtensions,
  activate: (app: JupyterFrontEnd, sidebar: ICellopsSidebar): IRegistryExtensions => {
    const model = new RegistryModel();
    const tab = new RegistryTab(model, app.commands);
    sidebar.addTab(tab);
    const open = new Map<string, MainAreaWidget>();
    app.commands.addCommand(CommandIDs.openModelCard, {
      label: 'Open a model card',
      execute: async args => {
        const name = String(args.name);
        const version = String(args.version ?? 'latest');
        let card: { name: string; version: number; html: string };
        try {
          card = await requestAPI(`models/${encodeURIComponent(name)}/card?version=${encodeURIComponent(version)}`);
        } catch (error) {
          model.decisionError = `Could not open the card of ${name} ${version}: ${(error as Error).message}`;
          tab.render();
          return;
        }
        const id = `cellops-card-${card.name}-${card.version}`.replace(/[^A-Za-z0-9_-]/g, '-');
        let widget = open.get(id);
        if (!widget || widget.isDisposed) {
          const content = new Widget();
          content.addClass('jp-cellops-card');
          widget = new MainAreaWidget({ content });
          widget.id = id;
          widget.title.label = `${card.name} v${card.version} card`;
          widget.title.icon = cellopsIcon;
          widget.title.closable = true;
          open.set(id, widget);
          app.shell.add(widget, 'main');
        }
        // The server renders the card's Markdown with raw HTML escaped: user text stays text.
        // Opening it again shows the card as it is now (new approvals, aliases).
        const body = el('div', { class: 'jp-RenderedHTMLCommon' });
        body.innerHTML = card.html;
        widget.content.node.replaceChildren(body);
        app.shell.activateById(widget.id);
      }
    });
    return { addVersionDecorator: decorator => tab.addVersionDecorator(decorator) };
  }
};
