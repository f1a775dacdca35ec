/** The Team tab: where the workspace keeps its data, who you are acting as and with which
 * role, and everyone's roles — which an admin changes here (a select per person, Remove,
 * and Grant for someone new), through the same checks as `cellops roles`. */

import { usersIcon } from '@jupyterlab/ui-components';
import { ISignal, Signal } from '@lumino/signaling';

import { alertBox, button, el } from '../dom';
import { formatWhen } from '../format';
import { requestAPI } from '../handler';
import { Poller } from '../poller';
import { PollingTab } from '../tab';

export interface IRole {
  user: string;
  role: string;
  granted_by: string;
  /** Milliseconds since the epoch. */
  granted_at: number;
}

export interface IRolesReply {
  enforced: boolean;
  you: { user: string; role: string };
  roles: IRole[];
  workspace: { shared: boolean; store: string; artifacts: string };
}

/** The roles, each including the ones before it, and what each adds. */
export const ROLES: [string, string][] = [
  ['viewer', 'reads everything'],
  ['editor', 'also logs runs, registers models and feature views, saves monitors'],
  ['approver', 'also approves or rejects promotion requests'],
  ['admin', 'also protects aliases and grants and revokes roles']
];

/** A local path's last two folders ("…/project/.cellops"), the sidebar being narrow; a URL
 * (`postgresql://…`, `s3://…`) whole. The full text is on hover. */
export function shortPlace(place: string): string {
  if (place.includes('://')) {
    return place;
  }
  const parts = place.split(/[\\/]/).filter(p => p);
  return parts.length > 2 ? `…/${parts.slice(-2).join('/')}` : place;
}

/** Whether the Team tab belongs in the sidebar: a team's (PostgreSQL) workspace, or one
 * with roles granted. A one-person workspace has no use for it. */
export function wantsTeamTab(reply: IRolesReply): boolean {
  return reply.enforced || reply.workspace.shared;
}

export class TeamModel {
  constructor(first: IRolesReply | null = null) {
    this.reply = first;
    this.poller = new Poller(async () => {
      this.reply = await requestAPI<IRolesReply>('roles');
      return JSON.stringify(this.reply);
    }, () => this._changed.emit());
  }

  /** Give `user` `role` (or change theirs); says what happened. */
  async grant(user: string, role: string): Promise<void> {
    await this._act(async () => {
      const done = await requestAPI<{ user: string; role: string; before: string | null }>(
        `roles/${encodeURIComponent(user)}`, { method: 'PUT', body: JSON.stringify({ role }) });
      return done.before ? `${done.user}: ${done.before} → ${done.role}.` : `${done.user} is now ${done.role}.`;
    });
  }

  /** Take `user`'s role away; says what happened. */
  async revoke(user: string): Promise<void> {
    await this._act(async () => {
      const done = await requestAPI<{ user: string; before: string }>(
        `roles/${encodeURIComponent(user)}`, { method: 'DELETE' });
      return `${done.user} no longer holds a role (was ${done.before}).`;
    });
  }

  private async _act(action: () => Promise<string>): Promise<void> {
    try {
      this.confirmation = await action();
      this.actionError = '';
    } catch (error) {
      this.confirmation = '';
      this.actionError = String((error as Error).message || error);
    }
    this.poller.refresh();
    this._changed.emit();
  }

  readonly poller: Poller;
  reply: IRolesReply | null;
  actionError = '';
  confirmation = '';

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  private _changed = new Signal<this, void>(this);
}

function roleSelect(current: string, attrs: Record<string, string>): HTMLSelectElement {
  const select = el('select', { ...attrs, class: `jp-mod-styled ${attrs.class || ''}`.trim() },
    ...ROLES.map(([role, adds]) => {
      const option = el('option', { value: role, title: adds }, role);
      option.selected = role === current;
      return option;
    }));
  return select;
}

export class TeamTab extends PollingTab<TeamModel> {
  readonly key = 'team';
  readonly label = 'Team';
  readonly icon = usersIcon;
  readonly rank = 600;

  constructor(model: TeamModel) {
    super(model);
    this.addClass('jp-cellops-team-tab');
    this.render();
  }

