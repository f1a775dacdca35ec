import { JupyterFrontEnd, JupyterFrontEndPlugin, ILayoutRestorer } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { LabIcon } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { Panel, Widget } from '@lumino/widgets';

import { el } from './dom';
import { ICellopsSidebar, ISidebarTab } from './tokens';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <rect x="3" y="3" width="8" height="8" rx="1.5"/><rect x="13" y="3" width="8" height="8" rx="1.5" opacity=".6"/>
    <rect x="3" y="13" width="8" height="8" rx="1.5" opacity=".6"/><path d="M13 17h8v2h-8zM13 13h5v2h-5z"/>
  </g></svg>`;

export const cellopsIcon = new LabIcon({ name: 'cellops:icon', svgstr: ICON_SVG });

/**
 * The sidebar: a tab bar over the tabs plugins add. Only the selected tab is shown, and
 * only it polls, and only while the sidebar itself is visible.
 */
export class SidebarPanel extends Panel {
  constructor() {
    super();
    this.id = 'cellops-sidebar';
    this.addClass('jp-cellops-panel');
    this.title.caption = 'cellops';
    this.title.icon = cellopsIcon;
    this._bar = new Widget({ node: el('nav', { class: 'jp-cellops-tabs', role: 'tablist' }) });
    this.addWidget(this._bar);
  }

  addTab(tab: ISidebarTab): void {
    this._tabs = [...this._tabs, tab].sort((a, b) => a.rank - b.rank);
    tab.widget.addClass('jp-cellops-tab');
    tab.widget.hide();
    this.addWidget(tab.widget);
    // Until someone picks a tab, the first by rank is shown, whatever order plugins load in.
    if (!this._chosen) {
      this._current = this._tabs[0].key;
    }
    this._select(this._current as string);
  }

  /** Select the tab with this key. */
  selectTab(key: string): void {
    this._chosen = true;
    this._select(key);
  }

  protected onAfterShow(msg: Message): void {
    this._fit();
    this._notify();
  }

  protected onAfterHide(msg: Message): void {
    this._notify();
  }

  protected onAfterAttach(msg: Message): void {
    this._notify();
  }

  protected onBeforeDetach(msg: Message): void {
    for (const tab of this._tabs) {
      tab.setActive(false);
    }
  }

  private _select(tabId: string): void {
    this._current = tabId;
    this._bar.node.replaceChildren(...this._tabs.map(t => {
      const current = t.key === tabId;
      const icon = t.icon ? t.icon.element({ tag: 'span', className: 'jp-cellops-tab-icon' }) : null;
      const b = el('button', { role: 'tab', 'data-tab': t.key, class: current ? 'jp-mod-current' : '',
                               'aria-selected': String(current), 'aria-label': t.label, title: t.label,
                               type: 'button' },
                   icon, el('span', { class: 'jp-cellops-tab-label' }, t.label));
      b.onclick = () => this.selectTab(t.key);
      return b;
    }));
    this._fit();
    for (const t of this._tabs) {
      t.widget.setHidden(t.key !== tabId);
    }
    this._notify();
  }

  /** Labels when they all fit the bar; otherwise icons, with the current tab's label. */
  private _fit(): void {
    const bar = this._bar.node;
    bar.classList.remove('jp-mod-compact');
    if (bar.clientWidth > 0 && bar.scrollWidth > bar.clientWidth + 1) {
      bar.classList.add('jp-mod-compact');
    }
  }

  protected onResize(msg: Widget.ResizeMessage): void {
    super.onResize(msg);
    this._fit();
  }

  private _notify(): void {
    for (const t of this._tabs) {
      t.setActive(this.isVisible && t.key === this._current);
    }
  }

  private _bar: Widget;
  private _tabs: ISidebarTab[] = [];
  private _current: string | null = null;
  private _chosen = false;
}

/** Provides the sidebar (left area) that the Runs, Pipelines, ... plugins add tabs to. */
export const sidebarPlugin: JupyterFrontEndPlugin<ICellopsSidebar> = {
  id: 'cellops:sidebar',
  description: 'The cellops sidebar; areas add their tabs through ICellopsSidebar.',
  autoStart: true,
  provides: ICellopsSidebar,
  optional: [ILayoutRestorer, ICommandPalette],
  activate: (app: JupyterFrontEnd, restorer: ILayoutRestorer | null, palette: ICommandPalette | null) => {
    const panel = new SidebarPanel();
    app.shell.add(panel, 'left', { rank: 650 });
    restorer?.add(panel, 'cellops-sidebar');
    app.commands.addCommand('cellops:open-sidebar', {
      label: 'Show the cellops sidebar',
      execute: () => app.shell.activateById(panel.id)
    });
    palette?.addItem({ command: 'cellops:open-sidebar', category: 'cellops' });
    return {
      addTab: tab => panel.addTab(tab),
      activate: tabId => {
        app.shell.activateById(panel.id);
        panel.selectTab(tabId);
      }
    };
  }
};
