/**
 * The Registry tab: pending promotion requests first (Approve / Reject for those who may
 * decide), then each model with its aliases (protected ones marked) and versions, a link
 * to each version's model card, and whether the audit log's hash chain is intact.
 */

import { tagIcon } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';

import { alertBox, button, el } from '../dom';
import { formatBytes, formatMetric, formatWhen } from '../format';
import { PollingTab } from '../tab';
import { CommandIDs, IVersionDecorator } from '../tokens';
import { IModel, IRequest, IVersion, RegistryModel } from './model';

export class RegistryTab extends PollingTab<RegistryModel> {
  readonly key = 'registry';
  readonly label = 'Registry';
  readonly icon = tagIcon;
  readonly rank = 300;

  /** Comments typed but not yet sent, by request id: a poll that re-renders keeps them. */
  private readonly drafts = new Map<number, string>();
  /** What other areas show in each version row (IRegistryExtensions). */
  private readonly decorators: IVersionDecorator[] = [];
  private active = false;

  constructor(model: RegistryModel, private readonly commands: CommandRegistry) {
    super(model);
    this.addClass('jp-cellops-registry-tab');
    this.render();
  }

  addVersionDecorator(decorator: IVersionDecorator): void {
    this.decorators.push(decorator);
    decorator.changed.connect(() => this.render(), this);
    decorator.setActive(this.active);
    this.render();
  }

  setActive(active: boolean): void {
    this.active = active;
    super.setActive(active);
    for (const d of this.decorators) {
      d.setActive(active);
    }
  }

  render(): void {
    const m = this.model;
    const pending = new Set(m.requests.map(r => r.id));
    for (const id of [...this.drafts.keys()]) {
      if (!pending.has(id)) {
        this.drafts.delete(id);
      }
    }
    this.renderParts(() => [
      this.auditLine(),
      this.requests(),
      m.models.length === 0
        ? el('p', { class: 'jp-cellops-empty' }, 'No registered models yet. Register one with %register NAME after a %%track cell, or cellops models register RUN NAME.')
        : el('div', { class: 'jp-cellops-models' }, ...m.models.map(model => this.modelView(model)))]);
  }

  private auditLine(): HTMLElement {
    const audit = this.model.audit;
    if (!audit) {
      return el('span');
    }
    return audit.ok
      ? el('p', { class: 'jp-cellops-audit jp-mod-ok', title: `head ${audit.head || ''}` },
           `Audit log intact: ${audit.entries.toLocaleString('en-US')} entries, hash chain verified.`)
      : el('p', { class: 'jp-cellops-audit jp-mod-broken', role: 'alert' },
           `Audit log broken at entry ${audit.first_bad}: ${audit.problem}`);
  }

  private requests(): HTMLElement {
    const m = this.model;
    if (m.requests.length === 0 && !m.decisionError && !m.confirmation) {
      return el('span');
    }
    return el('section', { class: 'jp-cellops-requests' },
      el('h3', {}, `Pending promotions (${m.requests.length})`),
      m.confirmation ? el('p', { class: 'jp-cellops-confirmation', role: 'status' }, m.confirmation) : null,
      alertBox(m.decisionError),
      ...m.requests.map(r => this.request(r)));
  }

  /** A user as the tab shows them: "you" for the person looking. */
  private who(user: string | null): string {
    return user === null ? 'unknown' : user === this.model.user ? 'you' : user;
  }

  private request(r: IRequest): HTMLElement {
    const gate = r.gate_passed === null ? null :
      el('span', { class: `jp-cellops-badge jp-cellops-badge-${r.gate_passed ? 'ok' : 'failed'}`, title: r.gate || '' },
         r.gate_passed ? 'gate passed' : 'gate failed');
    const comment = el('input', { class: 'jp-cellops-comment jp-mod-styled', placeholder: 'comment (optional)',
                                  'aria-label': `Comment on request ${r.id}` });
    comment.value = this.drafts.get(r.id) || '';
    comment.oninput = () => this.drafts.set(r.id, comment.value);
    const decide = (approve: boolean) => {
      this.drafts.delete(r.id);
      void this.model.decide(r.id, approve, comment.value);
    };
    let actions: HTMLElement;
    if (r.can_decide) {
      actions = el('div', { class: 'jp-cellops-decide' }, comment,
        el('div', { class: 'jp-cellops-buttons' },
          button('Approve', () => decide(true), { class: 'jp-cellops-approve' }, 'accept'),
          button('Reject', () => decide(false), { class: 'jp-cellops-reject' }, 'reject')));
    } else {
      const why = r.requested_by === this.model.user ? 'you requested it'
        : r.approvers.includes(this.model.user) ? 'you have decided it' : 'you are not an approver';
      actions = el('p', { class: 'jp-cellops-note' }, `You cannot decide this: ${why}.`);
    }
    const approvers = r.approvers.map(a => this.who(a)).join(', ');
    return el('article', { class: 'jp-cellops-request', 'data-request': String(r.id) },
      el('header', {}, el('b', {}, `${r.name}@${r.alias}`), ` → v${r.version}`,
         r.previous_version !== null ? el('small', {}, ` (now v${r.previous_version})`) : null, ' ', gate),
      el('p', { class: 'jp-cellops-meta', title: `requested by ${r.requested_by} at ${r.requested_at}` },
         `#${r.id} by ${this.who(r.requested_by)}, ${formatWhen(r.requested_at)}`),
      el('p', { class: 'jp-cellops-meta' },
         `Needs ${r.approvals_needed} more approval${r.approvals_needed === 1 ? '' : 's'} from ${approvers}`),
      this.metricsBeside(r),
      actions);
  }

