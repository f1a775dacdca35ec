import { ISignal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { alertBox, el } from './dom';
import { Poller } from './poller';
import { ISidebarTab } from './tokens';

/** What a tab shows: polled data that signals when it changed. */
export interface ITabModel {
  readonly poller: Poller;
  readonly changed: ISignal<any, void>;
}

/** A sidebar tab that renders its model whenever it changes and polls only while shown. */
export abstract class PollingTab<M extends ITabModel> extends Widget implements ISidebarTab {
  abstract readonly key: string;
  abstract readonly label: string;
  abstract readonly rank: number;

  constructor(readonly model: M) {
    super();
    model.changed.connect(() => this.render(), this);
  }

  get widget(): Widget {
    return this;
  }

  setActive(active: boolean): void {
    this.model.poller.setActive(active);
  }

  abstract render(): void;

  /**
   * What every polled tab shows first: with no workspace yet, only the server's message
   * (what to do next); otherwise the last request's error, if any, above `content()`.
   */
  protected renderParts(content: () => (HTMLElement | null)[]): void {
    const error = this.model.poller.error;
    if (error && error.noWorkspace) {
      this.node.replaceChildren(el('div', { class: 'jp-cellops-empty' }, el('p', {}, error.message)));
      return;
    }
    this.node.replaceChildren(...[alertBox(error?.message), ...content()].filter(
      (part): part is HTMLElement => part !== null));
  }
}
