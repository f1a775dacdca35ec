import { ISignal, Signal } from '@lumino/signaling';

import { requestAPI } from '../handler';
import { Poller } from '../poller';

export interface IVersion {
  version: number;
  run_id: string | null;
  created_at: string;
  created_by: string | null;
  aliases: string[];
  tags: Record<string, string>;
  sha256: string;
  size: number;
  description: string | null;
  /** The data lineage recorded when it was registered. */
  datasets: { name: string; role: string | null; digest: string; rows: number | null; columns: number | null }[];
}

export interface IProtection {
  alias: string;
  approvers: string[];
  min_approvals: number;
  gate: string | null;
}

export interface IModel {
  name: string;
  description: string | null;
  latest_version: number | null;
  version_count: number;
  aliases: Record<string, number>;
  protections: IProtection[];
  versions: IVersion[];
}

export interface IAudit {
  ok: boolean;
  entries: number;
  head: string | null;
  first_bad: number | null;
  problem: string | null;
}

export interface IRequest {
  id: number;
  name: string;
  alias: string;
  version: number;
  previous_version: number | null;
  status: string;
  requested_by: string | null;
  requested_at: string;
  gate: string | null;
  gate_passed: boolean | null;
  approvers: string[];
  approvals: { approver: string; decision: string; comment: string | null }[];
  approvals_needed: number;
  can_decide: boolean;
  /** The candidate's latest metrics and the current alias target's (null: no target). */
  candidate_metrics: Record<string, number | string> | null;
  current_metrics: Record<string, number | string> | null;
}

/** The registry as the tab shows it: models, pending requests, the audit verification. */
export class RegistryModel {
  /** What the last Approve or Reject did, said where the user clicked. */
  confirmation: string | null = null;

  constructor() {
    this.poller = new Poller(() => this._fetch(), () => this._changed.emit());
  }

  readonly poller: Poller;
  models: IModel[] = [];
  requests: IRequest[] = [];
  audit: IAudit | null = null;
  user = '';
  /** Set when a decision failed (403, 409): shown above the requests. */
  decisionError: string | null = null;

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  async decide(requestId: number, approve: boolean, comment: string): Promise<void> {
    const request = this.requests.find(r => r.id === requestId);
    try {
      const done = await requestAPI<{ status: string; approvals_needed: number }>(
        `models/requests/${requestId}/${approve ? 'approve' : 'reject'}`, {
          method: 'POST',
          body: JSON.stringify({ comment: comment || null })
        });
      this.decisionError = null;
      const what = request ? `${request.name}@${request.alias} → v${request.version}` : `request #${requestId}`;
      this.confirmation = !approve ? `Rejected ${what}.`
        : done.status === 'APPROVED' ? `Approved ${what}: the alias has moved.`
        : `Approved ${what}; ${done.approvals_needed} more approval(s) needed.`;
    } catch (error) {
      this.decisionError = (error as Error).message;
      this.confirmation = null;
    }
    this.poller.refresh();
    this._changed.emit();
  }

  private async _fetch(): Promise<string> {
    const [summary, requests] = await Promise.all([
      requestAPI<{ models: IModel[]; user: string; audit: IAudit }>('models'),
      requestAPI<{ requests: IRequest[] }>('models/requests?status=pending')
    ]);
    this.models = summary.models;
    this.user = summary.user;
    this.audit = summary.audit;
    this.requests = requests.requests;
    return JSON.stringify([summary, requests]);
  }

  private _changed = new Signal<this, void>(this);
}
