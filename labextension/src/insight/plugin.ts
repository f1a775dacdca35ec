/**
 * Explanations and fairness in the sidebar: beside each version in the Registry tab whose
 * run logged them, its most important features and its fairness gaps (the full reports
 * are in the model card). Polls `insight/versions` only while the Registry tab is shown.
 */

import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ISignal, Signal } from '@lumino/signaling';

import { el } from '../dom';
import { formatMetric } from '../format';
import { requestAPI } from '../handler';
import { Poller } from '../poller';
import { IRegistryExtensions, IVersionDecorator } from '../tokens';

export interface IVersionInsight {
  model: string;
  version: number;
  explanation: { method: string; top: { feature: string; importance: number }[] } | null;
  fairness: { sensitive_features: string[]; task: string; gaps: Record<string, number | null>; groups: number } | null;
}

/** The short name of a gap, as the row shows it (the full name and definition on hover). */
const SHORT: Record<string, string> = {
  demographic_parity_difference: 'parity gap', demographic_parity_ratio: 'parity ratio',
  equalized_odds_difference: 'odds gap', equalized_odds_ratio: 'odds ratio',
  mae_difference: 'MAE gap', mae_ratio: 'MAE ratio'
};

export class InsightStatus implements IVersionDecorator {
  readonly key = 'insight';
  readonly poller: Poller;
  versions: IVersionInsight[] = [];
  definitions: Record<string, string> = {};

  constructor() {
    this.poller = new Poller(async () => {
      const reply = await requestAPI<{ versions: IVersionInsight[]; definitions: Record<string, string> }>('insight/versions');
      this.versions = reply.versions || [];
      this.definitions = reply.definitions || {};
      return JSON.stringify(reply.versions);
    }, () => this._changed.emit());
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  setActive(active: boolean): void {
    this.poller.setActive(active);
  }

  render(model: string, version: number): HTMLElement | null {
    const found = this.versions.find(v => v.model === model && v.version === version);
    if (!found) {
      return null;
    }
    const parts: HTMLElement[] = [];
    if (found.fairness) {
      const f = found.fairness;
      parts.push(el('div', { class: 'jp-cellops-fairness-line' },
        el('span', { class: 'jp-cellops-meta' }, `fairness by ${f.sensitive_features.join(', ')}: `),
        ...Object.entries(f.gaps).map(([k, v]) => el('span', {
          class: 'jp-cellops-gap', 'data-gap': k, title: `${k}: ${this.definitions[k] || ''}`
        }, `${SHORT[k] || k} ${v === null ? '—' : formatMetric(v, 3)}`))));
    }
    if (found.explanation) {
      parts.push(el('div', { class: 'jp-cellops-explained', title: `Most important features (${found.explanation.method})` },
        el('span', { class: 'jp-cellops-meta' }, 'depends on: '),
        found.explanation.top.slice(0, 3).map(t => t.feature).join(', ')));
    }
    return el('div', { class: 'jp-cellops-insight', 'data-model': model, 'data-version': String(version) }, ...parts);
  }

  private _changed = new Signal<this, void>(this);
}

/** Explanations and fairness in the Registry tab. */
export const insightPlugin: JupyterFrontEndPlugin<void> = {
  id: 'cellops:insight',
  description: 'cellops insight: the fairness gaps and most important features of each registered version.',
  autoStart: true,
  requires: [IRegistryExtensions],
  activate: (app: JupyterFrontEnd, registry: IRegistryExtensions) => {
    registry.addVersionDecorator(new InsightStatus());
  }
};
