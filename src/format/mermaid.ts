import type { TransitionRow } from '../machine/transitions.js';
import type { InstanceState } from '../types.js';

/** Options of {@link toMermaid}. */
export interface MermaidOptions {
  /** Highlight this state (e.g. an instance's current state). */
  highlight?: InstanceState;
  /** Diagram direction. @default 'LR' */
  direction?: 'LR' | 'TB';
}

/**
 * Render a transition table (normally {@link TRANSITIONS}) as a Mermaid state diagram.
 * Rows with the same `from` and `to` are merged into one edge labelled with all events.
 */
export function toMermaid(rows: readonly TransitionRow[], options: MermaidOptions = {}): string {
  const edges = new Map<string, { from: string; to: string; labels: string[] }>();
  for (const row of rows) {
    const from = row.from === 'none' ? '[*]' : row.from;
    const key = `${from}->${row.to}`;
    const label = row.guard ? `${row.event} [${row.guard}]` : row.event;
    const edge = edges.get(key);
    if (edge) edge.labels.push(label);
    else edges.set(key, { from, to: row.to, labels: [label] });
  }
  const lines = ['stateDiagram-v2', `  direction ${options.direction ?? 'LR'}`];
  for (const { from, to, labels } of edges.values()) lines.push(`  ${from} --> ${to}: ${labels.join(', ')}`);
  for (const terminal of ['succeeded', 'failed', 'stopped', 'skipped']) lines.push(`  ${terminal} --> [*]`);
  if (options.highlight) {
    lines.push('  classDef current fill:#ffd54f,stroke:#e65100,stroke-width:3px');
    lines.push(`  class ${options.highlight} current`);
  }
  return lines.join('\n');
}