  render(): void {
    const reply = this.model.reply;
    this.renderParts(() => reply === null ? [] : [
      alertBox(this.model.actionError),
      this.model.confirmation ? el('p', { class: 'jp-cellops-confirmation', role: 'status' }, this.model.confirmation) : null,
      this.where(reply),
      this.you(reply),
      ...this.roles(reply)]);
  }

  private where(reply: IRolesReply): HTMLElement {
    const ws = reply.workspace;
    return el('dl', { class: 'jp-cellops-team-where' },
      el('dt', {}, 'Store'),
      el('dd', { title: ws.store }, ws.shared ? `PostgreSQL ${ws.store}` : `SQLite in ${shortPlace(ws.store)}`),
      el('dt', {}, 'Artifacts'),
      el('dd', { title: ws.artifacts }, shortPlace(ws.artifacts)));
  }

  private you(reply: IRolesReply): HTMLElement {
    const admin = reply.you.role === 'admin';
    if (!reply.enforced) {
      return el('div', { class: 'jp-cellops-team-open' },
        el('p', { class: 'jp-cellops-note' },
           'No roles are granted: everyone who reaches this workspace may do anything. Once ' +
           'someone is an admin, writes check roles, and anyone not granted one is a viewer.'),
        button(`Make me (${reply.you.user}) the admin`, () => void this.model.grant(reply.you.user, 'admin'),
               { class: 'jp-cellops-team-first', title: 'The first grant must make you an admin, so that someone can manage roles' },
               'accept'));
    }
    return el('p', { class: 'jp-cellops-team-you' }, 'You are ', el('b', {}, reply.you.user), ', ',
              el('span', { class: `jp-cellops-role jp-cellops-role-${reply.you.role}` }, reply.you.role),
              admin ? '' : ' — only an admin changes roles.');
  }

  private roles(reply: IRolesReply): (HTMLElement | null)[] {
    if (!reply.enforced) {
      return [];
    }
    const admin = reply.you.role === 'admin';
    const rows = reply.roles.map(r => {
      const role = admin
        ? roleSelect(r.role, { class: 'jp-cellops-role-pick', 'aria-label': `Role of ${r.user}` })
        : el('span', { class: `jp-cellops-role jp-cellops-role-${r.role}` }, r.role);
      if (role instanceof HTMLSelectElement) {
        role.onchange = () => void this.model.grant(r.user, role.value);
      }
      return el('tr', { 'data-user': r.user },
        el('td', { class: 'jp-cellops-team-user', title: `granted by ${r.granted_by} ${formatWhen(new Date(r.granted_at).toISOString())}` }, r.user),
        el('td', {}, role),
        el('td', {}, admin ? button('Remove', () => void this.model.revoke(r.user),
                                    { class: 'jp-cellops-team-remove', title: `Take ${r.user}'s role away` }) : null));
    });
    const parts: (HTMLElement | null)[] = [
      el('h3', { class: 'jp-cellops-section' }, `Roles (${reply.roles.length})`),
      el('table', { class: 'jp-cellops-team-roles' }, el('tbody', {}, ...rows))];
    if (admin) {
      const who = el('input', { class: 'jp-mod-styled jp-cellops-team-new', placeholder: 'user name',
                                'aria-label': 'User to grant a role' });
      const role = roleSelect('viewer', { class: 'jp-cellops-team-new-role', 'aria-label': 'Role to grant' });
      const grant = () => {
        const name = who.value.trim();
        if (name) {
          void this.model.grant(name, role.value);
        }
      };
      who.onkeydown = (e: KeyboardEvent) => {
        if (e.key === 'Enter') {
          grant();
        }
      };
      parts.push(el('div', { class: 'jp-cellops-team-grant' }, who, role,
                    button('Grant', grant, { class: 'jp-cellops-team-grant-button' }, 'accept')));
    }
    parts.push(el('ul', { class: 'jp-cellops-team-help' },
      ...ROLES.map(([r, adds]) => el('li', {}, el('span', { class: `jp-cellops-role jp-cellops-role-${r}` }, r), ` ${adds}`))));
    return parts;
  }
}
