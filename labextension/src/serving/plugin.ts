/**
 * Serving in the sidebar: beside each version in the Registry tab, the scoring servers of
 * the workspace serving it (`cellops serve`, `cellops.serve`, `%serve`), their URL and
 * request rate. Polls `serving` only while the Registry tab is shown.
 */

import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ISignal, Signal } from '@lumino/signaling';

import { el } from '../dom';
import { formatRate, formatWhen } from '../format';
import { requestAPI } from '../handler';
import { Poller } from '../poller';
import { IRegistryExtensions, IVersionDecorator } from '../tokens';

export interface IEndpoint {
  id: string;
  model: string;
  version: number | null;
  uri: string;
  url: string;
  host: string;
  pid: number;
  started_at: string;
  heartbeat_at: string;
  requests_total: number;
  rate: number;
}

/** The running servers, by model and version, as the Registry tab shows them. */
export class ServingStatus implements IVersionDecorator {
  readonly key = 'serving';
  readonly poller: Poller;
  endpoints: IEndpoint[] = [];

  constructor() {
    this.poller = new Poller(() => this._fetch(), () => this._changed.emit());
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  setActive(active: boolean): void {
    this.poller.setActive(active);
  }

  render(model: string, version: number): HTMLElement | null {
    const here = this.endpoints.filter(e => e.model === model && e.version === version);
    if (here.length === 0) {
      return null;
    }
    const total = here.reduce((sum, e) => sum + (e.rate || 0), 0);
    return el('div', { class: 'jp-cellops-serving' },
      el('span', { class: 'jp-cellops-badge jp-cellops-badge-ok', title: 'A local scoring server is serving this version' },
         here.length === 1 ? 'serving' : `serving ×${here.length}`),
      el('span', { class: 'jp-cellops-num jp-cellops-rate', title: 'Requests per second over the last 5 s' }, ` ${formatRate(total)} `),
      ...here.map(e => el('a', {
        class: 'jp-cellops-serving-url', href: `${e.url}/ping`, target: '_blank', rel: 'noopener',
        title: `${e.uri} · pid ${e.pid} on ${e.host} · since ${formatWhen(e.started_at)} · ${e.requests_total.toLocaleString('en-US')} request(s)`
      }, e.url.replace(/^https?:\/\//, ''))));
  }

  private async _fetch(): Promise<string> {
    const reply = await requestAPI<{ endpoints: IEndpoint[] }>('serving');
    this.endpoints = reply.endpoints;
    // Heartbeats alone are not a change worth drawing: only versions, counts and rates.
    return JSON.stringify(reply.endpoints.map(e => [e.id, e.version, e.requests_total, e.rate]));
  }

  private _changed = new Signal<this, void>(this);
}

/** Serving status in the Registry tab. */
export const servingPlugin: JupyterFrontEndPlugin<void> = {
  id: 'cellops:serving',
  description: 'cellops serving: which versions local scoring servers serve, and how busy they are.',
  autoStart: true,
  requires: [IRegistryExtensions],
  activate: (app: JupyterFrontEnd, registry: IRegistryExtensions) => {
    registry.addVersionDecorator(new ServingStatus());
  }
};
