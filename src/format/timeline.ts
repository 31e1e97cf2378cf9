import type { AuditEntry } from '../types.js';

/** Options of {@link formatTimeline}. */
export interface TimelineOptions {
  /** Show times relative to the first entry (`+1.234s`) instead of ISO times. @default false */
  relative?: boolean;
  /** Print the instance id on each line (useful for a backfill's or a task's timeline). @default 'auto' */
  showInstance?: boolean | 'auto';
}

function shortId(id: string | undefined): string {
  return id ? `…${id.slice(-6)}` : '';
}

function describe(entry: AuditEntry): string {
  switch (entry.kind) {
    case 'transition': {
      const attempt = entry.attempt !== undefined ? ` (attempt ${entry.attempt})` : '';
      return `${entry.from ?? '?'} → ${entry.to ?? '?'}  [${entry.event ?? entry.action ?? ''}]${attempt}`;
    }
    case 'command': {
      const result = entry.result as { denied?: boolean; message?: string; applied?: { changed: boolean }[]; rejected?: unknown[]; status?: string } | undefined;
      if (result?.denied) return `${entry.action} DENIED: ${result.message ?? ''}`;
      const changed = result?.applied?.filter((a) => a.changed).length ?? 0;
      const same = (result?.applied?.length ?? 0) - changed;
      const rejected = result?.rejected?.length ?? 0;
      const target = entry.target && !('instanceId' in entry.target) ? ` ${JSON.stringify(entry.target)}` : '';
      const status = result?.status && result.status !== 'completed' ? ` ${result.status}` : '';
      return `${entry.action}${target}${status}: ${changed} changed${same ? `, ${same} unchanged` : ''}${rejected ? `, ${rejected} rejected` : ''}`;
    }
    case 'late_result': {
      const result = entry.result as { outcome?: string } | undefined;
      return `late result ignored: executor ${result?.outcome ?? 'returned'} after the instance moved on (${entry.reason ?? ''})`;
    }
  }
}

/**
 * Render audit entries as a readable text timeline: when, who, what, from which state to
 * which, and why.
 *
 * ```text
 * 10:00:00.000  alice             command   pause {"instanceId":"…"}: 1 changed — maintenance
 * 10:00:00.000  alice             …A1B2C3   running → pausing  [pause] (attempt 1)
 * ```
 */
export function formatTimeline(entries: readonly AuditEntry[], options: TimelineOptions = {}): string {
  if (entries.length === 0) return '(no entries)';
  const instances = new Set(entries.filter((e) => e.instanceId).map((e) => e.instanceId));
  const showInstance = options.showInstance === 'auto' || options.showInstance === undefined ? instances.size > 1 : options.showInstance;
  const t0 = Date.parse(entries[0].at);
  const actorWidth = Math.min(24, Math.max(5, ...entries.map((e) => e.actor.length)));
  return entries
    .map((e) => {
      const when = options.relative ? `+${((Date.parse(e.at) - t0) / 1000).toFixed(3)}s`.padStart(10) : e.at;
      const kind = e.kind === 'transition' ? (showInstance ? shortId(e.instanceId).padEnd(9) : '        ') : e.kind === 'command' ? 'command ' : 'late    ';
      const reason = e.reason ? `  — ${e.reason}` : '';
      return `${when}  ${e.actor.padEnd(actorWidth)}  ${kind}  ${describe(e)}${reason}`;
    })
    .join('\n');
}