  /** The candidate's metrics beside the current alias target's, what an approver weighs. */
  private metricsBeside(r: IRequest): HTMLElement | null {
    const candidate = r.candidate_metrics || {};
    const current = r.current_metrics;
    const keys = [...new Set([...Object.keys(candidate), ...Object.keys(current || {})])].sort();
    if (keys.length === 0) {
      return null;
    }
    const num = 'jp-cellops-num';
    return el('table', { class: 'jp-cellops-table jp-cellops-request-metrics' },
      el('thead', {}, el('tr', {}, el('th', {}, 'metric'), el('th', { class: num }, `v${r.version}`),
                         el('th', { class: num }, r.previous_version !== null ? `now v${r.previous_version}` : 'now: none'))),
      el('tbody', {}, ...keys.map(k => el('tr', { 'data-metric': k }, el('th', {}, k),
        el('td', { class: num, title: String(candidate[k] ?? '') }, formatMetric(candidate[k] as any)),
        el('td', { class: num, title: String(current?.[k] ?? '') }, current ? formatMetric(current[k] as any) : '—')))));
  }

  /** One area's elements for a version; a decorator that throws costs its own part only. */
  private decoration(d: IVersionDecorator, name: string, version: number): HTMLElement | null {
    try {
      const node = d.render(name, version);
      node?.setAttribute('data-decorator', d.key);
      return node;
    } catch (error) {
      console.error(`cellops: the ${d.key} part of ${name} v${version} failed`, error);
      return null;
    }
  }

  /** The version's datasets; each opens the runs that used it. */
  private lineage(v: IVersion): HTMLElement | null {
    if (!v.datasets || v.datasets.length === 0) {
      return null;
    }
    return el('div', { class: 'jp-cellops-meta jp-cellops-lineage' }, 'data: ',
      ...v.datasets.map(d => button(`${d.name}${d.role ? ` (${d.role})` : ''}`,
        () => void this.commands.execute(CommandIDs.showDatasetRuns, { digest: d.digest }),
        { class: 'jp-cellops-dataset-link',
          title: `${d.digest} · ${formatMetric(d.rows)} × ${formatMetric(d.columns)}: show the runs that used this dataset` })));
  }

  private modelView(model: IModel): HTMLElement {
    const protectedAliases = new Map(model.protections.map(p => [p.alias, p]));
    const chip = (alias: string, version: number | undefined) => {
      const p = protectedAliases.get(alias);
      const target = version === undefined ? 'unset' : `v${version}`;
      return el('span', { class: `jp-cellops-alias${p ? ' jp-mod-protected' : ''}`,
                          title: p ? `protected: moves after ${p.min_approvals} approval(s) from ${p.approvers.join(', ')}${p.gate ? `; gate ${p.gate}` : ''}` : 'alias' },
                `@${alias} → ${target}${p ? ' (protected)' : ''}`);
    };
    const aliasChips = [
      ...Object.entries(model.aliases).map(([alias, version]) => chip(alias, version)),
      ...model.protections.filter(p => !(p.alias in model.aliases)).map(p => chip(p.alias, undefined))
    ];
    const rows = model.versions.map(v => {
      const card = button('card', () => void this.commands.execute(CommandIDs.openModelCard, { name: model.name, version: v.version }),
                          { class: 'jp-cellops-card-link', title: 'Open the model card' });
      const run = v.run_id
        ? button(`run ${v.run_id.slice(0, 8)}`, () => void this.commands.execute(CommandIDs.openRun, { runId: v.run_id! }),
                 { class: 'jp-cellops-step-run', title: 'The run that made it' })
        : el('span', {}, 'no run');
      return el('li', { class: 'jp-cellops-version', 'data-version': String(v.version) },
        el('div', { class: 'jp-cellops-version-head' },
          el('b', { class: 'jp-cellops-num' }, `v${v.version}`),
          ...v.aliases.map(a => el('span', { class: `jp-cellops-alias${protectedAliases.has(a) ? ' jp-mod-protected' : ''}` }, `@${a}`)),
          el('span', { class: 'jp-cellops-spacer' }), card),
        el('div', { class: 'jp-cellops-meta' }, run,
           el('span', { title: `${v.created_at} by ${v.created_by}` }, ` · ${formatWhen(v.created_at)} by ${this.who(v.created_by)} · ${formatBytes(v.size)}`)),
        this.lineage(v),
        ...this.decorators.map(d => this.decoration(d, model.name, v.version)));
    });
    return el('article', { class: 'jp-cellops-model', 'data-model': model.name },
      el('header', {}, el('b', {}, model.name), el('small', {}, ` ${model.version_count} version(s)`)),
      model.description ? el('p', { class: 'jp-cellops-meta' }, model.description) : null,
      aliasChips.length ? el('div', { class: 'jp-cellops-aliases' }, ...aliasChips) : null,
      el('ul', { class: 'jp-cellops-versions' }, ...rows),
      model.version_count > model.versions.length
        ? el('p', { class: 'jp-cellops-note' }, `Newest ${model.versions.length} of ${model.version_count}; all: cellops models versions ${model.name}`)
        : null);
  }
}
