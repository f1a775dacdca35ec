/** The Features tab: every feature view with its keys, TTL, versions and each feature's
 * freshness; the online store's state (how many entities, materialized up to when, from
 * which version, a Materialize button); and the registered models that use it. */

import { tableRowsIcon } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import { ISignal, Signal } from '@lumino/signaling';

import { alertBox, button, el } from '../dom';
import { formatWhen } from '../format';
import { requestAPI } from '../handler';
import { Poller } from '../poller';
import { PollingTab } from '../tab';
import { CommandIDs } from '../tokens';

export interface IOnline {
  entities: number;
  materialized_to: string | null;
  materialized_version: number | null;
  materialized_at: string | null;
  behind: boolean;
}

export interface IFeatureView {
  name: string;
  version: number;
  versions: number;
  entities: string[];
  ttl_seconds: number | null;
  features: Record<string, string>;
  description: string;
  num_rows: number;
  max_time: string | null;
  freshness: Record<string, string | null>;
  online: IOnline;
  models: { model: string; model_version: number }[];
}

/** A TTL in the largest whole unit: 7d, 12h, 30m, 90s. */
export function formatTtl(seconds: number | null): string {
  if (seconds === null || seconds === undefined) {
    return 'no TTL';
  }
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]] as [string, number][]) {
    if (seconds >= size && seconds % size === 0) {
      return `TTL ${seconds / size}${unit}`;
    }
  }
  return `TTL ${seconds}s`;
}

/** A UTC time as "2024-02-29 00:00" (data times are not "ago": they are event times). */
function utc(iso: string | null): string {
  return iso ? `${iso.slice(0, 16).replace('T', ' ')} UTC` : '—';
}

export class FeaturesModel {
  constructor() {
    this.poller = new Poller(async () => {
      const data = await requestAPI<{ views: IFeatureView[] }>('features');
      this.views = data.views || [];
      return JSON.stringify(data);
    }, () => this._changed.emit());
  }

  /** Materialize a view as of now; says what happened. */
  async materialize(view: string): Promise<void> {
    try {
      const done = await requestAPI<{ rows_written: number; rows_expired: number; version: number }>(
        `features/${encodeURIComponent(view)}/materialize`, { method: 'POST', body: '{}' });
      this.actionError = '';
      this.confirmation = `Materialized ${view} v${done.version}: ${done.rows_written} written, ` +
        `${done.rows_expired} expired.`;
    } catch (error) {
      this.confirmation = '';
      this.actionError = String((error as Error).message || error);
    }
    await this.poller.refresh();
    this._changed.emit();
  }

  readonly poller: Poller;
  views: IFeatureView[] = [];
  actionError = '';
  confirmation = '';

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  private _changed = new Signal<this, void>(this);
}

export class FeaturesTab extends PollingTab<FeaturesModel> {
  readonly key = 'features';
  readonly label = 'Features';
  readonly icon = tableRowsIcon;
  readonly rank = 500;

  constructor(model: FeaturesModel, private readonly commands: CommandRegistry) {
    super(model);
    this.addClass('jp-cellops-features-tab');
    this.render();
  }

  render(): void {
    const { views } = this.model;
    this.renderParts(() => [
      alertBox(this.model.actionError),
      this.model.confirmation ? el('p', { class: 'jp-cellops-confirmation', role: 'status' }, this.model.confirmation) : null,
      el('h3', { class: 'jp-cellops-section' }, `Feature views (${views.length})`),
      views.length === 0
        ? el('p', { class: 'jp-cellops-empty' },
             'No feature views yet. Register one in a notebook: cellops.register_feature_view(name, df, entities=..., timestamp=...)')
        : el('div', { class: 'jp-cellops-views' }, ...views.map(v => this.view(v)))]);
  }

  private view(v: IFeatureView): HTMLElement {
    const online = v.online;
    const state = online.materialized_to
      ? `Online: ${online.entities.toLocaleString('en-US')} entities, to ${utc(online.materialized_to)} from v${online.materialized_version}`
      : 'Online: not materialized';
    const features = Object.entries(v.features).map(([name, dtype]) =>
      el('li', { 'data-feature': name, title: `${name} (${dtype}): newest value ${utc(v.freshness[name])}` },
         el('span', { class: 'jp-cellops-feature-name' }, name),
         el('small', { class: 'jp-cellops-meta' }, ` ${utc(v.freshness[name])}`)));
    const models = v.models.map(m => button(`${m.model} v${m.model_version}`, () => {
      void this.commands.execute(CommandIDs.openModelCard, { name: m.model, version: m.model_version });
    }, { class: 'jp-cellops-link', title: 'Open its model card' }));
    return el('article', { class: 'jp-cellops-view', 'data-view': v.name },
      el('header', {}, el('b', {}, v.name), el('small', { class: 'jp-cellops-meta' },
         ` v${v.version}${v.versions > 1 ? ` (${v.versions} versions)` : ''} · by ${v.entities.join(', ')} · ${formatTtl(v.ttl_seconds)}`)),
      v.description ? el('p', { class: 'jp-cellops-note' }, v.description) : null,
      el('p', { class: 'jp-cellops-sub' }, `${v.num_rows.toLocaleString('en-US')} rows, newest ${utc(v.max_time)}`),
      el('ul', { class: 'jp-cellops-features' }, ...features),
      el('p', { class: 'jp-cellops-online' + (online.behind ? ' jp-mod-behind' : '') }, state,
         online.behind ? ` — behind v${v.version}` : '',
         online.materialized_at ? el('small', { class: 'jp-cellops-meta' }, ` (${formatWhen(online.materialized_at)})`) : null),
      el('div', {}, button('Materialize', () => void this.model.materialize(v.name),
                           { class: 'jp-cellops-materialize', title: 'Write the latest values as of now to the online store' })),
      el('p', { class: 'jp-cellops-sub' }, models.length ? 'Used by ' : 'Used by no registered model yet', ...models));
  }
}
