import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { stateMachineMarkdown } from '../../scripts/diagram-source.js';
import { TRANSITIONS, toMermaid } from '../../src/index.js';

describe('the state diagram in the docs is generated from TRANSITIONS', () => {
  it('docs/state-machine.md matches the table (run `npm run diagram` after changing TRANSITIONS)', () => {
    const committed = readFileSync(new URL('../../docs/state-machine.md', import.meta.url), 'utf8');
    expect(committed).toBe(stateMachineMarkdown());
  });

  it('every row of the table appears as an edge label in the diagram', () => {
    const diagram = toMermaid(TRANSITIONS);
    for (const row of TRANSITIONS) {
      const from = row.from === 'none' ? '\\[\\*\\]' : row.from;
      expect(diagram).toMatch(new RegExp(`${from} --> ${row.to}: .*${row.event}`));
    }
  });

  it('highlights the current state when asked', () => {
    expect(toMermaid(TRANSITIONS, { highlight: 'paused' })).toContain('class paused current');
  });
});
