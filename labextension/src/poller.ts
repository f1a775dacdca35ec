import { Backoff } from './format';
import { APIError } from './handler';

/**
 * Polls `fetch` while active and the page is visible: every `base` ms while data changes,
 * backing off (doubling, up to `max`: a minute) while nothing changes or requests fail. `fetch`
 * returns a snapshot string; `onChange` runs when it (or the error) changed.
 */
export class Poller {
  constructor(
    private readonly fetch: () => Promise<string>,
    private readonly onChange: () => void,
    base = 2000,
    max = 60000
  ) {
    this._backoff = new Backoff(base, max);
  }

  /** Set when the last request failed; `noWorkspace` is the normal "nothing logged yet". */
  error: APIError | null = null;

  /** Start or stop polling (a tab calls this when it is shown or hidden). */
  setActive(active: boolean): void {
    this._active = active;
    if (active) {
      this.refresh();
    } else {
      this._clearTimer();
    }
  }

  get active(): boolean {
    return this._active;
  }

  /** Fetch now (a user action): resets the backoff. */
  refresh(): void {
    this._backoff.reset();
    this._clearTimer();
    void this._poll();
  }

  dispose(): void {
    this._active = false;
    this._clearTimer();
  }

  private async _poll(): Promise<void> {
    if (!this._active) {
      return;
    }
    const seq = ++this._seq;
    let outcome: 'changed' | 'same' | 'error' = 'same';
    try {
      const snapshot = await this.fetch();
      if (seq !== this._seq) {
        return; // a newer poll started (the user changed something)
      }
      outcome = snapshot !== this._last || this.error !== null ? 'changed' : 'same';
      this._last = snapshot;
      this.error = null;
    } catch (error) {
      if (seq !== this._seq) {
        return;
      }
      const apiError = error instanceof APIError ? error : new APIError(0, String(error));
      outcome = this.error && this.error.message === apiError.message ? 'error' : 'changed';
      this.error = apiError;
    }
    if (outcome !== 'same') {
      this.onChange();
    }
    const delay = this._backoff.next(outcome === 'changed' && this.error === null ? 'changed' : outcome);
    this._clearTimer();
    if (this._active && !document.hidden) {
      this._timer = window.setTimeout(() => void this._poll(), delay);
    } else if (this._active) {
      const resume = () => {
        document.removeEventListener('visibilitychange', resume);
        this.refresh();
      };
      document.addEventListener('visibilitychange', resume);
    }
  }

  private _clearTimer(): void {
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
      this._timer = null;
    }
  }

  private _backoff: Backoff;
  private _active = false;
  private _timer: number | null = null;
  private _seq = 0;
  private _last = '';
}
