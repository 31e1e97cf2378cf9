import type { AuditEntry, Instance } from '../types.js';

/** Options of {@link backfillGantt}. */
export interface GanttOptions {
  /** The chart's title. @default 'Backfill' */
  title?: string;
  /** The backfill's instances, to label each bar with its logical date (else the instance id). */
  instances?: readonly Instance[];
}

const TERMINAL = new Set(['succeeded', 'failed', 'stopped', 'skipped']);

/** Mermaid task labels may not contain `:` or `#`; keep them readable. */
function label(text: string): string {
  return text.replace(/:/g, '.').replace(/[#;]/g, ' ');
}

/**
 * Render a backfill's history (its audit entries, e.g. `controller.audit({ backfillId })`) as a
 * Mermaid Gantt chart: one section per task, one bar per instance from its first start to its
 * end (still open bars end at the last entry), marked `done`, `crit` (failed or stopped) or
 * `active` (still running).
 */
export function backfillGantt(entries: readonly AuditEntry[], options: GanttOptions = {}): string {
  const bars = new Map<string, { taskId: string; date: string; start?: number; end?: number; state?: string }>();
  let last = 0;
  for (const e of entries) {
    if (e.kind !== 'transition' || !e.instanceId) continue;
    const at = Date.parse(e.at);
    last = Math.max(last, at);
    let bar = bars.get(e.instanceId);
    if (!bar) bars.set(e.instanceId, (bar = { taskId: e.taskId ?? '?', date: e.instanceId }));
    if (e.to === 'running' && bar.start === undefined) bar.start = at;
    if (e.to === 'running') bar.end = undefined;
    if (e.to !== undefined) bar.state = e.to;
    if (e.to !== undefined && TERMINAL.has(e.to)) bar.end = at;
  }
  const lines = ['gantt', `  title ${label(options.title ?? 'Backfill')}`, '  dateFormat x', '  axisFormat %H:%M:%S'];
  const dates = new Map((options.instances ?? []).map((i) => [i.id, i.logicalDate]));
  const bySection = new Map<string, string[]>();
  let n = 0;
  for (const [id, bar] of bars) {
    if (bar.start === undefined) continue;
    const end = Math.max(bar.end ?? last, bar.start + 1);
    const tag = bar.state === 'succeeded' || bar.state === 'skipped' ? 'done, ' : bar.state === 'failed' || bar.state === 'stopped' ? 'crit, ' : 'active, ';
    const rows = bySection.get(bar.taskId) ?? [];
    const name = dates.get(id) ?? `…${id.slice(-6)}`;
    rows.push(`    ${label(`${name} ${bar.state ?? ''}`)} :${tag}b${n++}, ${bar.start}, ${end}`);
    bySection.set(bar.taskId, rows);
  }
  for (const [taskId, rows] of bySection) lines.push(`  section ${label(taskId)}`, ...rows);
  return lines.join('\n');
}
