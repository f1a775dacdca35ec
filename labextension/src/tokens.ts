import { LabIcon } from '@jupyterlab/ui-components';
import { Token } from '@lumino/coreutils';
import { ISignal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

/** A tab of the cellops sidebar, added by the plugin of its area. */
export interface ISidebarTab {
  /** Unique key (also the tab button's `data-tab`). */
  readonly key: string;
  /** The button label. */
  readonly label: string;
  /** The button icon: when the labels do not fit the sidebar's width, the other tabs show
   * their icon only (their label on hover). */
  readonly icon?: LabIcon;
  /** Order in the tab bar: Runs 100, Pipelines 200, Registry 300, Monitoring 400, Features 500, Team 600. */
  readonly rank: number;
  /** What the tab shows. */
  readonly widget: Widget;
  /** Called when the tab is shown or hidden: a tab polls the server only while shown. */
  setActive(active: boolean): void;
}

/** The sidebar panel: areas add their tabs to it (the jupyterlab-git / JupyterLab token pattern). */
export interface ICellopsSidebar {
  /** Add a tab; tabs are ordered by rank. */
  addTab(tab: ISidebarTab): void;
  /** Show the sidebar with this tab selected. */
  activate(tabId: string): void;
}

export const ICellopsSidebar = new Token<ICellopsSidebar>(
  'cellops:ICellopsSidebar',
  'The cellops sidebar: each area (runs, pipelines, registry, monitoring) adds a tab.'
);

/**
 * Something another area shows beside each registered version in the Registry tab
 * (serving: the servers serving it; monitoring: its drift status).
 */
export interface IVersionDecorator {
  /** Unique key (also the `data-decorator` of what it renders). */
  readonly key: string;
  /** What to show for this version, or null for nothing. */
  render(model: string, version: number): HTMLElement | null;
  /** Emitted when what `render` shows changed: the tab renders again. */
  readonly changed: ISignal<any, void>;
  /** Called when the Registry tab is shown or hidden: poll only while shown. */
  setActive(active: boolean): void;
}

/** The Registry tab's extension points, for other areas' plugins. */
export interface IRegistryExtensions {
  /** Show `decorator`'s elements in every version row. */
  addVersionDecorator(decorator: IVersionDecorator): void;
}

export const IRegistryExtensions = new Token<IRegistryExtensions>(
  'cellops:IRegistryExtensions',
  'The Registry tab: other areas add what they know about each model version.'
);

/** Commands areas use to reach each other without importing each other. */
export namespace CommandIDs {
  /** Show a run's detail in the Runs tab: args `{ runId: string }`. */
  export const openRun = 'cellops:open-run';
  /** Open the full-width runs view in the main area. */
  export const openRunsView = 'cellops:open-runs-view';
  /** Copy a run's notebook artifact under the server root and open it: `{ runId, artifact }`. */
  export const openArtifact = 'cellops:open-artifact';
  /** Open a version's model card in the main area: `{ name, version }`. */
  export const openModelCard = 'cellops:open-model-card';
  /** List, in the Runs tab, the runs that used a dataset: `{ digest }` (its 12-character digest). */
  export const showDatasetRuns = 'cellops:show-dataset-runs';
}
