/**
 * Where a controller gets the time and sets its timers. The default uses the real clock;
 * `taskctl/testing`'s `FakeClock` implements it so tests advance time by hand.
 */
export interface TimerHost {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Call `fn` after `ms` milliseconds; returns a handle for {@link TimerHost.clearTimeout}. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancel a timer started with {@link TimerHost.setTimeout}. */
  clearTimeout(handle: unknown): void;
}

/** The real clock (optionally with an injected `now`). Timers are unref'd only where asked. */
export function realTimers(clock?: () => Date): TimerHost {
  return {
    now: clock ? () => clock().getTime() : Date.now,
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
  };
}

/** Unref a real timer handle so that it does not keep the process alive. */
export function unrefTimer(handle: unknown): void {
  (handle as { unref?: () => void } | undefined)?.unref?.();
}
