import type { TimerHost } from '../clock.js';

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
}

/**
 * A clock that only moves when told. Pass it as `timers` (and `clock: fake.date`) to a
 * controller: timeouts, grace periods, retry delays and leases then fire on
 * {@link FakeClock.advance}, not in real time.
 */
export class FakeClock implements TimerHost {
  private current: number;
  private seq = 0;
  private readonly timers = new Map<number, Pending>();

  constructor(start: Date | string | number = '2024-01-01T00:00:00.000Z') {
    this.current = new Date(start).getTime();
  }

  now(): number {
    return this.current;
  }

  /** The current time as a Date (usable as a controller's `clock`). */
  readonly date = (): Date => new Date(this.current);

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.current + Math.max(0, ms), seq: id, fn });
    return id;
  }

  /** Cancel a pending fake timer. */
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /**
   * Sleep in fake time: resolves when the clock has been advanced by `ms`, rejects with the
   * abort reason when `signal` fires first. Executors under test use it instead of `setTimeout`.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        this.clearTimeout(handle);
        reject(signal!.reason);
      };
      const handle = this.setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Timers not yet fired. */
  get pendingTimers(): number {
    return this.timers.size;
  }

  /**
   * Move time forward by `ms`, firing every timer that falls due, in order, and letting
   * the work each one starts settle before the next.
   */
  async advance(ms: number): Promise<void> {
    const end = this.current + ms;
    await settle();
    for (;;) {
      let next: Pending | undefined;
      for (const t of this.timers.values()) {
        if (t.at <= end && (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      }
      if (!next) break;
      this.timers.delete(next.seq);
      this.current = Math.max(this.current, next.at);
      next.fn();
      await settle();
    }
    this.current = end;
    await settle();
  }

  /** Jump to a point in time (forward only), firing what falls due. */
  async advanceTo(when: Date | string | number): Promise<void> {
    await this.advance(Math.max(0, new Date(when).getTime() - this.current));
  }
}

/** Let pending promise chains run: a few turns of the event loop. */
export async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
